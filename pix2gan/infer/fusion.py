"""Fusing several predictions of one volume (planes, test-time flips, ensemble members) slice by slice.

Each prediction ("pass") streams its slices along its own axis, possibly of a mirrored view of the volume; an
:class:`Accumulator` takes them as they come and keeps, in the volume's own grid and layout:

* the running mean and, for the uncertainty map, the running sum of squared deviations (Welford's update, exact
  for the first pass and zero wherever the passes agree) -- one or two float32 volumes however many passes;
* for ``median`` fusion, each pass's volume as well (the median needs them all: one float32 volume per pass).

Example:
    >>> acc = Accumulator((2, 3, 4), fusion="mean", with_std=True)
    >>> for value in (1.0, 3.0):
    ...     write = acc.add_pass(axis=2)
    ...     for k in range(4):
    ...         write(k, np.full((2, 3), value, dtype=np.float32))
    >>> fused, std = acc.result()
    >>> float(fused.mean()), float(std.mean())
    (2.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from pix2gan.config import FUSIONS
from pix2gan.infer.stream import cast_writer

__all__ = ["Accumulator", "Translation", "fuse", "mirrored"]

Writer = Callable[[int, np.ndarray], None]  # write(k, values): slice k of a pass


@dataclass
class Translation:
    """A fused prediction and, when asked for, the voxel-wise standard deviation across its passes (same grid)."""

    image: np.ndarray
    std: np.ndarray | None
    passes: int


def mirrored(array: np.ndarray, flip_axis: int | None) -> np.ndarray:
    """``array`` mirrored along ``flip_axis`` as a view (no copy); itself when ``flip_axis`` is None."""
    return array if flip_axis is None else np.flip(array, flip_axis)


class Accumulator:
    """The fused prediction and the voxel-wise standard deviation over passes, built slice by slice.

    Args:
        shape: the volume's shape.
        fusion: ``mean`` or ``median``.
        with_std: also keep what the standard deviation needs (one more float32 volume).
        order: memory layout of the volumes kept (``F`` for volumes read by nibabel, so slices are contiguous).
    """

    def __init__(self, shape: tuple[int, ...], *, fusion: str = "mean", with_std: bool = False, order: str = "C") -> None:
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}")
        self.shape, self.fusion, self.order = shape, fusion, order
        self.n = 0
        self.mean = np.zeros(shape, np.float32, order=order)  # type: ignore[call-overload]
        self.m2 = np.zeros(shape, np.float32, order=order) if with_std else None  # type: ignore[call-overload]
        self.passes: list[np.ndarray] = []

    def add_pass(self, axis: int, flip_axis: int | None = None) -> Callable[[int, np.ndarray], None]:
        """Start a pass that streams slices along ``axis`` of the volume mirrored along ``flip_axis``; returns
        ``write(k, values)`` for slice ``k`` of that view (the values are mirrored back into place by the view)."""
        self.n += 1
        n = self.n

        def along(array: np.ndarray) -> np.ndarray:
            return np.moveaxis(mirrored(array, flip_axis), axis, 0)

        mean = along(self.mean)
        m2 = along(self.m2) if self.m2 is not None else None
        kept = None
        if self.fusion == "median":
            self.passes.append(np.empty(self.shape, np.float32, order=self.order))  # type: ignore[call-overload]
            kept = along(self.passes[-1])

        def write(k: int, values: np.ndarray) -> None:
            values = np.asarray(values, dtype=np.float32)
            delta = values - mean[k]
            mean[k] += delta / np.float32(n)
            if m2 is not None:
                m2[k] += delta * (values - mean[k])
            if kept is not None:
                kept[k] = values

        return write

    def result(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The fused volume (float32) and the standard deviation over passes (None without ``with_std``)."""
        if self.n == 0:
            raise ValueError("no prediction was added")
        std = None
        if self.m2 is not None:
            std = self.m2
            np.divide(std, np.float32(self.n), out=std)
            np.maximum(std, 0.0, out=std)
            np.sqrt(std, out=std)
            self.m2 = None
        if self.fusion == "mean":
            return self.mean, std
        fused = self.mean  # reused as the output: the median is taken in slabs, so no stack of every pass is made
        stack_axis = 2 if self.order == "F" else 0
        for start in range(0, self.shape[stack_axis], 8):
            index = [slice(None)] * 3
            index[stack_axis] = slice(start, start + 8)
            fused[tuple(index)] = np.median(np.stack([p[tuple(index)] for p in self.passes]), axis=0)
        self.passes = []
        return fused, std


def fuse(
    volume: np.ndarray, passes: Sequence[tuple[int, int | None, Callable[[Writer], None]]], *,
    out: np.ndarray | None = None, dtype: type | np.dtype = np.float32, fusion: str = "mean", uncertainty: bool = False,
) -> Translation:  # fmt: skip
    """Run every pass -- (slice axis, mirrored axis or None, ``run(write)`` streaming its slices into ``write``) --
    over ``volume``'s grid and fuse them.

    One pass without ``uncertainty`` streams straight into ``out`` (which may be ``volume`` itself); several go
    through an :class:`Accumulator` in ``volume``'s memory layout, whose mean becomes the result when no ``out`` is
    given and the type is float32 (no copy), else is cast into ``out`` (integer types rounded and clipped).

    Example:
        >>> vol = np.zeros((2, 2, 2), np.float32)
        >>> def run(value):
        ...     return lambda write: [write(k, np.full((2, 2), value)) for k in range(2)]
        >>> r = fuse(vol, [(2, None, run(1.0)), (0, None, run(3.0))], uncertainty=True)
        >>> float(r.image.mean()), float(r.std.mean()), r.passes
        (2.0, 1.0, 2)
    """
    if len(passes) == 1 and not uncertainty:  # straight into `out`, which may be the source itself
        if out is None:
            out = np.empty_like(volume, dtype=dtype)  # keeps the volume's layout (F order from nibabel)
        axis, flip, run = passes[0]
        run(cast_writer(np.moveaxis(mirrored(out, flip), axis, 0)))
        return Translation(out, None, 1)
    order = "F" if volume.flags.f_contiguous and not volume.flags.c_contiguous else "C"
    acc = Accumulator(volume.shape, fusion=fusion, with_std=uncertainty, order=order)
    for axis, flip, run in passes:
        run(acc.add_pass(axis, flip))
    fused, std = acc.result()
    if out is None and np.dtype(dtype) == np.float32:
        return Translation(fused, std, len(passes))  # the fused volume is the result: no copy
    if out is None:
        out = np.empty_like(volume, dtype=dtype)
    cast_writer(out[None])(0, fused)
    return Translation(out, std, len(passes))
