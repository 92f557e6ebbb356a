"""DDP on CPU: two gloo ranks under torchrun train in step, agree on every weight, and write the run folder once."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from helpers import csv_rows, torchrun
from pix2gan.runs import RunLayout

pytestmark = pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="torch built without gloo")

TINY = ["--depth", "3", "--filters", "4", "--disc-filters", "4", "--disc-layers", "2", "--image-size", "32",
        "--batch-size", "2", "--device", "cpu", "--threads", "1", "--no-progress", "--keep-last", "5"]  # fmt: skip

@pytest.mark.parametrize("mode", ["paired", "paired-resnet9", "paired-context-planes", "paired-warmup", "class"])
def test_two_gloo_ranks_agree_and_write_once(mode, tiny_data, tmp_path):
    from pix2gan.data.digits import write_digit_folder

    tensorboard = mode == "paired" and importlib.util.find_spec("tensorboard") is not None
    if mode.startswith("paired"):
        args = ["train", "--data", tiny_data, *TINY, "--epochs", "2", *(["--tensorboard"] if tensorboard else [])]
        if mode == "paired-resnet9":
            args += ["--generator", "resnet9"]
        if mode == "paired-context-planes":  # issue 10's options: 2.5-D over two planes, masked L1 + SSIM, no GAN
            args += ["--context", "1", "--planes", "axial,coronal", "--gan-loss", "none", "--mask-weight", "0.95",
                     "--lambda-ssim", "0.5", "--batch-size", "8"]  # fmt: skip
        if mode == "paired-warmup":  # issue 18: regression epoch 1, adversarial epoch 2
            args += ["--gan-warmup", "0.5"]
    else:
        digits = tmp_path / "digits"
        write_digit_folder(digits, per_class=4, size=28, seed=0)
        args = ["train", "--mode", "class", "--data", digits, *TINY, "--image-size", "28", "--filters", "8",
                "--disc-filters", "8", "--latent-dim", "8", "--embed-dim", "4", "--batch-size", "4", "--epochs", "2"]  # fmt: skip
    run = tmp_path / "run"
    done = torchrun(tmp_path, 2, [*args, "--run-dir", run])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr

    ranks = [torch.load(tmp_path / "weights2" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for net in ("g", "d"):
        for key, value in ranks[0][net].items():
            assert torch.equal(value, ranks[1][net][key]), f"{net}.{key} differs between ranks"
    saved = torch.load(RunLayout(run).latest, weights_only=True)
    for key, value in ranks[0]["g"].items():
        assert torch.equal(value, saved["generator"][key])

    # written once, by rank 0: one row per step, one epoch row per epoch, one "done" line
    steps = csv_rows(RunLayout(run).log)
    assert [int(r["step"]) for r in steps] == list(range(1, len(steps) + 1))
    assert [int(r["epoch"]) for r in csv_rows(RunLayout(run).epochs)] == [1, 2]
    assert sorted(p.name for p in (run / "panels").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    assert not [p for p in run.rglob(".*")], "temporary files left behind"
    assert done.stderr.count("done run folder") == 1
    assert saved["step"] == len(steps)
    assert '"world": 2' in saved["progress"]
    if tensorboard:  # one event file, named by rank 0's process, with every step once
        from tensorboard_events import logged_steps

        (events,) = (run / "tb").iterdir()
        assert events.name.endswith(f".{(tmp_path / 'weights2' / 'pid0').read_text()}.0"), events.name
        assert [s for s, _ in logged_steps(run / "tb")["train/loss_g"]] == [int(r["step"]) for r in steps]
    if mode == "paired-warmup":  # D first updated in epoch 2, at the same step on both ranks; the snapshot saved
        first = next(int(r["step"]) for r in steps if r["loss_d"] != "nan")
        assert first == len(steps) // 2 + 1 and all(r["loss_d"] == "nan" for r in steps[: first - 1])
        assert "generator_regression" in saved and saved["sched_d"]["last_epoch"] == len(steps) // 2
    if mode == "paired-context-planes":
        config = json.loads(saved["config"]) if isinstance(saved["config"], str) else saved["config"]
        assert config["data"]["planes"] == ["axial", "coronal"] and config["data"]["context"] == 1
        assert "loss_g_ssim" in steps[0] and "loss_g_gan" not in steps[0]
        assert any(v.ndim == 4 and v.shape[1] == 3 for v in ranks[0]["g"].values())  # G takes the 3-slice stack


def test_resume_on_another_number_of_ranks(tiny_data, tmp_path):
    """A 2-rank run stopped after epoch 1 continues on 1 process: same epoch, steps of the new size."""
    run = tmp_path / "run"
    args = ["train", "--data", tiny_data, *TINY, "--epochs", "2"]
    done = torchrun(tmp_path, 2, [*args, "--run-dir", run])
    assert done.returncode == 0, done.stderr[-3000:]
    layout = RunLayout(run)
    per_epoch_2 = int(csv_rows(layout.epochs)[0]["step"])
    # back to the end of epoch 1, as if the job had been pre-empted there
    for path in layout.checkpoints.iterdir():
        if path.name.startswith("step_") and int(path.stem[5:]) > per_epoch_2:
            path.unlink()
    shutil.copy(layout.checkpoints / f"step_{per_epoch_2:08d}.pt", layout.latest)
    resumed = subprocess.run([sys.executable, "-m", "pix2gan_cli.app", "train", "--resume", str(run), "--no-progress"],
                             capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming a 2-rank run on 1 ranks" in " ".join(resumed.stderr.split())
    saved = torch.load(layout.latest, weights_only=True)
    epochs = csv_rows(layout.epochs)
    assert [int(r["epoch"]) for r in epochs] == [1, 2]
    assert saved["step"] == int(epochs[1]["step"]) > 2 * per_epoch_2  # epoch 2 ran at the 1-process size
