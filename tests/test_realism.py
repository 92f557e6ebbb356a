"""Realism figures (pix2gan.evaluation.realism) against theory and direct computations on known inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage
from scipy.stats import wasserstein_distance

from pix2gan.evaluation.realism import (
    cut_rois,
    hu_wasserstein,
    noise_power_spectrum,
    nps_figures,
    realism,
    roi_corners,
    sharpness,
)


def _noise_volume(sigma: float, shape=(96, 96, 12), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(40.0, sigma, shape)


def test_white_noise_gives_a_flat_nps_at_the_known_level():
    sigma, pixel = 25.0, (0.8, 1.2)
    vol = _noise_volume(sigma)
    corners = roi_corners(vol, None, axis=2, size=16, tissue=(-1e9, 1e9))
    assert len(corners) == 36 * 12
    nps = noise_power_spectrum(cut_rois(vol, corners, 2, 16), pixel, order=2)
    level = pixel[0] * pixel[1] * sigma**2  # HU² mm²
    # a quadratic fit removes 6 of 256 degrees of freedom per ROI, all at the lowest frequencies
    assert nps.variance == pytest.approx(sigma**2 * (1 - 6 / 256), rel=0.03)
    high = nps.radial[3:]
    assert np.all(np.abs(high / level - 1) < 0.12), high / level
    assert nps.freq[1] == pytest.approx(1 / (16 * 0.8))  # the coarser of the two frequency steps
    assert nps.freq[-1] <= 0.5 / 1.2 + 1e-12  # up to the lower of the two Nyquist frequencies


@pytest.mark.parametrize("blur", [1.0, 2.0])
def test_gaussian_blur_lowers_the_noise_as_its_transfer_function_says(blur):
    vol = _noise_volume(30.0, shape=(128, 128, 8))
    smooth = ndimage.gaussian_filter(vol, (blur, blur, 0), mode="wrap")
    figures = nps_figures(smooth, vol, None, (1.0, 1.0, 3.0), axis=2, size=32, order=0)
    # |H(f)|² of a Gaussian of sigma s pixels integrated over the frequency square: 1 / (4 pi s²)
    f = np.fft.fftfreq(32)
    theory = np.mean(np.exp(-4 * math.pi**2 * blur**2 * (f[:, None] ** 2 + f[None, :] ** 2)))
    assert figures["nps_ratio"] == pytest.approx(theory, rel=0.1)
    assert figures["nps_lsd"] > 3.0


def test_scaled_noise_has_the_exact_ratio_and_distance():
    vol = _noise_volume(20.0)
    pred = 40.0 + 2.0 * (vol - 40.0)  # detrending is linear: twice the deviations, four times the spectrum
    figures = nps_figures(pred, vol, None, (1.0, 1.0, 1.0), size=16)
    assert figures["nps_ratio"] == pytest.approx(4.0, rel=1e-9)
    assert figures["nps_lsd"] == pytest.approx(10 * math.log10(4.0), rel=1e-9)


def test_identical_volumes_are_perfectly_realistic():
    rng = np.random.default_rng(3)
    ct = ndimage.gaussian_filter(rng.normal(0, 300, (48, 48, 10)), 2) + rng.normal(0, 15, (48, 48, 10))
    ct[10:20, 10:30] += 1200.0  # bone
    mask = np.zeros(ct.shape, bool)
    mask[2:-2, 2:-2] = True
    out = realism(ct, ct, mask, (1.0, 1.0, 2.5), roi_size=8)
    assert out == {"nps_ratio": 1.0, "nps_lsd": 0.0, "sharpness": 1.0, "sharpness_bone": 1.0, "hu_w1": 0.0}


def test_rois_lie_in_one_tissue_class_inside_the_mask():
    ct = np.full((40, 40, 3), 1000.0)
    ct[0:20, 0:40, :] = 30.0  # soft tissue on top
    mask = np.ones(ct.shape, bool)
    mask[:, 30:, 1] = False
    corners = roi_corners(ct, mask, axis=2, size=10, margin=0)
    assert sorted(corners) == sorted(
        [(s, r, c) for s in (0, 2) for r in (0, 10) for c in (0, 10, 20, 30)]
        + [(1, r, c) for r in (0, 10) for c in (0, 10, 20)]
    )
    rois = cut_rois(ct, corners, 2, 10)
    assert rois.shape == (len(corners), 10, 10) and np.all(rois == 30.0)
    assert nps_figures(ct, ct, mask, (1, 1, 1), size=64) == {"nps_ratio": pytest.approx(math.nan, nan_ok=True),
                                                            "nps_lsd": pytest.approx(math.nan, nan_ok=True)}


def test_rois_keep_a_margin_from_other_tissue_in_3d_so_blur_across_it_is_not_noise():
    rng = np.random.default_rng(6)
    ct = 40.0 + rng.normal(0, 10, (64, 64, 12))
    checker = (np.add.outer(np.arange(64) // 4, np.arange(64) // 4) % 2).astype(bool)
    ct[:, :, 6][checker] = 1000.0  # bone in one slice only: the others are soft tissue in-plane
    for margin in (1, 2):
        slices = {s for s, _, _ in roi_corners(ct, None, axis=2, margin=margin)}
        assert slices == set(range(12)) - set(range(6 - margin, 7 + margin))  # also away from it across slices
    blurred = ndimage.gaussian_filter(ct, 1.0)  # a smoother prediction, bone carried into the slices next to it
    assert nps_figures(blurred, ct, None, (1.0, 1.0, 2.0))["nps_ratio"] < 0.1
    # without the margin the bone blurred into slices 5 and 7 is counted as noise: the smoother volume is "noisier"
    corners = roi_corners(ct, None, axis=2, margin=0)
    fake, real = (noise_power_spectrum(cut_rois(v, corners, 2, 16), (1.0, 1.0)) for v in (blurred, ct))
    assert fake.variance / real.variance > 1


def test_rois_follow_the_slice_axis():
    ct = np.full((20, 30, 40), 50.0)
    assert len(roi_corners(ct, None, axis=0, size=10)) == 20 * 3 * 4
    assert len(roi_corners(ct, None, axis=1, size=10)) == 30 * 2 * 4
    planes = cut_rois(np.arange(ct.size, dtype=float).reshape(ct.shape), [(5, 10, 20)], axis=1, size=10)
    assert planes[0, 0, 0] == np.arange(ct.size).reshape(ct.shape)[10, 5, 20]


def test_sharpness_falls_with_blur_and_counts_bone_edges():
    rng = np.random.default_rng(4)
    ct = np.full((40, 40, 12), 30.0) + rng.normal(0, 10, (40, 40, 12))
    ct[12:28, 12:28, 3:9] = 1000.0
    ratios = [sharpness(ndimage.gaussian_filter(ct, s), ct, None, (1.0, 1.0, 2.0)) for s in (0.5, 1.0, 2.0)]
    overall = [r["sharpness"] for r in ratios]
    bone = [r["sharpness_bone"] for r in ratios]
    assert overall == sorted(overall, reverse=True) and overall[0] < 1
    assert bone == sorted(bone, reverse=True) and bone[0] < 1
    # the same ratio computed directly at the bone edge band
    g = lambda v: np.sqrt(sum(d**2 for d in np.gradient(v, 1.0, 1.0, 2.0)))  # noqa: E731
    boneset = ct > 200
    edge = ndimage.binary_dilation(ndimage.binary_dilation(boneset) & ~ndimage.binary_erosion(boneset, border_value=1))
    edge &= ndimage.binary_erosion(np.ones(ct.shape, bool), iterations=2, border_value=1)
    blurred = ndimage.gaussian_filter(ct, 1.0)
    assert bone[1] == pytest.approx(g(blurred)[edge].mean() / g(ct)[edge].mean(), rel=1e-12)


def test_sharpness_without_bone_is_nan():
    ct = _noise_volume(10.0, shape=(16, 16, 8))
    assert math.isnan(sharpness(ct, ct, None, (1, 1, 1))["sharpness_bone"])


def test_hu_wasserstein_matches_scipy_inside_the_mask():
    rng = np.random.default_rng(5)
    pred, target = rng.normal(0, 100, (20, 20, 5)), rng.normal(30, 300, (20, 20, 5))
    mask = rng.random((20, 20, 5)) > 0.4
    assert hu_wasserstein(pred, target, mask) == pytest.approx(wasserstein_distance(pred[mask], target[mask]), rel=1e-9)
    assert hu_wasserstein(target, target, mask) == 0.0
    assert hu_wasserstein(target + 12.5, target) == pytest.approx(12.5)  # a shift moves the distribution by itself


def test_realism_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="differs"):
        realism(np.zeros((4, 4, 4)), np.zeros((4, 4, 5)), None, (1, 1, 1))
