"""Precision, gradient scaling, channels-last and device crops: what the step runs in, and that resume keeps it."""

from __future__ import annotations

import pytest
import torch

import pix2gan.train.state as state_mod
from pix2gan.runs import RunLayout
from pix2gan.config import TrainConfig
from pix2gan.train.hardware import StepContext
from pix2gan.device import resolve_precision
from pix2gan.errors import TrainingInterrupted
from pix2gan.tasks.paired import PairedObjective
from pix2gan.train import fit, resume_run, train_step
from conftest import tiny_config

CPU = torch.device("cpu")


def test_resolve_precision():
    assert resolve_precision("auto", CPU) is None and resolve_precision("fp32", CPU) is None
    assert resolve_precision("bf16", CPU) == torch.bfloat16 and resolve_precision("fp16", CPU) == torch.float16
    with pytest.raises(ValueError, match="--precision must be one of auto, fp32, bf16, fp16"):
        resolve_precision("fp8", CPU)
    with pytest.raises(ValueError, match="precision must be auto, fp32, bf16 or fp16"):
        TrainConfig(precision="half")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_runs_the_forward_in_low_precision_and_keeps_fp32_weights(dtype):
    from pix2gan.config import ModelConfig, RunConfig
    from pix2gan.nets import build_networks
    from pix2gan.train import build_optimizers

    cfg = RunConfig(model=ModelConfig(depth=3, base_filters=4, disc_filters=4, disc_layers=2))
    g, d = build_networks(cfg)
    opt_g, opt_d = build_optimizers(g, d, cfg.train)
    ctx = StepContext(device=CPU, dtype=dtype)
    with ctx.autocast():
        assert g(torch.zeros(1, 1, 32, 32)).dtype == dtype
    assert (ctx.scaler is not None) == (dtype == torch.float16)  # fp16 gets a gradient scaler
    before = [p.detach().clone() for p in g.parameters()]
    batch = {"src": torch.rand(2, 1, 32, 32) * 2 - 1, "dst": torch.rand(2, 1, 32, 32) * 2 - 1}
    for _ in range(20):  # fp16: the scaler skips the first steps while it lowers its scale from 2^16
        losses = train_step(PairedObjective(), batch, g, d, opt_g, opt_d, ctx=ctx)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert all(p.dtype == torch.float32 for p in g.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, g.parameters(), strict=True))  # it did update


def test_timings_are_charged_per_phase():
    from pix2gan.config import ModelConfig, RunConfig
    from pix2gan.nets import build_networks
    from pix2gan.train import build_optimizers

    cfg = RunConfig(model=ModelConfig(depth=3, base_filters=4, disc_filters=4, disc_layers=2))
    g, d = build_networks(cfg)
    opt_g, opt_d = build_optimizers(g, d, cfg.train)
    ctx = StepContext(device=CPU, timings={})
    train_step(PairedObjective(), {"src": torch.zeros(1, 1, 32, 32), "dst": torch.zeros(1, 1, 32, 32)}, g, d, opt_g, opt_d,
               ctx=ctx)
    assert set(ctx.timings) == {"G", "D", "optimiser"} and all(v > 0 for v in ctx.timings.values())


def test_channels_last_batches():
    ctx = StepContext(device=CPU, channels_last=True)
    out = ctx.prepare({"src": torch.zeros(2, 1, 8, 8), "label": torch.zeros(2, dtype=torch.long)})
    assert out["src"].is_contiguous(memory_format=torch.channels_last) and out["label"].dim() == 1


def test_device_crops_train_exactly_like_cpu_crops(tiny_data, tmp_path):
    """Crops cut on the device (kornia) feed the same numbers as crops cut in the data set: same final weights."""
    runs = {}
    for on_device in (False, True):
        run = tmp_path / f"device{int(on_device)}"
        fit(tiny_config(tiny_data, epochs=1, device_crop=on_device), run, progress=False)
        runs[on_device] = torch.load(RunLayout(run).latest, weights_only=True)["generator"]
    assert all(torch.equal(runs[False][k], runs[True][k]) for k in runs[False])


def test_fp16_channels_last_run_resumes_bit_identical_with_its_scaler(tiny_data, tmp_path, monkeypatch):
    cfg = lambda: tiny_config(tiny_data, epochs=2, precision="fp16", channels_last=True)  # noqa: E731
    fit(cfg(), tmp_path / "reference", progress=False)
    reference = torch.load(RunLayout(tmp_path / "reference").latest, weights_only=True)
    assert reference["scaler"]["scale"] > 0

    real_count = state_mod.LoopState.count

    def stop_at_step_3(state, losses):  # as if Ctrl-C arrived during step 3
        ok = real_count(state, losses)
        if state.step == 3:
            import signal

            signal.raise_signal(signal.SIGINT)
        return ok

    monkeypatch.setattr(state_mod.LoopState, "count", stop_at_step_3)
    with pytest.raises(TrainingInterrupted, match="step 3 of"):
        fit(cfg(), tmp_path / "resumed", progress=False)
    monkeypatch.setattr(state_mod.LoopState, "count", real_count)
    resume_run(tmp_path / "resumed", progress=False)
    resumed = torch.load(RunLayout(tmp_path / "resumed").latest, weights_only=True)
    for key in ("generator", "discriminator"):
        assert all(torch.equal(reference[key][k], resumed[key][k]) for k in reference[key])
    assert resumed["scaler"] == reference["scaler"]


def test_translate_in_bf16_is_close_to_fp32(tiny_run, tiny_data):
    import numpy as np

    from pix2gan.infer.translate import Translator
    from pix2gan.io import load_volume

    volume = load_volume(tiny_data / "sub-001" / "t1.nii.gz").data
    fp32 = Translator.from_checkpoint(RunLayout(tiny_run).latest, device="cpu").translate_array(volume)
    bf16 = Translator.from_checkpoint(RunLayout(tiny_run).latest, device="cpu", precision="bf16").translate_array(volume)
    assert not np.array_equal(fp32, bf16)  # it did run in bf16
    assert np.abs(fp32 - bf16).mean() < 0.02 * 4024  # within 2 % of the HU range on average
