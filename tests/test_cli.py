"""The command line end to end on a tiny generated data set, and every bad input answered with one clear line."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.util import crop
from typer.testing import CliRunner

from helpers import assert_one_clear_line, write_nifti
from pix2gan_cli.app import app

TINY = ["--depth", "3", "--filters", "4", "--disc-filters", "4", "--disc-layers", "2", "--image-size", "32",
        "--batch-size", "4", "--no-progress", "--device", "cpu"]  # fmt: skip


def cli(*args: str | os.PathLike, cwd: Path | None = None):
    runner = CliRunner()
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A folder with phantom data and one trained run (runs/tiny), made through the CLI."""
    ws = tmp_path_factory.mktemp("ws")
    result = cli("samples", ws / "data", "--subjects", "5", "--size", "32", "--seed", "1")
    assert result.exit_code == 0, result.output
    result = cli("train", "--src", "t1", "--dst", "ct", "--data", ws / "data", "--run-dir", ws / "runs" / "tiny",
                 "--epochs", "2", *TINY)  # fmt: skip
    assert result.exit_code == 0, result.output
    return ws


def test_help_lists_commands_and_defaults():
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("train", "translate", "eval", "samples"):
        assert command in result.output
    train_help = cli("train", "--help").output
    for option in ("--src", "--dst", "--data", "--run-dir", "--epochs", "--batch-size", "--image-size", "--lambda-l1",
                   "--gan-loss", "--lr"):  # fmt: skip
        assert option in train_help
    assert "2e-4" in train_help and "100" in train_help and "lsgan" in train_help and "0.75" in train_help
    assert "--overwrite" in cli("translate", "--help").output
    assert "--metrics" in cli("eval", "--help").output and "--json" in cli("eval", "--help").output


def test_run_folder(workspace):
    run = workspace / "runs" / "tiny"
    for name in ("config.json", "split.json", "log.csv", "epochs.csv", "loss_curve.png", "checkpoints/latest.pt",
                 "checkpoints/best.pt", "panels/epoch_002.png"):  # fmt: skip
        assert (run / name).is_file(), name
    split = json.loads((run / "split.json").read_text())
    assert sorted(split) == ["test", "train", "val"]
    assert sorted(split["train"] + split["val"] + split["test"]) == [f"sub-{i:03d}" for i in range(1, 6)]


def test_translate_newest_run_by_default(workspace, tmp_path):
    scan = workspace / "data" / "sub-002" / "t1.nii.gz"
    local = tmp_path / "scan.nii.gz"
    shutil.copy(scan, local)
    result = cli("translate", local, cwd=workspace)  # finds runs/tiny under ./runs
    assert result.exit_code == 0, result.output
    out = tmp_path / "scan_ct.nii.gz"
    a, b = nib.load(local), nib.load(out)
    assert a.shape == b.shape and np.array_equal(a.affine, b.affine)
    assert b.get_data_dtype() == np.float32
    again = cli("translate", local, cwd=workspace)
    assert again.exit_code == 2 and "already exists" in again.output
    assert cli("translate", local, "--overwrite", cwd=workspace).exit_code == 0


def test_translate_folder_into_output_folder(workspace, tmp_path):
    result = cli("translate", workspace / "data" / "sub-001", workspace / "data" / "sub-003", "-o", tmp_path / "out",
                 "--run", workspace / "runs" / "tiny")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sub-001.nii.gz", "sub-003.nii.gz"]


def synthrad(gt, pred, mask):
    gt, pred = np.clip(gt, -1024, 3000), np.clip(pred, -1024, 3000)
    m = mask > 0
    g2, p2 = np.where(m, gt, -1024) + 1024, np.where(m, pred, -1024) + 1024
    _, smap = structural_similarity(g2, p2, data_range=4024, full=True, win_size=min(7, *(s - 1 + s % 2 for s in gt.shape)))
    pad = (min(7, *(s - 1 + s % 2 for s in gt.shape)) - 1) // 2
    return {
        "mae": np.abs(gt - pred)[m].mean(),
        "psnr": peak_signal_noise_ratio(gt[m], pred[m], data_range=4024),
        "ssim": crop(smap, pad)[crop(m, pad)].mean(),
    }


