"""``train --minutes``: the count of epochs settled from the run's own epoch 1, recorded, and repeated on resume.

The clock of :mod:`pix2gan.train.budget` is replaced by one that advances 1 s per reading, so the settled count does
not depend on the machine: on the tiny phantoms (6 steps per epoch) the budget reads the clock after each step of
epoch 1 and once after its validation; the steps after the first two take 1 s each and the validation 1 s, so an
epoch is 6 x 1 + 1 + 1 = 8 s (steps, validation, checkpoint) and the middle-step estimate (steps alone) 6 s. The
warm-up tests use a clock that runs twice as fast after an adversarial step (:func:`adversarial_clock`).
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import pix2gan.train.budget as budget
import pix2gan.train.loop as loop
from conftest import tiny_config
from helpers import assert_identical, assert_one_clear_line, final_state, run_at_step
from pix2gan.config import RunConfig
from pix2gan.config.files import run_config_with_file
from pix2gan.runs import RunLayout
from pix2gan.train import fit, resume_run
from pix2gan_cli.app import app


@pytest.fixture(autouse=True)
def clock(monkeypatch) -> None:
    ticks = itertools.count(0.0, 1.0)
    monkeypatch.setattr(budget, "perf_counter", lambda: next(ticks))
    for drawing in ("_write_report", "save_loss_curve"):  # (figures only: not what is compared, and slow)
        monkeypatch.setattr(loop, drawing, lambda *args, **kwargs: None)


def _train(root: Path, run: Path, **train: object) -> Path:
    fit(tiny_config(root, **{"threads": 1, **train}), run, progress=False)
    return run


def _recorded(run: Path) -> dict:
    return json.loads(RunLayout(run).config.read_text())["train"]


@pytest.fixture(scope="module")
def timed(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 0.9-minute run (8 s per epoch: 54 / 8 = 6.75, so 7 epochs), a checkpoint every step."""
    run = tmp_path_factory.mktemp("minutes") / "run"
    with pytest.MonkeyPatch.context() as mp:
        ticks = itertools.count(0.0, 1.0)
        mp.setattr(budget, "perf_counter", lambda: next(ticks))
        result = fit(tiny_config(tiny_data, epochs=None, minutes=0.9, threads=1, checkpoint_every=1, keep_last=100),
                     run, progress=False)  # fmt: skip
    assert result.budget == "budget 0.9 min: settled on 7 epochs (8.00 s per epoch measured in epoch 1)"
    assert result.summary_lines()[1] == result.budget
    return run


def test_the_settled_run_is_the_run_of_that_many_epochs(timed, tiny_data, tmp_path):
    train = _recorded(timed)
    assert (train["epochs"], train["minutes"]) == (7, 0.9)  # recorded for a resume; the budget kept for the record
    twin = _train(tiny_data, tmp_path / "twin", epochs=7, checkpoint_every=1, keep_last=100)
    assert_identical(final_state(timed), final_state(twin))
    assert (timed / "log.csv").read_text() == (twin / "log.csv").read_text()  # every step's learning rate too


def test_a_budget_under_one_and_a_half_epochs_settles_one_epoch_before_its_decay(tiny_data, tmp_path):
    """6 s: one epoch, settled at the middle step of epoch 1 (an epoch-end settlement would have trained that epoch
    at a constant learning rate, which ``--epochs 1`` decays in its second half)."""
    run = _train(tiny_data, tmp_path / "one", epochs=None, minutes=0.1)
    assert _recorded(run)["epochs"] == 1
    assert_identical(final_state(run), final_state(_train(tiny_data, tmp_path / "twin", epochs=1)))


def test_a_resume_repeats_the_settled_count_without_measuring(timed, tmp_path, monkeypatch):
    """Resumed before and after the settlement (config.json holds the count): the run that never stopped."""

    def no_clock() -> float:
        raise AssertionError("a resumed run measured again")

    monkeypatch.setattr(budget, "perf_counter", no_clock)
    for resume_at in (3, 8):
        copy = run_at_step(timed, tmp_path / f"at{resume_at}", resume_at)
        result = resume_run(copy, progress=False)
        assert_identical(final_state(copy), final_state(timed), f"resumed at {resume_at}")
        assert (copy / "log.csv").read_text() == (timed / "log.csv").read_text()
        assert result.budget == "budget 0.9 min: settled on 7 epochs (when the run started)"


