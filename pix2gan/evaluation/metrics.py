"""Image similarity in physical units, following the SynthRAD challenges' published evaluation rules.

Two rule sets, :data:`RULES` (a :class:`Rules` each: the HU window of CT targets, whose width is the data range, and
the metric functions). For CT (``hu`` intensity) both volumes are clipped to the rule set's window first (but for
SynthRAD2025's MAE).

**synthrad2023** (the default), window [-1024, 3000] HU, data range 4024:

* **MAE**: mean |pred - target| over the mask voxels.
* **PSNR**: scikit-image's ``peak_signal_noise_ratio`` of the mask voxels, data range 4024 (the window width).
* **SSIM**: scikit-image's 3-D ``structural_similarity`` (data range 4024) of the clipped volumes with voxels outside
  the mask set to the window minimum, shifted so that minimum is 0; the SSIM map is averaged inside the mask after
  cropping a 3-voxel border, as scikit-image does for its own mean (7-voxel window).

**synthrad2025**, window [-1024, 3071] HU, data range 4095: PSNR as above, the MAE of the mask voxels as they are
(not clipped), and in place of SSIM the masked
multi-scale SSIM (:func:`ms_ssim`): the volumes clipped, masked and shifted as for SSIM, edge-padded to at least 97
voxels per axis, then 5 scales weighted (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), each the contrast · structure map
of SSIM (7-voxel box, no luminance term) averaged inside the mask, the volumes halved by 2-voxel box means between
scales; the product of the 5 masked means. The exact definition, and its source (``image_metrics.py`` of
github.com/SynthRAD2025/evaluation), is in :mod:`pix2gan.evaluation.msssim`. That code's ``ImageMetrics.mae``
takes the unclipped mask voxels (only its PSNR and MS-SSIM clip), and so do we under these rules: the figure differs
from a clipped MAE only where a volume leaves [-1024, 3071]. Per-tissue MAE clips under both rule sets.

Without a window nothing is clipped and the data range is the target's max - min (a constant target, which has
none, is refused with ``ValueError``). MR targets are scored in the
generator's normalised space instead (:data:`NORMALISED`, [-1, 1], data range 2; see
:mod:`pix2gan.evaluation.paired`): the same functions with that window, no tissue classes. Without a mask the whole
volume counts.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.util import crop

from pix2gan.evaluation.msssim import masked_ms_ssim

__all__ = ["METRICS", "TISSUES", "NORMALISED", "Rules", "RULES", "check_rules", "mae", "psnr", "ssim", "ms_ssim",
           "tissue_mae", "error_spearman", "evaluate"]  # fmt: skip

METRICS = ("mae", "psnr", "ssim")
Window = tuple[float, float]
Metric = Callable[[np.ndarray, np.ndarray, "np.ndarray | None", "Window | None"], float]
NORMALISED: Window = (-1.0, 1.0)
"""The generator's intensity space, where MR targets are scored (data range 2)."""

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
    """The window's width, or without a window the target's max - min; a constant target has none, and PSNR and SSIM
    measured against an invented one would mean nothing, so it is refused."""
    if window is not None:
        return float(window[1] - window[0])
    data_range = float(target.max() - target.min())
    if not data_range > 0:
        raise ValueError(f"the target is constant ({float(target.flat[0]):g} everywhere): without a window it has no "
                         "data range to score PSNR or SSIM against; give a window")  # fmt: skip
    return data_range


def mae(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None, window: Window | None = None) -> float:
    """Mean absolute error over the mask (after clipping to ``window``).

    Example:
        >>> mae(np.array([0.0, 10.0, 5000.0]), np.array([1.0, 0.0, 3000.0]), window=(-1024, 3000))
        3.6666666666666665
    """
    pred, target, mask = _prepare(pred, target, mask, window)
    return float(np.abs(pred - target)[mask].mean())


