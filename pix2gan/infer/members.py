"""Ensemble members: loading them from runs, checkpoints and exported models (:func:`load_ensemble`), and checking
that they agree (:func:`check_members`): the same sources (by name, in any channel order) to the same target, each
normalised the same way. :class:`~pix2gan.infer.translate.Ensemble` fuses their predictions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pix2gan.checkpoint import load_checkpoint
from pix2gan.data.intensity import IntensityMap
from pix2gan.errors import InputError
from pix2gan.infer.direction import require_exported_direction

if TYPE_CHECKING:
    from pix2gan.infer.translate import Ensemble, Translator

__all__ = ["check_members", "load_ensemble"]


def load_ensemble(
    runs: list[Path], checkpoints: list[Path], *, device: str = "auto", batch_size: int = 16, precision: str = "auto",
    tta: bool | None = None, fusion: str | None = None, models: Sequence[Path] = (), realism: float | None = None,
    reverse: bool = False,
) -> Ensemble:  # fmt: skip
    """The models of ``runs`` (each its best checkpoint), ``checkpoints`` and exported ``models`` (``.onnx`` /
    ``.pt2``, one member each, fp32 whatever ``precision`` says), as one :class:`Ensemble` (the newest run under
    ``$PIX2GAN_RUNS``, else ``./runs``, when all are empty). ``tta`` / ``fusion`` override what the models recommend.

    ``realism`` dials every member that holds both generators of a ``--gan-warmup`` run; the others are used as they
    are (default: each member at its run's recorded realism). It is refused (one line naming the first model) when
    no member can give it. ``reverse``: unpaired runs translate target -> source with G_ba (refused for paired runs
    and for exported models other than an unpaired run's G_ba, from ``export --reverse``)."""
    from pix2gan.infer.translate import Ensemble, Translator  # (translate.py imports this module)
    from pix2gan.runs import resolve_checkpoint

    paths = [resolve_checkpoint(run, None) for run in runs] + [resolve_checkpoint(None, c) for c in checkpoints]
    paths = paths or ([] if models else [resolve_checkpoint(None, None)])
    ckpts = [load_checkpoint(p) for p in paths]
    n = len(ckpts) + len(models)  # alone, a model refuses a realism it cannot give by itself
    members = [Translator.from_checkpoint(c, device=device, batch_size=batch_size, precision=precision, tta=tta,
                                          fusion=fusion, realism=realism if n == 1 or c.fixed_realism is None else None,
                                          reverse=reverse)
               for c in ckpts]  # fmt: skip
    members += [Translator.from_exported(m, device=device, batch_size=batch_size, tta=tta, fusion=fusion,
                                         realism=realism if n == 1 else None) for m in models]  # fmt: skip
    for m in members[len(ckpts):]:  # an export is one direction: G_ba only if exported so
        require_exported_direction(m.name, m.config, m.direction, reverse=reverse)
    if realism is not None and not any(m.realism == realism for m in members):
        have = ", ".join("unknown" if m.realism is None else f"{m.realism:g}" for m in members)
        raise InputError(f"{members[0].name}: --realism {realism:g}: no model of the ensemble holds both generators of "
                         f"a --gan-warmup run (their realism: {have}); leave --realism out")  # fmt: skip
    return Ensemble(members, fusion=fusion)


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
