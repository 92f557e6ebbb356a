"""Metrics equal scikit-image's and SynthRAD2023's published recipe on the same arrays."""

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.util import crop

from pix2gan.evaluation.metrics import evaluate, mae, psnr, ssim

WINDOW = (-1024.0, 3000.0)


def synthrad_reference(gt, pred, mask):
    """SynthRAD2023 image_metrics.py, written out independently: clip, mask, shift, 3-D SSIM, masked mean."""
    lo, hi = WINDOW
    gt, pred = np.clip(gt, lo, hi).astype(np.float64), np.clip(pred, lo, hi).astype(np.float64)
    m = mask > 0
    mae_v = np.sum(np.abs(gt * m - pred * m)) / m.sum()
    psnr_v = peak_signal_noise_ratio(gt[m], pred[m], data_range=hi - lo)
    g2, p2 = np.where(m, gt, lo) - lo, np.where(m, pred, lo) - lo
    _, smap = structural_similarity(g2, p2, data_range=hi - lo, full=True)
    ssim_v = crop(smap, 3)[crop(m, 3)].mean(dtype=np.float64)
    return {"mae": mae_v, "psnr": psnr_v, "ssim": ssim_v}


@pytest.fixture
def ct_pair():
    rng = np.random.default_rng(0)
    gt = rng.normal(40, 300, (24, 20, 12))
    gt[3:8, 3:8, 2:6] = 3500  # above the window: must be clipped
    gt[:2] = -1200
    pred = gt + rng.normal(0, 60, gt.shape)
    mask = np.zeros(gt.shape, dtype=np.uint8)
    mask[2:22, 2:18, 1:11] = 1
    return gt, pred, mask


def test_equal_to_synthrad_recipe(ct_pair):
    gt, pred, mask = ct_pair
    ours = evaluate(pred, gt, mask, window=WINDOW)
    ref = synthrad_reference(gt, pred, mask)
    for k in ("mae", "psnr", "ssim"):
        assert ours[k] == pytest.approx(ref[k], rel=1e-12, abs=1e-12), k


def test_without_mask_equals_skimage_on_clipped_volumes(ct_pair):
    gt, pred, _ = ct_pair
    g, p = np.clip(gt, *WINDOW), np.clip(pred, *WINDOW)
    assert mae(pred, gt, window=WINDOW) == pytest.approx(np.abs(g - p).mean())
    assert psnr(pred, gt, window=WINDOW) == pytest.approx(peak_signal_noise_ratio(g, p, data_range=4024))
    assert ssim(pred, gt, window=WINDOW) == pytest.approx(
        structural_similarity(g + 1024, p + 1024, data_range=4024), rel=1e-12
    )


def test_known_values():
    gt = np.zeros((8, 8, 8))
    pred = np.full_like(gt, 40.24)  # MSE = 40.24^2 -> PSNR = 20 log10(4024 / 40.24) = 40 dB
    assert psnr(pred, gt, window=WINDOW) == pytest.approx(40.0)
    assert mae(pred, gt, window=WINDOW) == pytest.approx(40.24)
    assert ssim(gt, gt, window=WINDOW) == pytest.approx(1.0)


def test_mae_only_counts_mask_voxels():
    gt = np.zeros((4, 4, 4))
    pred = np.zeros_like(gt)
    pred[0] = 1000.0
    mask = np.zeros_like(gt, dtype=bool)
    mask[1:] = True
    assert mae(pred, gt, mask, window=WINDOW) == 0.0
    assert mae(pred, gt, None, window=WINDOW) == pytest.approx(250.0)


def test_without_window_uses_target_range_and_no_clipping():
    rng = np.random.default_rng(1)
    gt = rng.uniform(0, 900, (16, 16, 9))
    pred = gt + rng.normal(0, 30, gt.shape)
    assert psnr(pred, gt, window=None) == pytest.approx(peak_signal_noise_ratio(gt, pred, data_range=gt.max() - gt.min()))
    assert mae(pred * 10, gt, window=None) == pytest.approx(np.abs(pred * 10 - gt).mean())


def test_better_prediction_scores_better(ct_pair):
    gt, pred, mask = ct_pair
    good = evaluate(gt + (pred - gt) * 0.2, gt, mask)
    bad = evaluate(pred, gt, mask)
    assert good["mae"] < bad["mae"] and good["psnr"] > bad["psnr"] and good["ssim"] > bad["ssim"]


def test_2d_and_thin_volumes():
    rng = np.random.default_rng(2)
    img = rng.normal(0, 100, (32, 32))
    assert ssim(img, img, window=WINDOW) == pytest.approx(1.0)
    thin = rng.normal(0, 100, (16, 16, 5))  # window shrinks to 5 along the thin axis
    assert 0 < ssim(thin + 10, thin, window=WINDOW) <= 1


def test_errors():
    with pytest.raises(ValueError, match="shape"):
        mae(np.zeros((2, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="empty"):
        mae(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate(np.zeros((8, 8)), np.zeros((8, 8)), metrics=["fid"])
