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

from collections.abc import Callable

import numpy as np

from pix2gan.config import FUSIONS

__all__ = ["Accumulator", "mirrored"]


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
