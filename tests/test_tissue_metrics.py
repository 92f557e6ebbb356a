"""Per-tissue MAE, the uncertainty/error rank correlation, nan-aware summaries and JSON, and the eval table."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import spearmanr
from typer.testing import CliRunner

from pix2gan.evaluation.metrics import TISSUES, error_spearman, evaluate, mae, psnr, ssim, tissue_mae
from pix2gan.evaluation.paired import EvalReport, summarise
from pix2gan.evaluation.realism import REALISM
from pix2gan_cli.app import app

WINDOW = (-1024.0, 3000.0)
TISSUE_KEYS = ["mae_air", "mae_soft", "mae_bone"]


def direct_tissue_mae(pred, target, mask, window=WINDOW):
    """The definition written out: clip both, split on the target's HU, average |error| per class inside the mask."""
    p, t = np.clip(pred, *window), np.clip(target, *window)
    err, m = np.abs(p - t), mask > 0
    classes = {"air": target < -200, "soft": (target >= -200) & (target <= 200), "bone": target > 200}
    return {f"mae_{k}": float(err[c & m].mean()) if (c & m).any() else math.nan for k, c in classes.items()}


@pytest.fixture
def ct_pair():
    """8x8x8 target: one third air, soft tissue, bone (with the class boundaries -200 and 200 present)."""
    rng = np.random.default_rng(0)
    target = np.empty((8, 8, 8))
    target[:3] = rng.uniform(-1100, -201, (3, 8, 8))  # some below the window
    target[3:5] = rng.uniform(-200, 200, (2, 8, 8))
    target[3, 0, 0], target[3, 0, 1] = -200.0, 200.0  # both bounds are soft tissue
    target[5:] = rng.uniform(201, 3400, (3, 8, 8))  # some above the window
    pred = target + rng.normal(0, 80, target.shape)
    mask = np.zeros(target.shape, dtype=np.uint8)
    mask[:, 1:7, 1:7] = 1
    mask[3, 0, :2] = 1
    return pred, target, mask


def test_tissues_constant():
    assert list(TISSUES) == ["air", "soft", "bone"]
    assert TISSUES["air"][1] == TISSUES["soft"][0] == -200.0 and TISSUES["soft"][1] == TISSUES["bone"][0] == 200.0


def test_tissue_mae_known_values():
    target = np.array([-1000.0, -500.0, -200.0, 0.0, 200.0, 201.0, 1000.0])
    pred = np.array([-960.0, -530.0, -210.0, 20.0, 230.0, 211.0, 1090.0])
    # air: 40, 30 -> 35; soft (-200, 0 and 200): 10, 20, 30 -> 20; bone (201, 1000): 10, 90 -> 50
    assert tissue_mae(pred, target) == {"mae_air": 35.0, "mae_soft": 20.0, "mae_bone": 50.0}


def test_tissue_mae_clips_to_the_window():
    target = np.array([-1500.0, 0.0, 2500.0, 4000.0])  # -1500 -> -1024, 4000 -> 3000
    pred = np.array([-1000.0, 10.0, 5000.0, 2900.0])  # 5000 -> 3000
    assert tissue_mae(pred, target) == {"mae_air": 24.0, "mae_soft": 10.0, "mae_bone": (500.0 + 100.0) / 2}
    # classes come from the target's value, not from the clipped one: a narrow window still sees air and bone
    narrow = tissue_mae(pred, target, window=(-100.0, 100.0))
    assert narrow == {"mae_air": 0.0, "mae_soft": 10.0, "mae_bone": 0.0}


def test_tissue_mae_respects_the_mask_and_matches_numpy(ct_pair):
    pred, target, mask = ct_pair
    ours = tissue_mae(pred, target, mask)
    assert list(ours) == TISSUE_KEYS
    ref = direct_tissue_mae(pred, target, mask)
    for key in TISSUE_KEYS:
        assert ours[key] == pytest.approx(ref[key], rel=1e-12), key
    # the masked value is not the unmasked one (voxels outside the mask carry a large error)
    bad = pred.copy()
    bad[mask == 0] += 1000
    assert tissue_mae(bad, target, mask) == ours
    assert tissue_mae(bad, target)["mae_soft"] > ours["mae_soft"] + 100
    # MAE is the voxel-weighted mean of the three
    m = mask > 0
    counts = [(target[m] < -200).sum(), ((target[m] >= -200) & (target[m] <= 200)).sum(), (target[m] > 200).sum()]
    weighted = sum(c * ours[k] for c, k in zip(counts, TISSUE_KEYS)) / sum(counts)
    assert weighted == pytest.approx(mae(pred, target, mask, WINDOW), rel=1e-12)


