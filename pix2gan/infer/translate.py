"""Volume -> slices -> generator -> volume in physical units, on the input's exact grid.

The source volume is normalised with its own scale, cut into slices along the slice axis stored with the model,
padded symmetrically with background (-1) up to the generator's padding multiple in-plane, translated in batches,
cropped back, mapped to physical units (HU for CT) and written as float32 with the input's header: same shape,
affine, qform/sform codes and pixdim.

Translation streams: :func:`stream_slices` normalises, translates and maps back one batch of slices at a time,
writing each batch straight into one preallocated output volume (or over the source itself, which
:meth:`Translator.translate_file` does), so memory is bounded by the volume(s) plus one batch, not by several
full-volume copies. The generator's inputs are always read from the source, never from slices already replaced by
predictions: a prediction is written only once no later batch needs its source slice (with neighbouring slices as
context, that holds back at most ``context`` slices). See ``docs/scaling.md``.
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
from pix2gan.device import resolve_device, resolve_precision
from pix2gan.errors import InputError
from pix2gan.io import Volume, load_volume, save_like
from pix2gan.nets import padding_multiple

__all__ = ["predict_slices", "stream_slices", "Translator"]


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
    context: int = 0,
) -> np.ndarray:
    """Translate a volume batch of slices by batch of slices, writing into ``out``.

    For each run of ``batch_size`` slices along ``axis``: ``forward`` maps those source slices (and ``context``
    neighbours on each side) to [-1, 1]; each slice goes to the generator as a stack of ``2 * context + 1``
    channels (neighbours beyond the volume's ends repeat the end slice); the prediction is cropped and ``inverse``
    maps it (B, H, W) to output values, cast to ``out``'s dtype. Besides ``volume`` and ``out`` only one batch, its
    context and the generator's activations are in memory. ``out`` may be ``volume`` itself: every input is read
    from the source, and a prediction is written only when no later batch reads its slice.

    Args:
        volume: the 3-D source in physical units (any layout; it is only sliced, never copied whole).
        axis: the slice axis.
        out: array of ``volume``'s shape to fill.
        dtype: autocast dtype of the generator's forward pass (None: fp32).
        context: neighbouring slices on each side fed as extra channels (0: one slice, pix2pix).

    Returns:
        ``out``.
    """
    if out.shape != volume.shape:
        raise ValueError(f"stream_slices: out shape {out.shape} differs from the volume's {volume.shape}")
    device = device or next(generator.parameters()).device
    src, dst = np.moveaxis(volume, axis, 0), np.moveaxis(out, axis, 0)  # views: (N, H, W)
    n = src.shape[0]
    offsets = np.arange(-context, context + 1)
    held: list[tuple[int, np.ndarray]] = []  # predictions whose source slices a later batch still reads
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            lo, hi = max(0, start - context), min(n, stop + context)
            window = np.ascontiguousarray(forward(src[lo:hi]), dtype=np.float32)  # (hi - lo, H, W) in [-1, 1]
            stacks = window[np.clip(np.arange(start, stop)[:, None] + offsets, 0, n - 1) - lo]  # (B, 2K + 1, H, W)
            pred = _forward(generator, torch.from_numpy(stacks), multiple, device, dtype)[:, 0].numpy()
            held += zip(range(start, stop), inverse(pred), strict=True)
            free = stop - context if stop < n else n  # the next batch reads source slices from stop - context on
            while held and held[0][0] < free:
                k, values = held.pop(0)
                dst[k] = values
    return out


class Translator:
    """A trained generator with everything needed to translate volumes in physical units.

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
    ) -> None:
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.dtype = resolve_precision(precision, self.device)  # auto: bf16 on GPUs that have it, fp32 on CPU
        self.generator = generator.to(self.device).eval()
        self.config = config
        self.src_map = src_map
        self.dst_map = dst_map
        self.batch_size = batch_size
        self.multiple = padding_multiple(config)

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | Path | LoadedCheckpoint, *, device: str = "auto", batch_size: int = 16,
        precision: str = "auto",
    ) -> Translator:  # fmt: skip
        """Rebuild the generator from a checkpoint (which must be a paired-mode one)."""
        if isinstance(checkpoint, LoadedCheckpoint):
            ckpt = checkpoint.require(Mode.PAIRED)
        else:
            ckpt = load_checkpoint(checkpoint, expect_mode=Mode.PAIRED)
        return cls(ckpt.generator(), ckpt.config, ckpt.src_map, ckpt.dst_map, device=resolve_device(device), batch_size=batch_size,
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
            self.multiple,
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
