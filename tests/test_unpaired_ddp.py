"""``--mode unpaired`` (CycleGAN) under DDP: two gloo ranks on the CPU train in step, end with identical weights,
keep their own history pools in rank 0's checkpoint, and a run resumed mid-epoch on two ranks ends bit for bit as
the uninterrupted one; and the step calls each DDP-wrapped pair exactly once per backward."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from helpers import assert_identical, final_state, run_at_step, csv_rows, run_in_session, torchrun
from pix2gan.runs import RunLayout

pytestmark = pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="torch built without gloo")

TINY = ["--mode", "unpaired", "--src", "t1", "--dst", "ct", "--filters", "4", "--disc-filters", "4", "--disc-layers",
        "2", "--image-size", "32", "--epochs", "2", "--pool-size", "4", "--device", "cpu", "--threads", "1",
        "--no-progress", "--checkpoint-every", "1", "--keep-last", "100"]  # fmt: skip


@pytest.fixture(scope="module")
def ddp_run(unpaired_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """2 epochs on two gloo ranks under torchrun, a checkpoint after every step; (run folder, per-rank weights)."""
    base = tmp_path_factory.mktemp("ddp")
    run = base / "run"
    done = torchrun(base, 2, ["train", "--data", unpaired_data, *TINY, "--run-dir", run])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    return run, base / "weights2"


def test_two_ranks_train_in_step_with_their_own_pools(ddp_run: tuple[Path, Path]):
    run, weights = ddp_run
    ranks = [torch.load(weights / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for net in ("g", "d"):  # DDP keeps the ranks' networks identical
        assert_identical(ranks[0][net], ranks[1][net], net)
    layout = RunLayout(run)
    saved = torch.load(layout.latest, weights_only=True)
    assert_identical(ranks[0]["g"], dict(saved["generator"]), "generator")
    assert_identical(ranks[0]["d"], dict(saved["discriminator"]), "discriminator")
    assert {k.split(".")[0] for k in saved["generator"]} == {"g_ab", "g_ba"}

    # the logs, written once by rank 0: one row per step (the ranks' mean losses), one per epoch
    steps = csv_rows(layout.log)
    assert [int(r["step"]) for r in steps] == list(range(1, len(steps) + 1)) and saved["step"] == len(steps)
    assert {"loss_g_cycle_a", "loss_g_cycle_b", "loss_g_idt_a", "loss_d_a", "loss_d_b"} <= set(steps[0])
    assert [int(r["epoch"]) for r in csv_rows(layout.epochs)] == [1, 2]
    assert int(csv_rows(layout.epochs)[0]["step"]) == len(steps) // 2  # (36 slices, batch 1, 2 ranks: 18 steps each)
    assert '"world": 2' in saved["progress"]
    assert sorted(p.name for p in layout.panels.iterdir()) == ["epoch_001.png", "epoch_002.png"]

    # each rank's pools, full: rank 0's where a single process keeps them, rank 1's beside them, drawn differently
    own, other = saved["objective_state"], saved["objective_state_ranks"]["1"]
    assert list(saved["objective_state_ranks"]) == ["1"]
    for pools in (own, other):
        assert int(pools["pool_a"]["count"]) == int(pools["pool_b"]["count"]) == 4
    assert not torch.equal(own["pool_b"]["rng"], other["pool_b"]["rng"])
    assert not torch.equal(own["pool_b"]["images"], other["pool_b"]["images"])


def test_two_rank_resume_is_bit_identical(ddp_run: tuple[Path, Path], tmp_path: Path):
    """The run as it stood after step 23 (inside epoch 2, pools full and drawing), resumed through ``pix2gan train
    --resume RUN --nproc 2``, ends bit for bit as the uninterrupted run: networks, optimisers, schedules, both ranks'
    pools and every logged loss."""
    run, _ = ddp_run
    cut = run_at_step(run, tmp_path / "cut", 23)
    done = run_in_session([sys.executable, "-m", "pix2gan_cli.app", "train", "--resume", str(cut), "--nproc", "2",
                 "--no-progress"])  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming" in done.stderr and "step 23 of 36" in " ".join(done.stderr.split())
    assert_identical(final_state(run), final_state(cut))
    ref, resumed = (torch.load(RunLayout(r).latest, weights_only=True) for r in (run, cut))
    for key in ("objective_state", "objective_state_ranks"):
        assert_identical(ref[key], resumed[key], key)
    assert csv_rows(RunLayout(cut).log) == csv_rows(RunLayout(run).log)


class _Counting(nn.Module):
    """Stands in for DDP's wrapper: counts the forwards it sees and passes them on."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module, self.calls = module, 0

    def forward(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        self.calls += 1
        return self.module(*args, **kwargs)


@pytest.mark.parametrize("context", [0, 1])
def test_one_forward_of_each_wrapped_pair_per_backward(context: int):
    """The step calls the wrapped generator pair once (fakes, cycles, identities inside it) and the wrapped
    discriminator pair once (D's phase; G's phase uses the bare pair), with the same losses as unwrapped."""
    from pix2gan.config import DataConfig, ModelConfig, Norm, RunConfig
    from pix2gan.nets.registry import build_cycle_networks
    from pix2gan.tasks.unpaired_objective import CycleObjective
    from pix2gan.train.optim import build_optimizers
    from pix2gan.train.step import train_step

    cfg = RunConfig(data=DataConfig(context=context), model=ModelConfig(
        generator="resnet9", norm=Norm.INSTANCE, dropout=False, base_filters=2, disc_filters=2, disc_layers=2,
        in_channels=1, out_channels=1))  # fmt: skip
    gen = torch.Generator().manual_seed(0)
    batch = {"src": torch.rand(2, 2 * context + 1, 16, 16, generator=gen) * 2 - 1,
             "dst": torch.rand(2, 1, 16, 16, generator=gen) * 2 - 1}  # fmt: skip
    results = []
    for wrapped in (False, True):
        torch.manual_seed(0)
        g, d = build_cycle_networks(cfg)
        opt_g, opt_d = build_optimizers(g, d, cfg.train)
        obj = CycleObjective(context=context, pool_size=2, seed=0)
        step_g, step_d = (_Counting(g), _Counting(d)) if wrapped else (g, d)
        for k in range(3):  # (the third step's D phase draws from full pools)
            losses = train_step(obj, batch, step_g, step_d, opt_g, opt_d, frozen_discriminator=d)
            if wrapped:
                assert (step_g.calls, step_d.calls) == (k + 1, k + 1)
        results.append((losses, g.state_dict(), d.state_dict(), obj.state_dict()))
    assert_identical(results[0], results[1])


def test_each_rank_restores_its_own_pools(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """Rank 0's pools draw as a single process's; another rank's draw their own stream. A checkpoint holding rank
    0's pools (``objective_state``) and rank 1's (``objective_state_ranks``) gives each rank its own back; a rank it
    has none for keeps its fresh pools and says so."""
    import json

    from pix2gan.checkpoint import load_checkpoint, save_checkpoint
    from pix2gan.config import DataConfig, ModelConfig, Norm, RunConfig
    from pix2gan.data.intensity import intensity_maps
    from pix2gan.nets.registry import build_cycle_networks
    from pix2gan.tasks.unpaired_objective import CycleObjective
    from pix2gan.train.optim import build_optimizers, build_schedulers
    from pix2gan.train.state import LoopState, Trainables, checkpoint_payload, restore

    cfg = RunConfig(model=ModelConfig(generator="resnet9", norm=Norm.INSTANCE, dropout=False, base_filters=2,
                                      disc_filters=2, disc_layers=2))  # fmt: skip

    def parts(rank: int) -> Trainables:
        g, d = build_cycle_networks(cfg)
        opt_g, opt_d = build_optimizers(g, d, cfg.train)
        return Trainables(g, d, opt_g, opt_d, *build_schedulers(opt_g, opt_d, 10),
                          objective=CycleObjective(pool_size=2, seed=5, rank=rank))  # fmt: skip

    single = CycleObjective(pool_size=2, seed=5)
    ranks = [parts(r) for r in (0, 1)]
    assert_identical(ranks[0].objective.state_dict(), single.state_dict())  # (one process = rank 0)
    rngs = [p.objective.pool_a.generator.get_state() for p in ranks]
    assert not torch.equal(rngs[0], rngs[1])
    for r, p in enumerate(ranks):  # fill each rank's pools with images of its own, then draw once more
        for value in (r, r + 0.5):
            p.objective.pool_a(torch.full((2, 1, 4, 4), float(value)))
            p.objective.pool_b(torch.full((2, 1, 4, 4), -float(value)))
    src, dst = intensity_maps(DataConfig())
    extra = {"intensity": json.dumps({"src": src.to_dict(), "dst": dst.to_dict()})}
    payload = checkpoint_payload(cfg, extra, ranks[0], LoopState(step=2, world=2, per_epoch=10))
    save_checkpoint(tmp_path / "c.pt", {**payload, "objective_state_ranks": {"1": ranks[1].objective.state_dict()}})
    ckpt = load_checkpoint(tmp_path / "c.pt")  # (weights_only)

    for r in (0, 1, 2):
        fresh = parts(r)
        before = fresh.objective.state_dict()
        restore(ckpt, fresh, LoopState(world=2, per_epoch=10), rank=r)
        expected = ranks[r].objective.state_dict() if r < 2 else before
        assert_identical(fresh.objective.state_dict(), expected, f"rank {r}")
    assert "no objective state (history pools) saved for rank 2" in caplog.text
