"""Volume -> slices -> generator -> volume in physical units, on the input's exact grid.

The source volume is normalised with its own scale, cut into slices along the slice axis stored with the model,
padded symmetrically with background (-1) up to a multiple of ``2 ** depth`` in-plane, translated in batches,
cropped back, mapped to physical units (HU for CT) and written as float32 with the input's header: same shape,
affine, qform/sform codes and pixdim.

Translation streams: :func:`stream_slices` normalises, translates and maps back one batch of slices at a time,
writing each batch straight into one preallocated output volume (or over the source itself, which
:meth:`Translator.translate_file` does), so memory is bounded by the volume(s) plus one batch, not by several
full-volume copies. See ``docs/scaling.md``.
"""

from __future__ import annotations

import contextlib

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pix2gan.checkpoint import LoadedCheckpoint, load_checkpoint
from pix2gan.config import Mode, RunConfig
from pix2gan.data.intensity import IntensityMap
from pix2gan.data.slices import pad_to
from pix2gan.nets import UNetGenerator
from pix2gan.volumes import InputError, Volume, load_volume, save_like

__all__ = ["predict_slices", "stream_slices", "Translator", "resolve_device", "plan_outputs"]


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r} (use auto, cpu or cuda[:N])") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available")
    return device


def _forward(
    generator: nn.Module, batch: torch.Tensor, multiple: int, device: torch.device, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """One forward pass over (B, C, H, W) normalised slices: pad with -1 up to a multiple, run (autocast to ``dtype``
    when given), crop; float32 on the CPU."""
    h, w = batch.shape[-2:]
    ph, pw = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    padded, (left, _, top, _) = pad_to(batch.to(device, non_blocking=True), ph, pw, value=-1.0)
    with torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext():
        pred = generator(padded)
    return pred[..., top : top + h, left : left + w].float().cpu()


@torch.no_grad()
def predict_slices(
    generator: nn.Module, slices: torch.Tensor, multiple: int, *, batch_size: int = 16, device: torch.device | None = None
) -> torch.Tensor:
    """Run the generator over normalised slices of any in-plane size.

    Args:
        generator: maps (B, C, H, W) in [-1, 1] to (B, C', H, W); its inputs must be multiples of ``multiple``.
        slices: (N, C, H, W) normalised source slices.
        multiple: in-plane sizes are padded (with -1, background) up to a multiple of this and cropped back.
        batch_size: slices per forward pass.

    Returns:
        (N, C', H, W) float32 on the CPU (filled batch by batch; no list of batches concatenated at the end).
    """
    device = device or next(generator.parameters()).device
    n, _, h, w = slices.shape
    out: torch.Tensor | None = None
    for start in range(0, n, batch_size):
        pred = _forward(generator, slices[start : start + batch_size], multiple, device)
        if out is None:
            out = torch.empty((n, *pred.shape[1:]), dtype=pred.dtype)
        out[start : start + len(pred)] = pred
    return out if out is not None else torch.empty(0, 1, h, w)


def stream_slices(
    generator: nn.Module,
    volume: np.ndarray,
    axis: int,
    multiple: int,
    *,
    out: np.ndarray,
    forward: Callable[[np.ndarray], np.ndarray],
    inverse: Callable[[np.ndarray], np.ndarray],
    batch_size: int = 16,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> np.ndarray:
    """Translate a volume batch of slices by batch of slices, writing straight into ``out``.

    For each run of ``batch_size`` slices along ``axis``: ``forward`` maps just those slices to [-1, 1], they are
    padded, translated (under ``torch.inference_mode``) and cropped, and ``inverse`` maps the (B, H, W) prediction to
    output values, written into the same slices of ``out``. Besides ``volume`` and ``out`` only one batch (and the
    generator's activations for it) is in memory. ``out`` may be ``volume`` itself: a batch is read before its slices
    are overwritten, and no slice is read again.

    Args:
        volume: the 3-D source in physical units (any layout; it is only sliced, never copied whole).
        axis: the slice axis.
        out: array of ``volume``'s shape to fill; the values of ``inverse`` are cast to its dtype.
        dtype: autocast dtype of the generator's forward pass (None: fp32).

    Returns:
        ``out``.
    """
    if out.shape != volume.shape:
        raise ValueError(f"stream_slices: out shape {out.shape} differs from the volume's {volume.shape}")
    device = device or next(generator.parameters()).device
    src, dst = np.moveaxis(volume, axis, 0), np.moveaxis(out, axis, 0)  # views: (N, H, W)
    with torch.inference_mode():
        for start in range(0, src.shape[0], batch_size):
            stop = min(start + batch_size, src.shape[0])
            batch = np.ascontiguousarray(forward(src[start:stop]), dtype=np.float32)  # (B, H, W) in [-1, 1]
            pred = _forward(generator, torch.from_numpy(batch)[:, None], multiple, device, dtype)[:, 0].numpy()
            dst[start:stop] = inverse(pred)
    return out


class Translator:
    """A trained generator with everything needed to translate volumes in physical units.

    Example:
        >>> from pix2gan.config import ModelConfig
        >>> cfg = RunConfig(model=ModelConfig(depth=3, base_filters=4))
        >>> from pix2gan.data.intensity import intensity_maps
        >>> tr = Translator(UNetGenerator(cfg.model), cfg, *intensity_maps(cfg.data))
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
    ) -> None:
        from pix2gan.engine import resolve_precision

        self.device = resolve_device(device) if isinstance(device, str) else device
        self.dtype = resolve_precision(precision, self.device)  # auto: bf16 on GPUs that have it, fp32 on CPU
        self.generator = generator.to(self.device).eval()
        self.config = config
        self.src_map = src_map
        self.dst_map = dst_map
        self.batch_size = batch_size

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | Path | LoadedCheckpoint, *, device: str = "auto", batch_size: int = 16,
        precision: str = "auto",
    ) -> Translator:  # fmt: skip
        """Rebuild the generator from a checkpoint (which must be a paired-mode one)."""
        ckpt = checkpoint if isinstance(checkpoint, LoadedCheckpoint) else load_checkpoint(checkpoint, expect_mode=Mode.PAIRED)
        generator = UNetGenerator(ckpt.config.model)
        try:
            generator.load_state_dict(ckpt.raw["generator"])
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise InputError(f"{ckpt.path}: generator weights do not match its model config ({first})") from None
        return cls(generator, ckpt.config, ckpt.src_map, ckpt.dst_map, device=resolve_device(device), batch_size=batch_size,
                   precision=precision)  # fmt: skip

    @property
    def slice_axis(self) -> int:
        return self.config.data.slice_axis

    def translate_array(
        self, volume: np.ndarray, *, out: np.ndarray | None = None, dtype: type | np.dtype = np.float32
    ) -> np.ndarray:
        """Translate a 3-D source volume in physical units; returns the target modality in physical units.

        Streams (see :func:`stream_slices`): only one batch of slices is normalised and translated at a time.

        Args:
            volume: the source, 3-D, in physical units.
            out: where to write the result, of ``volume``'s shape: float32, or an integer type (values rounded and
                clipped to its range). It may be ``volume`` itself (float32) to translate in place, with no second
                volume in memory. Default: a new array of ``dtype`` in ``volume``'s memory layout.
            dtype: the type of the new array when ``out`` is not given (float32, or e.g. int16 for rounded HU).

        Raises:
            ValueError: the volume is not 3-D, or is constant (no percentile scale).
        """
        if volume.ndim != 3:
            raise ValueError(f"expected a 3-D volume, got shape {volume.shape}")
        scale = self.src_map.scale_of(volume)  # before `out` exists: np.percentile holds one transient copy
        if out is None:
            out = np.empty_like(volume, dtype=dtype)  # keeps the volume's layout (F order from nibabel)
        inverse = self.dst_map.inverse
        if np.issubdtype(out.dtype, np.integer):
            info = np.iinfo(out.dtype)

            def inverse(pred: np.ndarray) -> np.ndarray:
                return np.clip(np.rint(self.dst_map.inverse(pred)), info.min, info.max)

        return stream_slices(
            self.generator,
            volume,
            self.slice_axis,
            self.config.model.multiple,
            out=out,
            forward=lambda batch: self.src_map.forward(batch, scale),
            inverse=inverse,
            batch_size=self.batch_size,
            device=self.device,
            dtype=self.dtype,
        )

    def translate_volume(
        self, source: Volume, *, out: np.ndarray | None = None, dtype: type | np.dtype = np.float32
    ) -> np.ndarray:
        """:meth:`translate_array` of a loaded volume, with errors naming its file."""
        try:
            return self.translate_array(source.data, out=out, dtype=dtype)
        except ValueError as exc:
            raise InputError(f"{source.path}: {exc}") from None

    def translate_file(
        self, in_path: str | Path, out_path: str | Path, *, overwrite: bool = False, dtype: str = "float32"
    ) -> Path:
        """Translate one NIfTI file and write the result on the input's grid (atomic; refuses to overwrite).

        ``dtype`` is ``float32`` or ``int16`` (rounded, e.g. integer HU, with slope 1 and intercept 0).

        Memory: the decoded source is the only volume-sized array. A float32 result is written over it, batch by
        batch (each batch of source slices is normalised before its outputs replace it); an int16 result goes into
        one int16 volume. Saving then writes slice by slice, with no further copy.
        """
        out_path = Path(out_path)
        if out_path.exists() and not overwrite:
            raise InputError(f"{out_path}: already exists (use --overwrite to replace it)")
        out_dtype = np.dtype(dtype)
        source = load_volume(in_path)
        data = source.data
        in_place = out_dtype == np.float32 and data.dtype == np.float32 and data.flags.writeable
        if in_place:
            source.image.uncache()  # the image's cached array is `data`, about to hold the translation
        pred = self.translate_volume(source, out=data if in_place else None, dtype=out_dtype)
        save_like(out_path, pred, source, dtype=out_dtype, overwrite=overwrite, describe=f"pix2gan {self.config.data.dst}")
        return out_path


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def plan_outputs(
    inputs: list[Path], output: Path | None, *, src: str, dst: str, overwrite: bool = False
) -> list[tuple[Path, Path]]:
    """Pair every input volume with its output path, and refuse the plan before anything is written.

    Inputs may be NIfTI files, subject folders (holding ``<src>.nii.gz``) or folders of NIfTI files. Outputs go:

    * with no ``output``: a file input gets ``<name>_<dst>.nii.gz`` beside it; a folder input gets the sibling
      folder ``<folder>_<dst>/`` (so outputs never land among the inputs);
    * with one input file and an ``output`` ending in ``.nii``/``.nii.gz``: to that file;
    * otherwise into the folder ``output``, keeping the input's file name (a subject folder gives ``<subject>.nii.gz``).

    Raises:
        InputError: a missing input, a folder without NIfTI files, two inputs mapped to one output, an existing
            output without ``overwrite``, or an output folder that cannot be created or written.
    """
    from pix2gan.data.subjects import modality_file
    from pix2gan.volumes import NIFTI_SUFFIXES, check_output_folder

    if not inputs:
        raise InputError("no input given")
    files: list[tuple[Path, str, Path | None]] = []  # (volume, name inside an output folder, input folder)
    for item in inputs:
        if not item.exists():
            raise InputError(f"{item}: file not found")
        if item.is_dir():
            subject_file = modality_file(item, src)
            if subject_file is not None:
                files.append((subject_file, f"{item.name}.nii.gz", None))
                continue
            found = sorted(p for p in item.iterdir() if p.is_file() and p.name.endswith(NIFTI_SUFFIXES))
            if not found:
                raise InputError(f"{item}: folder holds no .nii or .nii.gz files (nor {src}.nii.gz)")
            files += [(p, p.name, item) for p in found]
        else:
            files.append((item, item.name, None))
    single_file = output is not None and len(files) == 1 and output.name.endswith(NIFTI_SUFFIXES)
    if output is not None and not single_file:
        if output.name.endswith(NIFTI_SUFFIXES):
            raise InputError(f"{output}: {len(files)} inputs need an output folder, not a file name")
        if output.exists() and not output.is_dir():
            raise InputError(f"{output}: exists and is not a folder")
    plan = []
    for volume, name, folder in files:
        if output is None and folder is not None:
            folder = folder.resolve()  # "." has no name to suffix
            target = folder.with_name(f"{folder.name}_{dst}") / name
        elif output is None:
            target = volume.with_name(f"{_stem(volume)}_{dst}.nii.gz")
        elif single_file:
            target = output
        else:
            target = output / name
        plan.append((volume, target))
    seen: dict[Path, Path] = {}
    for volume, target in plan:
        if target in seen:
            raise InputError(f"{volume}: output {target} would also be written for {seen[target]}")
        if target.resolve() == volume.resolve():
            raise InputError(f"{volume}: output would replace the input itself; choose another --output")
        seen[target] = volume
        if target.exists() and not overwrite:
            raise InputError(f"{target}: already exists (use --overwrite to replace it)")
    for folder in dict.fromkeys(target.parent for _, target in plan):
        check_output_folder(folder)
    return plan
