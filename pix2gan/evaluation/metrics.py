"""Image similarity in physical units, following SynthRAD2023's published evaluation rules.

For CT (``hu`` intensity) both volumes are clipped to the window [-1024, 3000] HU first, and:

* **MAE**: mean |pred - target| over the mask voxels.
* **PSNR**: scikit-image's ``peak_signal_noise_ratio`` of the mask voxels, data range 4024 (the window width).
* **SSIM**: scikit-image's 3-D ``structural_similarity`` (data range 4024) of the clipped volumes with voxels outside
  the mask set to the window minimum, shifted so that minimum is 0; the SSIM map is averaged inside the mask after cropping a 3-voxel border, as
  scikit-image does for its own mean (7-voxel window).

Without a window (MR targets) nothing is clipped and the data range is the target's max - min. Without a mask the
whole volume counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.util import crop

__all__ = ["METRICS", "mae", "psnr", "ssim", "evaluate"]

METRICS = ("mae", "psnr", "ssim")
Window = tuple[float, float]


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


_FUNCS = {"mae": mae, "psnr": psnr, "ssim": ssim}


def evaluate(
    pred: np.ndarray,
    target: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    metrics: Sequence[str] = METRICS,
    window: Window | None = (-1024.0, 3000.0),
) -> dict[str, float]:
    """Compute the named metrics of a prediction against its target (in physical units).

    Args:
        pred, target: volumes (or images) of one shape, in physical units.
        mask: body mask (non-zero inside) or None for the whole volume.
        metrics: any of ``mae``, ``psnr``, ``ssim``.
        window: clip window (SynthRAD CT rules) or None for MR targets.

    Returns:
        ``{metric: value}`` in the order asked.
    """
    unknown = [m for m in metrics if m not in _FUNCS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {', '.join(METRICS)}")
    return {m: _FUNCS[m](pred, target, mask, window) for m in metrics}