def test_empty_class_is_nan():
    target = np.array([-1000.0, 0.0, 50.0])
    out = tissue_mae(target + 5, target)
    assert out["mae_air"] == 5.0 and out["mae_soft"] == 5.0 and math.isnan(out["mae_bone"])
    masked = tissue_mae(target + 5, target, mask=np.array([0, 1, 1]))
    assert math.isnan(masked["mae_air"]) and math.isnan(masked["mae_bone"])


def test_evaluate_adds_tissue_keys_for_ct_only(ct_pair):
    pred, target, mask = ct_pair
    ct = evaluate(pred, target, mask, window=WINDOW)
    assert list(ct) == ["mae", *TISSUE_KEYS, "psnr", "ssim"]
    assert ct["mae"] == mae(pred, target, mask, WINDOW) and ct["psnr"] == psnr(pred, target, mask, WINDOW)
    assert ct["ssim"] == ssim(pred, target, mask, WINDOW)
    for key, value in tissue_mae(pred, target, mask, WINDOW).items():
        assert ct[key] == value
    assert list(evaluate(pred, target, mask, metrics=("psnr", "mae"), window=WINDOW)) == ["psnr", "mae", *TISSUE_KEYS]
    assert list(evaluate(pred, target, mask, metrics=("psnr", "ssim"), window=WINDOW)) == ["psnr", "ssim"]
    assert list(evaluate(pred, target, mask, window=None)) == ["mae", "psnr", "ssim"]  # MR targets


def test_evaluate_with_uncertainty(ct_pair):
    pred, target, mask = ct_pair
    std = np.abs(pred - target) + 1.0
    out = evaluate(pred, target, mask, window=WINDOW, std=std)
    assert list(out) == ["mae", *TISSUE_KEYS, "psnr", "ssim", "std_error_spearman", "std_mean"]
    assert out["std_error_spearman"] == error_spearman(std, pred, target, mask, WINDOW)
    assert out["std_mean"] == pytest.approx(std[mask > 0].mean())
    mr = evaluate(pred, target, mask, metrics=("mae",), window=None, std=std)
    assert list(mr) == ["mae", "std_error_spearman", "std_mean"]
    assert mr["std_error_spearman"] == pytest.approx(1.0)  # no clipping: std ranks the error exactly


def test_error_spearman():
    rng = np.random.default_rng(1)
    target = rng.normal(0, 100, (6, 7, 8))
    pred = target + rng.normal(0, 30, target.shape)
    err = np.abs(pred - target)
    assert error_spearman(np.log1p(err) * 3 + 2, pred, target) == pytest.approx(1.0)
    assert error_spearman(-err, pred, target) == pytest.approx(-1.0)
    noise = rng.random(target.shape)
    rho = error_spearman(noise, pred, target)
    assert abs(rho) < 0.15
    assert rho == pytest.approx(spearmanr(noise.ravel(), err.ravel()).statistic, rel=1e-12)
    mask = rng.random(target.shape) > 0.5
    assert error_spearman(noise, pred, target, mask) == pytest.approx(
        spearmanr(noise[mask], err[mask]).statistic, rel=1e-12
    )
    assert math.isnan(error_spearman(np.full(target.shape, 2.0), pred, target))  # constant uncertainty
    assert math.isnan(error_spearman(noise, np.round(target) + 5, np.round(target)))  # constant error
    with pytest.raises(ValueError, match="uncertainty shape"):
        error_spearman(noise[:3], pred, target)


def test_error_spearman_clips_to_the_window():
    target = np.array([0.0, 0.0, 0.0, 0.0])
    pred = np.array([3100.0, 3200.0, 3300.0, 100.0])  # clipped: errors 3000, 3000, 3000, 100
    std = np.array([1.0, 2.0, 3.0, 0.0])
    assert error_spearman(std, pred, target) == pytest.approx(1.0)
    clipped = error_spearman(std, pred, target, window=WINDOW)
    assert clipped == pytest.approx(spearmanr(std, [3000, 3000, 3000, 100]).statistic) and clipped < 1.0


def test_summarise_skips_nan():
    nan = math.nan
    mean, std = summarise({"a": {"mae": 10.0, "mae_bone": nan, "x": nan},
                           "b": {"mae": 20.0, "mae_bone": 50.0, "x": nan},
                           "c": {"mae": 30.0, "mae_bone": 70.0, "x": nan}})  # fmt: skip
    assert list(mean) == ["mae", "mae_bone", "x"]
    assert mean["mae"] == 20.0 and std["mae"] == pytest.approx(np.std([10, 20, 30]))
    assert mean["mae_bone"] == 60.0 and std["mae_bone"] == 10.0
    assert math.isnan(mean["x"]) and math.isnan(std["x"])
    assert summarise({}) == ({}, {})


