"""Crash safety: kill -9 at random moments (and inside a checkpoint write), resume, and end bit-identical.

Every run here is a real ``pix2gan train`` subprocess on a tiny data set. The uninterrupted reference run and each
killed-and-resumed chain must end with exactly the same weights, optimiser states and step log.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from helpers import assert_identical, final_state
from pix2gan.runs import RunLayout

from pix2gan.checkpoint import load_checkpoint, save_run_checkpoint
from pix2gan.data.digits import write_digit_folder

PAIRED = ["--depth", "3", "--filters", "4", "--disc-filters", "4", "--disc-layers", "2", "--image-size", "32",
          "--batch-size", "4", "--epochs", "5"]  # fmt: skip
CLASS = ["--mode", "class", "--image-size", "28", "--filters", "8", "--disc-filters", "8", "--latent-dim", "8",
         "--embed-dim", "4", "--batch-size", "8", "--epochs", "4"]  # fmt: skip
COMMON = ["--device", "cpu", "--threads", "1", "--no-progress", "--checkpoint-every", "2", "--keep-last", "2"]

# Runs the CLI after the imports, so kill delays count from the start of real work. With P2G_KILL_AT_FSYNC=N the
# process SIGKILLs itself at the fsync of its N-th checkpoint file: after its bytes are written, before the rename.
# (The checkpoint's temporary file is recognised by name, so other fsyncs, of logs or configs, do not count.)
DRIVER = textwrap.dedent(
    """
    import os, signal, sys
    from pix2gan_cli.app import app
    import pix2gan.train
    kill_at = int(os.environ.get("P2G_KILL_AT_FSYNC", "0"))
    if kill_at:
        calls, real_fsync = [0], os.fsync
        def fsync(fd):
            if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(".step_"):
                calls[0] += 1
                if calls[0] == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
            return real_fsync(fd)
        os.fsync = fsync
    print("ready", flush=True)
    app(sys.argv[1:], prog_name="pix2gan")
    """
)


@pytest.fixture(scope="module")
def driver(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("driver") / "driver.py"
    path.write_text(DRIVER)
    return path


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("digits") / "digits"
    write_digit_folder(root, per_class=4, size=28, seed=0)
    return root


def _start(driver: Path, args: list, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(driver), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )  # fmt: skip


def _run(driver: Path, args: list, *, kill_after: float | None = None, env: dict | None = None) -> tuple[int, str]:
    """Run the CLI to completion, or SIGKILL it ``kill_after`` seconds after its imports; (exit code, stderr)."""
    code, stderr, _ = _timed_run(driver, args, kill_after=kill_after, env=env)
    return code, stderr


def _timed_run(driver: Path, args: list, *, kill_after: float | None = None, env: dict | None = None
               ) -> tuple[int, str, float]:  # fmt: skip
    """:func:`_run`, also returning the seconds from the end of the imports to the exit (the work a kill can hit)."""
    proc = _start(driver, args, env)
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    t0 = time.perf_counter()
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    _, stderr = proc.communicate(timeout=300)
    return proc.returncode, stderr, time.perf_counter() - t0


def _kill_and_resume(driver: Path, args: list, run: Path, kills: list[float], env: dict | None = None) -> int:
    """Start the run, kill it after each delay in ``kills`` (resuming in between), then resume to the end."""
    code, stderr = _run(driver, [*args, "--run-dir", run], kill_after=kills[0], env=env)
    killed = int(code == -signal.SIGKILL)
    for delay in [*kills[1:], None]:
        if code == 0:
            break
        # killed before the run wrote its config (still reading data): nothing to resume, start it again
        again = ["train", "--resume", run, "--no-progress"] if (run / "config.json").exists() else [*args, "--run-dir", run]
        code, stderr = _run(driver, again, kill_after=delay)
        killed += int(code == -signal.SIGKILL)
    assert code == 0, stderr
    assert "Traceback" not in stderr
    return killed


@pytest.mark.parametrize("mode", ["paired", "class"])
def test_kill_at_random_moments_then_resume_is_bit_identical(mode, driver, tiny_data, digits, tmp_path):
    data = tiny_data if mode == "paired" else digits
    args = ["train", "--data", data, *(PAIRED if mode == "paired" else CLASS), *COMMON]
    # kill delays count from the end of the imports: measure the reference run the same way
    code, stderr, duration = _timed_run(driver, [*args, "--run-dir", tmp_path / "reference"])
    assert code == 0, stderr
    reference = final_state(tmp_path / "reference")
    reference_log = (tmp_path / "reference" / "log.csv").read_text()

    rng = random.Random(f"{mode}-kills")  # fixed moments relative to this machine's run length
    killed = 0
    for i in range(2):
        kills = [rng.uniform(0.05, 0.95) * duration for _ in range(2)]
        run = tmp_path / f"killed{i}"
        killed += _kill_and_resume(driver, args, run, kills)
        assert_identical(final_state(run), reference, f"killed{i}")
        assert (run / "log.csv").read_text() == reference_log
    # a kill inside a checkpoint write: after the temporary file's fsync, before its rename
    run = tmp_path / "killed-in-write"
    assert _kill_and_resume(driver, args, run, [60.0], env={"P2G_KILL_AT_FSYNC": "1"}) == 1, "no kill in the write"
    assert_identical(final_state(run), reference, "killed-in-write")
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")], "temporary files left"
    assert killed >= 2, "the kills should have landed during training"


# issue 10's training options: 2.5-D context over two planes, mask-weighted L1 and SSIM, or no discriminator at all
NEW_OPTIONS = {
    "context-planes-ssim": ["--context", "1", "--planes", "axial,coronal", "--mask-weight", "0.95", "--lambda-ssim", "0.5"],
    "context-planes-no-gan": ["--context", "1", "--planes", "axial,coronal", "--gan-loss", "none"],
}
SHORT = ["--depth", "3", "--filters", "4", "--disc-filters", "4", "--disc-layers", "2", "--image-size", "32",
         "--batch-size", "8", "--epochs", "2"]  # fmt: skip


@pytest.mark.parametrize("options", NEW_OPTIONS.values(), ids=list(NEW_OPTIONS))
def test_resume_with_context_planes_and_new_losses_is_bit_identical(options, driver, tiny_data, tmp_path):
    """Killed inside its 8th checkpoint write (step 16 of 2 x 12, in the second epoch) and resumed from the one
    before: the weights, optimiser states and step log of the uninterrupted run."""
    args = ["train", "--data", tiny_data, *SHORT, *options, *COMMON]
    code, stderr = _run(driver, [*args, "--run-dir", tmp_path / "reference"])
    assert code == 0, stderr
    reference = final_state(tmp_path / "reference")
    reference_log = (tmp_path / "reference" / "log.csv").read_text()
    steps_per_epoch = reference["step"] // 2
    assert 8 < steps_per_epoch < 16, reference["step"]  # the kill below lands in the second epoch
    run = tmp_path / "killed"
    code, stderr = _run(driver, [*args, "--run-dir", run], env={"P2G_KILL_AT_FSYNC": "8"})
    assert code == -signal.SIGKILL, stderr
    left = torch.load(RunLayout(run).latest, weights_only=True)["step"]
    assert steps_per_epoch < left < reference["step"]  # resumed in the middle of the second epoch
    code, stderr = _run(driver, ["train", "--resume", run, "--no-progress"])
    assert code == 0 and "Traceback" not in stderr, stderr
    assert_identical(final_state(run), reference, "killed")
    assert (run / "log.csv").read_text() == reference_log
    saved = load_checkpoint(RunLayout(run).latest).config
    assert saved.data.planes == ("axial", "coronal") and saved.data.context == 1


def test_ctrl_c_saves_and_says_how_to_resume(driver, tiny_data, tmp_path):
    args = ["train", "--data", tiny_data, *PAIRED, *COMMON]
    code, stderr = _run(driver, [*args, "--run-dir", tmp_path / "reference"])
    assert code == 0, stderr
    run = tmp_path / "interrupted"
    proc = _start(driver, [*args, "--run-dir", run, "--checkpoint-every", "0"])
    assert proc.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 120
    while not (run / "panels" / "epoch_001.png").exists() and time.monotonic() < deadline:  # inside epoch 2
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before Ctrl-C arrived")
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"pix2gan train --resume {run}" in " ".join(stderr.split())
    saved = load_checkpoint(RunLayout(run).latest)
    assert 0 < saved.raw["step"] < 30
    code, stderr = _run(driver, ["train", "--resume", run, "--no-progress"])
    assert code == 0, stderr
    assert_identical(final_state(run), final_state(tmp_path / "reference"))


def test_keeps_the_last_k_and_latest_is_always_complete(tmp_path):
    layout = RunLayout(tmp_path)
    for step in (2, 4, 6, 8):
        save_run_checkpoint(layout, {"w": torch.full((3,), float(step))}, step=step, keep_last=2, best=step == 4)
    names = sorted(p.name for p in layout.checkpoints.iterdir())
    assert names == ["best.pt", "latest.pt", "step_00000006.pt", "step_00000008.pt"]
    assert torch.load(layout.latest, weights_only=True)["w"][0] == 8
    assert torch.load(layout.best, weights_only=True)["w"][0] == 4


def test_a_failed_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    layout = RunLayout(tmp_path)
    save_run_checkpoint(layout, {"w": torch.zeros(3)}, step=2, keep_last=3, best=False)

    def crash(obj, f, *args, **kwargs):
        with open(f, "wb") as fh:
            fh.write(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_run_checkpoint(layout, {"w": torch.ones(3)}, step=4, keep_last=3, best=False)
    assert torch.load(layout.latest, weights_only=True)["w"].sum() == 0
    assert sorted(p.name for p in layout.checkpoints.iterdir()) == ["latest.pt", "step_00000002.pt"]
