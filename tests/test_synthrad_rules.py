"""Scoring rules: SynthRAD2025's figures (MAE, PSNR, masked MS-SSIM) against an independent writing of the published
formulas, SynthRAD2023's unchanged, the summaries over subjects, MR targets in the normalised space, and the CLI."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import replace

import numpy as np
import pytest
from scipy.ndimage import uniform_filter
from scipy.signal import fftconvolve
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.util import crop
from typer.testing import CliRunner

from conftest import tiny_config
from helpers import assert_one_clear_line, write_nifti
from pix2gan.config import DataConfig, IntensityKind
from pix2gan.data.intensity import IntensityMap
from pix2gan.evaluation import EvalOptions, EvalReport, evaluate_folders
from pix2gan.evaluation.metrics import NORMALISED, RULES, check_rules, evaluate, ms_ssim, psnr, ssim
from pix2gan.evaluation.scoring import normalised_pair
from pix2gan_cli.app import app

W25 = (-1024.0, 3071.0)
W23 = (-1024.0, 3000.0)


# --- an independent writing of SynthRAD2025's image metrics (github.com/SynthRAD2025/evaluation, image_metrics.py) ---
def _ssim_terms(x, y, data_range, lum_w, con_w, str_w):
    """SSIM map of one scale: 7-voxel box statistics (sample covariance), l^a · c^b · s^b, each term clipped at 0."""
    mean = lambda a: uniform_filter(a, size=7)  # noqa: E731
    n = 7**x.ndim
    ux, uy = mean(x), mean(y)
    vx = (mean(x * x) - ux**2) * n / (n - 1)
    vy = (mean(y * y) - uy**2) * n / (n - 1)
    vxy = (mean(x * y) - ux * uy) * n / (n - 1)
    sx, sy = np.sqrt(np.clip(vx, 0, None)), np.sqrt(np.clip(vy, 0, None))
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    c3 = c2 / 2
    lum = np.clip((2 * ux * uy + c1) / (ux**2 + uy**2 + c1), 0, None)
    con = np.clip((2 * sx * sy + c2) / (vx + vy + c2), 0, None)
    stru = np.clip((vxy + c3) / (sx * sy + c3), 0, None)
    return lum**lum_w * con**con_w * stru**str_w


def reference_ms_ssim(gt, pred, mask, window):
    lo, hi = window
    m = (mask > 0).astype(np.float64)
    gt = np.where(m == 0, lo, np.clip(gt, lo, hi)) - lo
    pred = np.where(m == 0, lo, np.clip(pred, lo, hi)) - lo
    pads = [(max(0, (97 - n) // 2), max(0, 97 - n - (97 - n) // 2)) for n in gt.shape]
    gt, pred, m = (np.pad(a, pads, mode="edge") for a in (gt, pred, m))
    weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
    luminance = [0, 0, 0, 0, 0, 0.1333]  # as published: only the first five are ever read
    box = np.ones((2,) * gt.ndim) / 2**gt.ndim
    values = []
    for level in range(5):
        smap = _ssim_terms(gt, pred, hi - lo, luminance[level], weights[level], weights[level])
        values.append(crop(smap, 3)[crop(m, 3).astype(bool)].mean())
        every_other = (slice(None, None, 2),) * gt.ndim
        gt, pred = (fftconvolve(a, box, mode="same")[every_other] for a in (gt, pred))
        m = m[every_other]
    return float(np.prod(np.clip(values, 0, 1)))


def reference_2025(gt, pred, mask):
    lo, hi = W25
    m = mask > 0
    g, p = np.clip(gt, lo, hi), np.clip(pred, lo, hi)
    return {
        "mae": np.abs(gt - pred)[m].mean(),  # ImageMetrics.mae: the voxels as they are, not clipped
        "psnr": peak_signal_noise_ratio(g[m], p[m], data_range=hi - lo),
        "ssim": reference_ms_ssim(gt, pred, mask, W25),
    }


@pytest.fixture
def ct_pair():
    rng = np.random.default_rng(3)
    gt = rng.normal(40, 400, (22, 19, 11))
    gt[4:9, 4:9, 2:6] = 3400  # above both windows: clipped
    gt[:2] = -1300
    pred = gt + rng.normal(0, 80, gt.shape)
    pred[10:12, 5:8, 3:5] = 3050  # between the 2023 and 2025 tops
    mask = np.zeros(gt.shape, dtype=np.uint8)
    mask[2:20, 2:17, 1:10] = 1
    return gt, pred, mask


def test_2025_equals_the_published_formulas(ct_pair):
    gt, pred, mask = ct_pair
    ours = evaluate(pred, gt, mask, rules="synthrad2025")
    assert list(ours) == ["mae", "mae_air", "mae_soft", "mae_bone", "psnr", "ssim"]
    ref = reference_2025(gt, pred, mask)
    for k in ("mae", "psnr", "ssim"):
        assert ours[k] == pytest.approx(ref[k], rel=1e-9, abs=1e-12), k
    assert 0.2 < ours["ssim"] < 1


def test_ms_ssim_long_axis_and_2d():
    rng = np.random.default_rng(4)
    gt = rng.uniform(-1024, 2000, (100, 14, 6))  # the long axis is not padded
    pred = gt + rng.normal(0, 150, gt.shape)
    mask = np.ones(gt.shape, dtype=bool)
    mask[:5] = False
    assert ms_ssim(pred, gt, mask, W25) == pytest.approx(reference_ms_ssim(gt, pred, mask, W25), rel=1e-9)
    img = rng.uniform(0, 1000, (30, 20))
    assert ms_ssim(img, img, None, W25) == pytest.approx(1.0)
    assert 0 < ms_ssim(img + rng.normal(0, 100, img.shape), img, None, W25) < 1


def test_2025_known_values():
    rng = np.random.default_rng(5)
    gt = rng.uniform(-900, 2500, (12, 12, 8))
    mask = np.zeros(gt.shape, dtype=bool)
    mask[2:10, 2:10, 1:7] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # PSNR of a perfect prediction divides by zero
        perfect = evaluate(gt, gt, mask, rules="synthrad2025")
    assert perfect["mae"] == 0.0 and math.isinf(perfect["psnr"]) and perfect["ssim"] == pytest.approx(1.0, abs=1e-12)
    offset = evaluate(gt + 40.95, gt, mask, rules="synthrad2025", metrics=("mae", "psnr"))
    assert offset["mae"] == pytest.approx(40.95) and offset["psnr"] == pytest.approx(40.0)  # 20 log10(4095 / 40.95)
    top = np.full((4, 4, 4), 3071.0)  # the 2025 window keeps 3071, the 2023 one clips it to 3000
    assert evaluate(top, top - 71, rules="synthrad2025", metrics=("mae",))["mae"] == pytest.approx(71.0)
    assert evaluate(top, top - 71, rules="synthrad2023", metrics=("mae",))["mae"] == pytest.approx(0.0)
    above = top + 400  # 3471 HU, above both windows: SynthRAD2025's MAE does not clip, SynthRAD2023's does
    assert evaluate(above, top, rules="synthrad2025", metrics=("mae",))["mae"] == pytest.approx(400.0)
    assert evaluate(above, top, rules="synthrad2023", metrics=("mae",))["mae"] == pytest.approx(0.0)


def test_2023_figures_unchanged(ct_pair):
    gt, pred, mask = ct_pair
    lo, hi = W23
    g, p, m = np.clip(gt, lo, hi), np.clip(pred, lo, hi), mask > 0
    _, smap = structural_similarity(np.where(m, g, lo) - lo, np.where(m, p, lo) - lo, data_range=hi - lo, full=True)
    ref = {"mae": np.abs(g - p)[m].mean(), "psnr": peak_signal_noise_ratio(g[m], p[m], data_range=hi - lo),
           "ssim": crop(smap, 3)[crop(m, 3)].mean()}  # fmt: skip
    default = evaluate(pred, gt, mask)
    assert default == evaluate(pred, gt, mask, rules="synthrad2023") == evaluate(pred, gt, mask, window=W23)
    for k, v in ref.items():
        assert default[k] == pytest.approx(v, rel=1e-12), k


def test_rules_table_and_unknown_name():
    assert RULES["synthrad2023"].data_range == 4024 and RULES["synthrad2025"].data_range == 4095
    assert RULES["synthrad2025"].structural is ms_ssim and RULES["synthrad2025"].structural_name == "MS-SSIM"
    assert check_rules(" SynthRAD2025 ") is RULES["synthrad2025"]
    with pytest.raises(ValueError, match="--rules must be synthrad2023 or synthrad2025, got 'x'"):
        check_rules("x")
    with pytest.raises(ValueError, match="--rules"):
        EvalOptions(rules="synthrad2024")
    assert EvalOptions(rules="SYNTHRAD2025").rules == "synthrad2025"


def test_json_holds_median_quartiles_and_rules():
    rng = np.random.default_rng(6)
    rows = {f"s{i}": {"mae": float(rng.uniform(40, 90)), "mae_bone": float(rng.uniform(100, 300))} for i in range(7)}
    rows["s3"]["mae_bone"] = math.nan  # a subject without bone is skipped
    report = EvalReport(["mae"], rows, "HU", baseline_per_subject=rows, rules="synthrad2025",
                        space="HU clipped to [-1024, 3071]", data_range=4095.0)  # fmt: skip
    d = json.loads(json.dumps(report.to_dict()))
    assert d["rules"] == {"name": "synthrad2025", "space": "HU clipped to [-1024, 3071]", "data_range": 4095.0,
                          "ssim": "masked MS-SSIM", "source": RULES["synthrad2025"].source}  # fmt: skip
    for key in ("mae", "mae_bone"):
        v = np.array([r[key] for r in rows.values()])
        v = v[~np.isnan(v)]
        expected = {"mean": v.mean(), "std": v.std(), "median": np.median(v), "q1": np.percentile(v, 25),
                    "q3": np.percentile(v, 75)}  # fmt: skip
        for stat, value in expected.items():
            assert d[stat][key] == pytest.approx(value, rel=1e-12), (stat, key)
            assert d["baseline"][stat][key] == pytest.approx(value, rel=1e-12), (stat, key)


def test_constant_target_without_a_window_is_refused():
    """Without a window the data range is the target's max - min: a constant target has none (it was taken as 1)."""
    flat = np.full((9, 9, 5), 40.0)
    pred = flat + np.random.default_rng(10).normal(0, 5, flat.shape)
    for metric in (psnr, ssim, ms_ssim):
        with pytest.raises(ValueError, match=r"the target is constant \(40 everywhere\).* give a window"):
            metric(pred, flat, None, None)
    with pytest.raises(ValueError, match="the target is constant"):
        evaluate(pred, flat, window=None)
    assert evaluate(pred, flat, metrics=("mae",), window=None) == {"mae": pytest.approx(np.abs(pred - flat).mean())}
    scored = evaluate(pred, flat, window=W23)  # with a window, its width is the data range
    assert scored["psnr"] == pytest.approx(peak_signal_noise_ratio(flat, pred, data_range=4024.0))