def psnr(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None, window: Window | None = None) -> float:
    """Peak signal-to-noise ratio (dB) of the mask voxels; data range = window width (or the target's range; a
    constant target without a window is refused with ``ValueError``).

    Example:
        >>> round(psnr(np.full(4, 100.0), np.zeros(4), window=(-1024, 3000)), 3)  # 20 log10(4024 / 100)
        32.093
    """
    pred, target, mask = _prepare(pred, target, mask, window)
    return float(peak_signal_noise_ratio(target[mask], pred[mask], data_range=_data_range(target, window)))


def _masked_shifted(
    pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None, window: Window | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Clipped volumes with the voxels outside the mask at the window minimum, shifted so that minimum is 0 (SSIM is
    not shift-invariant: SynthRAD evaluates HU + 1024); with the mask and the data range."""
    pred, target, mask = _prepare(pred, target, mask, window)
    data_range = _data_range(target, window)
    background = window[0] if window is not None else float(target.min())
    pred = np.where(mask, pred, background) - background
    target = np.where(mask, target, background) - background
    return pred, target, mask, data_range


def ssim(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None, window: Window | None = None) -> float:
    """Structural similarity of 2-D or 3-D images, averaged inside the mask (SynthRAD's masked SSIM).

    The SSIM window is 7 voxels, shrunk to the smallest odd size that fits a thin axis.
    """
    pred, target, mask, data_range = _masked_shifted(pred, target, mask, window)
    win = min(7, *(s if s % 2 else s - 1 for s in target.shape))
    if win < 3:
        raise ValueError(f"SSIM needs at least 3 voxels along every axis, got shape {target.shape}")
    _, smap = structural_similarity(target, pred, data_range=data_range, win_size=win, full=True)
    pad = (win - 1) // 2
    inner = crop(mask, pad)
    if not inner.any():
        return float(crop(smap, pad).mean())
    return float(crop(smap, pad)[inner].mean(dtype=np.float64))


def ms_ssim(
    pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None, window: Window | None = None
) -> float:
    """SynthRAD2025's masked multi-scale SSIM of 2-D or 3-D volumes (:mod:`pix2gan.evaluation.msssim`).

    Clipped to ``window``, voxels outside the mask at its minimum, shifted to [0, width]; data range the width (or,
    without a window, the target's range with its minimum as background). ``nan`` when a scale keeps no mask voxel.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> ct = rng.uniform(-1024, 3071, (16, 16, 8))
        >>> ms_ssim(ct, ct, window=(-1024, 3071))
        1.0
        >>> 0 < ms_ssim(ct + rng.normal(0, 300, ct.shape), ct, window=(-1024, 3071)) < 1
        True
    """
    pred, target, mask, data_range = _masked_shifted(pred, target, mask, window)
    return masked_ms_ssim(target, pred, mask, data_range)


@dataclass(frozen=True)
class Rules:
    """One challenge's scoring rules.

    Args:
        name: the ``--rules`` value.
        window: clip window of CT targets (HU); its width is the data range of PSNR and the structural metric.
        structural: the structural similarity (the ``ssim`` figure): masked SSIM or masked MS-SSIM.
        structural_name: how tables name it.
        source: where the rules come from.
        clip_mae: whether the MAE, too, is taken after clipping to the window (SynthRAD2023 here) or on the voxels as
            they are (SynthRAD2025's ``ImageMetrics.mae``: only PSNR and MS-SSIM clip).
    """

    name: str
    window: Window
    structural: Metric
    structural_name: str
    source: str
    clip_mae: bool = True

    @property
    def data_range(self) -> float:
        return float(self.window[1] - self.window[0])

    @property
    def functions(self) -> dict[str, Metric]:
        """Metric name (:data:`METRICS`) -> function ``f(pred, target, mask, window) -> float``."""
        return {"mae": mae if self.clip_mae else _unclipped_mae, "psnr": psnr, "ssim": self.structural}


RULES: dict[str, Rules] = {
    r.name: r
    for r in (
        Rules("synthrad2023", (-1024.0, 3000.0), ssim, "SSIM", "SynthRAD2023 (github.com/SynthRAD2023/metrics)"),
        Rules("synthrad2025", (-1024.0, 3071.0), ms_ssim, "MS-SSIM",
              "SynthRAD2025 (github.com/SynthRAD2025/evaluation, image_metrics.py)", clip_mae=False),
    )
}  # fmt: skip
"""The scoring rules by name; ``synthrad2023`` is the default."""


def _unclipped_mae(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None, window: Window | None = None) -> float:
    """:func:`mae` without clipping (``window`` is ignored): SynthRAD2025 takes the MAE of the voxels as they are."""
    return mae(pred, target, mask, None)


def check_rules(name: str | Rules) -> Rules:
    """The rule set of that name.

    Example:
        >>> check_rules("SynthRAD2025").window
        (-1024.0, 3071.0)
        >>> check_rules("brats")
        Traceback (most recent call last):
        ...
        ValueError: --rules must be synthrad2023 or synthrad2025, got 'brats'
    """
    if isinstance(name, Rules):
        return name
    rules = RULES.get(str(name).strip().lower())
    if rules is None:
        raise ValueError(f"--rules must be {' or '.join(RULES)}, got {name!r}")
    return rules


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


def evaluate(
    pred: np.ndarray,
    target: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    metrics: Sequence[str] = METRICS,
    window: Window | None | Literal["rules"] = "rules",
    std: np.ndarray | None = None,
    rules: str | Rules = "synthrad2023",
    tissues: bool | None = None,
) -> dict[str, float]:
    """Compute the named metrics of a prediction against its target under a rule set (:data:`RULES`).

    Args:
        pred, target: volumes (or images) of one shape, in physical units (or both in the normalised space).
        mask: body mask (non-zero inside) or None for the whole volume.
        metrics: any of ``mae``, ``psnr``, ``ssim`` (``ssim``: the rule set's structural similarity, MS-SSIM for
            ``synthrad2025``).
        window: clip window; ``"rules"`` (default) the rule set's HU window (CT targets), :data:`NORMALISED` for
            volumes in the normalised space, None for no clipping (data range of the target's max - min; PSNR and
            SSIM of a constant target are then refused).
        std: optional voxel-wise uncertainty map of the prediction (same shape).
        rules: the rule set, by name or as a :class:`Rules`.
        tissues: add the per-tissue MAEs; default: whenever there is a window other than :data:`NORMALISED`.

    Returns:
        ``{metric: value}`` in the order asked. With tissues (CT targets), ``mae`` is followed by ``mae_air``,
        ``mae_soft`` and ``mae_bone`` (:func:`tissue_mae`; ``nan`` for an empty class). With ``std``, then
        ``std_error_spearman`` (:func:`error_spearman`) and ``std_mean`` (mean uncertainty inside the mask).

    Raises:
        ValueError: shapes that differ, an empty mask, a volume too thin for SSIM, or PSNR / SSIM of a constant
            target without a window (it has no data range); callers with files name them (``InputError``).
    """
    r = check_rules(rules)
    funcs = r.functions
    unknown = [m for m in metrics if m not in funcs]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {', '.join(METRICS)}")
    clip = r.window if isinstance(window, str) else window
    if tissues is None:
        tissues = clip is not None and tuple(clip) != NORMALISED
    out: dict[str, float] = {}
    for m in metrics:
        out[m] = funcs[m](pred, target, mask, clip)
        if m == "mae" and tissues:
            out.update(tissue_mae(pred, target, mask, clip))
    if std is not None:
        out["std_error_spearman"] = error_spearman(std, pred, target, mask, clip)  # checks the shapes and the mask
        std = np.asarray(std, dtype=np.float64)
        out["std_mean"] = float(std.mean() if mask is None else std[np.asarray(mask) > 0].mean())
    return out
