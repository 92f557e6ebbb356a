"""Several translators as one: :class:`Ensemble` fuses the predictions of every member, plane and flip into one volume
on the input's grid (:class:`Translation`), from one source or, for a many-to-one model, any sources it accepts by
name. Its members must agree (:func:`check_members`): the same sources (by name, in any channel order) to the same
target, each normalised the same way. :class:`~pix2gan.infer.translate.Translator` is one member;
:func:`~pix2gan.infer.translate.load_ensemble` loads them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pix2gan.config import FUSIONS, RunConfig
from pix2gan.data.intensity import IntensityMap
from pix2gan.errors import InputError
from pix2gan.infer.fusion import Accumulator, mirrored
from pix2gan.infer.inputs import accepted, given_volumes, source_arrays, source_files
from pix2gan.infer.outputs import check_outputs, std_path
from pix2gan.infer.stream import cast_writer
from pix2gan.io import Volume, load_volume, save_like
from pix2gan.io.atomic import staged

if TYPE_CHECKING:
    from pix2gan.infer.translate import Translator

__all__ = ["Ensemble", "Translation", "check_members"]


@dataclass
class Translation:
    """A fused prediction and, when asked for, the voxel-wise standard deviation across its passes (same grid)."""

    image: np.ndarray
    std: np.ndarray | None
    passes: int


class Ensemble:
    """Several translators (or one) whose predictions -- every plane, flip and member -- are fused into one volume.

    Args:
        members: translators of the same modalities and intensity settings (else one clear InputError).
        fusion: ``mean`` or ``median`` over all predictions (default: the first member's).
    """

    def __init__(self, members: list[Translator], *, fusion: str | None = None) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one model")
        for other in members[1:]:
            check_members(members[0], other)
        self.members = members
        self.fusion = fusion or members[0].fusion
        if self.fusion not in FUSIONS:
            raise ValueError(f"--fusion must be one of {', '.join(FUSIONS)}, got {self.fusion!r}")

    @property
    def config(self) -> RunConfig:
        return self.members[0].config

    def describe(self) -> str:
        """How volumes are predicted, in words (for the command line's summary)."""
        if len(self.members) > 1:
            parts = [f"{len(self.members)} models"]
        else:
            dc = self.config.data
            parts = ["+".join(dc.planes) if dc.planes else f"axis {dc.slice_axis}"]
            parts += [f"{2 * dc.context + 1}-slice context"] if dc.context else []
        if any(m.tta for m in self.members):
            parts.append("flip TTA")
        dialled = sorted({m.realism for m in self.members if m.realism not in (None, 0.0, 1.0)})
        if dialled:
            parts.append(f"realism {'/'.join(f'{r:g}' for r in dialled)}")
        if len(self.passes()) > 1:
            parts.append(f"{self.fusion} fusion")
        return ", ".join(parts)

    def passes(self, affine: np.ndarray | None = None) -> list[tuple[Translator, int, int | None]]:
        """Every prediction the ensemble makes: (member, slice axis, mirrored axis or None)."""
        return [(m, axis, flip) for m in self.members for axis, flip in m.passes(affine)]

    @property
    def sources(self) -> tuple[str, ...]:
        """The sources the members translate (the first member's channel order)."""
        return self.members[0].layout.names

    def check_sources(self, given: Sequence[str], *, files: bool = False) -> tuple[str, ...]:
        """The sources ``given`` in the first member's order, once every member accepts them (:func:`accepted`;
        ``files``: a missing source is refused saying how to give it)."""
        return accepted([(m.name, m.layout) for m in self.members], given, files=files)

    def translate_array(
        self, volume: np.ndarray | Mapping[str, np.ndarray], *, out: np.ndarray | None = None,
        dtype: type | np.dtype = np.float32, affine: np.ndarray | None = None, uncertainty: bool = False,
    ) -> Translation:  # fmt: skip
        """Translate a 3-D volume with every member, plane and flip, fused; see :meth:`Translator.translate_array`.

        ``volume``: the first source, or a many-to-one model's sources by name (any subset every member accepts:
        :meth:`check_sources`; one grid). The result is in the layout of the primary source (the first given, in the
        first member's order), which ``out`` may be to translate in place.

        With ``uncertainty`` the result also holds the voxel-wise standard deviation across the predictions (in
        physical units; zero where they all agree, and everywhere for a single prediction). Memory: one prediction
        streams into ``out`` (which may be ``volume``); several need the source kept, plus one float32 volume for
        the mean (which becomes the result when no ``out`` is given), one more for the standard deviation, and one
        per prediction for the median.
        """
        first = self.members[0]
        self.check_sources([self.sources[0]] if isinstance(volume, np.ndarray) else list(volume))
        arrays = source_arrays(volume, self.sources)
        # before any output exists: np.percentile holds one transient copy
        scales = {n: first.src_maps[n].scale_of(a) for n, a in arrays.items()}
        volume = next(iter(arrays.values()))  # the primary source: the result's shape and layout
        scale = scales if len(self.sources) > 1 else scales[self.sources[0]]
        given = arrays if len(self.sources) > 1 else volume
        passes = self.passes(affine)
        if len(passes) == 1 and not uncertainty:  # straight into `out`, which may be the source itself
            if out is None:
                out = np.empty_like(volume, dtype=dtype)  # keeps the volume's layout (F order from nibabel)
            member, axis, flip = passes[0]
            member.run_pass(given, scale, axis, flip, cast_writer(np.moveaxis(mirrored(out, flip), axis, 0)))
            return Translation(out, None, 1)
        order = "F" if volume.flags.f_contiguous and not volume.flags.c_contiguous else "C"
        acc = Accumulator(volume.shape, fusion=self.fusion, with_std=uncertainty, order=order)
        for member, axis, flip in passes:
            member.run_pass(given, scale, axis, flip, acc.add_pass(axis, flip))
        fused, std = acc.result()
        if out is None and np.dtype(dtype) == np.float32:
            return Translation(fused, std, len(passes))  # the fused volume is the result: no copy
        if out is None:
            out = np.empty_like(volume, dtype=dtype)
        cast_writer(out[None])(0, fused)
        return Translation(out, std, len(passes))

    def translate_volume(
        self, source: Volume | Mapping[str, Volume], *, out: np.ndarray | None = None,
        dtype: type | np.dtype = np.float32, uncertainty: bool = False,
    ) -> Translation:  # fmt: skip
        """:meth:`translate_array` of a loaded volume (its affine finds the planes), with errors naming its file; or
        of a many-to-one model's sources by name, all on one grid (else one line naming both files), the primary's
        affine finding the planes."""
        if isinstance(source, Volume):
            volumes = {self.sources[0]: source}
        else:
            self.check_sources(list(source))
            volumes = given_volumes(source, self.sources)
        primary = next(iter(volumes.values()))
        arrays = primary.data if isinstance(source, Volume) else {n: v.data for n, v in volumes.items()}
        try:
            return self.translate_array(arrays, out=out, dtype=dtype, affine=primary.affine, uncertainty=uncertainty)
        except ValueError as exc:
            raise InputError(f"{primary.path}: {exc}") from None

    def translate_file(
        self, in_path: str | Path | None, out_path: str | Path, *, overwrite: bool = False, dtype: str = "float32",
        uncertainty: bool = False, series: str | None = None, inputs: Mapping[str, str | Path] | None = None,
    ) -> Path:  # fmt: skip
        """Translate one volume (any format :mod:`pix2gan.io` reads; ``series`` picks a DICOM series) and write the
        result on the input's grid in the format ``out_path`` names (refuses to overwrite without ``overwrite``).

        A many-to-one model's sources: ``in_path`` is its first source (or None), ``inputs`` names others (or
        any, by source name); all must lie on one grid, and the output takes the primary's (the first given, in the
        model's order) grid, format and header (``series`` applies to the primary).
        All its files appear together or not at all: on any error nothing new is left and existing outputs (replaced
        with ``overwrite``) are kept as they were.

        ``dtype`` is ``float32`` or ``int16`` (rounded, e.g. integer HU, with slope 1 and intercept 0); a DICOM series
        is always int16 with a rescale. With ``uncertainty`` the standard deviation across predictions goes to
        :func:`std_path` of the output (float32).

        Memory: with one prediction the decoded source is the only volume-sized array (a float32 result is written
        over it, batch by batch; an int16 result goes into one int16 volume). Several predictions add the running
        mean (and the standard deviation), copied over the source once fused; saving then writes slice by slice,
        with no further copy.
        """
        out_path = Path(out_path)
        check_outputs(out_path, overwrite=overwrite, uncertainty=uncertainty)
        out_dtype = np.dtype(dtype)
        named = source_files(self.sources, in_path, inputs or {})
        order = self.check_sources(list(named), files=True)  # refused before anything is read
        volumes = {n: load_volume(named[n], series=series if n == order[0] else None) for n in order}
        source = volumes[order[0]]
        data = source.data
        # a float32 result goes over the source: batch by batch for one prediction, once fused for several
        in_place = out_dtype == np.float32 and data.dtype == np.float32 and data.flags.writeable
        given = source if len(self.sources) == 1 else volumes
        result = self.translate_volume(given, out=data if in_place else None, dtype=out_dtype, uncertainty=uncertainty)
        dst = self.config.data.dst
        models = ", ".join(m.name for m in self.members)
        # every file of the result (the prediction, its std map, their detached data files) is staged beside the
        # output and moves in only once all are written: a failure leaves nothing new, and the old outputs as they were
        finals = [std_path(out_path), out_path] if uncertainty else [out_path]
        with staged(finals, overwrite=overwrite) as stage:
            save_like(stage.path(out_path), result.image, source, dtype=out_dtype,
                      describe=f"pix2gan {dst} ({models})", modality=dst)  # fmt: skip
            if uncertainty and result.std is not None:
                save_like(stage.path(finals[0]), result.std, source, dtype=np.float32,
                          describe=f"pix2gan {dst} std ({models})", modality=f"{dst} std")  # fmt: skip
        return out_path


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
