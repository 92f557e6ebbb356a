"""Realism figures in ``pix2gan eval``: paired runs and --pred/--target folders score them as a direct call of
:func:`pix2gan.evaluation.realism.realism` on the written volumes does (clipped to the rules' window, spacing and axial
axis from the affine); MR targets get none; the table, the JSON summaries and the lookup-table baseline carry them."""

from __future__ import annotations

import inspect
import json
import math

import nibabel as nib
import numpy as np
import pytest
from rich.console import Console
from scipy import ndimage
from typer.testing import CliRunner

from helpers import write_nifti
from pix2gan.config import IntensityKind
from pix2gan.data.intensity import IntensityMap
from pix2gan.evaluation import PAIRED_METRICS, check_metrics
from pix2gan.evaluation.metrics import RULES
from pix2gan.evaluation.paired import STATISTICS, EvalReport
from pix2gan.evaluation.realism import REALISM, realism
from pix2gan.evaluation.scoring import Scoring, voxel_geometry
from pix2gan.reporting.numbers import REALISM_LABELS
from pix2gan_cli.app import app

WINDOW = (-1024.0, 3000.0)
HEADERS = ("NPS ratio", "NPS LSD (dB)", "sharp", "sharp bone", "W1 (HU)")


def _cli(*args):  # noqa: ANN002, ANN202
    return CliRunner().invoke(app, ["eval", *map(str, args)], catch_exceptions=False, env={"COLUMNS": "250"})


def _load(path) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    img = nib.load(path)
    return np.asarray(img.get_fdata(dtype=np.float64)), img.affine


def _direct(pred_path, target_path, mask_path) -> dict[str, float]:  # noqa: ANN001
    """The figures written out: the loaded volumes clipped to the window, spacing = the affine's column norms, the
    NPS across the array axis that runs along S/I (nibabel's axis codes)."""
    pred, _ = _load(pred_path)
    target, affine = _load(target_path)
    mask = _load(mask_path)[0] > 0
    spacing = tuple(float(np.linalg.norm(affine[:3, i])) for i in range(3))
    axis = [c in "SI" for c in nib.aff2axcodes(affine)].index(True)
    return realism(np.clip(pred, *WINDOW), np.clip(target, *WINDOW), mask, spacing, axis)


