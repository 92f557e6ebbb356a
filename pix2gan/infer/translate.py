"""Volume -> slices -> generator -> volume in physical units, on the input's exact grid.

The source volume is normalised with its own scale, cut into slices along each plane stored with the model (with
their neighbouring slices as channels for 2.5-D models), padded symmetrically with background (-1) up to the
generator's padding multiple in-plane, translated in batches, cropped back, mapped to physical units (HU for CT)
and written as float32 with the input's header: same shape, affine, qform/sform codes and pixdim.

Translation streams (:func:`~pix2gan.infer.stream.stream_slices`): one prediction (one plane, no flip) goes
straight into the output volume, or over the source itself (:meth:`Translator.translate_file`). Several
predictions -- planes, the left-right mirrored volume for test-time augmentation, the members of an
:class:`Ensemble` -- are fused slice by slice into one mean (or kept for the median) by an
:class:`~pix2gan.infer.fusion.Accumulator`, which also gives the voxel-wise standard deviation across them. See
``docs/scaling.md``.

A many-to-one model (``--src t1,zte``) reads each source it is given by name, each normalised by its own map; the
streaming reads the same window of every source and builds the generator's input after padding (missing sources
zero-filled, availability planes: :func:`~pix2gan.infer.inputs.assembler`), as training built it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pix2gan.checkpoint import LoadedCheckpoint, load_checkpoint
from pix2gan.config import FUSIONS, RunConfig
from pix2gan.data.intensity import IntensityMap, Scale, source_maps
from pix2gan.data.planes import lr_axis, slice_axes
from pix2gan.data.sources import SourceLayout
from pix2gan.device import resolve_device, resolve_precision
from pix2gan.errors import InputError
from pix2gan.infer.direction import directed, require_exported_direction
from pix2gan.infer.fusion import Translation, fuse, mirrored
from pix2gan.infer.inputs import accepted, assembler, given_volumes, source_arrays, source_files
from pix2gan.infer.members import check_members
from pix2gan.infer.outputs import check_outputs, std_path
from pix2gan.infer.stream import predict_slices, stream_slices
from pix2gan.io import Volume, load_volume, save_like
from pix2gan.io.atomic import staged
from pix2gan.nets import padding_multiple

__all__ = ["predict_slices", "stream_slices", "Translator", "Ensemble", "Translation", "std_path", "load_ensemble"]

_RAS = np.eye(4)  # the orientation assumed for a bare array: axis 0 left-right, 1 back-front, 2 up-down


class Translator:
    """A trained generator with everything needed to translate volumes in physical units, used as it was trained.

    The model's planes and context come from its configuration; test-time augmentation and the fusion from the
    configuration's recommendation (``config.infer``) unless ``tta`` / ``fusion`` override it.

    Example:
        >>> from pix2gan.config import ModelConfig
        >>> from pix2gan.data.intensity import intensity_maps
        >>> from pix2gan.nets import build_generator
        >>> cfg = RunConfig(model=ModelConfig(depth=3, base_filters=4))
        >>> tr = Translator(build_generator(cfg), cfg, *intensity_maps(cfg.data))
        >>> tr.translate_array(np.random.rand(10, 12, 5).astype(np.float32) * 500).shape
        (10, 12, 5)
    """

    def __init__(
        self,
        generator: nn.Module,
        config: RunConfig,
        src_map: IntensityMap,
        dst_map: IntensityMap,
        *,
        device: torch.device | str = "cpu",
        batch_size: int = 16,
        precision: str = "auto",
        tta: bool | None = None,
        fusion: str | None = None,
        name: str = "",
        multiple: int | None = None,
        realism: float | None = None,
        direction: str = "",
    ) -> None:
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.dtype = resolve_precision(precision, self.device)  # auto: bf16 on GPUs that have it, fp32 on CPU
        self.generator = generator.to(self.device).eval()
        self.config = config
        self.src_map = src_map
        self.dst_map = dst_map
        self.layout = SourceLayout.of(config)  # a many-to-one model's sources, in its channel order
        # each source normalised by its own map (the first: ``src_map``, which may hold a reference scale)
        self.src_maps = source_maps(config.data, src_map)
        self.batch_size = batch_size
        self.multiple = padding_multiple(config) if multiple is None else multiple  # an export stores its own
        self.tta = config.infer.tta if tta is None else tta
        self.fusion = config.infer.fusion if fusion is None else fusion
        if self.fusion not in FUSIONS:
            raise ValueError(f"--fusion must be one of {', '.join(FUSIONS)}, got {self.fusion!r}")
        self.name = name or "model"  # the checkpoint, in messages
        self.realism = realism  # the generator's realism (0 regression, 1 adversarial, between: a blend); None unknown
        self.direction = direction  # G (paired), G_ab or G_ba (unpaired; see pix2gan.infer.direction); "" unknown

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | Path | LoadedCheckpoint, *, device: str = "auto", batch_size: int = 16,
        precision: str = "auto", tta: bool | None = None, fusion: str | None = None, realism: float | None = None,
        reverse: bool = False,
    ) -> Translator:  # fmt: skip
        """Rebuild the generator from a checkpoint of a paired or an unpaired run; ``realism``: the blend of a
        ``--gan-warmup`` run's two generators (default: the run's recorded one; see
        :meth:`LoadedCheckpoint.generator`), refused by a checkpoint holding one generator of another realism.

        An unpaired (CycleGAN) run translates with G_ab (source -> target); with ``reverse`` with G_ba (target ->
        source: the run's target intensity map in, its source map out, one slice in as G_ba was trained).

        Raises:
            InputError: another mode's checkpoint; ``reverse`` with a paired run's.
        """
        ckpt = checkpoint if isinstance(checkpoint, LoadedCheckpoint) else load_checkpoint(checkpoint)
        d = directed(ckpt, reverse=reverse, realism=realism)
        return cls(d.generator, d.config, d.src_map, d.dst_map, device=resolve_device(device), batch_size=batch_size,
                   precision=precision, tta=tta, fusion=fusion, name=str(ckpt.path), realism=ckpt.realism(realism),
                   direction=d.name)  # fmt: skip

    @classmethod
    def from_exported(
        cls, path: str | Path, *, device: str = "auto", batch_size: int = 16, tta: bool | None = None,
        fusion: str | None = None, realism: float | None = None,
    ) -> Translator:  # fmt: skip
        """An exported generator (``.onnx`` or ``.pt2``, see :mod:`pix2gan.infer.export`) with the configuration and
        intensity maps stored in it, translating through the same streaming path as a checkpoint; it runs in fp32.
        An export is one generator: a ``realism`` other than the one it was exported at is refused."""
        from pix2gan.infer.exported import load_exported

        model = load_exported(path, device=device)
        meta = model.metadata
        if meta.config.data.data_b is not None:
            raise InputError(f"{model.path}: exported from a run trained on two image folders: it translates 2-D "
                             f"images (pix2gan.infer.images.ImageTranslator.from_exported), not volumes")  # fmt: skip
        stored = meta.source.get("realism")
        if realism is not None and stored != realism:
            raise InputError(f"{model.path}: an exported model is one generator (realism "
                             f"{'unknown' if stored is None else format(stored, 'g')}); for --realism {realism:g} "
                             f"export the checkpoint again with --realism {realism:g}")  # fmt: skip
        return cls(model.generator, meta.config, meta.src_map, meta.dst_map, device=model.device, batch_size=batch_size,
                   precision="fp32", tta=tta, fusion=fusion, name=str(model.path), multiple=meta.multiple,
                   realism=stored, direction=str(meta.source.get("generator", "")))  # fmt: skip

    @property
    def slice_axis(self) -> int:
        return self.config.data.slice_axis

    @property
    def context(self) -> int:
        return self.config.data.context

    def passes(self, affine: np.ndarray | None = None) -> list[tuple[int, int | None]]:
        """The predictions this model makes of a volume: (slice axis, axis mirrored first or None) pairs, one per
        trained plane, twice with test-time augmentation (the left-right mirror; sagittal slices without context
        only once, as mirroring just reorders them). ``affine``: the volume's (RAS-ordered if None)."""
        affine = _RAS if affine is None else affine
        mirror = lr_axis(affine) if self.tta else None
        passes = []
        for axis in slice_axes(self.config.data, affine):
            passes.append((axis, None))
            # slices along the left-right axis itself are only reordered by the mirror: without context the
            # mirrored pass would repeat the plain one exactly, so it is not made
            if mirror is not None and (axis != mirror or self.context):
                passes.append((axis, mirror))
        return passes

    def run_pass(
        self, volume: np.ndarray | Mapping[str, np.ndarray], scale: Scale | Mapping[str, Scale], axis: int,
        flip_axis: int | None, write: Callable[[int, np.ndarray], None],
    ) -> None:  # fmt: skip
        """Stream one prediction of ``volume`` (mirrored along ``flip_axis``) along ``axis`` into ``write``; a
        many-to-one model's given sources by name, each with its ``scale`` (one array: the first source)."""
        first = self.layout.names[0]
        volumes = {first: volume} if isinstance(volume, np.ndarray) else volume
        scales = {first: scale} if isinstance(volume, np.ndarray) else scale
        names = [n for n in self.layout.names if n in volumes]  # this model's channel order, by name

        def forward(name: str) -> Callable[[np.ndarray], np.ndarray]:
            imap, s = self.src_maps[name], scales[name]  # type: ignore[index]
            return lambda batch: imap.forward(batch, s)

        others = [(mirrored(volumes[n], flip_axis), forward(n)) for n in names[1:]]
        hook = assembler(self.layout, names) if len(self.layout.names) > 1 else None  # zero-fill after padding
        stream_slices(self.generator, mirrored(volumes[names[0]], flip_axis), axis, self.multiple, write=write,
                      forward=forward(names[0]), inverse=self.dst_map.inverse, batch_size=self.batch_size,
                      device=self.device, dtype=self.dtype, context=self.context, others=others, inputs=hook)  # fmt: skip

    def translate_array(
        self, volume: np.ndarray | Mapping[str, np.ndarray], *, out: np.ndarray | None = None,
        dtype: type | np.dtype = np.float32, affine: np.ndarray | None = None,
    ) -> np.ndarray:  # fmt: skip
        """Translate a 3-D source volume in physical units; returns the target modality in physical units.

        Streams (see :func:`stream_slices`): only one batch of slices is normalised and translated at a time.

        Args:
            volume: the source, 3-D, in physical units; or a many-to-one model's sources by name (see
                :meth:`Ensemble.translate_array`).
            out: where to write the result, of ``volume``'s shape: float32, or an integer type (values rounded and
                clipped to its range). It may be ``volume`` itself (float32) to translate in place, with no second
                volume in memory, when the model makes one prediction (one plane, no test-time flip). Default: a new
                array of ``dtype`` in ``volume``'s memory layout.
            dtype: the type of the new array when ``out`` is not given (float32, or e.g. int16 for rounded HU).
            affine: the volume's voxel-to-world matrix, to find its planes and its left-right axis (default: the
                array is taken as RAS-ordered).

        Raises:
            ValueError: the volume is not 3-D, or is constant (no percentile scale).
        """
        return Ensemble([self]).translate_array(volume, out=out, dtype=dtype, affine=affine).image

    def translate_volume(self, source: Volume | Mapping[str, Volume], *, out: np.ndarray | None = None,
                         dtype: type | np.dtype = np.float32) -> np.ndarray:  # fmt: skip
        """:meth:`translate_array` of a loaded volume, with errors naming its file."""
        return Ensemble([self]).translate_volume(source, out=out, dtype=dtype).image

    def translate_file(
        self, in_path: str | Path | None, out_path: str | Path, *, overwrite: bool = False, dtype: str = "float32",
        uncertainty: bool = False, inputs: Mapping[str, str | Path] | None = None,
    ) -> Path:  # fmt: skip
        """Translate one volume onto the input's grid (atomic; refuses to overwrite); see :meth:`Ensemble.translate_file`."""
        return Ensemble([self]).translate_file(in_path, out_path, overwrite=overwrite, dtype=dtype,
                                               uncertainty=uncertainty, inputs=inputs)  # fmt: skip


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
        runs = [(axis, flip, partial(member.run_pass, arrays, scales, axis, flip))
                for member, axis, flip in self.passes(affine)]
        return fuse(volume, runs, out=out, dtype=dtype, fusion=self.fusion, uncertainty=uncertainty)

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
        result = self.translate_volume(volumes, out=data if in_place else None, dtype=out_dtype, uncertainty=uncertainty)
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