def test_eval_run_matches_scikit_image(workspace):
    run = workspace / "runs" / "tiny"
    out = workspace / "eval.json"
    result = cli("eval", "--run", run, "--metrics", "psnr", "ssim", "mae", "--json", out)
    assert result.exit_code == 0, result.output
    assert "mean ± std" in result.output and "lookup-table baseline" in result.output
    report = json.loads(out.read_text())
    assert set(report) >= {"per_subject", "mean", "std"}
    (sid,) = json.loads((run / "split.json").read_text())["test"]
    # the default model makes two predictions (flip TTA): their spread is scored too
    assert set(report["per_subject"][sid]) == {"psnr", "ssim", "mae", "mae_air", "mae_soft", "mae_bone",
                                                "std_error_spearman", "std_mean"}
    pred = nib.load(run / "eval" / "test" / f"{sid}_ct.nii.gz").get_fdata()
    gt = nib.load(workspace / "data" / sid / "ct.nii.gz").get_fdata()
    mask = nib.load(workspace / "data" / sid / "mask.nii.gz").get_fdata()
    expected = synthrad(gt, pred, mask)
    for metric, value in expected.items():
        assert report["per_subject"][sid][metric] == pytest.approx(value, rel=1e-6), metric
    assert report["std"]["mae"] == 0.0 and report["mean"]["mae"] == pytest.approx(expected["mae"], rel=1e-6)
    assert (run / "eval" / "test" / f"{sid}.png").is_file()


def test_eval_external_folders(workspace, tmp_path):
    pred, target, mask, source = tmp_path / "pred", tmp_path / "target", tmp_path / "mask", tmp_path / "source"
    for d in (pred, target, mask, source):
        d.mkdir()
    for sid in ("sub-001", "sub-002"):
        ct = nib.load(workspace / "data" / sid / "ct.nii.gz")
        shutil.copy(workspace / "data" / sid / "ct.nii.gz", target / f"{sid}.nii.gz")
        shutil.copy(workspace / "data" / sid / "t1.nii.gz", source / f"{sid}.nii.gz")
        shutil.copy(workspace / "data" / sid / "mask.nii.gz", mask / f"{sid}.nii.gz")
        noisy = ct.get_fdata() + np.random.default_rng(0).normal(0, 50, ct.shape)
        nib.save(nib.Nifti1Image(noisy.astype(np.float32), ct.affine, ct.header), pred / f"{sid}.nii.gz")
    result = cli("eval", "--pred", pred, "--target", target, "--mask", mask, "--source", source, "--metrics", "mae,psnr",
                 "--json", tmp_path / "e.json")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "e.json").read_text())
    assert sorted(report["per_subject"]) == ["sub-001", "sub-002"]
    assert 30 < report["mean"]["mae"] < 50  # |N(0, 50)| has mean 40
    assert sorted(p.name for p in (tmp_path / "pred_eval").iterdir()) == ["sub-001.png", "sub-002.png"]


# --- bad input: one line naming the file, exit code 2, no traceback, nothing written ------------------------------


