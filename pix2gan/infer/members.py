"""Ensemble members that agree (:func:`check_members`): the same sources (by name, in any channel order) to the same
target, each normalised the same way. :class:`~pix2gan.infer.translate.Ensemble` fuses their predictions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pix2gan.data.intensity import IntensityMap
from pix2gan.errors import InputError

if TYPE_CHECKING:
    from pix2gan.infer.translate import Translator

__all__ = ["check_members"]


def check_members(first: Translator, other: Translator) -> None:
    """Refuse an ensemble member that translates other modalities than ``first`` or normalises them differently.

    Sources are compared by name: a member taking them in another channel order translates the same sources
    (each member assembles its own order, :meth:`~pix2gan.data.sources.SourceLayout.order`).

    Raises:
        InputError: one line naming ``other``.
    """
    a, b = first.config.data, other.config.data
    if (sorted(a.sources), a.dst) != (sorted(b.sources), b.dst):  # the same sources by name, in any channel order
        raise InputError(f"{other.name}: translates {' + '.join(b.sources)} -> {b.dst}, but {first.name} translates "
                         f"{' + '.join(a.sources)} -> {a.dst}; ensemble members must agree")  # fmt: skip
    sides = [(first.src_maps[n], other.src_maps[n], n) for n in a.sources] + [(first.dst_map, other.dst_map, a.dst)]
    for mine, theirs, side in sides:
        x, y = _setting(mine), _setting(theirs)
        if x != y:
            raise InputError(f"{other.name}: normalises {side} differently from {first.name} ({y[0]} {y[1]} vs "
                             f"{x[0]} {x[1]}); ensemble members must agree")  # fmt: skip


def _setting(imap: IntensityMap) -> tuple[str, tuple[float, float] | None]:
    """The normalisation a map really applies: its HU window, or its percentiles (the other setting is unused)."""
    return str(imap.kind), (imap.window if imap.kind == "hu" else imap.percentiles)