def _same(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for key, value in want.items():
        if math.isnan(value):
            assert got[key] is None, key  # JSON null
        else:
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key


def test_run_eval_scores_realism_as_a_direct_call_on_the_written_volumes(tiny_run, tiny_data, tmp_path):
    out, report_path = tmp_path / "eval", tmp_path / "e.json"
    result = _cli("--run", tiny_run, "--device", "cpu", "--out", out, "--json", report_path)
    assert result.exit_code == 0, result.output
    doc = json.loads(report_path.read_text())
    header = next(line for line in result.output.splitlines() if "┃ subject" in line)
    assert all(h in header for h in HEADERS) and header.index("SSIM") < header.index("NPS ratio")
    assert doc["per_subject"]
    for sid, row in doc["per_subject"].items():
        assert list(row)[-5:] == list(REALISM)  # after the distortion figures
        _same({k: row[k] for k in REALISM}, _direct(out / f"{sid}_ct.nii.gz", tiny_data / sid / "ct.nii.gz",
                                                    tiny_data / sid / "mask.nii.gz"))  # fmt: skip
        assert row["sharpness"] > 0 and row["hu_w1"] >= 0
    for stat in STATISTICS:
        assert set(REALISM) <= set(doc[stat]) and set(REALISM) <= set(doc["baseline"][stat])
    base_row = next(iter(doc["baseline"]["per_subject"].values()))
    assert list(base_row)[-5:] == list(REALISM) and base_row["hu_w1"] > 0


def _folders(tmp_path, affine: np.ndarray, n: int = 2):  # noqa: ANN001, ANN202
    """Prediction, target and mask folders of ``n`` 48 x 12 x 36 CT volumes: a noisy soft-tissue body with a bone
    rod along array axis 1; the prediction's noise is averaged over 3 voxels along axis 1 and offset, its bone flat."""
    rng = np.random.default_rng(5)
    dirs = [tmp_path / d for d in ("pred", "target", "mask")]
    for d in dirs:
        d.mkdir()
    for i in range(n):
        target = np.full((48, 12, 36), -1000.0)
        target[:44, :, :32] = rng.normal(40, 25, (44, 12, 32))  # 4 NPS squares of 16 x 16 per plane
        target[34:42, :, 22:30] = 900.0 + rng.normal(0, 60, (8, 12, 8))
        target[47, 0, 35] = -1500.0  # below the window: clipped
        pred = target.copy()
        pred[:44, :, :32] = ndimage.uniform_filter1d(target[:44, :, :32], 3, axis=1, mode="wrap") + 30.0 + 5 * i
        pred[34:42, :, 22:30] = 800.0
        pred[46, 1, 34] = 3500.0  # above the window: clipped
        mask = np.zeros(target.shape, np.uint8)
        mask[:44, :, :32] = 1
        for d, data in zip(dirs, (pred, target, mask), strict=True):
            write_nifti(d / f"s{i}.nii.gz", data.astype(np.float32), affine)
    return dirs


def test_folder_eval_takes_spacing_and_the_axial_axis_from_the_affine(tmp_path):
    # array axis 0 runs R/L (0.8 mm), axis 1 S/I (2.5 mm), axis 2 A/P (0.6 mm): the NPS is taken in the (0, 2) planes
    affine = np.array([[0.8, 0, 0, 0], [0, 0, 0.6, 0], [0, 2.5, 0, 0], [0, 0, 0, 1.0]])
    assert voxel_geometry(affine) == ((0.8, 2.5, 0.6), 1)
    pred_dir, target_dir, mask_dir = _folders(tmp_path, affine)
    report_path = tmp_path / "f.json"
    result = _cli("--pred", pred_dir, "--target", target_dir, "--mask", mask_dir, "--json", report_path)
    assert result.exit_code == 0, result.output
    doc = json.loads(report_path.read_text())
    for name, row in doc["per_subject"].items():
        want = _direct(pred_dir / f"{name}.nii.gz", target_dir / f"{name}.nii.gz", mask_dir / f"{name}.nii.gz")
        assert not any(math.isnan(v) for v in want.values())  # every figure has a value here
        _same({k: row[k] for k in REALISM}, want)
        # the noise averaged across the axial planes: a third of its power, white within them (flat -4.8 dB)
        assert row["nps_ratio"] == pytest.approx(1 / 3, rel=0.1)
        assert row["nps_lsd"] == pytest.approx(10 * math.log10(3), abs=0.5)
        assert row["sharpness"] < 1
    along_last = realism(*(np.clip(_load(d / "s0.nii.gz")[0], *WINDOW) for d in (pred_dir, target_dir)),
                         _load(mask_dir / "s0.nii.gz")[0] > 0, (0.8, 2.5, 0.6), axis=2)  # fmt: skip
    assert math.isnan(along_last["nps_ratio"])  # 12 voxels along axis 1: no 16 x 16 square in the other planes
    assert doc["median"]["hu_w1"] == pytest.approx(np.median([r["hu_w1"] for r in doc["per_subject"].values()]))
    for header in HEADERS:
        assert header in result.output


def test_metrics_select_the_realism_figures_and_mr_targets_get_none(tmp_path):
    pred_dir, target_dir, mask_dir = _folders(tmp_path, np.diag([1.0, 1.0, 2.0, 1.0]), n=1)
    report_path = tmp_path / "f.json"
    result = _cli("--pred", pred_dir, "--target", target_dir, "--mask", mask_dir, "--metrics", "mae", "nps",
                  "--json", report_path)  # fmt: skip
    assert result.exit_code == 0, result.output
    row = json.loads(report_path.read_text())["per_subject"]["s0"]
    assert list(row) == ["mae", "mae_air", "mae_soft", "mae_bone", "nps_ratio", "nps_lsd"]
    assert "NPS LSD (dB)" in result.output and "sharp" not in result.output
    result = _cli("--pred", pred_dir, "--target", target_dir, "--mask", mask_dir, "--no-ct-window", "--json", report_path)
    assert result.exit_code == 0, result.output
    row = json.loads(report_path.read_text())["per_subject"]["s0"]
    assert list(row) == ["mae", "psnr", "ssim"]  # MR targets: no HU, no realism figures
    assert "NPS" not in result.output
    result = _cli("--pred", pred_dir, "--target", target_dir, "--metrics", "texture")
    assert result.exit_code == 2 and "unknown metric 'texture'" in result.output


def test_metric_names_and_the_default():
    assert check_metrics(["realism"]) == ("nps", "sharpness", "hu_w1")
    assert PAIRED_METRICS == ("mae", "psnr", "ssim", "nps", "sharpness", "hu_w1")
    callback = next(c for c in app.registered_commands if c.name == "eval").callback
    default = inspect.signature(callback).parameters["metrics"].default
    assert tuple(default) == PAIRED_METRICS  # the CLI's literal default is the library's
    mr = Scoring.of(RULES["synthrad2023"], PAIRED_METRICS, IntensityMap(IntensityKind.PERCENTILE), "")
    ct = Scoring.of(RULES["synthrad2023"], PAIRED_METRICS, IntensityMap(IntensityKind.HU), "")
    assert mr.metrics == ("mae", "psnr", "ssim") and ct.metrics == PAIRED_METRICS


def test_narrow_terminal_puts_the_realism_figures_in_a_table_of_their_own():
    from pix2gan_cli.show import print_paired_report

    row = {"mae": 80.0, "mae_air": 95.0, "mae_soft": 40.0, "mae_bone": 300.0, "psnr": 27.1, "ssim": 0.9,
           "nps_ratio": 0.41234, "nps_lsd": 6.789, "sharpness": 0.8, "sharpness_bone": math.nan, "hu_w1": 31.416}  # fmt: skip
    report = EvalReport(metrics=list(PAIRED_METRICS), per_subject={"s1": row, "s2": dict(row)}, unit="HU")
    console = Console(width=100, record=True)
    print_paired_report(console, report, "t")
    text = console.export_text()
    headers = [line for line in text.splitlines() if "┃ subject" in line]
    assert len(headers) == 3 and all(len(line) <= 100 for line in text.splitlines())
    assert not any(h in headers[0] + headers[1] for h in ("NPS", "sharp", "W1"))  # each realism figure shown once
    assert all(h in headers[2] for h in REALISM_LABELS.values())
    assert "t (realism)" in text
    realism_rows = [line for line in text[text.index("t (realism)"):].splitlines() if "s1" in line]
    assert [c.strip() for c in realism_rows[0].split("│")[1:-1]] == ["s1", "0.412", "6.79", "0.800", "–", "31.42"]
    console = Console(width=250, record=True)
    print_paired_report(console, report, "t")
    assert len([line for line in console.export_text().splitlines() if "┃ subject" in line]) == 1
