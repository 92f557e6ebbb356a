"""The per-voxel lookup-table baseline: the best any context-free intensity mapping can do.

It bins the normalised source intensity and predicts, per bin, the median target value of the training voxels
inside the mask (the median minimises the mean absolute error). A synthesis model is only worth its weights if it
clearly beats this: where two tissues share a source intensity (bone and air are both dark in T1) no lookup table
can separate them, and only spatial context can.

Example:
    >>> import numpy as np
    >>> lut = LookupTable.fit([np.array([-1.0, -1.0, 1.0])], [np.array([5.0, 7.0, 100.0])], bins=4)
    >>> lut.apply(np.array([-0.9, 0.9])).tolist()
    [6.0, 100.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["LookupTable"]


@dataclass(frozen=True)
class LookupTable:
    """Median target value per bin of the normalised source intensity in [-1, 1]."""

    values: np.ndarray  # (bins,)

    @classmethod
    def fit(cls, sources: Sequence[np.ndarray], targets: Sequence[np.ndarray], bins: int = 256) -> LookupTable:
        """Fit on matching arrays of normalised source values and physical target values (e.g. mask voxels).

        Empty bins take the value of the nearest filled bin.
        """
        x = np.concatenate([np.ravel(s) for s in sources])
        y = np.concatenate([np.ravel(t) for t in targets]).astype(np.float64)
        if x.size == 0 or x.size != y.size:
            raise ValueError(f"LookupTable.fit needs equally many source and target values, got {x.size} and {y.size}")
        idx = cls._bin(x, bins)
        order = np.argsort(idx, kind="stable")
        idx, y = idx[order], y[order]
        starts = np.searchsorted(idx, np.arange(bins + 1))
        values = np.full(bins, np.nan)
        for b in range(bins):
            if starts[b + 1] > starts[b]:
                values[b] = np.median(y[starts[b] : starts[b + 1]])
        filled = np.flatnonzero(~np.isnan(values))
        nearest = filled[np.abs(np.arange(bins)[:, None] - filled[None, :]).argmin(1)]
        return cls(values=values[nearest])

    @staticmethod
    def _bin(x: np.ndarray, bins: int) -> np.ndarray:
        return np.clip(((np.asarray(x, dtype=np.float64) + 1.0) * 0.5 * bins).astype(np.int64), 0, bins - 1)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Map normalised source values to predicted target values (same shape, float32)."""
        return self.values[self._bin(x, len(self.values))].astype(np.float32)
