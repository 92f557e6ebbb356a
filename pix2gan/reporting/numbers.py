"""Numbers as the evaluation table shows them, formatted from the evaluation JSON alone (no torch, no evaluation
code).

The rules follow ``pix2gan eval``'s terminal table (``cli/show.py``): MAE and PSNR with 2 decimals (MAEs of a small
data range, MR targets in [-1, 1], with 4), SSIM with 4, the uncertainty ranking with 3, "–" for a figure without a
value; the realism figures: the NPS log-spectral distance (dB) and HU Wasserstein-1 with 2 decimals, the ratios
(NPS, sharpness) with 3; generative figures with 4 significant digits, shares as percentages.

Example:
    >>> format_metric("mae", 78.6123), format_metric("ssim", 0.91234), format_metric("mae_bone", None)
    ('78.61', '0.9123', '–')
    >>> format_metric("mae", 0.08153, data_range=2.0), format_metric("std_error_spearman", 0.41234)
    ('0.0815', '0.412')
    >>> format_metric("nps_ratio", 0.41234), format_metric("nps_lsd", 3.4567), format_metric("hu_w1", 12.345)
    ('0.412', '3.46', '12.35')
    >>> format_mean_std("psnr", 27.123, 0.456)
    '27.12 ± 0.46'
    >>> format_gan_metric("class_consistency", 0.9), format_gan_metric("kid", 0.000123456)
    ('90.0 %', '0.0001235')
"""

from __future__ import annotations

from typing import Any

__all__ = ["format_metric", "format_mean_std", "format_gan_metric", "GAN_LABELS", "GAN_SHARES", "paired_columns",
           "rules_line", "data_range_of", "HIDDEN_KEYS", "REALISM_LABELS", "REALISM_NOTES"]  # fmt: skip

GAN_LABELS = {
    "classifier_accuracy": "real-image classifier accuracy (held out)",
    "class_consistency": "class consistency of generated images",
    "frechet_distance": "Fréchet distance (learned features)",
    "kid": "KID (learned features)",
    "diversity_generated": "diversity, generated",
    "diversity_real": "diversity, real",
    "diversity_ratio": "diversity ratio generated / real",
    "fid": "FID (InceptionV3)",
    "kid_inception": "KID (InceptionV3)",
}
"""Row labels of the generative figures, as ``pix2gan eval`` prints them."""

GAN_SHARES = ("classifier_accuracy", "class_consistency")
"""Generative figures that are shares, shown as percentages."""

REALISM_LABELS = {
    "nps_ratio": "NPS ratio",
    "nps_lsd": "NPS LSD (dB)",
    "sharpness": "sharp",
    "sharpness_bone": "sharp bone",
    "hu_w1": "W1 (HU)",
}
"""Column headers of the realism figures (:mod:`pix2gan.evaluation.realism`), in their order."""

REALISM_NOTES = {
    "nps_ratio": "noise power of the prediction over the real CT's, on soft-tissue squares of the real CT (ICRU 87 "
                 "noise power spectrum, axial planes): 1 as noisy, < 1 smoother",
    "nps_lsd": "log-spectral distance between the two radially averaged noise power spectra (dB): 0 when the noise "
               "texture agrees, whatever its level",
    "sharpness": "mean gradient magnitude (HU/mm) of the prediction over the real CT's, inside the eroded body: 1 as "
                 "sharp, < 1 blurred",
    "sharpness_bone": "the same on the edges of the real CT's bone (> 200 HU)",
    "hu_w1": "Wasserstein-1 distance (HU) between the prediction's and the real CT's HU values inside the body: 0 when "
             "the histograms agree",
}
"""One line per realism figure, shown under the report's evaluation table."""

_RATIOS = ("nps_ratio", "sharpness", "sharpness_bone")

HIDDEN_KEYS = ("std_mean",)
"""Per-subject keys of the JSON that the table leaves out, as the terminal table does."""


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def format_metric(metric: str, value: float | None, data_range: float | None = None) -> str:
    """A paired figure as the table shows it; None or nan (JSON ``null``) as "–"."""
    if _missing(value):
        return "–"
    value = float(value)  # type: ignore[arg-type]
    if metric == "ssim" or (metric.startswith("mae") and data_range is not None and data_range <= 10):
        return f"{value:.4f}"
    return f"{value:.3f}" if metric == "std_error_spearman" or metric in _RATIOS else f"{value:.2f}"


def format_mean_std(metric: str, mean: float | None, std: float | None, data_range: float | None = None) -> str:
    """``mean ± std``, or "–" without a mean."""
    if _missing(mean):
        return "–"
    return f"{format_metric(metric, mean, data_range)} ± {format_metric(metric, std, data_range)}"


def format_gan_metric(key: str, value: float | None) -> str:
    """A generative figure: shares as ``90.0 %``, the others with 4 significant digits."""
    if _missing(value):
        return "–"
    return f"{100 * float(value):.1f} %" if key in GAN_SHARES else f"{float(value):.4g}"  # type: ignore[arg-type]


def paired_columns(doc: dict[str, Any]) -> dict[str, str]:
    """Metric key -> column header for a paired evaluation JSON, in the JSON's key order.

    MAE columns carry "(HU)" when the figures are in HU (CT targets); the structural column is named after the rules
    (``SSIM`` or ``MS-SSIM``).
    """
    rules = doc.get("rules") or {}
    unit = " (HU)" if str(rules.get("space", "")).startswith("HU") else ""
    structural = str(rules.get("ssim") or "masked SSIM").removeprefix("masked ")
    keys: dict[str, None] = {}
    for row in (doc.get("per_subject") or {}).values():
        keys.update(dict.fromkeys(k for k in row if k not in HIDDEN_KEYS))
    columns: dict[str, str] = {}
    for key in keys:
        if key == "mae":
            columns[key] = f"MAE{unit}"
        elif key.startswith("mae_"):
            columns[key] = f"MAE {key.removeprefix('mae_')}{unit}"
        else:
            columns[key] = {"psnr": "PSNR (dB)", "ssim": structural, "std_error_spearman": "std~|err| ρ",
                            **REALISM_LABELS}.get(key, key)  # fmt: skip
    return columns


def data_range_of(doc: dict[str, Any]) -> float | None:
    """The data range an evaluation's JSON says its figures were computed with (None when it says none).

    Example:
        >>> data_range_of({"rules": {"data_range": 2}}), data_range_of({})
        (2.0, None)
    """
    value = (doc.get("rules") or {}).get("data_range")
    return float(value) if isinstance(value, (int, float)) else None


def rules_line(doc: dict[str, Any]) -> str:
    """How the figures were computed, worded as under the terminal table.

    Example:
        >>> rules_line({"rules": {"name": "synthrad2025", "space": "HU clipped to [-1024, 3071]", "data_range": 4095.0,
        ...                       "ssim": "masked MS-SSIM"}})
        'rules synthrad2025, data range 4095: HU clipped to [-1024, 3071]; SSIM column: masked MS-SSIM'
    """
    rules = doc.get("rules") or {}
    line = f"rules {rules.get('name', '?')}"
    if rules.get("data_range") is not None:
        line += f", data range {float(rules['data_range']):g}"
    if rules.get("space"):
        line += f": {rules['space']}"
    return f"{line}; SSIM column: {rules.get('ssim') or 'masked SSIM'}"
