"""Resuming a run whose generator draws from the global RNG (dropout) is bit-identical: with one process (the
checkpoint's ``rng``) and on two gloo ranks under DDP, where every rank gets its own stream back (``rng`` for rank
0, ``rng_ranks`` for the others) instead of a fresh per-rank seed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from helpers import assert_identical, final_state, run_at_step, run_in_session
from pix2gan.runs import RunLayout

# ResNet-6 with the paired default of dropout 0.5 in every residual block (a depth-3 U-Net has no dropout level)
OPTIONS = {"generator": "resnet6", "filters": 4, "disc_filters": 4, "disc_layers": 2, "image_size": 32, "epochs": 2,
           "device": "cpu", "threads": 1, "checkpoint_every": 1, "keep_last": 100}  # fmt: skip


def _steps(run: Path) -> list[str]:
    return RunLayout(run).log.read_text().splitlines()


def _tamper_rng(run: Path, step: int) -> None:
    """Give the checkpoint of ``step`` another torch RNG state (everything else as saved)."""
    from pix2gan.checkpoint import save_checkpoint

    path = RunLayout(run).checkpoints / f"step_{step:08d}.pt"
    raw = torch.load(path, weights_only=True)
    gen = torch.Generator().manual_seed(12345)
    raw["rng"] = {**raw["rng"], "torch": gen.get_state()}
    save_checkpoint(path, raw)


def test_single_process_dropout_resume_is_bit_identical(tiny_data: Path, tmp_path: Path):
    """Stopped after step 8 (in epoch 2, after epoch 1's validation), resumed: the same networks, optimisers and
    step log as the uninterrupted run. With another RNG state in that checkpoint the generator ends otherwise: the
    dropout masks come from the RNG the checkpoint restores."""
    from pix2gan.config import RunConfig
    from pix2gan.train import fit, resume_run

    cfg = RunConfig.from_options(data=str(tiny_data), batch_size=4, **OPTIONS)
    assert cfg.model.dropout
    ref = tmp_path / "ref"
    fit(cfg, ref, progress=False)
    assert len(_steps(ref)) - 1 == 12  # (27 slices, batch 4: 6 steps an epoch)
    cut = run_at_step(ref, tmp_path / "cut", 8)
    resume_run(cut, progress=False)
    assert_identical(final_state(ref), final_state(cut))
    assert _steps(cut) == _steps(ref)

    other = run_at_step(ref, tmp_path / "other", 8)
    _tamper_rng(other, 8)
    resume_run(other, progress=False)
    a, b = final_state(ref)["generator"], final_state(other)["generator"]
    assert not all(torch.equal(a[k], b[k]) for k in a), "dropout drew nothing from the restored RNG"


@pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="torch built without gloo")
def test_two_rank_dropout_resume_is_bit_identical(tiny_data: Path, tmp_path: Path):
    """2 gloo ranks, stopped after step 8 (in epoch 2) and resumed with ``--resume RUN --nproc 2``: bit for bit the
    uninterrupted run. Rank 0's checkpoint holds rank 1's RNG state (its own stream, not rank 0's)."""
    options = {**OPTIONS, "batch_size": 2, "no_progress": True}
    args = [f"--{k.replace('_', '-')}" + ("" if v is True else f"={v}") for k, v in options.items()]
    ref = tmp_path / "ref"
    cli = [sys.executable, "-m", "pix2gan_cli.app", "train"]
    done = run_in_session([*cli, "--data", str(tiny_data), *args, "--nproc", "2", "--run-dir", str(ref)])
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(_steps(ref)) - 1 == 12  # (27 slices on 2 ranks of batch 2: 6 steps an epoch)
    saved = torch.load(RunLayout(ref).checkpoints / "step_00000008.pt", weights_only=True)
    assert list(saved["rng_ranks"]) == ["1"] and '"world": 2' in saved["progress"]
    assert not torch.equal(saved["rng"]["torch"], saved["rng_ranks"]["1"]["torch"])

    cut = run_at_step(ref, tmp_path / "cut", 8)
    done = run_in_session([*cli, "--resume", str(cut), "--nproc", "2", "--no-progress"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "step 8 of 12" in " ".join(done.stderr.split()) and "no RNG state saved" not in done.stderr
    assert_identical(final_state(ref), final_state(cut))
    assert _steps(cut) == _steps(ref)


def test_each_rank_restores_its_own_rng(tiny_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """``restore`` gives rank r the RNG state saved for it and says so (True); from a checkpoint without the other
    ranks' states, or saved on another number of ranks, every rank has rank 0's and ``restore`` returns False (the
    loop then seeds each rank afresh), with a warning where the number of ranks is the same."""
    from pix2gan.checkpoint import load_checkpoint, save_checkpoint
    from pix2gan.config import RunConfig
    from pix2gan.data.intensity import intensity_maps
    from pix2gan.nets import build_networks
    from pix2gan.train.optim import build_optimizers, build_schedulers
    from pix2gan.train.runstate import rng_state
    from pix2gan.train.state import LoopState, Trainables, checkpoint_payload, restore

    cfg = RunConfig.from_options(data=str(tiny_data), batch_size=2, **OPTIONS)

    def parts() -> Trainables:
        g, d = build_networks(cfg)
        opt_g, opt_d = build_optimizers(g, d, cfg.train)
        return Trainables(g, d, opt_g, opt_d, *build_schedulers(opt_g, opt_d, 10))

    src, dst = intensity_maps(cfg.data)
    extra = {"intensity": json.dumps({"src": src.to_dict(), "dst": dst.to_dict()})}
    states = []
    for seed in (1, 2):  # rank 0's and rank 1's streams
        torch.manual_seed(seed)
        states.append(rng_state())
    payload = checkpoint_payload(cfg, extra, parts(), LoopState(step=2, world=2, per_epoch=10))
    payload["rng"] = states[0]
    save_checkpoint(tmp_path / "ranks.pt", {**payload, "rng_ranks": {"1": states[1]}})
    save_checkpoint(tmp_path / "old.pt", payload)

    for rank in (0, 1):
        torch.manual_seed(99)
        assert restore(load_checkpoint(tmp_path / "ranks.pt"), parts(), LoopState(world=2, per_epoch=10), rank=rank)
        assert torch.equal(torch.get_rng_state(), states[rank]["torch"]), f"rank {rank}"
    for name, world, rank in (("old.pt", 2, 1), ("ranks.pt", 3, 2), ("old.pt", 2, 0)):
        torch.manual_seed(99)
        assert not restore(load_checkpoint(tmp_path / name), parts(), LoopState(world=world, per_epoch=10), rank=rank)
        assert torch.equal(torch.get_rng_state(), states[0]["torch"]), (name, world, rank)
    assert caplog.text.count("no RNG state saved for the other ranks") == 1  # (rank 0, same number of ranks)
    # one process: its own state, whatever the run was saved on
    torch.manual_seed(99)
    assert restore(load_checkpoint(tmp_path / "old.pt"), parts(), LoopState(world=1, per_epoch=10))
    assert torch.equal(torch.get_rng_state(), states[0]["torch"])
