"""CycleGAN's objective (Zhu et al., ICCV 2017), as the one D/G step runs it: unpaired a -> b translation.

Batches hold ``src``: source images a, ``dst``: target images b, drawn independently (nothing ties an a to a b).
:meth:`CycleObjective.generate` runs both generators (one :class:`~pix2gan.nets.cycle.CycleGenerators` module) on
both and returns every image the losses need as one :class:`CycleImages`; its ``detach()`` is what the step's D
phase takes. The losses, with the reference implementation's defaults:

- D_b on real b vs generated b drawn through a history pool of 50 (:class:`~pix2gan.tasks.pool.ImagePool`), D_a
  likewise on a; each halved, as in the reference (``loss_d = loss_d_a + loss_d_b``: the two have no weights in
  common, so one backward of the sum is the reference's two);
- G: the GAN terms of both directions (least squares by default) + ``lambda_cycle`` (10) x (L1 of a -> b -> a
  against a + L1 of b -> a -> b against b) + ``lambda_identity`` (0.5) x ``lambda_cycle`` x (L1 of G_ba(a)
  against a + L1 of G_ab(b) against b), the identity term only where the channels allow it
  (:func:`identity_refusal`).

The step runs D's phase before G's (pix2gan's order for every mode; the reference updates G first): G's GAN terms
see the discriminators after their update. The terms are reported unweighted, as the paired objective's L1 is.

With ``context`` K > 0 the source batch holds 2K + 1 slices per image and G_ab outputs the target's centre slice;
G_ba translates one slice (C_b -> C_a channels), D_a judges centre source slices. The cycle b -> a -> b needs a
source *stack* for G_ab: with ``dst_stack`` the batch's ``dst`` holds the target's 2K + 1 slices too and G_ba is
applied to each of them (the target's centre slice is what D_b judges and the cycle reconstructs); without it the
target's neighbours are unknown and the generated centre slice stands in for each of its neighbours.

Under DDP: :meth:`CycleObjective.generate` makes all its generator calls inside one call of the generator pair
(its ``plan``), and D's phase all its discriminator calls inside one call of the discriminator pair, so each
DDP-wrapped pair runs exactly one forward per backward (what DDP's reducer expects). G's phase calls the
discriminators as the loop hands them over for that phase (the bare pair under DDP: their gradients are not wanted
there). Each rank keeps its own pools (seeded per ``rank``).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pix2gan.config import GanLoss
from pix2gan.errors import InputError
from pix2gan.losses import gan_loss, l1_loss
from pix2gan.tasks.pool import ImagePool

__all__ = ["CycleImages", "CycleObjective", "identity_refusal", "identity_weight", "DEFAULT_IDENTITY"]

log = logging.getLogger("pix2gan")


def identity_refusal(src_channels: int, dst_channels: int, context: int = 0, dst_stack: bool = False) -> str | None:
    """Why the identity loss cannot apply to these images (one line), or None when it can.

    G_ab(b) must take b as it takes a, and G_ba(a) give back a's channels: the two sides need the same channels per
    slice, and with ``context`` the target batch must hold stacks as the source's does (``dst_stack``).

    Example:
        >>> identity_refusal(1, 1) is None, identity_refusal(1, 1, context=1, dst_stack=True) is None
        (True, True)
        >>> print(identity_refusal(3, 1))  # doctest: +ELLIPSIS
        the identity loss maps each side onto itself, but the source has 3 channels and the target 1; set ...
    """
    if src_channels != dst_channels:
        return (f"the identity loss maps each side onto itself, but the source has {src_channels} channels and the "
                f"target {dst_channels}; set --lambda-identity 0")  # fmt: skip
    if context and not dst_stack:
        return (f"the identity loss feeds target images to G_ab, which takes {2 * context + 1}-slice stacks with "
                f"--context {context}, but the target batches hold single slices; set --lambda-identity 0")  # fmt: skip
    return None


DEFAULT_IDENTITY = 0.5  # CycleGAN's identity weight, a fraction of the cycle's


def identity_weight(requested: float | None, refusal: str | None) -> float:
    """The identity loss's weight (a fraction of ``lambda_cycle``) a run trains with: ``requested``, or CycleGAN's
    0.5 when not given (None) and an identity applies; 0 when ``refusal`` (see :func:`identity_refusal`) says it
    cannot apply and it was not asked for (a warning says so).

    Raises:
        InputError: a weight above 0 asked for where the identity cannot apply (``refusal``, in one line).

    Example:
        >>> identity_weight(None, None), identity_weight(0.25, None), identity_weight(None, "why"), identity_weight(0, "why")
        (0.5, 0.25, 0.0, 0.0)
    """
    if requested is None:
        if refusal:
            log.warning("identity loss off: %s", refusal.split("; ")[0])
        return 0.0 if refusal else DEFAULT_IDENTITY
    if requested and refusal:
        raise InputError(f"--lambda-identity {requested:g}: {refusal}")
    return float(requested)


@dataclass
class CycleImages:
    """Every image CycleGAN's losses need for one batch (each (B, C, S, S); the identities None when off)."""

    fake_b: torch.Tensor  # G_ab(a)
    fake_a: torch.Tensor  # G_ba(b) (the centre slice's with context)
    rec_a: torch.Tensor  # G_ba(G_ab(a)): a's centre slice again
    rec_b: torch.Tensor  # G_ab(G_ba(b)): b's centre slice again
    idt_a: torch.Tensor | None = None  # G_ba(a's centre slice)
    idt_b: torch.Tensor | None = None  # G_ab(b)

    def detach(self) -> CycleImages:
        """The same images without their graph (what the discriminators' phase takes)."""
        values = (getattr(self, f.name) for f in dataclasses.fields(self))  # (astuple would deep-copy the tensors)
        return CycleImages(*(None if t is None else t.detach() for t in values))


