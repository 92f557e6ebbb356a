"""How paired targets are scored: CT targets in HU under the rules' window, the others (MR) in the generator's
normalised space [-1, 1] (:func:`normalised_pair`), so that their figures compare across subjects and scanners.

Beside the distortion metrics (:data:`~pix2gan.evaluation.metrics.METRICS`), CT targets get the realism figures
(:mod:`pix2gan.evaluation.realism`, metric names :data:`REALISM_METRICS`), taken on the same clipped volumes as
PSNR and SSIM (the rules' window, under both rule sets), in mm from the target's affine, the noise power spectrum in
its axial planes. MR targets have no HU (no tissue classes, no physical noise level): they get none.

:class:`Scoring` holds one evaluation's choice and refuses, naming the target's file, what cannot be scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pix2gan.config import IntensityKind
from pix2gan.data.intensity import IntensityMap, Scale
from pix2gan.errors import InputError
from pix2gan.evaluation.metrics import METRICS, NORMALISED, Rules, evaluate
from pix2gan.evaluation.realism import FIGURES, realism

__all__ = ["Scoring", "normalised_pair", "voxel_geometry", "REALISM_METRICS", "PAIRED_METRICS"]

REALISM_METRICS: tuple[str, ...] = tuple(FIGURES)
"""The realism metrics ``--metrics`` takes (``nps``, ``sharpness``, ``hu_w1``), CT targets only."""

PAIRED_METRICS: tuple[str, ...] = METRICS + REALISM_METRICS
"""What a paired evaluation scores by default: distortion and realism."""


def voxel_geometry(affine: np.ndarray) -> tuple[tuple[float, float, float], int]:
    """Voxel size (mm, the column norms of the affine's 3 x 3) and the axial axis (the array axis closest to S/I, as
    :func:`~pix2gan.data.planes.plane_axes` finds it; the last axis for an affine without one).

    Example:
        >>> voxel_geometry(np.array([[0, 0, -2.0, 0], [1.5, 0, 0, 0], [0, -1.5, 0, 0], [0, 0, 0, 1]]))
        ((1.5, 1.5, 2.0), 1)
    """
    from pix2gan.data.planes import plane_axes

    spacing = tuple(float(s) for s in np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0))
    try:
        axis = plane_axes(affine, ("axial",))[0]
    except ValueError:
        axis = 2
    return spacing, axis  # type: ignore[return-value]


def normalised_pair(
    target_map: IntensityMap, pred: np.ndarray, target: np.ndarray, pred_scale: Scale | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Prediction and MR target in the generator's normalised space [-1, 1] (values outside clipped to it).

    The target goes through its own scale (``target_map.scale_of(target)``: its percentiles, as training normalises
    it); the prediction through ``pred_scale``, the scale it was mapped back to physical units with (a model's
    reference scale: this recovers the generator's own output), or, without one, the target's scale (external
    predictions: the rule fitted on the target, applied to both).

    Example:
        >>> m = IntensityMap(IntensityKind.PERCENTILE, percentiles=(0.0, 100.0))
        >>> p, t = normalised_pair(m, np.array([100.0, 300.0, 900.0]), np.array([100.0, 200.0, 500.0]))
        >>> p.tolist(), t.tolist()
        ([-1.0, 0.0, 1.0], [-1.0, -0.5, 1.0])
    """
    scale = target_map.scale_of(target)
    return target_map.forward(pred, pred_scale or scale), target_map.forward(target, scale)


@dataclass(frozen=True)
class Scoring:
    """How the targets of one evaluation are scored: CT targets (``hu``) in HU under the rules' window, the others in
    the normalised space (:func:`normalised_pair`); ``space`` says so in words for the report."""

    rules: Rules
    metrics: tuple[str, ...]
    target_map: IntensityMap
    window: tuple[float, float]
    space: str
    data_range: float

    @classmethod
    def of(cls, rules: Rules, metrics: Sequence[str], target_map: IntensityMap, how: str) -> Scoring:
        """The scoring of targets normalised by ``target_map``; ``how``, formatted with the percentiles
        ``lo``/``hi``, says how MR volumes are brought to the normalised space."""
        if target_map.kind != IntensityKind.HU:  # MR: no realism figures
            metrics = [m for m in metrics if m not in REALISM_METRICS]
        if target_map.kind == IntensityKind.HU:
            lo, hi = rules.window
            return cls(rules, tuple(metrics), target_map, rules.window, f"HU clipped to [{lo:g}, {hi:g}]",
                       rules.data_range)  # fmt: skip
        lo, hi = target_map.percentiles
        return cls(rules, tuple(metrics), target_map, NORMALISED, f"normalised [-1, 1]: {how.format(lo=lo, hi=hi)}",
                   NORMALISED[1] - NORMALISED[0])  # fmt: skip

    @property
    def hu(self) -> bool:
        return self.target_map.kind == IntensityKind.HU

    def pair(self, pred: np.ndarray, target: np.ndarray, where: Path,
             pred_scale: Scale | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Prediction and target as scored: as they are (HU), or in the normalised space; a constant MR target,
        which has no percentile scale, is refused naming ``where`` (its file)."""
        if self.hu:
            return pred, target
        try:
            return normalised_pair(self.target_map, pred, target, pred_scale)
        except ValueError as exc:
            raise InputError(f"{where}: {exc}; an MR target needs contrast to be scored") from None

    def score(self, pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None, where: Path,
              std: np.ndarray | None = None, affine: np.ndarray | None = None) -> dict[str, float]:  # fmt: skip
        """The figures of one scored pair (:func:`evaluate`), then its realism figures (:func:`realism`: CT targets,
        both volumes clipped to the window, spacing and axial axis from the target's ``affine``), then the
        uncertainty's; what they cannot be computed for (an empty mask, a volume too thin for SSIM) is refused naming
        ``where`` (the target's file)."""
        try:
            out = evaluate(pred, target, mask, metrics=[m for m in self.metrics if m not in REALISM_METRICS],
                           window=self.window, std=std, rules=self.rules, tissues=self.hu)  # fmt: skip
            uncertainty = {k: out.pop(k) for k in ("std_error_spearman", "std_mean") if k in out}
            asked = [m for m in self.metrics if m in REALISM_METRICS]
            if asked:
                if affine is None:
                    raise ValueError("the realism figures need the target's affine (voxel size and axial axis)")
                spacing, axis = voxel_geometry(affine)
                lo, hi = self.window
                out.update(realism(np.clip(pred, lo, hi), np.clip(target, lo, hi), mask, spacing, axis,
                                   metrics=asked))  # fmt: skip
        except ValueError as exc:
            raise InputError(f"{where}: cannot be scored: {exc}") from None
        return {**out, **uncertainty}
