"""Per-modality intensity normalisation to the generator's [-1, 1] range, with its exact inverse.

* ``hu`` (CT): a fixed window, by default SynthRAD's [-1024, 3000] HU, mapped linearly onto [-1, 1].
* ``percentile`` (MR): per-volume robust range, the 0.5th and 99.5th percentiles mapped onto [-1, 1]; MR units are
  arbitrary, so every volume gets its own scale. A *predicted* MR volume has no scale of its own: it is mapped back
  with the reference scale (median over the training volumes) stored in the checkpoint.

Values are clipped to [-1, 1] after scaling, so the inverse is exact for every value inside the range.

Example:
    >>> import numpy as np
    >>> ct = IntensityMap(IntensityKind.HU)
    >>> scale = ct.scale_of(np.array([-1000.0, 0.0, 1000.0]))
    >>> y = ct.forward(np.array([-1024.0, 0.0, 3000.0]), scale)
    >>> y.tolist()
    [-1.0, -0.49105367064476013, 1.0]
    >>> ct.inverse(y, scale).round(3).tolist()
    [-1024.0, 0.0, 3000.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pix2gan.config import DataConfig, IntensityKind

__all__ = ["Scale", "IntensityMap", "intensity_maps", "source_maps"]

Scale = tuple[float, float]  # physical values mapped to -1 and +1


@dataclass(frozen=True)
class IntensityMap:
    """How one modality is scaled into and out of [-1, 1].

    Args:
        kind: ``hu`` or ``percentile``.
        window: the HU window for ``hu``.
        percentiles: lower/upper percentiles for ``percentile``.
        reference: the scale used to map generated ``percentile`` images back (median of training volumes).
    """

    kind: IntensityKind
    window: Scale = (-1024.0, 3000.0)
    percentiles: Scale = (0.5, 99.5)
    reference: Scale | None = None

    def scale_of(self, data: np.ndarray) -> Scale:
        """The physical values mapped to -1 and +1 for this volume.

        Raises:
            ValueError: a ``percentile`` volume whose percentiles coincide (constant image).
        """
        if self.kind == IntensityKind.HU:
            return (float(self.window[0]), float(self.window[1]))
        lo, hi = np.percentile(data, self.percentiles)
        if not hi > lo:
            raise ValueError(
                f"percentiles {self.percentiles} of the volume are both {lo:g}; it is (nearly) constant"
            )
        return (float(lo), float(hi))

    def forward(self, data: np.ndarray, scale: Scale) -> np.ndarray:
        """Physical units -> [-1, 1] (float32, clipped)."""
        lo, hi = scale
        # affine map in float64 so the window edges land exactly on -1 and +1, then stored as float32
        out = ((np.asarray(data, dtype=np.float64) - lo) * (2.0 / (hi - lo)) - 1.0).astype(np.float32)
        return np.clip(out, -1.0, 1.0, out=out)

    def inverse(self, data: np.ndarray, scale: Scale | None = None) -> np.ndarray:
        """[-1, 1] -> physical units (float32). ``scale`` defaults to the window (``hu``) or ``reference``."""
        if scale is None:
            scale = self.window if self.kind == IntensityKind.HU else self.reference
            if scale is None:
                raise ValueError("a percentile-normalised output needs a reference scale to be mapped back")
        lo, hi = scale
        # float64 for the affine map, so that forward -> inverse reproduces integer HU exactly
        out = (np.asarray(data, dtype=np.float64) + 1.0) * ((hi - lo) / 2.0) + lo
        return out.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "window": list(self.window),
            "percentiles": list(self.percentiles),
            "reference": None if self.reference is None else list(self.reference),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IntensityMap:
        ref = data.get("reference")
        return cls(
            kind=IntensityKind(data["kind"]),
            window=tuple(data["window"]),  # type: ignore[arg-type]
            percentiles=tuple(data["percentiles"]),  # type: ignore[arg-type]
            reference=None if ref is None else tuple(ref),  # type: ignore[arg-type]
        )


def intensity_maps(cfg: DataConfig) -> tuple[IntensityMap, IntensityMap]:
    """Source and target maps described by a :class:`DataConfig` (no reference scale yet)."""
    src = IntensityMap(cfg.src_intensity, cfg.hu_window, cfg.percentiles)
    dst = IntensityMap(cfg.dst_intensity, cfg.hu_window, cfg.percentiles)
    return src, dst


def source_maps(cfg: DataConfig, first: IntensityMap | None = None) -> dict[str, IntensityMap]:
    """One map per source of a many-to-one run, by name in the order of ``cfg.sources`` (each volume is scaled by its
    own percentiles or the HU window; a source needs no reference scale, as nothing is mapped back to it);
    ``first``: the first source's map to use instead (a checkpoint's ``src_map``).

    Example:
        >>> {n: m.kind.value for n, m in source_maps(DataConfig(src="t1,ct", dst="t2")).items()}
        {'t1': 'percentile', 'ct': 'hu'}
    """
    kinds = zip(cfg.sources, cfg.src_intensities, strict=True)
    maps = {n: IntensityMap(k, cfg.hu_window, cfg.percentiles) for n, k in kinds}
    return maps if first is None else {**maps, cfg.sources[0]: first}
