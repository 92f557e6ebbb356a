"""``train --tensorboard``: event files in RUN/tb/ that TensorBoard's own reader loads, with the CSV logs' values;
a resumed run appends to them, each step once; a set-up that fails leaves no writer thread and no event file; without
the tensorboard package, one line before anything is written."""

from __future__ import annotations

import csv
import os
import sys
import threading
from pathlib import Path

import pytest
from tensorboard_events import event_files, logged_steps
from typer.testing import CliRunner

import pix2gan.train.loop
from pix2gan.data.digits import write_digit_folder
from pix2gan.runs import RunLayout
from pix2gan_cli.app import app

TINY = ["--depth", "3", "--filters", "4", "--disc-filters", "4", "--disc-layers", "2", "--image-size", "32",
        "--batch-size", "4", "--device", "cpu", "--threads", "1", "--no-progress"]  # fmt: skip
CLASS = ["--mode", "class", "--image-size", "28", "--filters", "8", "--disc-filters", "8", "--latent-dim", "8",
         "--embed-dim", "4", "--batch-size", "8", "--device", "cpu", "--threads", "1", "--no-progress"]  # fmt: skip


def cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _events(run: Path):
    """TensorBoard's reader over RUN/tb (every event file, a resumed run's purges applied)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(RunLayout(run).tb), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def _check_against_csv(run: Path, events) -> None:
    """Every numeric column of log.csv as train/<column> and of epochs.csv as epoch/<column>, at the CSV's steps."""
    steps, epochs = _rows(RunLayout(run).log), _rows(RunLayout(run).epochs)
    for rows, prefix in ((steps, "train"), (epochs, "epoch")):
        for column in rows[0]:
            if column in ("epoch", "step"):
                continue
            scalars = events.Scalars(f"{prefix}/{column}")
            assert [e.step for e in scalars] == [int(r["step"]) for r in rows], column
            for event, row in zip(scalars, rows, strict=True):
                assert event.value == pytest.approx(float(row[column]), rel=1e-5, abs=1e-6), (column, row["step"])
    panels = events.Images("panel")
    assert [p.step for p in panels] == [int(r["step"]) for r in epochs]
    assert panels[0].width > 0 and panels[0].height > 0 and panels[0].encoded_image_string.startswith(b"\x89PNG")


def _check_each_step_once(run: Path) -> None:
    """The event files' own records, read one by one (TensorBoard's accumulator would hide a step logged twice): each
    tag holds each step once, in order, with the CSV logs' values, after the purges a resumed run asked for."""
    layout = RunLayout(run)
    steps, epochs = _rows(layout.log), _rows(layout.epochs)
    logged = logged_steps(layout.tb)
    for rows, prefix in ((steps, "train"), (epochs, "epoch")):
        for column in ("loss_g", "loss_d"):
            assert [s for s, _ in logged[f"{prefix}/{column}"]] == [int(r["step"]) for r in rows], column
            for (_, value), row in zip(logged[f"{prefix}/{column}"], rows, strict=True):
                assert value == pytest.approx(float(row[column]), rel=1e-5, abs=1e-6), (column, row["step"])
    assert [s for s, _ in logged["panel"]] == [int(r["step"]) for r in epochs]


def test_a_paired_run_writes_tensorboard_events(tiny_data, tmp_path):
    # before training: without the package this test is skipped, not failed
    pytest.importorskip("tensorboard", reason="needs pip install 'pix2gan[tensorboard]'")
    run = tmp_path / "run"
    result = cli("train", "--data", tiny_data, "--run-dir", run, "--epochs", "2", *TINY, "--gan-loss", "lsgan",
                 "--tensorboard")  # fmt: skip
    assert result.exit_code == 0, result.output
    events = _events(run)
    scalars = set(events.Tags()["scalars"])
    assert {"train/lr", "train/lr_d", "train/loss_g", "train/loss_g_gan", "train/loss_g_l1", "train/loss_d",
            "epoch/loss_g", "epoch/loss_d", "epoch/val_mae", "epoch/val_l1", "epoch/seconds"} <= scalars  # fmt: skip
    steps = _rows(RunLayout(run).log)
    assert len(events.Scalars("train/loss_g")) == len(steps) == int(steps[-1]["step"])
    assert len(events.Scalars("epoch/val_mae")) == 2 and len(events.Images("panel")) == 2
    _check_against_csv(run, events)

    # resumed from the first epoch's checkpoint (the later saves gone): a second event file in the same folder, and
    # TensorBoard shows each step once, with the resumed run's values (those of the CSV logs, cut back and regrown)
    layout = RunLayout(run)
    first = int(_rows(layout.epochs)[0]["step"])
    for path in layout.checkpoints.glob("*.pt"):
        if path.name != f"step_{first:08d}.pt":
            path.unlink()
    assert cli("train", "--resume", run, "--no-progress").exit_code == 0
    assert len(os.listdir(layout.tb)) == 2
    events = _events(run)
    assert len(events.Scalars("train/loss_g")) == len(steps) and len(events.Images("panel")) == 2
    _check_against_csv(run, events)
    # the records themselves: the first file holds both epochs of the first run, the second (opened with a purge at the
    # resumed step) the second epoch again: each step once
    assert len(event_files(layout.tb)) == 2
    _check_each_step_once(run)


def test_a_set_up_that_fails_leaves_no_writer_behind(tiny_data, tmp_path, monkeypatch):
    """An error after the run's logs are set up and before training starts (here: while logging the start): no
    TensorBoard thread keeps running and no event file is left in RUN/tb."""
    pytest.importorskip("tensorboard", reason="needs pip install 'pix2gan[tensorboard]'")

    def fail(*args: object) -> None:
        raise RuntimeError("injected set-up failure")

    monkeypatch.setattr(pix2gan.train.loop, "_log_start", fail)
    before = set(threading.enumerate())
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="injected"):
        cli("train", "--data", tiny_data, "--run-dir", run, "--epochs", "1", *TINY, "--tensorboard")
    assert [t.name for t in set(threading.enumerate()) - before] == []
    tb = RunLayout(run).tb
    assert not (tb.exists() and list(tb.iterdir())), list(tb.iterdir())


def test_a_class_run_writes_its_losses_and_sample_grids(tmp_path):
    pytest.importorskip("tensorboard", reason="needs pip install 'pix2gan[tensorboard]'")
    digits = tmp_path / "digits"
    write_digit_folder(digits, per_class=4, size=28, seed=0)
    run = tmp_path / "run"
    result = cli("train", "--data", digits, "--run-dir", run, "--epochs", "1", *CLASS, "--tensorboard")
    assert result.exit_code == 0, result.output
    events = _events(run)
    scalars = set(events.Tags()["scalars"])
    assert {"train/lr", "train/lr_d", "train/loss_g", "train/loss_d", "epoch/loss_g", "epoch/loss_d"} <= scalars
    assert not any("val" in tag for tag in scalars)  # no validation in a GAN run
    _check_against_csv(run, events)


def test_off_by_default_and_without_the_package_one_line(tiny_data, tmp_path, monkeypatch):
    run = tmp_path / "run"
    assert cli("train", "--data", tiny_data, "--run-dir", run, "--epochs", "1", *TINY).exit_code == 0
    assert not RunLayout(run).tb.exists()
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    other = tmp_path / "other"
    result = cli("train", "--data", tiny_data, "--run-dir", other, "--epochs", "1", *TINY, "--tensorboard")
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert len(text.splitlines()) == 1 and text.startswith("error:") and "pip install pix2gan[tensorboard]" in text, text
    assert not other.exists()
