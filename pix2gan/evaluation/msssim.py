"""The masked multi-scale SSIM of SynthRAD2025, as the challenge's evaluation code computes it.

Source: ``ImageMetrics.ms_ssim`` and ``ImageMetrics.structural_similarity_at_scale`` in ``image_metrics.py`` of the
challenge's evaluation container, github.com/SynthRAD2025/evaluation (read at commit 17cac47b); this is our own
implementation of what that code computes, checked against an independent one in ``tests/test_synthrad_rules.py``.

The caller (:func:`pix2gan.evaluation.metrics.ms_ssim`) first clips both volumes to the window ([-1024, 3071] HU for
CT, [-1, 1] for MR targets in the normalised space), sets the voxels outside the mask (mask > 0) to the window minimum
and shifts so that minimum is 0 (values in [0, R], R = the window width = the data range). Then, with
C2 = (0.03 R)^2 and C3 = C2 / 2:

1. **Padding.** Every axis shorter than 97 voxels is padded to 97 with edge values ((97 - n) // 2 before, the rest
   after), the mask too, so that the fifth scale still has 7 voxels along every axis. Longer axes are left alone.
2. **Per scale** l = 1..5, with weights w = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333) (Wang, Simoncelli and Bovik
   2003, eq. 7): local means mx, my, variances vx, vy and covariance vxy over a 7-voxel box (uniform filter,
   reflected edges), the (co)variances sample-normalised (times n / (n - 1), n = 7^ndim); sx, sy the square roots of
   the variances, negatives read as 0;

   contrast c = max(0, (2 sx sy + C2) / (vx + vy + C2)), structure s = max(0, (vxy + C3) / (sx sy + C3)),
   map_l = c^w_l · s^w_l.

   There is **no luminance term** at any scale: the official code gives it exponent 0 at scales 1-5 (its luminance
   weights (0, 0, 0, 0, 0, 0.1333) are read at indices 0-4 only), where Wang et al. weight it at the coarsest scale.
   The scale's figure m_l is the mean of map_l over the mask voxels after cropping a 3-voxel border from map and
   mask (``nan`` when no mask voxel is left there, as the official code's mean of an empty selection gives).
3. **Between scales** the volumes are averaged over 2-voxel boxes along every axis, each box ending at an even index
   and zero outside the volume (the official ``fftconvolve(x, ones((2, 2, 2)) / 8, mode="same")[::2, ::2, ::2]``: the
   first plane of every axis is averaged with zeros); the mask is subsampled, ``mask[::2, ::2, ::2]``.
4. **MS-SSIM** = prod_l clip(m_l, 0, 1).

The official code takes 3-D volumes; a 2-D image follows the same steps with 2 x 2 boxes. All arithmetic is float64
(the official code runs in its inputs' precision), so the figures agree to about 1e-12.

Example:
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(0, 4095, (12, 10, 8))
    >>> masked_ms_ssim(x, x, np.ones(x.shape, dtype=bool), 4095.0)
    1.0
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.ndimage import uniform_filter

__all__ = ["MS_SSIM_WEIGHTS", "MS_SSIM_MIN_SIZE", "masked_ms_ssim"]

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Exponents of contrast and structure at each scale, finest first (Wang et al. 2003)."""
MS_SSIM_MIN_SIZE = 97
"""Axes shorter than this are edge-padded to it: the fifth scale then still holds the 7-voxel window."""
_WIN = 7  # box of the local statistics
_K2 = 0.03


def _pad_to(arrays: tuple[np.ndarray, ...], size: int) -> tuple[np.ndarray, ...]:
    """Edge-pad every axis shorter than ``size`` to ``size``, (size - n) // 2 before and the rest after."""
    widths = [((size - n) // 2, size - n - (size - n) // 2) if n < size else (0, 0) for n in arrays[0].shape]
    return tuple(np.pad(a, widths, mode="edge") for a in arrays)


def _halve(x: np.ndarray) -> np.ndarray:
    """Mean over 2-voxel boxes along every axis, box i covering indices 2i - 1 and 2i (zero before the first voxel).

    Example:
        >>> _halve(np.array([2.0, 4.0, 6.0, 8.0, 10.0])).tolist()  # (0 + 2) / 2, (4 + 6) / 2, (8 + 10) / 2
        [1.0, 5.0, 9.0]
    """
    padded = np.pad(x, [(1, 0)] * x.ndim)  # a zero plane in front of every axis
    out = np.zeros(tuple(math.ceil(n / 2) for n in x.shape))
    for offsets in itertools.product((0, 1), repeat=x.ndim):
        out += padded[tuple(slice(o, o + 2 * m, 2) for o, m in zip(offsets, out.shape, strict=True))]
    return out / 2**x.ndim


def _contrast_structure(x: np.ndarray, y: np.ndarray, data_range: float, weight: float) -> np.ndarray:
    """The map c^weight · s^weight of one scale (contrast and structure of SSIM over a 7-voxel box)."""
    n = _WIN**x.ndim
    norm = n / (n - 1)  # sample (co)variances, as scikit-image's default

    def local_mean(a: np.ndarray) -> np.ndarray:
        return uniform_filter(a, size=_WIN)

    mx, my = local_mean(x), local_mean(y)
    vx = norm * (local_mean(x * x) - mx * mx)
    vy = norm * (local_mean(y * y) - my * my)
    vxy = norm * (local_mean(x * y) - mx * my)
    sx, sy = np.sqrt(np.maximum(vx, 0.0)), np.sqrt(np.maximum(vy, 0.0))
    c2 = (_K2 * data_range) ** 2
    c3 = c2 / 2
    contrast = np.maximum((2 * sx * sy + c2) / (vx + vy + c2), 0.0)
    structure = np.maximum((vxy + c3) / (sx * sy + c3), 0.0)
    return contrast**weight * structure**weight


def masked_ms_ssim(
    target: np.ndarray, pred: np.ndarray, mask: np.ndarray, data_range: float,
    weights: tuple[float, ...] = MS_SSIM_WEIGHTS,
) -> float:  # fmt: skip
    """SynthRAD2025's masked MS-SSIM of two prepared 2-D or 3-D volumes (steps 1-4 of the module's description).

    Args:
        target, pred: volumes of one shape, already clipped, masked (background at 0) and shifted into [0, data_range].
        mask: boolean body mask of that shape.
        data_range: R of the SSIM constants (the window width).
        weights: exponent of contrast and structure per scale, finest first.

    Returns:
        The product over scales of the masked mean SSIM map, each clipped to [0, 1]; ``nan`` when a scale has no mask
        voxel inside its cropped border.
    """
    if target.ndim not in (2, 3):
        raise ValueError(f"MS-SSIM needs 2-D or 3-D volumes, got shape {target.shape}")
    x, y, m = _pad_to((np.asarray(target, np.float64), np.asarray(pred, np.float64), np.asarray(mask, bool)),
                      MS_SSIM_MIN_SIZE)  # fmt: skip
    pad = (_WIN - 1) // 2
    inner = (slice(pad, -pad),) * x.ndim
    result = 1.0
    for level, weight in enumerate(weights):
        ssim_map = _contrast_structure(x, y, data_range, weight)
        inside = m[inner]
        if not inside.any():
            return math.nan
        result *= float(np.clip(ssim_map[inner][inside].mean(dtype=np.float64), 0.0, 1.0))
        if level + 1 < len(weights):
            x, y, m = _halve(x), _halve(y), m[(slice(None, None, 2),) * m.ndim]
    return result