def _judge(discriminator: nn.Module, images: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """D's phase inside the discriminator pair's one forward: the logits of D_b on real and generated b, then of
    D_a on real and generated a (``images`` in that order)."""
    real_b, fake_b, real_a, fake_a = images
    d = discriminator
    return d(real_b, "b"), d(fake_b, "b"), d(real_a, "a"), d(fake_a, "a")


class CycleObjective:
    """CycleGAN's losses over :class:`~pix2gan.nets.cycle.CycleGenerators` and
    :class:`~pix2gan.nets.cycle.CycleDiscriminators`, with a seeded history pool per discriminator.

    Args:
        gan_kind: the adversarial loss (CycleGAN: ``lsgan``); ``none`` is refused (the cycle alone has no target).
        lambda_cycle: weight of each direction's cycle-consistency L1 (CycleGAN: 10).
        lambda_identity: weight of the identity L1s as a fraction of ``lambda_cycle`` (CycleGAN: 0.5; 0: off). Off
            too where :func:`identity_refusal` says the channels do not allow it (the task refuses an explicit
            weight then).
        src_channels / dst_channels: channels per slice of a and of b.
        context: neighbouring source slices on each side in ``src`` (and in ``dst`` with ``dst_stack``).
        dst_stack: the batches' ``dst`` holds the target's 2K + 1-slice stacks (see the module's notes).
        pool_size: images in each discriminator's history pool (CycleGAN: 50; 0: no pool).
        seed: seeds both pools' random generators (each its own stream).
        rank: the DDP rank whose pools these are: each rank's pools draw their own streams (rank 0's are those of a
            single process).

    Shape:
        - ``src``: :math:`(B, (2K + 1) C_a, S, S)`; ``dst``: :math:`(B, C_b, S, S)`, or :math:`(B, (2K + 1) C_b, S,
          S)` with ``dst_stack``; values in [-1, 1].
    """

    reuse_fake = True  # one generate() per batch: D sees it detached (through the pools), G's loss back-propagates
    d_steps = 1

    def __init__(
        self, *, gan_kind: GanLoss | str = GanLoss.LSGAN, lambda_cycle: float = 10.0, lambda_identity: float = 0.5,
        src_channels: int = 1, dst_channels: int = 1, context: int = 0, dst_stack: bool = False, pool_size: int = 50,
        seed: int = 0, rank: int = 0,
    ) -> None:  # fmt: skip
        self.gan_kind = GanLoss(gan_kind)
        if self.gan_kind == GanLoss.NONE:
            raise ValueError("CycleObjective: gan_kind 'none' leaves no adversarial term; CycleGAN needs one")
        if lambda_cycle < 0 or lambda_identity < 0:
            raise ValueError(f"CycleObjective: weights must be >= 0, got lambda_cycle {lambda_cycle}, "
                             f"lambda_identity {lambda_identity}")  # fmt: skip
        self.lambda_cycle, self.lambda_identity = float(lambda_cycle), float(lambda_identity)
        self.src_channels, self.dst_channels, self.context = src_channels, dst_channels, context
        self.dst_stack = bool(dst_stack and context)
        self.identity = lambda_identity > 0 and identity_refusal(src_channels, dst_channels, context, dst_stack) is None
        # two streams: the pools draw independently; another rank's pools are spawned children of the run's seed
        seeds = np.random.SeedSequence(seed, spawn_key=(rank,) if rank else ()).generate_state(2)
        self.pool_a, self.pool_b = (ImagePool(pool_size, int(s)) for s in seeds)

    @property
    def loss_names(self) -> tuple[str, ...]:
        """The losses a step reports, in their order: G's (``loss_g`` first), then D's (``loss_d`` first).

        Example:
            >>> CycleObjective().loss_names[5:]
            ('loss_g_idt_a', 'loss_g_idt_b', 'loss_d', 'loss_d_a', 'loss_d_b')
            >>> CycleObjective(lambda_identity=0).loss_names  # doctest: +ELLIPSIS
            ('loss_g', 'loss_g_gan_ab', 'loss_g_gan_ba', 'loss_g_cycle_a', 'loss_g_cycle_b', 'loss_d', 'loss_d_a', ...)
        """
        idt = ("loss_g_idt_a", "loss_g_idt_b") if self.identity else ()
        return ("loss_g", "loss_g_gan_ab", "loss_g_gan_ba", "loss_g_cycle_a", "loss_g_cycle_b", *idt,
                "loss_d", "loss_d_a", "loss_d_b")  # fmt: skip

    def _centre(self, x: torch.Tensor, channels: int) -> torch.Tensor:
        """The centre slice of a (B, (2K + 1) C, S, S) stack."""
        k = self.context
        return x[:, k * channels : (k + 1) * channels]

    def _sides(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``src`` and ``dst``, checked against the channels the objective was made for."""
        a, b = batch["src"], batch["dst"]
        n = 2 * self.context + 1
        want_a, want_b = n * self.src_channels, (n if self.dst_stack else 1) * self.dst_channels
        if a.ndim != 4 or b.ndim != 4 or a.shape[1] != want_a or b.shape[1] != want_b:
            raise ValueError(f"CycleObjective: expected src (B, {want_a}, S, S) and dst (B, {want_b}, S, S), got "
                             f"{tuple(a.shape)} and {tuple(b.shape)}")  # fmt: skip
        return a, b

    def _b_centre(self, b: torch.Tensor) -> torch.Tensor:
        return self._centre(b, self.dst_channels) if self.dst_stack else b

    def _reverse(self, generator: nn.Module, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """G_ba(b): the generated source's centre slice (B, C_a, S, S) and its stack for G_ab
        (B, (2K + 1) C_a, S, S)."""
        n = 2 * self.context + 1
        if not self.dst_stack:
            fake_a = generator(b, reverse=True)
            return fake_a, fake_a.repeat(1, n, 1, 1) if n > 1 else fake_a
        bsz, _, h, w = b.shape  # every slice of the target stack through G_ba, as one batch
        stack = generator(b.reshape(bsz * n, self.dst_channels, h, w), reverse=True).reshape(bsz, -1, h, w)
        return self._centre(stack, self.src_channels), stack

    def generate(self, batch: dict[str, torch.Tensor], generator: nn.Module) -> CycleImages:
        """Both translations, both cycles and (when on) both identities, in the reference's order of calls, all
        inside one call of ``generator`` (a :class:`~pix2gan.nets.cycle.CycleGenerators`, DDP-wrapped or not)."""
        return generator(self._sides(batch), plan=self._translate)

    def _translate(self, generator: nn.Module, sides: tuple[torch.Tensor, torch.Tensor]) -> CycleImages:
        """What :meth:`generate` runs inside the generator pair's one forward (``generator``: the bare pair)."""
        a, b = sides
        fake_b = generator(a)  # (B, C_b, S, S)
        rec_a = generator(fake_b, reverse=True)  # (B, C_a, S, S)
        fake_a, fake_a_stack = self._reverse(generator, b)
        rec_b = generator(fake_a_stack)  # (B, C_b, S, S)
        if not self.identity:
            return CycleImages(fake_b, fake_a, rec_a, rec_b)
        idt_b = generator(b)  # G_ab(b): (with context, b's stack)
        idt_a = generator(self._centre(a, self.src_channels), reverse=True)
        return CycleImages(fake_b, fake_a, rec_a, rec_b, idt_a, idt_b)

    def d_losses(self, batch: dict[str, torch.Tensor], discriminator: nn.Module, fake: CycleImages) -> dict[str, torch.Tensor]:
        """Each discriminator on its domain's real images vs generated ones drawn through its pool, halved."""
        a, b = self._sides(batch)
        kind = self.gan_kind
        pooled_b, pooled_a = self.pool_b(fake.fake_b), self.pool_a(fake.fake_a)
        images = (self._b_centre(b), pooled_b, self._centre(a, self.src_channels), pooled_a)
        real_b, fake_b, real_a, fake_a = discriminator(images, plan=_judge)  # (one forward of the pair: DDP)
        loss_d_b = 0.5 * (gan_loss(real_b, True, kind) + gan_loss(fake_b, False, kind))
        loss_d_a = 0.5 * (gan_loss(real_a, True, kind) + gan_loss(fake_a, False, kind))
        return {"loss_d": loss_d_a + loss_d_b, "loss_d_a": loss_d_a, "loss_d_b": loss_d_b}

    def g_losses(self, batch: dict[str, torch.Tensor], discriminator: nn.Module, fake: CycleImages) -> dict[str, torch.Tensor]:
        """Both GAN terms (the fresh fakes, not the pools'), the weighted cycles and identities."""
        a, b = self._sides(batch)
        a_c, b_c = self._centre(a, self.src_channels), self._b_centre(b)
        kind = self.gan_kind
        terms = {
            "loss_g_gan_ab": gan_loss(discriminator(fake.fake_b, "b"), True, kind, for_discriminator=False),
            "loss_g_gan_ba": gan_loss(discriminator(fake.fake_a, "a"), True, kind, for_discriminator=False),
            "loss_g_cycle_a": l1_loss(fake.rec_a, a_c),
            "loss_g_cycle_b": l1_loss(fake.rec_b, b_c),
        }
        loss_g = (terms["loss_g_gan_ab"] + terms["loss_g_gan_ba"]
                  + self.lambda_cycle * (terms["loss_g_cycle_a"] + terms["loss_g_cycle_b"]))  # fmt: skip
        if self.identity:
            terms["loss_g_idt_a"] = l1_loss(fake.idt_a, a_c)  # type: ignore[arg-type]
            terms["loss_g_idt_b"] = l1_loss(fake.idt_b, b_c)  # type: ignore[arg-type]
            loss_g = loss_g + self.lambda_identity * self.lambda_cycle * (terms["loss_g_idt_a"] + terms["loss_g_idt_b"])
        return {"loss_g": loss_g, **terms}

    def state_dict(self) -> dict[str, dict[str, torch.Tensor]]:
        """Both pools' states (tensors only): what a checkpoint keeps so a resumed run draws the same images."""
        return {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()}

    def load_state_dict(self, state: dict[str, dict[str, torch.Tensor]]) -> None:
        self.pool_a.load_state_dict(state["pool_a"])
        self.pool_b.load_state_dict(state["pool_b"])