def test_a_run_killed_between_epoch_1s_checkpoint_and_the_settlement_settles_from_the_checkpoint(timed, tiny_data,
                                                                                               tmp_path):
    """The checkpoint of epoch 1 holds the epoch's time before its own save (7 s): resumed from it with nothing
    settled, the run settles from that (54 / 7: 8 epochs), as ``--epochs 8``, without measuring."""
    copy = run_at_step(timed, tmp_path / "run", 6)
    cfg = json.loads(RunLayout(copy).config.read_text())
    cfg["train"]["epochs"] = None
    RunLayout(copy).config.write_text(json.dumps(cfg))
    result = resume_run(copy, progress=False)
    assert result.budget == "budget 0.9 min: settled on 8 epochs (7.00 s per epoch measured in epoch 1)"
    assert _recorded(copy)["epochs"] == 8
    assert_identical(final_state(copy), final_state(_train(tiny_data, tmp_path / "twin", epochs=8)))


def test_a_run_stopped_before_settling_settles_on_resume_keeping_its_learning_rates(timed, tiny_data, tmp_path):
    """Stopped at step 4 (past the middle step, so the learning rate already assumed 2 or more epochs) with nothing
    settled: the resumed run measures its own steps and, with a budget under one epoch, takes 2 epochs (not 1),
    bit-identical to ``--epochs 2``."""
    copy = run_at_step(timed, tmp_path / "run", 4)
    cfg = json.loads(RunLayout(copy).config.read_text())
    cfg["train"].update(epochs=None, minutes=0.01)
    RunLayout(copy).config.write_text(json.dumps(cfg))
    resume_run(copy, progress=False)
    assert _recorded(copy)["epochs"] == 2
    twin = _train(tiny_data, tmp_path / "twin", epochs=2)
    assert_identical(final_state(copy), final_state(twin))


@pytest.fixture
def adversarial_clock(monkeypatch) -> None:
    """A clock that runs twice as fast in adversarial steps: 2 s a reading after a step that updated the discriminator
    (and until the next step), 1 s after a warm-up step. An epoch then times 8 s in the warm-up, 16 s after it."""
    now, rate = [0.0], [1.0]
    real_step = loop.train_step

    def step(objective, *args, **kwargs):  # noqa: ANN001, ANN202
        rate[0] = 2.0 if objective.d_steps else 1.0
        return real_step(objective, *args, **kwargs)

    def clock() -> float:
        now[0] += rate[0]
        return now[0]

    monkeypatch.setattr(loop, "train_step", step)
    monkeypatch.setattr(budget, "perf_counter", clock)


def test_a_warm_up_and_the_adversarial_epochs_are_each_settled_from_their_own_time(adversarial_clock, tiny_data,
                                                                                  tmp_path):
    """1 minute, F = 0.5: the warm-up's 30 s at 8 s an epoch settle 4 epochs (config.json records them), the rest at
    the 16 s the first adversarial epoch takes 2 more: 4 x 8 + 2 x 16 = 64 s, where one count from epoch 1 (60 / 8:
    8 epochs, 4 of them adversarial) would have taken 96 s. Bit-identical to ``--epochs 6`` with a warm-up of 4."""
    run = tmp_path / "warm"
    result = fit(tiny_config(tiny_data, epochs=None, minutes=1.0, gan_warmup=0.5, threads=1), run, progress=False)
    assert (_recorded(run)["epochs"], _recorded(run)["gan_warmup_epochs"], _recorded(run)["minutes"]) == (6, 4, 1.0)
    assert result.budget == ("budget 1 min: settled on 6 epochs: 4 of warm-up (8.00 s each, measured in epoch 1) and "
                             "2 adversarial (16.00 s each, measured in epoch 5)")  # fmt: skip
    assert "generator_regression" in final_state(run)
    twin = _train(tiny_data, tmp_path / "twin", epochs=6, gan_warmup=0.5, gan_warmup_epochs=4)
    assert_identical(final_state(run), final_state(twin))
    assert (run / "log.csv").read_text() == (twin / "log.csv").read_text()  # every step's learning rate too
    short = _train(tiny_data, tmp_path / "short", epochs=None, minutes=0.01, gan_warmup=0.5)
    assert (_recorded(short)["epochs"], _recorded(short)["gan_warmup_epochs"]) == (4, 2)  # the fewest: 2 + 2


