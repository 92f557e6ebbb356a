"""The T2-weighted phantom: its contrast per tissue, and T1 -> T2 end to end through the command line."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage
from typer.testing import CliRunner

from pix2gan.config import DataConfig, IntensityKind
from pix2gan.data.phantom import Tissue, make_subject
from pix2gan_cli.app import app

# small, yet enough to learn the T2 contrast of 32 x 32 phantoms in 10 epochs (4 filters or dropout: not in 20)
TINY = ["--depth", "3", "--filters", "16", "--no-dropout", "--lr", "3e-3", "--disc-filters", "4", "--disc-layers", "2",
        "--image-size", "32", "--batch-size", "4", "--no-progress", "--device", "cpu"]  # fmt: skip


def cli(*args: str | os.PathLike):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def heads():
    return [make_subject(seed=0, index=i, size=128, t2=True) for i in range(3)]  # the bundled resolution


def core(h, tissue):
    """Voxels of ``tissue`` whose 3 x 3 in-plane neighbourhood is the same tissue (free of partial volume)."""
    return ndimage.binary_erosion(h.labels == tissue, structure=np.ones((3, 3, 1), bool))


def test_t2_contrast(heads):
    for h in heads:
        t2 = h.t2.astype(float)
        med = {t: np.median(t2[core(h, t)]) for t in (Tissue.CSF, Tissue.FAT, Tissue.GREY, Tissue.WHITE, Tissue.MUSCLE,
                                                      Tissue.MARROW)}  # fmt: skip
        assert med[Tissue.CSF] > med[Tissue.FAT] > med[Tissue.WHITE]  # T2 weighting: fluid brightest
        assert med[Tissue.CSF] > 1.5 * med[Tissue.GREY] and med[Tissue.GREY] > 1.15 * med[Tissue.WHITE]
        assert med[Tissue.MUSCLE] < 0.7 * med[Tissue.WHITE]  # dark-ish
        assert med[Tissue.MUSCLE] < med[Tissue.MARROW] < med[Tissue.CSF]  # marrow intermediate
        # cortical bone and air are signal voids, as in T1
        assert np.percentile(t2[h.labels == Tissue.CORTICAL], 5) < 0.15 * med[Tissue.WHITE]
        assert np.median(t2[h.mask == 0]) < 0.05 * med[Tissue.WHITE]
        assert h.t2.dtype == np.int16 and h.t2.min() >= 0


def test_t2_lesions_stand_out(heads):
    h = heads[0]  # one hyperdense and one hypodense lesion
    assert {lesion["type"] for lesion in h.meta["lesions"]} == {"lesion_hyper", "lesion_hypo"}
    t2 = h.t2.astype(float)
    white, grey = np.median(t2[core(h, Tissue.WHITE)]), np.median(t2[core(h, Tissue.GREY)])
    assert np.median(t2[core(h, Tissue.LESION_HYPER)]) < 0.8 * white  # blood / calcification: dark
    assert np.median(t2[core(h, Tissue.LESION_HYPO)]) > 1.2 * grey  # oedema: bright


def test_t2_is_not_t1_rescaled(heads):
    """CSF and white matter swap places between the two weightings."""
    h = heads[0]
    csf, white = core(h, Tissue.CSF), core(h, Tissue.WHITE)
    assert np.median(h.t1[csf]) < np.median(h.t1[white]) and np.median(h.t2[csf]) > np.median(h.t2[white])


def test_t2_normalised_like_mr():
    assert DataConfig.default_intensity("t2") == IntensityKind.PERCENTILE
    cfg = DataConfig(src="t1", dst="t2")
    assert cfg.src_intensity == cfg.dst_intensity == IntensityKind.PERCENTILE


def assert_carries_t2_contrast(pred: np.ndarray, src: np.ndarray, target: np.ndarray, labels: np.ndarray) -> None:
    """The prediction has the T2 contrast, which neither a constant nor the T1 image itself has: inside the head it
    correlates with the T2 target better than the T1 source does, and grey matter and CSF are brighter than white
    matter, white matter brighter than muscle (in T1 grey matter and CSF are darker than white matter)."""
    head = labels != Tissue.AIR
    corr_pred = np.corrcoef(pred[head], target[head])[0, 1]  # nan for a constant: fails too
    corr_src = np.corrcoef(src[head], target[head])[0, 1]
    assert corr_src < 0.5 < corr_pred, (corr_src, corr_pred)
    mean = {t: float(pred[labels == t].mean()) for t in (Tissue.CSF, Tissue.GREY, Tissue.WHITE, Tissue.MUSCLE)}
    margin = 20.0  # scanner units; the target's steps are 290 (CSF - white), 85 (grey - white), 165 (white - muscle)
    assert mean[Tissue.CSF] > mean[Tissue.WHITE] + margin, mean
    assert mean[Tissue.GREY] > mean[Tissue.WHITE] + margin, mean
    assert mean[Tissue.WHITE] > mean[Tissue.MUSCLE] + margin, mean


def test_t1_to_t2_end_to_end(tmp_path: Path):
    """Phantoms with T2, a small U-Net trained long enough to learn the contrast (10 epochs, about 70 steps), eval and
    translate through the command line; the translated T2 must carry T2 contrast, not only be finite."""
    data, run = tmp_path / "data", tmp_path / "runs" / "t2"
    result = cli("phantoms", data, "--subjects", "5", "--size", "32", "--seed", "1", "--t2")
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (data / "sub-001").iterdir())
    assert files == ["ct.nii.gz", "mask.nii.gz", "t1.nii.gz", "t2.nii.gz"]
    assert json.loads((data / "phantom.json").read_text())["modalities"] == ["t1", "ct", "mask", "t2"]

    result = cli("train", "--data", data, "--src", "t1", "--dst", "t2", "--run-dir", run, "--epochs", "10", *TINY)
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["dst"] == "t2" and config["data"]["dst_intensity"] == "percentile"

    report = tmp_path / "eval.json"
    result = cli("eval", "--run", run, "--json", report, "--device", "cpu")
    assert result.exit_code == 0, result.output
    figures = json.loads(report.read_text())
    (sid,) = json.loads((run / "split.json").read_text())["test"]
    assert figures["per_subject"][sid] and {"mae", "psnr", "ssim"} <= set(figures["mean"])
    for name, value in figures["mean"].items():
        assert value is not None and math.isfinite(value), name
    assert (run / "eval" / "test" / f"{sid}_t2.nii.gz").is_file()

    scan, out = data / sid / "t1.nii.gz", tmp_path / "synth_t2.nii.gz"
    result = cli("translate", scan, "--run", run, "-o", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    src, pred = nib.load(scan), nib.load(out)
    assert pred.shape == src.shape and np.array_equal(pred.affine, src.affine)
    for code in ("sform_code", "qform_code"):
        assert pred.header[code] == src.header[code], code
    assert np.isfinite(pred.get_fdata()).all()
    phantom = make_subject(seed=1, index=int(sid.removeprefix("sub-")) - 1, size=32, t2=True)  # its tissue labels
    target = nib.load(data / sid / "t2.nii.gz").get_fdata()
    assert np.array_equal(phantom.t2, target)
    assert_carries_t2_contrast(pred.get_fdata(), src.get_fdata(), target, phantom.labels)