def test_report_json_writes_null_for_nan(tmp_path):
    nan = math.nan
    report = EvalReport(
        metrics=["mae"],
        per_subject={"a": {"mae": 10.0, "mae_bone": nan}, "b": {"mae": 20.0, "mae_bone": nan}},
        unit="HU",
        baseline_per_subject={"a": {"mae": 30.0, "mae_bone": nan}, "b": {"mae": 40.0, "mae_bone": 5.0}},
    )
    d = report.to_dict()
    assert d["per_subject"]["a"]["mae_bone"] is None and d["mean"]["mae_bone"] is None and d["std"]["mae_bone"] is None
    assert d["mean"]["mae"] == 15.0 and d["baseline"]["mean"]["mae_bone"] == 5.0
    assert d["baseline"]["per_subject"]["a"]["mae_bone"] is None
    assert math.isnan(report.per_subject["a"]["mae_bone"])  # the report itself keeps its nan
    report.write_json(tmp_path / "r.json")
    text = (tmp_path / "r.json").read_text()
    assert "NaN" not in text
    loaded = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert loaded == d


def test_eval_prints_tissue_columns(tiny_run, tmp_path):
    result = CliRunner().invoke(
        app,
        ["eval", "--run", str(tiny_run), "--out", str(tmp_path / "eval"), "--json", str(tmp_path / "e.json"),
         "--device", "cpu"],
        catch_exceptions=False,
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if "┃ subject" in line)
    for name in ("MAE (HU)", "MAE air (HU)", "MAE soft (HU)", "MAE bone (HU)", "PSNR (dB)", "SSIM"):
        assert name in header, name
    assert header.index("MAE (HU)") < header.index("MAE air") < header.index("MAE bone") < header.index("PSNR")
    assert "std~|err| ρ" not in result.output  # no uncertainty map in a plain evaluation
    report = json.loads((tmp_path / "e.json").read_text())
    (row,) = report["per_subject"].values()
    assert list(row) == ["mae", *TISSUE_KEYS, "psnr", "ssim", *REALISM]  # realism: tests/test_eval_realism.py
    assert set(report["mean"]) == set(row) and set(report["baseline"]["mean"]) == set(row)


def test_table_shows_dash_for_nan_and_the_rank_column():
    from rich.console import Console

    from pix2gan_cli.show import print_paired_report

    nan = math.nan
    report = EvalReport(
        metrics=["mae", "ssim"],
        per_subject={"s1": {"mae": 80.0, "mae_air": nan, "mae_soft": 40.0, "mae_bone": 300.0, "ssim": 0.9,
                            "std_error_spearman": 0.5, "std_mean": 20.0}},
        unit="HU",
    )  # fmt: skip
    console = Console(width=200, record=True)
    print_paired_report(console, report, "t")
    text = console.export_text()
    header = next(line for line in text.splitlines() if "┃ subject" in line)
    assert header.index("MAE (HU)") < header.index("MAE air (HU)") < header.index("SSIM") < header.index("std~|err| ρ")
    row = next(line for line in text.splitlines() if "s1" in line)
    cells = [c.strip() for c in row.split("│")[1:-1]]
    assert cells == ["s1", "80.00", "–", "40.00", "300.00", "0.9000", "0.500"]
    mean_row = next(line for line in text.splitlines() if "mean ± std" in line)
    assert [c.strip() for c in mean_row.split("│")[1:-1]][2] == "–"


def test_narrow_terminal_keeps_the_usual_table_and_adds_a_second():
    from rich.console import Console

    from pix2gan_cli.show import print_paired_report

    nan = math.nan
    row = {"mae": 80.0, "mae_air": 1295.38, "mae_soft": 40.0, "mae_bone": nan, "psnr": 27.1, "ssim": 0.9,
           "std_error_spearman": 0.5, "std_mean": 20.0}  # fmt: skip
    report = EvalReport(metrics=["mae", "psnr", "ssim"], per_subject={"s1": row, "s2": dict(row, mae=90.0)}, unit="HU",
                        baseline_per_subject={"s1": dict(row), "s2": dict(row)})  # fmt: skip
    console = Console(width=80, record=True)
    print_paired_report(console, report, "t")
    text = console.export_text()
    headers = [line for line in text.splitlines() if "┃ subject" in line]
    assert len(headers) == 2 and all(len(line) <= 80 for line in text.splitlines())
    assert "MAE (HU)" in headers[0] and "SSIM" in headers[0] and "air" not in headers[0]
    assert "MAE air (HU)" in headers[1] and "std~|err| ρ" in headers[1] and "PSNR" not in headers[1]
    assert "t (continued)" in text and "1295.38" in text and "…" not in text  # no figure cut short
    assert "mean ± std" in text and "lookup-table baseline" in text