# --- MR targets: the normalised space ---------------------------------------------------------------------------
def _normalised_direct(pred, target):
    lo, hi = np.percentile(target, [0.5, 99.5])
    f = lambda x: np.clip((x - lo) * 2 / (hi - lo) - 1, -1, 1)  # noqa: E731
    return f(pred), f(target)


def _mr_folders(tmp_path, n=3):
    rng = np.random.default_rng(7)
    folders = {k: tmp_path / k for k in ("pred", "target", "mask")}
    truth = {}
    for i in range(n):
        target = rng.gamma(4.0, 120.0 * (i + 1), (16, 14, 9))  # each subject in its own arbitrary MR units
        pred = target * rng.normal(1.0, 0.1, target.shape)
        mask = np.zeros(target.shape, np.uint8)
        mask[2:14, 2:12, 1:8] = 1
        for kind, data in (("pred", pred), ("target", target), ("mask", mask)):
            write_nifti(folders[kind] / f"sub-{i}.nii.gz", data.astype(np.uint8 if kind == "mask" else np.float32))
        as_written = lambda a: a.astype(np.float32).astype(np.float64)  # noqa: E731
        truth[f"sub-{i}"] = (as_written(pred), as_written(target), mask > 0)
    return folders, truth


@pytest.mark.parametrize("rules", ["synthrad2023", "synthrad2025"])
def test_mr_folders_scored_in_normalised_space(tmp_path, rules):
    folders, truth = _mr_folders(tmp_path)
    report = evaluate_folders(folders["pred"], folders["target"], folders["mask"], modality="t2", rules=rules,
                              out_dir=tmp_path / "panels")  # fmt: skip
    assert report.unit == "" and report.data_range == 2.0 and report.space.startswith("normalised [-1, 1]")
    for sid, (pred, target, m) in truth.items():
        p, t = _normalised_direct(pred, target)
        row = report.per_subject[sid]
        assert list(row) == ["mae", "psnr", "ssim"]  # no tissue classes for MR
        assert row["mae"] == pytest.approx(np.abs(p - t)[m].mean(), rel=1e-5)
        assert row["psnr"] == pytest.approx(peak_signal_noise_ratio(t[m], p[m], data_range=2.0), rel=1e-5)
        if rules == "synthrad2025":
            expected = reference_ms_ssim(t, p, m, NORMALISED)
        else:
            _, smap = structural_similarity(np.where(m, t, -1) + 1, np.where(m, p, -1) + 1, data_range=2.0, full=True)
            expected = crop(smap, 3)[crop(m, 3)].mean()
        assert row["ssim"] == pytest.approx(expected, rel=1e-4)


