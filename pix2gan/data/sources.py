"""Several sources as one generator input: the channel layout, input dropout and availability channels.

A many-to-one model (``--src t1,zte``) takes each source's 2.5-D stack (``2K + 1`` slices of ``C`` channels, ``C``
= ``model.in_channels``) one after the other, in the order the sources were named; a model trained with input
dropout (``--input-dropout P``) takes one availability channel per source after them (1: present, 0: missing)::

    [ t1[-K..K] | zte[-K..K] | avail_t1 avail_zte ]        S (2K + 1) C + S channels

A missing source's stack is zero-filled (0 is mid-range in the normalised [-1, 1] space) and its availability
channel is 0, so a zero image is never taken for a real one (MM-GAN, Sharma & Hamarneh 2020). The zero-filling and
the availability planes are applied *after* a slice is padded or cropped -- in training to the crop, at inference to
the padded slice -- so a missing source is zero, and a present one's availability 1, over the whole input the
generator sees, as in training. One function, :meth:`SourceLayout.assemble`, builds that input for both.

Example:
    >>> import torch
    >>> layout = SourceLayout(("t1", "zte"), context=0, optional=True)
    >>> layout.channels, layout.block("zte")
    (4, slice(1, 2, None))
    >>> x = layout.assemble(torch.ones(1, 2, 2, 2), torch.tensor([[True, False]]))
    >>> x[0, :, 0, 0].tolist()
    [1.0, 0.0, 1.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from pix2gan.config import DataConfig, RunConfig
from pix2gan.errors import InputError

__all__ = ["SourceLayout", "draw_present"]


@dataclass(frozen=True)
class SourceLayout:
    """Where each source's slices sit among the generator's input channels.

    Args:
        names: the sources, in channel order.
        context: neighbouring slices on each side in each source's stack (2.5-D).
        channels_per_slice: channels of one slice of a source (``model.in_channels``, 1 for volumes).
        optional: trained with input dropout: one availability channel per source follows the stacks, and any
            non-empty subset of the sources may be given.
    """

    names: tuple[str, ...]
    context: int = 0
    channels_per_slice: int = 1
    optional: bool = False

    @classmethod
    def of(cls, cfg: RunConfig | DataConfig, channels_per_slice: int | None = None) -> SourceLayout:
        """The layout of a run's generator input (``channels_per_slice`` from ``cfg.model`` for a RunConfig)."""
        data = cfg.data if isinstance(cfg, RunConfig) else cfg
        if channels_per_slice is None:
            channels_per_slice = cfg.model.in_channels if isinstance(cfg, RunConfig) else 1
        return cls(data.sources, data.context, channels_per_slice, data.optional_sources)

    @property
    def per_source(self) -> int:
        """Channels of one source's stack: ``(2K + 1) C``."""
        return (2 * self.context + 1) * self.channels_per_slice

    @property
    def stacks(self) -> int:
        """Channels of all the sources' stacks (before the availability channels)."""
        return self.per_source * len(self.names)

    @property
    def channels(self) -> int:
        """The generator's input channels: the stacks, and the availability channels when ``optional``."""
        return self.stacks + (len(self.names) if self.optional else 0)

    def block(self, name: str) -> slice:
        """The channels of source ``name``'s stack."""
        i = self.names.index(name)
        return slice(i * self.per_source, (i + 1) * self.per_source)

    def stack_label(self, name: str) -> str:
        """Source ``name``'s stack in words: ``t1[k-1..k+1]`` (``t1[k]`` without context)."""
        k = self.context
        return f"{name}[k-{k}..k+{k}]" if k else f"{name}[k]"

    @property
    def availability_names(self) -> list[str]:
        """The availability channels' names (``available:t1``, ...), after the stacks; none without input dropout."""
        return [f"available:{n}" for n in self.names] if self.optional else []

    def channel_names(self) -> list[str]:
        """The name of each input channel, in order: ``<source>[k-1]`` (``:<c>`` after it for a source of several
        channels per slice), then the availability channels.

        Example:
            >>> SourceLayout(("t1", "zte"), context=1, optional=True).channel_names()
            ['t1[k-1]', 't1[k]', 't1[k+1]', 'zte[k-1]', 'zte[k]', 'zte[k+1]', 'available:t1', 'available:zte']
        """
        names, c = [], self.channels_per_slice
        for name in self.names:
            for offset in range(-self.context, self.context + 1):
                where = f"{name}[k{offset:+d}]" if offset else f"{name}[k]"
                names += [where] if c == 1 else [f"{where}:{i}" for i in range(c)]
        return names + self.availability_names

    def centres(self, inputs: torch.Tensor) -> torch.Tensor:
        """The centre slice of every source's stack, (B, S C, H, W), from the generator's input (B, channels, H, W):
        what the discriminator sees of the sources (a missing one as the generator saw it, zero-filled)."""
        c, k = self.channels_per_slice, self.context
        centres = [inputs[:, i * self.per_source + k * c : i * self.per_source + (k + 1) * c]
                   for i in range(len(self.names))]  # fmt: skip
        return centres[0] if len(centres) == 1 else torch.cat(centres, 1)

    def assemble(self, stacks: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        """The generator's input from the sources' stacks: missing sources zero-filled, availability planes appended.

        Args:
            stacks: (B, :attr:`stacks`, H, W) normalised; what stands in a missing source's channels is ignored.
            present: (B, S) or (S,) bool, which sources are there (default: all).

        Returns:
            (B, :attr:`channels`, H, W); ``stacks`` itself when every source is there and the layout has no
            availability channels.
        """
        if stacks.shape[1] != self.stacks:
            raise ValueError(f"expected {self.stacks} channels of source stacks ({', '.join(self.names)}), got "
                             f"{stacks.shape[1]}")  # fmt: skip
        n = len(self.names)
        present = torch.ones(n, dtype=torch.bool) if present is None else torch.as_tensor(present, dtype=torch.bool)
        present = present.to(stacks.device).expand(stacks.shape[0], n)
        if not self.optional:
            if not bool(present.all()):
                raise ValueError(f"this model needs every source ({', '.join(self.names)}): it was trained without "
                                 f"--input-dropout")  # fmt: skip
            return stacks
        keep = present.to(stacks.dtype).repeat_interleave(self.per_source, 1)[:, :, None, None]
        avail = present.to(stacks.dtype)[:, :, None, None].expand(-1, -1, *stacks.shape[-2:])
        return torch.cat([stacks * keep, avail], 1)

    def present(self, given: Iterable[str], *, model: str = "model") -> tuple[bool, ...]:
        """Which of the sources ``given`` names are there, in channel order (inference).

        Raises:
            InputError: one line naming ``model``: a name that is not a source of the model; no source given; a
                source missing that the model did not learn to do without.
        """
        given = list(given)
        unknown = [g for g in given if g not in self.names]
        if unknown:
            raise InputError(f"{model}: {unknown[0]!r} is not an input of this model; it takes "
                             f"{', '.join(self.names)}")  # fmt: skip
        if not given:
            raise InputError(f"{model}: no input given; it takes {', '.join(self.names)}")
        missing = [n for n in self.names if n not in given]
        if missing and not self.optional:
            raise InputError(f"{model}: needs {', '.join(missing)} too (it takes {', '.join(self.names)} and was "
                             f"trained without --input-dropout, so it cannot do without one)")  # fmt: skip
        return tuple(n in given for n in self.names)

    def order(self, names: Sequence[str], *, model: str = "model") -> list[int]:
        """Where each of this model's sources is in ``names`` (another model's or a file's order): the channel
        order is by name, never by position.

        Raises:
            InputError: ``names`` is not the same set of sources.
        """
        if sorted(names) != sorted(self.names):
            raise InputError(f"{model}: takes {', '.join(self.names)}, not {', '.join(names)}")
        return [list(names).index(n) for n in self.names]


def draw_present(n: int, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Input dropout for one item: each of ``n`` sources is missing with probability ``p``, never all of them
    (when all are drawn missing, one drawn uniformly is kept). Draws nothing when ``p`` is 0.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> all(bool(draw_present(3, 0.9, g).any()) for _ in range(100)), draw_present(2, 0.0).tolist()
        (True, [True, True])
    """
    if p <= 0:
        return torch.ones(n, dtype=torch.bool)
    present = torch.rand(n, generator=generator) >= p
    if not bool(present.any()):
        present[int(torch.randint(0, n, (), generator=generator))] = True
    return present
