"""The append-only CSV logs: rows wait in memory only until the next checkpoint, and a resume cuts them back once."""

from __future__ import annotations

import csv
import os

from pix2gan.train.progress import CsvLog
from pix2gan.train.state import LoopState


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_flush_appends_and_never_rewrites(tmp_path):
    log = CsvLog(tmp_path / "log.csv")
    for step in (1, 2):
        log.append({"epoch": 1, "step": step, "loss": step / 10})
    log.flush()
    first = log.path.read_bytes()
    inode = os.stat(log.path).st_ino
    assert log.pending == []  # nothing kept in memory once written
    log.append({"epoch": 1, "step": 3, "loss": 0.3})
    log.flush()
    assert os.stat(log.path).st_ino == inode  # the same file, grown: no rewrite of what was there
    assert log.path.read_bytes().startswith(first)
    assert [r["step"] for r in _rows(log.path)] == ["1", "2", "3"]
    assert log.path.read_text().count("epoch,step,loss") == 1  # one header


def test_cut_keeps_rows_up_to_the_checkpoint_and_appending_continues(tmp_path):
    log = CsvLog(tmp_path / "log.csv")
    for step in range(1, 6):
        log.append({"step": step, "loss": step})
    log.flush()
    log.append({"step": 6, "loss": 6})  # not flushed: lost with the process, as after a kill
    kept = CsvLog(tmp_path / "log.csv").cut(3)
    assert [r["step"] for r in kept] == ["1", "2", "3"]
    resumed = CsvLog(tmp_path / "log.csv")
    resumed.cut(3)
    resumed.append({"step": 4, "loss": 40})
    resumed.flush()
    assert [(r["step"], r["loss"]) for r in _rows(tmp_path / "log.csv")] == [("1", "1"), ("2", "2"), ("3", "3"), ("4", "40")]


def test_read_only_cut_writes_nothing(tmp_path):
    log = CsvLog(tmp_path / "log.csv")
    log.append({"step": 1})
    log.append({"step": 2})
    log.flush()
    before = log.path.read_bytes()
    assert len(CsvLog(log.path).cut(1, write=False)) == 1
    assert log.path.read_bytes() == before


def test_loop_state_keeps_no_step_rows():
    """Memory does not grow with the number of steps: the state holds sums, not rows."""
    state = LoopState(per_epoch=10)
    for _ in range(1000):
        state.count({"loss_g": 1.0})
    assert state.counted == 1000 and not any(isinstance(v, list) and len(v) > 10 for v in vars(state).values())
