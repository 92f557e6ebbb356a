"""Slices through the generator: any in-plane size (padded to the architecture's multiple), in batches, streamed.

:func:`stream_slices` normalises, translates and maps back one batch of slices at a time, so memory is bounded by
the volume(s) plus one batch, not by several full-volume copies. The generator's inputs are always read from the
source, never from slices already replaced by predictions: a prediction is written only once no later batch needs
its source slice (with neighbouring slices as context, that holds back at most ``context`` slices). See
``docs/scaling.md``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from pix2gan.data.slices import pad_to

__all__ = ["predict_slices", "stream_slices", "Inputs", "cast_writer"]

# the generator's input from padded source stacks (B, C, H, W): a many-to-one model's missing sources zero-filled
# and availability planes appended (:meth:`pix2gan.data.sources.SourceLayout.assemble`), after padding, as in training
Inputs = Callable[[torch.Tensor], torch.Tensor]


def _forward(
    generator: nn.Module, batch: torch.Tensor, multiple: int, device: torch.device, dtype: torch.dtype | None = None,
    inputs: Inputs | None = None,
) -> torch.Tensor:
    """One forward pass over (B, C, H, W) normalised slices: pad with -1 up to a multiple, build the generator's
    input from the padded slices with ``inputs`` when given, run (autocast to ``dtype`` when given), crop; float32
    on the CPU."""
    h, w = batch.shape[-2:]
    ph, pw = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    padded, (left, _, top, _) = pad_to(batch.to(device, non_blocking=True), ph, pw, value=-1.0)
    if inputs is not None:
        padded = inputs(padded)
    with torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext():
        pred = generator(padded)
    return pred[..., top : top + h, left : left + w].float().cpu()


@torch.no_grad()
def predict_slices(
    generator: nn.Module, slices: torch.Tensor, multiple: int, *, batch_size: int = 16, device: torch.device | None = None,
    inputs: Inputs | None = None,
) -> torch.Tensor:
    """Run the generator over normalised slices of any in-plane size.

    Args:
        generator: maps (B, C, H, W) in [-1, 1] to (B, C', H, W); its inputs must be multiples of ``multiple``.
        slices: (N, C, H, W) normalised source slices.
        multiple: in-plane sizes are padded (with -1, background) up to a multiple of this and cropped back.
        batch_size: slices per forward pass.
        inputs: builds the generator's input from each padded batch (see :data:`Inputs`); None: the slices as they are.

    Returns:
        (N, C', H, W) float32 on the CPU (filled batch by batch; no list of batches concatenated at the end).
    """
    device = device or next(generator.parameters()).device
    n, _, h, w = slices.shape
    out: torch.Tensor | None = None
    for start in range(0, n, batch_size):
        pred = _forward(generator, slices[start : start + batch_size], multiple, device, inputs=inputs)
        if out is None:
            out = torch.empty((n, *pred.shape[1:]), dtype=pred.dtype)
        out[start : start + len(pred)] = pred
    return out if out is not None else torch.empty(0, 1, h, w)


def _writer(dst: np.ndarray) -> Callable[[int, np.ndarray], None]:
    """``write(k, values)`` into slice ``k`` of the (N, H, W) view ``dst``, cast to its dtype."""

    def write(k: int, values: np.ndarray) -> None:
        dst[k] = values

    return write


def cast_writer(dst: np.ndarray) -> Callable[[int, np.ndarray], None]:
    """``write(k, values)`` into slice ``k`` of ``dst``: cast to its dtype, rounded and clipped for integer types."""
    info = np.iinfo(dst.dtype) if np.issubdtype(dst.dtype, np.integer) else None

    def write(k: int, values: np.ndarray) -> None:
        dst[k] = values if info is None else np.clip(np.rint(values), info.min, info.max)

    return write


def stream_slices(
    generator: nn.Module,
    volume: np.ndarray,
    axis: int,
    multiple: int,
    *,
    out: np.ndarray | None = None,
    write: Callable[[int, np.ndarray], None] | None = None,
    forward: Callable[[np.ndarray], np.ndarray],
    inverse: Callable[[np.ndarray], np.ndarray],
    batch_size: int = 16,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
    context: int = 0,
    others: Sequence[tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]] = (),
    inputs: Inputs | None = None,
) -> np.ndarray:
    """Translate a volume batch of slices by batch of slices, writing into ``out`` (or handing each slice to ``write``).

    For each run of ``batch_size // (P (2 * context + 1))`` slices along ``axis``, P the sources read (so that a batch
    holds ``batch_size`` input slices whatever the context and the sources): ``forward`` maps those source slices
    (and ``context`` neighbours on each side) to [-1, 1]; each slice goes to the generator as a stack of ``2 * context + 1``
    channels (neighbours beyond the volume's ends repeat the end slice); the prediction is cropped and ``inverse``
    maps it (B, H, W) to output values, cast to ``out``'s dtype. Besides ``volume`` and ``out`` only one batch, its
    context and the generator's activations are in memory. ``out`` may be ``volume`` itself: every input is read
    from the source, and a prediction is written only when no later batch reads its slice.

    Args:
        volume: the 3-D source in physical units (any layout; it is only sliced, never copied whole).
        axis: the slice axis.
        out: array of ``volume``'s shape to fill.
        write: instead of ``out``: called as ``write(k, values)`` with slice ``k`` along ``axis`` (H, W) when no later
            batch reads source slice ``k`` any more (to accumulate several predictions, see :mod:`pix2gan.infer.fusion`).
        dtype: autocast dtype of the generator's forward pass (None: fp32).
        context: neighbouring slices on each side fed as extra channels (0: one slice, pix2pix).
        others: a many-to-one model's further sources, each (volume of ``volume``'s shape, its ``forward``): each
            batch reads the same window of every source and stacks them after ``volume``'s, (B, P (2K + 1), H, W);
            ``out`` may still be ``volume`` (a prediction is written only when no later batch reads that slice of
            any source).
        inputs: builds the generator's input from the padded stacks (:data:`Inputs`; with ``others``: the model's
            missing sources zero-filled and availability planes appended after padding, as in training).

    Returns:
        ``out`` (None with ``write``).
    """
    if (out is None) == (write is None):
        raise ValueError("stream_slices: give either out or write")
    if out is not None and out.shape != volume.shape:
        raise ValueError(f"stream_slices: out shape {out.shape} differs from the volume's {volume.shape}")
    emit = write if write is not None else _writer(np.moveaxis(out, axis, 0))  # type: ignore[arg-type]
    device = device or next(generator.parameters()).device
    # a batch holds batch_size slices of input, whatever the context and the sources: 2K + 1 slices per stack
    batch_size = max(1, batch_size // ((2 * context + 1) * (1 + len(others))))
    src = np.moveaxis(volume, axis, 0)  # view: (N, H, W)
    more = [(np.moveaxis(v, axis, 0), f) for v, f in others]
    if any(v.shape != src.shape for v, _ in more):
        raise ValueError(f"stream_slices: the sources differ in shape from the volume's {volume.shape}")
    n = src.shape[0]
    offsets = np.arange(-context, context + 1)
    held: list[tuple[int, np.ndarray]] = []  # predictions whose source slices a later batch still reads
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            lo, hi = max(0, start - context), min(n, stop + context)
            window = np.ascontiguousarray(forward(src[lo:hi]), dtype=np.float32)  # (hi - lo, H, W) in [-1, 1]
            rows = np.clip(np.arange(start, stop)[:, None] + offsets, 0, n - 1) - lo
            stacks = window[rows]  # (B, 2K + 1, H, W)
            if more:  # every source's stack of the same slices, one after the other: (B, P (2K + 1), H, W)
                stacks = np.concatenate([stacks, *(np.ascontiguousarray(f(v[lo:hi]), dtype=np.float32)[rows]
                                                   for v, f in more)], 1)  # fmt: skip
            pred = _forward(generator, torch.from_numpy(stacks), multiple, device, dtype, inputs)[:, 0].numpy()
            held += zip(range(start, stop), inverse(pred), strict=True)
            free = stop - context if stop < n else n  # the next batch reads source slices from stop - context on
            while held and held[0][0] < free:
                emit(*held.pop(0))
    return out
