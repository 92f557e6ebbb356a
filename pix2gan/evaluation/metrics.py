"""Image similarity in physical units, following SynthRAD2023's published evaluation rules.

For CT (``hu`` intensity) both volumes are clipped to the window [-1024, 3000] HU first, and:

* **MAE**: mean |pred - target| over the mask voxels.
* **PSNR**: scikit-image's ``peak_signal_noise_ratio`` of the mask voxels, data range 4024 (the window width).
* **SSIM**: scikit-image's 3-D ``structural_similarity`` (data range 4024) of the clipped volumes with voxels outside
  the mask set to the window minimum, shifted so that minimum is 0; the SSIM map is averaged inside the mask after cropping a 3-voxel border, as
  scikit-image does for its own mean (7-voxel window).

Without a window (MR targets) nothing is clipped and the data range is the target's max - min. Without a mask the
whole volume counts.

Per-tissue MAE (CT targets only): the MAE above restricted to the mask voxels whose *target* value falls in a tissue
class of :data:`TISSUES`: air below -200 HU, soft tissue from -200 to 200 HU (both bounds included), bone above
200 HU. Classes are decided on the target before clipping; errors are clipped as for the MAE. A class without a voxel
in the mask gives ``nan`` (a subject without bone), which the summaries over subjects skip.

Uncertainty ranking: given a voxel-wise uncertainty map (e.g. the standard deviation of several predictions),
:func:`error_spearman` is the Spearman rank correlation between it and |pred - target| over the mask voxels: 1 when
the uncertainty ranks the voxels exactly as the error does, about 0 when it says nothing about the error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.util import crop

__all__ = ["METRICS", "TISSUES", "mae", "psnr", "ssim", "tissue_mae", "error_spearman", "evaluate"]

METRICS = ("mae", "psnr", "ssim")
Window = tuple[float, float]

TISSUES: dict[str, tuple[float, float]] = {
    "air": (-math.inf, -200.0),
    "soft": (-200.0, 200.0),
    "bone": (200.0, math.inf),
}
"""Tissue classes of a CT target voxel (HU): air < -200, soft tissue -200..200 (bounds included), bone > 200."""


def _prepare(
    pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None, window: Window | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from target shape {target.shape}")
    if mask is None:
        mask = np.ones(target.shape, dtype=bool)
    elif mask.shape != target.shape:
        raise ValueError(f"mask shape {mask.shape} differs from target shape {target.shape}")
    else:
        mask = np.asarray(mask) > 0
    if not mask.any():
        raise ValueError("the mask is empty")
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if window is not None:
        pred, target = np.clip(pred, *window), np.clip(target, *window)
    return pred, target, mask


def _data_range(target: np.ndarray, window: Window | None) -> float:
    if window is not None:
        return float(window[1] - window[0])
    return float(target.max() - target.min()) or 1.0


def mae(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None, window: Window | None = None) -> float:
    """Mean absolute error over the mask (after clipping to ``window``).

    Example:
        >>> mae(np.array([0.0, 10.0, 5000.0]), np.array([1.0, 0.0, 3000.0]), window=(-1024, 3000))
        3.6666666666666665
    """
    pred, target, mask = _prepare(pred, target, mask, window)
    return float(np.abs(pred - target)[mask].mean())


def psnr(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None, window: Window | None = None) -> float:
    """Peak signal-to-noise ratio (dB) of the mask voxels; data range = window width (or the target's range).

    Example:
        >>> round(psnr(np.full(4, 100.0), np.zeros(4), window=(-1024, 3000)), 3)  # 20 log10(4024 / 100)
        32.093
    """
    pred, target, mask = _prepare(pred, target, mask, window)
    return float(peak_signal_noise_ratio(target[mask], pred[mask], data_range=_data_range(target, window)))


def ssim(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None, window: Window | None = None) -> float:
    """Structural similarity of 2-D or 3-D images, averaged inside the mask (SynthRAD's masked SSIM).

    The SSIM window is 7 voxels, shrunk to the smallest odd size that fits a thin axis.
    """
    pred, target, mask = _prepare(pred, target, mask, window)
    data_range = _data_range(target, window)
    background = window[0] if window is not None else float(target.min())
    # outside the mask -> background; then shift so the background is 0 (SSIM is not shift-invariant: SynthRAD
    # evaluates HU + 1024)
    pred = np.where(mask, pred, background) - background
    target = np.where(mask, target, background) - background
    win = min(7, *(s if s % 2 else s - 1 for s in target.shape))
    if win < 3:
        raise ValueError(f"SSIM needs at least 3 voxels along every axis, got shape {target.shape}")
    _, smap = structural_similarity(target, pred, data_range=data_range, win_size=win, full=True)
    pad = (win - 1) // 2
    inner = crop(mask, pad)
    if not inner.any():
        return float(crop(smap, pad).mean())
    return float(crop(smap, pad)[inner].mean(dtype=np.float64))


def _tissue_masks(target: np.ndarray) -> dict[str, np.ndarray]:
    """One boolean map per class of :data:`TISSUES`; soft tissue includes both its bounds, air and bone exclude them."""
    (_, air_hi), (soft_lo, soft_hi), (bone_lo, _) = (TISSUES[k] for k in ("air", "soft", "bone"))
    return {"air": target < air_hi, "soft": (target >= soft_lo) & (target <= soft_hi), "bone": target > bone_lo}


def tissue_mae(
    pred: np.ndarray,
    target: np.ndarray,
    mask: np.ndarray | None = None,
    window: Window | None = (-1024.0, 3000.0),
) -> dict[str, float]:
    """MAE per tissue class of the target (:data:`TISSUES`) inside the mask, after clipping to ``window``.

    Returns:
        ``{"mae_air": ..., "mae_soft": ..., "mae_bone": ...}``; ``nan`` for a class with no voxel in the mask.

    Example:
        >>> target = np.array([-1000.0, -200.0, 200.0, 1500.0])
        >>> tissue_mae(np.array([-1100.0, -180.0, 170.0, 1400.0]), target)  # -1100 is clipped to -1024
        {'mae_air': 24.0, 'mae_soft': 25.0, 'mae_bone': 100.0}
        >>> tissue_mae(target + 10, target, mask=np.array([1, 1, 0, 0]))["mae_bone"]
        nan
    """
    raw = np.asarray(target, dtype=np.float64)
    pred, target, mask = _prepare(pred, target, mask, window)
    err = np.abs(pred - target)
    out = {}
    for name, inside in _tissue_masks(raw).items():
        sel = inside & mask
        out[f"mae_{name}"] = float(err[sel].mean()) if sel.any() else math.nan
    return out


def error_spearman(
    std: np.ndarray,
    pred: np.ndarray,
    target: np.ndarray,
    mask: np.ndarray | None = None,
    window: Window | None = None,
) -> float:
    """Spearman rank correlation between an uncertainty map ``std`` and |pred - target| over the mask voxels.

    The error is taken after clipping to ``window``. ``nan`` when the uncertainty or the error is constant.

    Example:
        >>> err = np.array([0.0, 1.0, 5.0, 2.0])
        >>> error_spearman(np.sqrt(err), err, np.zeros(4))  # any increasing function of the error ranks it exactly
        1.0
        >>> error_spearman(np.ones(4), err, np.zeros(4))
        nan
    """
    from scipy.stats import spearmanr  # scipy.stats takes half a second to import: only when asked

    pred, target, mask = _prepare(pred, target, mask, window)
    std = np.asarray(std, dtype=np.float64)
    if std.shape != target.shape:
        raise ValueError(f"uncertainty shape {std.shape} differs from target shape {target.shape}")
    s, e = std[mask], np.abs(pred - target)[mask]
    if s.size < 2 or np.all(s == s[0]) or np.all(e == e[0]):
        return math.nan
    return float(spearmanr(s, e).statistic)


_FUNCS = {"mae": mae, "psnr": psnr, "ssim": ssim}


def evaluate(
    pred: np.ndarray,
    target: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    metrics: Sequence[str] = METRICS,
    window: Window | None = (-1024.0, 3000.0),
    std: np.ndarray | None = None,
) -> dict[str, float]:
    """Compute the named metrics of a prediction against its target (in physical units).

    Args:
        pred, target: volumes (or images) of one shape, in physical units.
        mask: body mask (non-zero inside) or None for the whole volume.
        metrics: any of ``mae``, ``psnr``, ``ssim``.
        window: clip window (SynthRAD CT rules) or None for MR targets.
        std: optional voxel-wise uncertainty map of the prediction (same shape).

    Returns:
        ``{metric: value}`` in the order asked. With a window (CT targets), ``mae`` is followed by ``mae_air``,
        ``mae_soft`` and ``mae_bone`` (:func:`tissue_mae`; ``nan`` for an empty class). With ``std``, then
        ``std_error_spearman`` (:func:`error_spearman`) and ``std_mean`` (mean uncertainty inside the mask).
    """
    unknown = [m for m in metrics if m not in _FUNCS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {', '.join(METRICS)}")
    out: dict[str, float] = {}
    for m in metrics:
        out[m] = _FUNCS[m](pred, target, mask, window)
        if m == "mae" and window is not None:
            out.update(tissue_mae(pred, target, mask, window))
    if std is not None:
        out["std_error_spearman"] = error_spearman(std, pred, target, mask, window)  # checks the shapes and the mask
        std = np.asarray(std, dtype=np.float64)
        out["std_mean"] = float(std.mean() if mask is None else std[np.asarray(mask) > 0].mean())
    return out
