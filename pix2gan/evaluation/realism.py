"""Realism beside distortion: noise texture (NPS), sharpness and the HU distribution of a synthetic CT.

MAE, PSNR and SSIM reward the conditional mean: a model that blurs what MR cannot tell apart scores well on them
and still looks nothing like a CT. These figures compare the *texture and statistics* of the prediction with the
real CT's, in physical units, inside the body (the perception side of the perception–distortion trade-off, Blau &
Michaeli, CVPR 2018):

* **Noise power spectrum** (ICRU Report 87, §4): square ROIs of ``size`` × ``size`` pixels are placed on a grid in
  every slice where the *real* CT is one tissue class (soft tissue, -200..200 HU) and inside the body, ``MARGIN``
  (2) voxels or more from any other class or the body's edge in 3-D (:func:`roi_corners`); each ROI is
  detrended by subtracting its least-squares 2-D polynomial of total degree ``order`` (2), and

      NPS(f_x, f_y) = (Δx Δy / (N_x N_y)) · ⟨|DFT(ROI − fit)|²⟩_ROIs          (HU² mm²)

  The same ROIs are cut from the prediction. ``nps_ratio`` is the integral of the prediction's NPS over the real
  CT's (the ratio of noise variances: 1 when the texture is as strong, < 1 smoother, > 1 noisier); ``nps_lsd`` is
  the log-spectral distance between the two radially averaged curves, √(mean_f (10 log₁₀ NPS_pred/NPS_real)²) in
  dB over the non-zero frequency bins (0 when the spectra agree, whatever their level).
* **Sharpness**: the mean 3-D gradient magnitude (HU/mm) of the prediction over the real CT's, inside the body
  eroded by ``erode`` voxels (``sharpness``), and in the band of voxels on the edges of the real CT's bone
  (``sharpness_bone``: > 200 HU voxels next to ≤ 200 HU ones, and their neighbours). 1 is as sharp; a regression
  that averages bone and soft tissue where MR cannot tell them apart gives < 1 at bone edges.
* **HU distribution**: ``hu_w1``, the Wasserstein-1 distance (HU) between the prediction's and the real CT's values
  inside the body: the mean |difference| of the sorted values. A model that fills in HU values no tissue has (bone
  averaged with air) moves it away from 0 even where it keeps the MAE.

A figure that cannot be taken (no ROI fits a subject's soft tissue, no bone edge) is ``nan``; summaries over subjects
skip it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["REALISM", "FIGURES", "SOFT_TISSUE", "MARGIN", "NPS", "detrend", "nps_2d", "radial_average", "roi_corners", "cut_rois",
           "noise_power_spectrum", "log_spectral_distance", "nps_figures", "sharpness", "hu_wasserstein",
           "realism"]  # fmt: skip

REALISM = ("nps_ratio", "nps_lsd", "sharpness", "sharpness_bone", "hu_w1")
"""The realism figures, in the order :func:`realism` returns them."""

FIGURES: dict[str, tuple[str, ...]] = {"nps": ("nps_ratio", "nps_lsd"), "sharpness": ("sharpness", "sharpness_bone"),
                                       "hu_w1": ("hu_w1",)}  # fmt: skip
"""The realism metrics by the name ``pix2gan eval --metrics`` takes, and the figures each gives."""

SOFT_TISSUE: tuple[float, float] = (-200.0, 200.0)
"""HU class where NPS ROIs go (both bounds included): the soft tissue of the per-tissue MAE."""

BONE_HU = 200.0
"""Above this a real-CT voxel is bone (the per-tissue MAE's bone class)."""

MARGIN = 2
"""Voxels kept between an NPS square and any voxel of another tissue class or outside the mask, in all three
directions: a model that blurs (or mixes slices) carries bone and air into the soft tissue next to them, which a
quadratic detrending does not remove and which would count as noise. A bundled phantom blurred by a Gaussian of one
voxel (its CT against itself) has ``nps_ratio`` 1.76 without a margin (noisier than the real CT!), 0.15 with 1, 0.044
with 2 and 0.048 with 3."""


@dataclass(frozen=True)
class NPS:
    """A noise power spectrum measured on a set of ROIs.

    Attributes:
        freq: radial frequency of each bin (1/mm), ``(B,)``; bin 0 is the zero frequency.
        radial: the radially averaged NPS (HU² mm²), ``(B,)``.
        variance: the integral of the 2-D NPS over the frequency plane (HU²): the detrended ROIs' noise variance.
        n_rois: how many ROIs were averaged.
    """

    freq: np.ndarray
    radial: np.ndarray
    variance: float
    n_rois: int


def detrend(rois: np.ndarray, order: int = 2) -> np.ndarray:
    """Each ROI minus its least-squares 2-D polynomial of total degree ``order`` (ICRU 87's background removal).

    Args:
        rois: ``(N, H, W)`` or ``(H, W)``.
        order: polynomial degree; 0 subtracts the mean.

    Returns:
        The residuals, float64, same shape.

    Example:
        >>> y, x = np.mgrid[0:8, 0:8]
        >>> bool(np.abs(detrend(3 + 2 * x - y + 0.5 * x * y)).max() < 1e-9)
        True
    """
    rois = np.asarray(rois, dtype=np.float64)
    flat = rois.reshape(-1, *rois.shape[-2:])
    h, w = flat.shape[-2:]
    y, x = np.mgrid[0:h, 0:w]
    y, x = (y - (h - 1) / 2) / h, (x - (w - 1) / 2) / w  # centred and scaled: a well-conditioned design
    basis = np.stack([x.ravel() ** i * y.ravel() ** j for i in range(order + 1) for j in range(order + 1 - i)], 1)
    coef, *_ = np.linalg.lstsq(basis, flat.reshape(len(flat), -1).T, rcond=None)  # (P, N)
    return (flat.reshape(len(flat), -1) - (basis @ coef).T).reshape(rois.shape)


def nps_2d(rois: np.ndarray, pixel: tuple[float, float], order: int = 2) -> np.ndarray:
    """The 2-D noise power spectrum of ROIs: (Δy Δx / (H W)) · mean |FFT(detrended ROI)|², unshifted (DC at [0, 0]).

    Args:
        rois: ``(N, H, W)`` in physical units (HU).
        pixel: ``(Δy, Δx)`` in mm, the spacing along the ROI's rows and columns.
        order: detrending degree (:func:`detrend`).

    Returns:
        ``(H, W)`` in HU² mm²; its sum times the frequency cell ``1 / (H Δy · W Δx)`` is the variance.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> nps = nps_2d(rng.normal(0, 10, (400, 16, 16)), (0.5, 0.5), order=0)
        >>> round(float(nps.mean()) / (0.25 * 100), 1)  # white noise: flat at Δy Δx σ²
        1.0
    """
    rois = np.asarray(rois, dtype=np.float64)
    if rois.ndim != 3 or rois.shape[0] == 0:
        raise ValueError(f"rois must be (N, H, W) with N > 0, got shape {rois.shape}")
    h, w = rois.shape[1:]
    power = np.abs(np.fft.fft2(detrend(rois, order))) ** 2
    return power.mean(0) * (pixel[0] * pixel[1]) / (h * w)


def radial_average(nps: np.ndarray, pixel: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Radial average of an unshifted 2-D spectrum in bins one frequency step wide, up to the Nyquist frequency.

    Bin k holds the frequencies whose radius is within half a step of k · step, the step being the coarser of the
    two axes' (1 / (H Δy), 1 / (W Δx)).

    Returns:
        ``(freq, values)``: bin centres (1/mm) and the mean of the spectrum in each bin.

    Example:
        >>> f, v = radial_average(np.ones((8, 8)), (1.0, 1.0))
        >>> f.tolist(), v.tolist()
        ([0.0, 0.125, 0.25, 0.375, 0.5], [1.0, 1.0, 1.0, 1.0, 1.0])
    """
    h, w = nps.shape
    fy, fx = np.meshgrid(np.fft.fftfreq(h, pixel[0]), np.fft.fftfreq(w, pixel[1]), indexing="ij")
    step = max(1.0 / (h * pixel[0]), 1.0 / (w * pixel[1]))
    nyquist = min(0.5 / pixel[0], 0.5 / pixel[1])
    k = np.rint(np.hypot(fy, fx) / step).astype(int).ravel()
    n_bins = int(math.floor(nyquist / step + 1e-9)) + 1
    keep = k < n_bins
    sums = np.bincount(k[keep], weights=nps.ravel()[keep], minlength=n_bins)
    counts = np.bincount(k[keep], minlength=n_bins)
    return np.arange(n_bins) * step, sums / np.maximum(counts, 1)


def roi_corners(
    target: np.ndarray,
    mask: np.ndarray | None,
    axis: int,
    size: int = 16,
    tissue: tuple[float, float] = SOFT_TISSUE,
    margin: int = MARGIN,
) -> list[tuple[int, int, int]]:
    """Where ROIs go: ``(slice, row, col)`` of every ``size`` × ``size`` square on a grid (step ``size``) of every
    slice along ``axis`` whose voxels are all of the ``tissue`` class of the real CT and inside the mask, and at least
    ``margin`` voxels (3-D, diagonals included, so across slices too) from any voxel that is not.

    Example:
        >>> ct = np.full((32, 32, 2), 1000.0); ct[:16, :16] = 40.0
        >>> roi_corners(ct, None, axis=2, size=16, margin=0)
        [(0, 0, 0), (1, 0, 0)]
        >>> ct = np.full((40, 40, 2), 1000.0); ct[:18, :18] = 40.0
        >>> roi_corners(ct, None, axis=2, size=16)  # 2 voxels from the bone; the volume's edges are no boundary
        [(0, 0, 0), (1, 0, 0)]
    """
    inside = (target >= tissue[0]) & (target <= tissue[1])
    if mask is not None:
        inside &= np.asarray(mask) > 0
    if margin > 0:  # a prediction blurred across a tissue boundary is not noise: keep the squares away from them
        inside = ndimage.binary_erosion(inside, np.ones((3, 3, 3), bool), iterations=margin, border_value=1)
    inside = np.moveaxis(inside, axis, 0)
    n, rows, cols = inside.shape[0], inside.shape[1] // size, inside.shape[2] // size
    # the grid's squares as blocks: (slice, block row, row in block, block col, col in block), all-true blocks kept
    blocks = inside[:, : rows * size, : cols * size].reshape(n, rows, size, cols, size).all(axis=(2, 4))
    return [(int(s), int(r) * size, int(c) * size) for s, r, c in np.argwhere(blocks)]  # in (slice, row, col) order


def cut_rois(volume: np.ndarray, corners: list[tuple[int, int, int]], axis: int, size: int) -> np.ndarray:
    """The ``(N, size, size)`` squares at ``corners`` (:func:`roi_corners`) of the slices along ``axis``."""
    planes = np.moveaxis(np.asarray(volume, dtype=np.float64), axis, 0)
    return np.stack([planes[s, r : r + size, c : c + size] for s, r, c in corners])


def noise_power_spectrum(rois: np.ndarray, pixel: tuple[float, float], order: int = 2) -> NPS:
    """:class:`NPS` of ROIs (:func:`nps_2d`, radially averaged; the variance is the 2-D spectrum's integral).

    Example:
        >>> rng = np.random.default_rng(1)
        >>> nps = noise_power_spectrum(rng.normal(0, 20, (300, 16, 16)), (1.0, 1.0), order=0)
        >>> round(nps.variance / 400, 1), nps.n_rois
        (1.0, 300)
    """
    spectrum = nps_2d(rois, pixel, order)
    h, w = spectrum.shape
    freq, radial = radial_average(spectrum, pixel)
    return NPS(freq, radial, float(spectrum.sum() / (h * pixel[0] * w * pixel[1])), len(rois))


def log_spectral_distance(pred: np.ndarray, real: np.ndarray) -> float:
    """√(mean (10 log₁₀ pred/real)²) in dB over the bins but the first (zero frequency, removed by detrending).

    A bin where a spectrum is 0 (a perfectly smooth prediction) is floored at 1e-12 of the real spectrum's mean.

    Example:
        >>> log_spectral_distance(np.array([5.0, 2.0, 1.0]), np.array([1.0, 2.0, 1.0]))  # first bin skipped
        0.0
        >>> log_spectral_distance(np.array([0.0, 10.0, 10.0]), np.array([0.0, 1.0, 1.0]))  # 10 dB everywhere
        10.0
    """
    pred, real = np.asarray(pred, np.float64)[1:], np.asarray(real, np.float64)[1:]
    floor = 1e-12 * max(float(real.mean()), 1e-300)
    ratio = np.maximum(pred, floor) / np.maximum(real, floor)
    return float(np.sqrt(np.mean((10 * np.log10(ratio)) ** 2)))


def nps_figures(
    pred: np.ndarray,
    target: np.ndarray,
    mask: np.ndarray | None,
    spacing: tuple[float, float, float],
    axis: int = 2,
    size: int = 16,
    order: int = 2,
) -> dict[str, float]:
    """``nps_ratio`` and ``nps_lsd`` of a prediction against the real CT, on ROIs placed on the real CT's soft tissue.

    Args:
        pred, target: volumes in HU, one shape.
        mask: body mask or None.
        spacing: voxel size (mm) along the three axes.
        axis: the slice axis (the NPS is taken in the planes across it, usually axial).
        size: ROI side in pixels.
        order: detrending degree.

    Returns:
        ``{"nps_ratio": ..., "nps_lsd": ...}``; both ``nan`` when no ROI fits.
    """
    corners = roi_corners(target, mask, axis, size)
    if not corners:
        return {"nps_ratio": math.nan, "nps_lsd": math.nan}
    pixel = tuple(float(s) for i, s in enumerate(spacing) if i != axis)
    real = noise_power_spectrum(cut_rois(target, corners, axis, size), pixel, order)
    fake = noise_power_spectrum(cut_rois(pred, corners, axis, size), pixel, order)
    ratio = fake.variance / real.variance if real.variance > 0 else math.nan
    return {"nps_ratio": float(ratio), "nps_lsd": log_spectral_distance(fake.radial, real.radial)}


def _gradient_magnitude(volume: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    grads = np.gradient(np.asarray(volume, dtype=np.float64), *spacing)
    return np.sqrt(sum(g * g for g in grads))


def sharpness(
    pred: np.ndarray,
    target: np.ndarray,
    mask: np.ndarray | None,
    spacing: tuple[float, float, float],
    erode: int = 2,
) -> dict[str, float]:
    """Mean gradient magnitude of the prediction over the real CT's: in the eroded body and on the bone edges.

    Example:
        >>> ct = np.zeros((12, 12, 12)); ct[4:8] = 1000.0
        >>> sharpness(ct, ct, None, (1.0, 1.0, 1.0))
        {'sharpness': 1.0, 'sharpness_bone': 1.0}
        >>> sharpness(ct / 2, ct, None, (1.0, 1.0, 1.0))
        {'sharpness': 0.5, 'sharpness_bone': 0.5}
    """
    body = np.ones(target.shape, bool) if mask is None else np.asarray(mask) > 0
    if erode:
        body = ndimage.binary_erosion(body, iterations=erode, border_value=1)
    bone = np.asarray(target) > BONE_HU
    edge = ndimage.binary_dilation(bone) & ~ndimage.binary_erosion(bone, border_value=1)
    edge = ndimage.binary_dilation(edge) & body
    g_pred, g_real = _gradient_magnitude(pred, spacing), _gradient_magnitude(target, spacing)

    def ratio(where: np.ndarray) -> float:
        real = g_real[where].mean() if where.any() else 0.0
        return float(g_pred[where].mean() / real) if real > 0 else math.nan

    return {"sharpness": ratio(body), "sharpness_bone": ratio(edge)}


def hu_wasserstein(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Wasserstein-1 distance (HU) between the value distributions of two volumes inside the mask.

    With as many values on both sides, it is the mean |difference| of the sorted values.

    Example:
        >>> hu_wasserstein(np.array([0.0, 10.0, 30.0]), np.array([30.0, 0.0, 20.0]))  # sorted: 0 10 30 vs 0 20 30
        3.3333333333333335
    """
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    if mask is not None:
        inside = np.asarray(mask) > 0
        pred, target = pred[inside], target[inside]
    return float(np.abs(np.sort(pred, axis=None) - np.sort(target, axis=None)).mean())


def realism(
    pred: np.ndarray,
    target: np.ndarray,
    mask: np.ndarray | None,
    spacing: tuple[float, float, float],
    axis: int = 2,
    roi_size: int = 16,
    metrics: tuple[str, ...] | list[str] = tuple(FIGURES),
) -> dict[str, float]:
    """The figures of :data:`REALISM` for one subject (volumes in HU, ``spacing`` in mm, NPS across ``axis``), of the
    ``metrics`` named (keys of :data:`FIGURES`; default all), in the order of :data:`REALISM`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> ct = rng.normal(40, 20, (32, 32, 4))
        >>> {k: round(v, 6) for k, v in realism(ct, ct, None, (1.0, 1.0, 2.0)).items()}
        {'nps_ratio': 1.0, 'nps_lsd': 0.0, 'sharpness': 1.0, 'sharpness_bone': nan, 'hu_w1': 0.0}
        >>> realism(ct, ct, None, (1.0, 1.0, 2.0), metrics=["hu_w1"])
        {'hu_w1': 0.0}
    """
    if np.shape(pred) != np.shape(target):
        raise ValueError(f"prediction shape {np.shape(pred)} differs from target shape {np.shape(target)}")
    unknown = [m for m in metrics if m not in FIGURES]
    if unknown:
        raise ValueError(f"unknown realism metric(s) {unknown}; choose from {', '.join(FIGURES)}")
    out: dict[str, float] = {}
    if "nps" in metrics:
        out.update(nps_figures(pred, target, mask, spacing, axis, roi_size))
    if "sharpness" in metrics:
        out.update(sharpness(pred, target, mask, spacing))
    if "hu_w1" in metrics:
        out["hu_w1"] = hu_wasserstein(pred, target, mask)
    return {k: out[k] for k in REALISM if k in out}
