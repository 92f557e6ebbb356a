"""Training health: non-finite losses are skipped then stop the run, broken data stop it with the file named."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import pix2gan.tasks as tasks_mod
from pix2gan.config import Mode
import pix2gan.tasks.paired as paired_mod
from pix2gan.train.loader import batches
from pix2gan.runs import RunLayout
from pix2gan.checkpoint import load_checkpoint
from pix2gan.config import RunConfig
from pix2gan.train.hardware import StepContext
from pix2gan.errors import TrainingError
from pix2gan.train import fit, resume_run
from pix2gan.infer.translate import Translator
from pix2gan.errors import InputError
from conftest import tiny_config


def test_nonfinite_steps_are_skipped_then_stop_with_one_line(tiny_data, tmp_path, monkeypatch):
    real_l1 = paired_mod.l1_loss
    calls = [0]

    def l1_after_a_while(fake, target):  # finite for the first epoch's steps, then NaN for good
        calls[0] += 1
        loss = real_l1(fake, target)
        return loss if calls[0] <= 7 else loss * float("nan")

    monkeypatch.setattr(paired_mod, "l1_loss", l1_after_a_while)
    cfg = tiny_config(tiny_data, epochs=5, max_nonfinite=3)
    run = tmp_path / "run"
    with pytest.raises(TrainingError) as info:
        fit(cfg, run, progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert "non-finite loss for 3 steps in a row" in message and "loss_g_l1=nan" in message
    assert str(RunLayout(run).latest) in message  # the last good checkpoint is named
    stopped_at = int(message.split()[1].rstrip(":"))
    assert stopped_at == 7 + 3
    per_epoch = int(next(csv.DictReader(RunLayout(run).epochs.open()))["step"])  # epoch 1 ended before the NaNs
    assert per_epoch <= 7
    good = load_checkpoint(RunLayout(run).latest)
    assert good.raw["step"] == per_epoch  # saved at the end of epoch 1, before the losses went bad
    assert all(torch.isfinite(v).all() for v in good.raw["generator"].values() if v.is_floating_point())


def test_a_skipped_step_leaves_weights_and_optimiser_untouched():
    net = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    loss = net(torch.ones(1, 3)).sum() * float("inf")
    assert StepContext().backward_step(loss, opt) is False
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert opt.state_dict()["state"] == {}


class _Dies(Dataset):
    """A data set whose worker process is killed when it reaches item 3."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i):
        if i == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return {"x": torch.zeros(2)}


def test_a_killed_worker_stops_with_one_line_not_a_hang():
    loader = DataLoader(_Dies(), batch_size=2, num_workers=1)
    with pytest.raises(TrainingError, match=r"data loading failed: DataLoader worker .* exited unexpectedly") as info:
        list(batches(loader, StepContext()))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("workers", [0, 1])
def test_a_corrupt_slice_mid_run_names_the_file(workers, tiny_data, tmp_path, monkeypatch):
    class Damaged(paired_mod.PairedTask):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            subject = self.dataset.cache.subjects[1]
            subject.dst = subject.dst[:, :5]  # no longer the source's shape: fails when one of its slices is cropped

    monkeypatch.setitem(tasks_mod.TASKS, Mode.PAIRED, Damaged)
    with pytest.raises(InputError) as info:
        fit(tiny_config(tiny_data, num_workers=workers), tmp_path / "run", progress=False)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(str(tiny_data)) and "t1.nii.gz: slice" in message and "could not be prepared" in message


def test_resume_refuses_other_data_and_missing_runs(tiny_data, tiny_run, tmp_path):
    with pytest.raises(InputError, match="run folder not found"):
        resume_run(tmp_path / "nowhere", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="config.json: not found"):
        resume_run(tmp_path / "empty", progress=False)
    moved = tmp_path / "run"
    shutil.copytree(tiny_run, moved)
    cfg = RunConfig.from_dict(json.loads((moved / "config.json").read_text()))
    cfg.data.split_seed += 1  # another split: different training subjects than the checkpoint's
    (moved / "config.json").write_text(json.dumps(cfg.to_dict()))
    with pytest.raises(InputError, match="the data differ from those the run started with"):
        resume_run(moved, progress=False)


def test_mismatched_weights_are_one_line(tiny_run, tmp_path):
    raw = torch.load(RunLayout(tiny_run).latest, weights_only=True)
    first = next(iter(raw["generator"]))
    raw["generator"][first] = torch.zeros(1)
    torch.save(raw, tmp_path / "bad.pt")
    with pytest.raises(InputError, match=r"bad.pt: generator weights do not match its model config \(") as info:
        Translator.from_checkpoint(tmp_path / "bad.pt", device="cpu")
    assert "\n" not in str(info.value)