def test_model_predictions_are_normalised_by_the_reference_scale():
    """A model's MR output was mapped back with its reference scale: mapping it forward again recovers what the
    generator produced, which is scored against the target normalised by its own percentiles."""
    rng = np.random.default_rng(8)
    dst_map = IntensityMap(IntensityKind.PERCENTILE, reference=(300.0, 1900.0))
    generated = rng.uniform(-1, 1, (10, 10, 6)).astype(np.float32)
    target = rng.gamma(3.0, 400.0, generated.shape)
    p, t = normalised_pair(dst_map, dst_map.inverse(generated, dst_map.reference), target, dst_map.reference)
    assert np.allclose(p, generated, atol=1e-6)
    assert np.allclose(t, _normalised_direct(target, target)[1], atol=1e-6)


# --- the command line --------------------------------------------------------------------------------------------
def _ct_folders(tmp_path):
    rng = np.random.default_rng(9)
    for i in range(3):
        target = rng.normal(0, 500, (12, 12, 7))
        mask = np.zeros(target.shape, np.uint8)
        mask[1:11, 1:11, 1:6] = 1
        write_nifti(tmp_path / "T" / f"s{i}.nii.gz", target.astype(np.float32))
        write_nifti(tmp_path / "P" / f"s{i}.nii.gz", (target + rng.normal(0, 60, target.shape)).astype(np.float32))
        write_nifti(tmp_path / "M" / f"s{i}.nii.gz", mask)
    return tmp_path / "P", tmp_path / "T", tmp_path / "M"


