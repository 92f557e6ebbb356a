"""CycleGAN's networks as two modules: the generators G_ab and G_ba, and the discriminators D_a and D_b.

Each pair is one ``nn.Module``, so the loop, the one D/G step, the optimisers (one Adam over both generators'
parameters and one over both discriminators', as the reference code does with ``itertools.chain``) and the
checkpoint see one generator and one discriminator, as in every other mode. A training step needs each pair several
times before one backward pass (fakes, cycles, identities; real and generated images for each discriminator), while
DDP's reducer expects one forward per backward: so each pair's ``forward`` also takes a ``plan``, a function of the
bare pair that makes all of a step's calls, and the training step passes its calls through that one forward (see
:class:`~pix2gan.tasks.unpaired_objective.CycleObjective`); under DDP every rank then runs exactly one forward per
backward of each wrapped pair, whatever the plan does. Both generators are the run's paired
architecture (``model.generator``: ResNet-9 with instance norm in CycleGAN, U-Net selectable); both discriminators
are PatchGANs judging one domain's images alone (unconditional: there is no paired source to show them).

Channels, with ``C_a`` = ``model.in_channels``, ``C_b`` = ``model.out_channels`` (1 for MR and CT) and ``K`` =
``data.context`` neighbouring slices on each side:

- G_ab: :math:`(2K + 1) C_a \\to C_b` channels, as the paired generator (the source slice and its neighbours in,
  the target's centre slice out);
- G_ba: :math:`C_b \\to C_a`, one slice to one slice: it outputs the *centre* source slice only, so D_a judges
  :math:`C_a`-channel images (centre slices of real and generated sources). A source stack for G_ab, which the
  cycle b -> a -> b needs, is G_ba applied to each slice of a target stack (see
  :class:`~pix2gan.tasks.unpaired_objective.CycleObjective`);
- D_a judges :math:`C_a` channels, D_b :math:`C_b`.

Example:
    >>> from pix2gan.config import RunConfig, ModelConfig, Norm
    >>> from pix2gan.nets.resnet import resnet9
    >>> cfg = RunConfig(model=ModelConfig(generator="resnet9", norm=Norm.INSTANCE, dropout=False, base_filters=4))
    >>> g = cycle_generators(cfg, resnet9)
    >>> x = torch.zeros(1, 1, 16, 16)
    >>> g(x).shape, g(x, reverse=True).shape, torch.equal(g.reversed()(x), g.g_ba(x))
    (torch.Size([1, 1, 16, 16]), torch.Size([1, 1, 16, 16]), True)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from pix2gan.config import RunConfig
from pix2gan.nets.patchgan import PatchDiscriminator

__all__ = ["CycleGenerators", "CycleDiscriminators", "cycle_generators", "cycle_discriminators", "reverse_config",
           "reversed_config"]  # fmt: skip


class CycleGenerators(nn.Module):
    """G_ab (a -> b) and G_ba (b -> a) as one module; calling it translates a -> b, so code that runs "the
    generator" (inference, export, validation) gets G_ab.

    Args:
        g_ab: the generator from domain a (the source, ``--src``) to b (the target, ``--dst``).
        g_ba: the generator from b to a.

    Shape:
        - Input: :math:`(B, C_{in}, H, W)` (G_ab's channels, or G_ba's with ``reverse``).
        - Output: :math:`(B, C_{out}, H, W)`.
    """

    def __init__(self, g_ab: nn.Module, g_ba: nn.Module) -> None:
        super().__init__()
        self.g_ab = g_ab
        self.g_ba = g_ba

    @property
    def multiple(self) -> int:
        """In-plane sizes both generators accept are multiples of this."""
        return math.lcm(getattr(self.g_ab, "multiple", 1), getattr(self.g_ba, "multiple", 1))

    def reversed(self) -> CycleGenerators:
        """A view translating b -> a: the same two networks (shared parameters) with their roles swapped. For
        inference (``translate --reverse``); save the original, whose state-dict keys name the directions truly."""
        return CycleGenerators(self.g_ba, self.g_ab)

    def forward(
        self, x: Any, reverse: bool = False, *, plan: Callable[[CycleGenerators, Any], Any] | None = None
    ) -> Any:
        """G_ab(x), or G_ba(x) when ``reverse``; with ``plan``, ``plan(self, x)``: any number of calls of this bare
        pair (``x`` whatever they take) as one forward, which is how a training step calls it (DDP allows one
        forward per backward).

        Example:
            >>> g = CycleGenerators(nn.Conv2d(1, 1, 1), nn.Conv2d(1, 1, 1))
            >>> x = torch.ones(1, 1, 2, 2)
            >>> fake, back = g(x, plan=lambda pair, a: (pair(a), pair(pair(a), reverse=True)))
            >>> torch.equal(back, g.g_ba(g.g_ab(x)))
            True
        """
        if plan is not None:
            return plan(self, x)
        return self.g_ba(x) if reverse else self.g_ab(x)


class CycleDiscriminators(nn.Module):
    """D_a (real vs generated a images) and D_b (real vs generated b images) as one module.

    Example:
        >>> d = CycleDiscriminators(PatchDiscriminator(3, filters=4), PatchDiscriminator(1, filters=4))
        >>> d(torch.zeros(1, 3, 32, 32), "a").shape, d(torch.zeros(1, 1, 32, 32), "b").shape
        (torch.Size([1, 1, 2, 2]), torch.Size([1, 1, 2, 2]))
    """

    def __init__(self, d_a: nn.Module, d_b: nn.Module) -> None:
        super().__init__()
        self.d_a = d_a
        self.d_b = d_b

    def forward(
        self, x: Any, domain: str = "", *, plan: Callable[[CycleDiscriminators, Any], Any] | None = None
    ) -> Any:
        """Logits of D_a (``domain`` ``"a"``) or D_b (``"b"``) for images of that domain; with ``plan``,
        ``plan(self, x)``: several calls of this bare pair as one forward (as :meth:`CycleGenerators.forward`)."""
        if plan is not None:
            return plan(self, x)
        if domain == "a":
            return self.d_a(x)
        if domain == "b":
            return self.d_b(x)
        raise ValueError(f"CycleDiscriminators: domain must be 'a' or 'b', got {domain!r}")


def reverse_config(cfg: RunConfig) -> RunConfig:
    """The configuration G_ba is built from: source and target channels swapped, no context (one slice in).

    Example:
        >>> from pix2gan.config import DataConfig, ModelConfig
        >>> r = reverse_config(RunConfig(data=DataConfig(context=2), model=ModelConfig(in_channels=3, out_channels=1)))
        >>> r.generator_model.in_channels, r.generator_model.out_channels
        (1, 3)
    """
    model = dataclasses.replace(cfg.model, in_channels=cfg.model.out_channels, out_channels=cfg.model.in_channels)
    return dataclasses.replace(cfg, model=model, data=dataclasses.replace(cfg.data, context=0))


def reversed_config(cfg: RunConfig) -> RunConfig:
    """An unpaired run's configuration as G_ba is used (``translate --reverse``): :func:`reverse_config` with the
    source and target modalities (names and intensities) swapped too; the planes stay.

    Example:
        >>> r = reversed_config(RunConfig.from_options("unpaired", src="t1", dst="ct", context=1))
        >>> r.data.src, r.data.dst, r.data.src_intensity.value, r.data.context
        ('ct', 't1', 'hu', 0)
    """
    r = reverse_config(cfg)
    d = r.data
    data = dataclasses.replace(d, src=d.dst, dst=d.src, src_intensity=d.dst_intensity,
                               src_intensities=(), dst_intensity=d.src_intensity)
    return dataclasses.replace(r, data=data)


def cycle_generators(cfg: RunConfig, build: Callable[[RunConfig], nn.Module]) -> CycleGenerators:
    """G_ab built by ``build`` from ``cfg`` (as a paired generator: (2K + 1) C_a -> C_b channels), then G_ba from
    :func:`reverse_config` (C_b -> C_a); not initialised (the registry does that)."""
    return CycleGenerators(build(cfg), build(reverse_config(cfg)))


def cycle_discriminators(cfg: RunConfig) -> CycleDiscriminators:
    """D_a on C_a channels and D_b on C_b: PatchGANs of ``model``'s filters, layers and norm (unconditional); not
    initialised."""
    m = cfg.model
    return CycleDiscriminators(PatchDiscriminator(m.in_channels, m.disc_filters, m.disc_layers, m.norm),
                               PatchDiscriminator(m.out_channels, m.disc_filters, m.disc_layers, m.norm))  # fmt: skip