def _bad_data(ws: Path, tmp: Path, kind: str) -> tuple[Path, str]:
    """Copy of the phantom data with one defect; returns (data folder, text the message must contain)."""
    data = tmp / "bad"
    shutil.copytree(ws / "data", data)
    sub = data / "sub-002"
    ct = nib.load(sub / "ct.nii.gz")
    if kind == "missing-modality":
        (sub / "ct.nii.gz").unlink()
        return data, "sub-002: subject has no ct.nii.gz"
    if kind == "shape-mismatch":
        nib.save(nib.Nifti1Image(np.zeros((32, 32, 5), np.int16), ct.affine), sub / "ct.nii.gz")
        return data, "sub-002/ct.nii.gz: shape (32, 32, 5) differs"
    if kind == "affine-mismatch":
        affine = ct.affine.copy()
        affine[0, 3] += 5
        nib.save(nib.Nifti1Image(np.asarray(ct.dataobj), affine), sub / "ct.nii.gz")
        return data, "sub-002/ct.nii.gz: affine differs"
    if kind == "4d":
        nib.save(nib.Nifti1Image(np.zeros((32, 32, 9, 2), np.int16), ct.affine), sub / "t1.nii.gz")
        return data, "sub-002/t1.nii.gz: volume is 4-D"
    if kind == "2d":
        nib.save(nib.Nifti1Image(np.zeros((32, 32), np.int16), ct.affine), sub / "t1.nii.gz")
        return data, "sub-002/t1.nii.gz: volume is 2-D"
    if kind == "truncated":
        raw = (sub / "t1.nii.gz").read_bytes()
        (sub / "t1.nii.gz").write_bytes(raw[: len(raw) // 2])
        return data, "sub-002/t1.nii.gz:"
    if kind == "text":
        (sub / "t1.nii.gz").write_text("this is a text file, not an image\n")
        return data, "sub-002/t1.nii.gz: not a readable NIfTI"
    if kind == "wrong-magic":
        (sub / "t1.nii.gz").write_bytes(gzip.compress(b"\x00" * 352 + b"\x01" * 1000))
        return data, "sub-002/t1.nii.gz: not a readable NIfTI"
    if kind == "nan":
        arr = ct.get_fdata().astype(np.float32)
        arr[3, 3, 3] = np.nan
        nib.save(nib.Nifti1Image(arr, ct.affine), sub / "ct.nii.gz")
        return data, "sub-002/ct.nii.gz: 1 voxel(s) are NaN or Inf"
    if kind == "constant":
        nib.save(nib.Nifti1Image(np.full((32, 32, 9), 7, np.int16), ct.affine), sub / "t1.nii.gz")
        return data, "sub-002/t1.nii.gz:"
    raise AssertionError(kind)


BAD_DATA = ["missing-modality", "shape-mismatch", "affine-mismatch", "4d", "2d", "truncated", "text", "wrong-magic",
            "nan", "constant"]  # fmt: skip


@pytest.mark.parametrize("kind", BAD_DATA)
def test_train_bad_data(workspace, tmp_path, kind):
    data, needle = _bad_data(workspace, tmp_path, kind)
    run = tmp_path / "run"
    result = cli("train", "--data", data, "--run-dir", run, "--epochs", "1", *TINY)
    assert_one_clear_line(result, needle)
    assert not run.exists()


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--data", "{tmp}/nowhere"], "nowhere: data folder not found"),
        (["--data", "{tmp}/empty"], "empty: no subject folders"),
        (["--src", "flair"], "unknown modality 'flair'"),
        (["--image-size", "20"], "--image-size 20 is not a multiple of 8, the padding multiple of the unet generator"),
        (["--norm", "group"], "'group' is not one of batch, instance"),
        (["--gan-loss", "wgan"], "'wgan' is not one of lsgan, vanilla"),
        (["--src", "ct", "--dst", "ct"], "both 'ct'"),
        (["--device", "tpu"], "unknown device 'tpu'"),
    ],
)
def test_train_bad_options(workspace, tmp_path, args, needle):
    (tmp_path / "empty").mkdir()
    args = [a.format(tmp=tmp_path) for a in args]
    if "--data" not in args:
        args += ["--data", str(workspace / "data")]
    result = cli("train", "--run-dir", tmp_path / "run", "--epochs", "1", *TINY, *args)
    assert_one_clear_line(result, needle)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_train_out_of_range_option_is_a_usage_error(tmp_path):
    result = cli("train", "--epochs", "0", "--run-dir", tmp_path / "run")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("kind", ["missing", "foreign", "truncated", "text", "malicious"])