def _eval(*args):
    return CliRunner().invoke(app, ["eval", *map(str, args)], catch_exceptions=False, env={"COLUMNS": "200"})


def test_cli_rules_2025_writes_quartiles(tmp_path):
    pred, target, mask = _ct_folders(tmp_path)
    result = _eval("--rules", "synthrad2025", "--pred", pred, "--target", target, "--mask", mask,
                   "--json", tmp_path / "e.json", "--out", tmp_path / "panels")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "MS-SSIM" in result.output and "rules synthrad2025, data range 4095" in result.output
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["rules"]["name"] == "synthrad2025" and report["rules"]["data_range"] == 4095.0
    for stat in ("mean", "std", "median", "q1", "q3"):
        assert set(report[stat]) == {"mae", "mae_air", "mae_soft", "mae_bone", "psnr", "ssim", "nps_ratio", "nps_lsd",
                                     "sharpness", "sharpness_bone", "hu_w1"}, stat  # fmt: skip
    ssims = [row["ssim"] for row in report["per_subject"].values()]
    assert report["median"]["ssim"] == pytest.approx(np.median(ssims))
    assert report["q1"]["ssim"] == pytest.approx(np.percentile(ssims, 25))


def test_cli_mr_targets_say_normalised(tmp_path):
    folders, _ = _mr_folders(tmp_path, n=2)
    result = _eval("--pred", folders["pred"], "--target", folders["target"], "--mask", folders["mask"],
                   "--no-ct-window", "--out", tmp_path / "panels")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "normalised [-1, 1]" in result.output and "data range 2" in result.output and "HU" not in result.output


def test_cli_unknown_rules_is_one_line(tmp_path):
    result = _eval("--rules", "synthrad2024", "--pred", tmp_path, "--target", tmp_path)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--rules must be synthrad2023 or synthrad2025, got 'synthrad2024'" in lines[0]


def _copy_with(tiny_data, tmp_path, subject: str, modality: str, value: float):
    """A copy of the tiny data set whose ``subject`` has ``modality`` set to ``value`` everywhere."""
    import shutil

    import nibabel as nib

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    path = data / subject / f"{modality}.nii.gz"
    image = nib.load(path)
    nib.save(nib.Nifti1Image(np.full(image.shape, value, dtype=np.float32), image.affine, image.header), path)
    return data, path


def test_run_with_a_constant_mr_target_is_one_line(tiny_data, tmp_path):
    from pix2gan.train import fit

    run = tmp_path / "run"
    fit(replace(tiny_config(tiny_data, epochs=1), data=DataConfig(root=str(tiny_data), src="ct", dst="t1")), run,
        progress=False)  # fmt: skip
    test_subject = json.loads((run / "split.json").read_text())["test"][0]
    data, path = _copy_with(tiny_data, tmp_path, test_subject, "t1", 300.0)
    result = CliRunner().invoke(app, ["eval", "--run", str(run), "--data", str(data), "--out", str(tmp_path / "out"),
                                      "--device", "cpu"])  # fmt: skip
    assert_one_clear_line(result, f"{path}: percentiles (0.5, 99.5) of the volume are both 300")
    assert "an MR target needs contrast to be scored" in result.output


def test_run_with_an_empty_mask_is_one_line(tiny_data, tiny_run, tmp_path):
    test_subject = json.loads((tiny_run / "split.json").read_text())["test"][0]
    data, path = _copy_with(tiny_data, tmp_path, test_subject, "mask", 0.0)
    result = CliRunner().invoke(app, ["eval", "--run", str(tiny_run), "--data", str(data), "--out",
                                      str(tmp_path / "out"), "--device", "cpu", "--no-baseline"])  # fmt: skip
    assert_one_clear_line(result, f"{path}: mask is empty")