def test_a_warm_up_run_resumed_in_either_phase_settles_as_the_run_that_never_stopped(adversarial_clock, tiny_data,
                                                                                     tmp_path):
    """Resumed inside the warm-up once it is settled (the adversarial epochs still to time), and from the checkpoint
    of the first adversarial epoch before its settlement (which then settles from the time that checkpoint holds)."""
    run = tmp_path / "run"
    fit(tiny_config(tiny_data, epochs=None, minutes=1.0, gan_warmup=0.5, threads=1, checkpoint_every=1, keep_last=100),
        run, progress=False)  # fmt: skip
    for resume_at in (10, 30):  # epoch 2 (in the warm-up); the end of epoch 5 (the first adversarial one)
        copy = run_at_step(run, tmp_path / f"at{resume_at}", resume_at)
        cfg = json.loads(RunLayout(copy).config.read_text())
        cfg["train"]["epochs"] = None  # (the adversarial epochs not settled yet)
        RunLayout(copy).config.write_text(json.dumps(cfg))
        resume_run(copy, progress=False)
        assert (_recorded(copy)["epochs"], _recorded(copy)["gan_warmup_epochs"]) == (6, 4), f"resumed at {resume_at}"
        assert_identical(final_state(copy), final_state(run), f"resumed at {resume_at}")
        assert (copy / "log.csv").read_text() == (run / "log.csv").read_text()


def test_minutes_on_the_command_line_and_in_config_files(tiny_data, tmp_path):
    tiny = ["--data", str(tiny_data), "--depth", "3", "--filters", "4", "--disc-filters", "4", "--disc-layers", "2",
            "--image-size", "32", "--batch-size", "4", "--device", "cpu", "--threads", "1", "--no-progress"]  # fmt: skip
    runner = CliRunner()
    result = runner.invoke(app, ["train", *tiny, "--gan-loss", "none", "--minutes", "0.25", "--run-dir", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert "budget 0.25 min: settled on 2 epochs (8.00 s per epoch measured in epoch 1)" in result.output
    default = runner.invoke(app, ["train", *tiny, "--minutes", "0.25", "--run-dir", str(tmp_path / "default")])
    assert default.exit_code == 0, default.output  # the paired default's warm-up: each phase settled, 2 at least
    assert ("budget 0.25 min: settled on 4 epochs: 2 of warm-up (8.00 s each, measured in epoch 1) and 2 adversarial "
            "(8.00 s each, measured in epoch 3)") in " ".join(default.output.split())
    assert _recorded(tmp_path / "cli")["epochs"] == 2
    refused = runner.invoke(app, ["train", *tiny, "--minutes", "1", "--epochs", "3", "--run-dir", str(tmp_path / "x")])
    assert_one_clear_line(refused, "--minutes and --epochs both set the length of the run")
    assert not (tmp_path / "x").exists()
    file = tmp_path / "cfg.yaml"
    file.write_text("minutes: 2.5\n")
    assert (run_config_with_file(file).train.minutes, run_config_with_file(file).train.epochs) == (2.5, None)
    assert run_config_with_file(file, epochs=4).train.minutes is None  # an option given wins over the file's length
    settled = RunConfig.from_dict(json.loads(RunLayout(tmp_path / "cli").config.read_text()))
    assert (settled.with_options(minutes=3).train.epochs, settled.with_options(epochs=5).train.minutes) == (None, None)
    assert RunConfig.from_options("paired", minutes=1).train.epochs is None  # (not the recommended 150)


DDP_DRIVER = """
import itertools, os, sys
import pix2gan.train.budget as budget
ticks = itertools.count(0.0, 1.0 if os.environ.get("RANK", "0") == "0" else 100.0)  # rank 1's clock 100x slower
budget.perf_counter = lambda: next(ticks)
from pix2gan_cli.app import app
app(sys.argv[1:], prog_name="pix2gan")
"""


@pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="torch built without gloo")
def test_ddp_ranks_settle_rank_0s_count(tiny_data, tmp_path):
    """Two gloo ranks whose clocks disagree (alone, rank 1 would settle 1 epoch and leave rank 0 waiting): both train
    the count of rank 0's clock."""
    driver, run = tmp_path / "driver.py", tmp_path / "run"
    driver.write_text(DDP_DRIVER)
    tiny = ["--depth", "3", "--filters", "4", "--disc-filters", "4", "--disc-layers", "2", "--image-size", "32",
            "--batch-size", "2", "--device", "cpu", "--threads", "1", "--gan-loss", "none", "--no-progress"]  # fmt: skip
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", str(driver),
               "train", "--data", str(tiny_data), *tiny, "--minutes", "0.2", "--run-dir", str(run)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    with open(RunLayout(run).epochs) as fh:
        rows = list(csv.DictReader(fh))
    per_epoch = int(rows[0]["step"])
    # rank 0's clock: 1 s a step after the first two (x per_epoch) + 1 s of validation + 1 s of checkpoint
    expected = budget.settle(12.0, per_epoch + 2.0) if budget.settle(12.0, per_epoch) > 1 else 1
    assert _recorded(run)["epochs"] == len(rows) == expected > 1