def test_translate_bad_checkpoint(workspace, tmp_path, kind):
    ckpt = tmp_path / "model.pt"
    if kind == "foreign":
        torch.save({"state_dict": {}}, ckpt)
    elif kind == "truncated":
        raw = (workspace / "runs" / "tiny" / "checkpoints" / "latest.pt").read_bytes()
        ckpt.write_bytes(raw[: len(raw) // 3])
    elif kind == "text":
        ckpt.write_text("hello")
    elif kind == "malicious":
        marker = tmp_path / "marker"
        torch.save({"x": _Evil(str(marker))}, ckpt)
    out = tmp_path / "out.nii.gz"
    result = cli("translate", workspace / "data" / "sub-001" / "t1.nii.gz", "--checkpoint", ckpt, "-o", out)
    assert_one_clear_line(result, "model.pt:")
    assert not out.exists()
    if kind == "malicious":
        assert not (tmp_path / "marker").exists()


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("kind", ["4d", "nan", "text", "missing", "empty-dir"])
def test_translate_bad_input(workspace, tmp_path, kind):
    path = tmp_path / "in.nii.gz"
    needle = "in.nii.gz:"
    if kind == "4d":
        write_nifti(path, np.zeros((8, 8, 4, 3), np.float32))
    elif kind == "nan":
        write_nifti(path, np.full((8, 8, 4), np.nan, np.float32))
    elif kind == "text":
        path.write_text("not an image")
    elif kind == "empty-dir":
        path = tmp_path / "emptydir"
        path.mkdir()
        needle = "emptydir: folder holds no"
    out = tmp_path / "out.nii.gz"
    result = cli("translate", path, "--run", workspace / "runs" / "tiny", "-o", out)
    assert_one_clear_line(result, needle)
    assert not out.exists()


def test_eval_bad_inputs(workspace, tmp_path):
    assert_one_clear_line(cli("eval", "--run", tmp_path / "norun"), "norun: run folder not found")
    assert_one_clear_line(cli("eval", "--run", workspace / "runs" / "tiny", "--metrics", "fid"), "unknown metric 'fid'")
    assert_one_clear_line(cli("eval", "--pred", tmp_path), "--pred and --target go together")
    (tmp_path / "p").mkdir()
    assert_one_clear_line(cli("eval", "--pred", tmp_path / "p", "--target", tmp_path), "p: no volumes")
    assert_one_clear_line(cli("translate", tmp_path / "x.nii.gz", cwd=tmp_path), "runs: no trained run found")


def test_samples_refuses_to_overwrite(workspace):
    before = (workspace / "data" / "sub-001" / "ct.nii.gz").read_bytes()
    assert_one_clear_line(cli("samples", workspace / "data", "--subjects", "2", "--size", "32"), "sub-001: already exists")
    assert (workspace / "data" / "sub-001" / "ct.nii.gz").read_bytes() == before


def test_console_script_no_traceback_and_debug(tmp_path):
    """The installed entry point: exit code 2 and one line; --debug shows the traceback."""
    cmd = [sys.executable, "-c", "from pix2gan_cli.app import main; main()"]
    result = subprocess.run([*cmd, "eval", "--run", str(tmp_path / "nothing")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'nothing'}: run folder not found"]
    debug = subprocess.run([*cmd, "--debug", "eval", "--run", str(tmp_path / "nothing")], capture_output=True, text=True)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_sample_on_a_paired_run_draws_source_prediction_panels(workspace, tmp_path):
    out = tmp_path / "panels.png"
    result = cli("sample", "--run", workspace / "runs" / "tiny", "-o", out)
    assert result.exit_code == 0, result.output
    from PIL import Image

    width, height = Image.open(out).size
    assert width > 2 * 64 and height > 64  # two columns (source, prediction), three slices of the test subject
    assert_one_clear_line(cli("sample", "--run", workspace / "runs" / "tiny", "-o", out), "already exists")


def test_failed_panel_drawing_leaves_no_file(workspace, tmp_path, monkeypatch):
    import pix2gan.infer.sample as sampling

    def broken(*args, **kwargs):
        raise ValueError("drawing failed")

    monkeypatch.setattr(sampling, "save_panel", broken)
    out = tmp_path / "panels.png"
    assert_one_clear_line(cli("sample", "--run", workspace / "runs" / "tiny", "-o", out), "drawing failed")
    assert not out.exists() and list(tmp_path.iterdir()) == []
