"""Behaviour through the command line on tiny generated phantoms: an MR -> MR target, data-loader workers,
SIGTERM during training, evaluation of the validation split, and int16 outputs.

Only the CLI and public file formats are used (NIfTI, checkpoints read with ``torch.load(weights_only=True)``,
``split.json``, ``log.csv``), so these tests survive moves inside the library.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from helpers import write_nifti
from test_cli import cli

# 5 subjects, --val-fraction 0.4: 2 train, 2 val, 1 test subjects
PAIRED = ["--depth", "3", "--filters", "4", "--disc-filters", "4", "--disc-layers", "2", "--image-size", "32",
          "--batch-size", "4", "--val-fraction", "0.4", "--seed", "7", "--threads", "1", "--no-progress",
          "--device", "cpu"]  # fmt: skip


def t2_from_t1(t1: np.ndarray) -> np.ndarray:
    """A second MR-like contrast: affine change plus a monotone quadratic (T1 0 .. ~600 -> T2 400 .. ~1480)."""
    t1 = t1.astype(np.float64)
    return (400.0 + 3.0 * t1 - 0.002 * t1**2).astype(np.float32)


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> Path:
    """``pix2gan samples`` phantoms (t1, ct, mask) plus a t2 per subject on the same grid."""
    root = tmp_path_factory.mktemp("behaviour") / "data"
    result = cli("samples", root, "--subjects", "5", "--size", "32", "--seed", "4")
    assert result.exit_code == 0, result.output
    for folder in sorted(root.glob("sub-*")):
        t1 = nib.load(folder / "t1.nii.gz")
        write_nifti(folder / "t2.nii.gz", t2_from_t1(np.asarray(t1.dataobj)), t1.affine)
    return root


def _train(data: Path, run: Path, *args: str) -> Path:
    result = cli("train", "--data", data, "--run-dir", run, *args, *PAIRED)
    assert result.exit_code == 0, result.output
    return run


def _split(run: Path) -> dict[str, list[str]]:
    return json.loads((run / "split.json").read_text())


@pytest.fixture(scope="module")
def ct_run(phantoms, tmp_path_factory) -> Path:
    """T1 -> CT, 2 epochs, in-process data loading (--workers 0)."""
    run = tmp_path_factory.mktemp("runs") / "ct"
    return _train(phantoms, run, "--src", "t1", "--dst", "ct", "--epochs", "2", "--workers", "0")


def _load(path: Path) -> tuple[nib.Nifti1Image, np.ndarray]:
    img = nib.load(path)
    return img, img.get_fdata(dtype=np.float64)


# --------------------------------------------------------------------------------------------------------------------
# a. a non-HU target end to end: T1 -> T2
# --------------------------------------------------------------------------------------------------------------------
def test_mr_to_mr_outputs_target_units(phantoms, tmp_path):
    run = _train(phantoms, tmp_path / "mr", "--src", "t1", "--dst", "t2", "--epochs", "1")
    split = _split(run)
    assert len(split["train"]) == 2 and len(split["test"]) == 1
    # a predicted T2 has no scale of its own: [-1, 1] maps back onto the median percentile scale of the training T2s
    scales = [np.percentile(np.asarray(nib.load(phantoms / s / "t2.nii.gz").dataobj), [0.5, 99.5]) for s in split["train"]]
    lo, hi = np.median(np.array(scales), axis=0)
    assert lo > 300 and hi > lo + 500  # physical T2 units, far from the network's [-1, 1]

    sid = split["test"][0]
    source = phantoms / sid / "t1.nii.gz"
    out = tmp_path / f"{sid}_t2.nii.gz"
    result = cli("translate", source, "--run", run, "-o", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    src_img, _ = _load(source)
    img, pred = _load(out)
    assert pred.shape == src_img.shape and np.allclose(img.affine, src_img.affine)
    assert np.isfinite(pred).all()
    tol = 1e-4 * (hi - lo)  # float32 rounding of the inverse map
    assert pred.min() >= lo - tol and pred.max() <= hi + tol, (pred.min(), pred.max(), lo, hi)
    assert (np.abs(pred) > 1).all()  # mapped back, not left in [-1, 1]
    assert pred.max() > pred.min()  # a per-voxel prediction (after 1 epoch still nearly flat), not a constant

    out_json = tmp_path / "mr.json"
    result = cli("eval", "--run", run, "--json", out_json, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "MAE" in result.output and "HU" not in result.output  # MR units are arbitrary: no unit is claimed
    report = json.loads(out_json.read_text())
    assert list(report["per_subject"]) == split["test"]
    row = report["per_subject"][sid]
    assert all(np.isfinite(v) for v in row.values())
    assert 0 < row["mae"] < 2  # in the normalised [-1, 1] space MR targets are scored in (data range 2)
    assert report["mean"] == row  # one subject: the mean is its figures
    assert (run / "eval" / "test" / f"{sid}_t2.nii.gz").is_file()


# --------------------------------------------------------------------------------------------------------------------
# b. data-loader worker processes do not change what is learned
# --------------------------------------------------------------------------------------------------------------------
def test_workers_give_bit_identical_weights(phantoms, ct_run, tmp_path):
    run = _train(phantoms, tmp_path / "w2", "--src", "t1", "--dst", "ct", "--epochs", "2", "--workers", "2")
    a = torch.load(ct_run / "checkpoints" / "latest.pt", weights_only=True)
    b = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
    assert a["step"] == b["step"] > 2  # both ran every step of their 2 epochs
    for net in ("generator", "discriminator"):
        assert a[net].keys() == b[net].keys()
        different = [k for k in a[net] if not torch.equal(a[net][k], b[net][k])]
        assert not different, f"{net}: {different}"
    assert (ct_run / "log.csv").read_text() == (run / "log.csv").read_text()  # the same losses at every step


# --------------------------------------------------------------------------------------------------------------------
# c. SIGTERM during training saves a checkpoint; --resume finishes the run
# --------------------------------------------------------------------------------------------------------------------
# ``python -m pix2gan_cli.app`` with one gate: once training has written log.csv (its first step checkpoint), the
# next fsync of that checkpoint waits until the file GATE/go exists, after creating GATE/paused. The test sends
# SIGTERM while the run waits there, so the run cannot finish before the signal arrives.
GATED_CLI = textwrap.dedent(
    """
    import os, runpy, sys, time
    gate, log_csv = os.environ["P2G_TEST_GATE"], os.environ["P2G_TEST_LOG"]
    real_fsync = os.fsync
    def fsync(fd):
        real_fsync(fd)
        go = os.path.join(gate, "go")
        if os.path.exists(log_csv) and not os.path.exists(go):
            open(os.path.join(gate, "paused"), "w").close()
            deadline = time.monotonic() + 120
            while not os.path.exists(go) and time.monotonic() < deadline:
                time.sleep(0.01)
    os.fsync = fsync
    runpy.run_module("pix2gan_cli.app", run_name="__main__", alter_sys=True)
    """
)


def _wait_for(condition, proc: subprocess.Popen, stderr: Path, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"training exited ({proc.returncode}) before {what}:\n{stderr.read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {what} after {timeout:.0f} s:\n{stderr.read_text()}")
        time.sleep(0.01)


def test_sigterm_saves_and_resume_finishes(phantoms, tmp_path):
    run, gate = tmp_path / "run", tmp_path / "gate"
    gate.mkdir()
    stderr = tmp_path / "stderr.txt"
    args = ["train", "--src", "t1", "--dst", "ct", "--data", phantoms, "--run-dir", run, "--epochs", "2",
            "--checkpoint-every", "1", *PAIRED]  # fmt: skip
    env = {**os.environ, "P2G_TEST_GATE": str(gate), "P2G_TEST_LOG": str(run / "log.csv"), "COLUMNS": "200"}
    with open(stderr, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", GATED_CLI, *map(str, args)], stdout=subprocess.DEVNULL,
                                stderr=err, env=env)  # fmt: skip
        try:
            _wait_for((gate / "paused").exists, proc, stderr, "the first step's checkpoint")
            assert proc.poll() is None  # held at step 1: it cannot have finished
            proc.send_signal(signal.SIGTERM)
            _wait_for(lambda: "SIGTERM" in stderr.read_text(), proc, stderr, "the SIGTERM notice")
            (gate / "go").touch()
            code = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = stderr.read_text()
    assert code == 130, text
    assert "Traceback" not in text
    saved = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
    said = " ".join(text.split())
    assert f"stopped at epoch 1, step {saved['step']} of " in said and f"saved {run / 'checkpoints' / 'latest.pt'}" in said
    assert f"Resume with: pix2gan train --resume {run}" in said
    with open(run / "log.csv", newline="") as fh:
        logged = [int(row["step"]) for row in csv.DictReader(fh)]
    assert 1 <= saved["step"] <= 2 and logged == list(range(1, saved["step"] + 1))  # stopped after the step in hand

    result = cli("train", "--resume", run, "--no-progress")
    assert result.exit_code == 0, result.output
    final = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
    with open(run / "log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == list(range(1, final["step"] + 1))  # every step once, none lost
    assert final["epoch"] == 2 and final["step"] > saved["step"]
    assert [r["epoch"] for r in csv.DictReader((run / "epochs.csv").read_text().splitlines())] == ["1", "2"]


# --------------------------------------------------------------------------------------------------------------------
# d. eval --split val
# --------------------------------------------------------------------------------------------------------------------
def test_eval_val_split_scores_exactly_the_val_subjects(ct_run, tmp_path):
    split = _split(ct_run)
    assert len(split["val"]) == 2 and not set(split["val"]) & set(split["test"] + split["train"])
    out = tmp_path / "val.json"
    result = cli("eval", "--run", ct_run, "--split", "val", "--json", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert sorted(report["per_subject"]) == sorted(split["val"])
    for m in ("mae", "psnr", "ssim"):
        values = [row[m] for row in report["per_subject"].values()]
        assert all(np.isfinite(values)) and report["mean"][m] == pytest.approx(np.mean(values), rel=1e-12)
        assert report["std"][m] == pytest.approx(np.std(values), rel=1e-9, abs=1e-12)
    assert sorted(report["baseline"]["per_subject"]) == sorted(split["val"])
    written = sorted(p.name for p in (ct_run / "eval" / "val").iterdir())
    assert written == sorted([f"{s}_ct.nii.gz" for s in split["val"]] + [f"{s}.png" for s in split["val"]]
                             + [f"{s}_ct_std.nii.gz" for s in split["val"]])  # the default's two predictions' spread
    assert "MAE (HU)" in result.output and all(s in result.output for s in split["val"])
    assert split["test"][0] not in result.output


# --------------------------------------------------------------------------------------------------------------------
# e. translate --dtype int16
# --------------------------------------------------------------------------------------------------------------------
def test_translate_int16_is_rounded_float(phantoms, ct_run, tmp_path):
    source = phantoms / _split(ct_run)["test"][0] / "t1.nii.gz"
    as_float, as_int = tmp_path / "f.nii.gz", tmp_path / "i.nii.gz"
    for out, dtype in ((as_float, "float32"), (as_int, "int16")):
        result = cli("translate", source, "--run", ct_run, "-o", out, "--dtype", dtype, "--device", "cpu")
        assert result.exit_code == 0, result.output
    src_img = nib.load(source)
    f_img, i_img = nib.load(as_float), nib.load(as_int)
    assert f_img.get_data_dtype() == np.float32 and i_img.get_data_dtype() == np.int16
    raw = np.asanyarray(i_img.dataobj)
    assert raw.dtype == np.int16  # stored as int16: no scaling applied on reading ...
    slope, inter = i_img.header.get_slope_inter()
    assert (slope, inter) in ((None, None), (1.0, 0.0))  # ... and none declared
    for img in (f_img, i_img):
        assert img.shape == src_img.shape and np.array_equal(img.affine, src_img.affine)
    hu = f_img.get_fdata(dtype=np.float64)
    assert hu.min() >= -1024 - 1e-3 and hu.max() <= 3000 + 1e-3  # inside the HU window
    assert np.abs(raw.astype(np.float64) - np.round(hu)).max() <= 1.0
