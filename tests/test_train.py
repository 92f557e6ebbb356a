import csv
import json

import pytest
import torch

from pix2gan.runs import RunLayout
from pix2gan.config import ModelConfig, RunConfig, TrainConfig
from pix2gan.train import fit, linear_decay
from pix2gan.errors import InputError
from conftest import tiny_config


def test_logs_and_validation(tiny_run):
    layout = RunLayout(tiny_run)
    with open(layout.log) as fh:
        rows = list(csv.DictReader(fh))
    assert {"epoch", "step", "lr", "loss_g", "loss_g_gan", "loss_g_l1", "loss_d", "loss_d_real", "loss_d_fake"} <= set(rows[0])
    assert [int(r["step"]) for r in rows] == list(range(1, len(rows) + 1))
    with open(layout.epochs) as fh:
        epochs = list(csv.DictReader(fh))
    assert [int(e["epoch"]) for e in epochs] == [1, 2]
    assert all(float(e["val_mae"]) > 0 for e in epochs)  # HU inside the validation masks
    config = json.loads(layout.config.read_text())
    assert config["train"]["lr"] == 2e-4 and config["train"]["lambda_l1"] == 100.0


def test_pix2pix_defaults():
    t = TrainConfig()
    assert (t.lr, t.betas, t.lambda_l1, t.init_gain, t.gan_loss) == (2e-4, (0.5, 0.999), 100.0, 0.02, "lsgan")


def test_linear_decay_second_half():
    f = linear_decay(100)
    assert [f(s) for s in (0, 25, 50)] == [1.0, 1.0, 1.0]
    assert f(75) == pytest.approx(0.5) and f(100) == 0.0


def test_lr_decays_in_the_run(tiny_run):
    with open(RunLayout(tiny_run).log) as fh:
        lrs = [float(r["lr"]) for r in csv.DictReader(fh)]
    assert lrs[0] == pytest.approx(2e-4) and lrs[-1] < lrs[0] and lrs == sorted(lrs, reverse=True)


def test_training_improves_validation(tiny_data, tmp_path):
    """More epochs on the same data: validation MAE in HU goes down."""
    result = fit(tiny_config(tiny_data, epochs=10, batch_size=2, lr=2e-3), tmp_path / "run", progress=False)
    maes = [e["val_mae"] for e in result.epochs]
    assert min(maes[-3:]) < 0.5 * maes[0]


def test_same_seed_same_weights(tiny_data, tmp_path):
    a = fit(tiny_config(tiny_data, epochs=1), tmp_path / "a", progress=False)
    b = fit(tiny_config(tiny_data, epochs=1), tmp_path / "b", progress=False)
    wa = torch.load(a.layout.latest, weights_only=True)["generator"]
    wb = torch.load(b.layout.latest, weights_only=True)["generator"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_refusals(tiny_data, tiny_run, tmp_path):
    with pytest.raises(InputError, match="already holds a run"):
        fit(tiny_config(tiny_data), tiny_run, progress=False)
    bad = tiny_config(tiny_data, image_size=20)
    with pytest.raises(InputError, match=r"--image-size 20 is not a multiple of 8, the padding multiple of the unet generator"):
        fit(bad, tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()
    same = tiny_config(tiny_data)
    same.data.dst = "t1"
    with pytest.raises(InputError, match="both 't1'"):
        fit(same, tmp_path / "same", progress=False)
    with pytest.raises(ValueError, match="norm"):
        ModelConfig(norm="group")


def test_separate_discriminator_learning_rate():
    from pix2gan.nets import build_networks
    from pix2gan.train import build_optimizers

    cfg = RunConfig(model=ModelConfig(depth=3, base_filters=4, disc_filters=4))
    g, d = build_networks(cfg)
    opt_g, opt_d = build_optimizers(g, d, TrainConfig(lr=1e-4, lr_d=4e-4))
    assert opt_g.param_groups[0]["lr"] == 1e-4 and opt_d.param_groups[0]["lr"] == 4e-4
    _, opt_d = build_optimizers(g, d, TrainConfig(lr=1e-4))
    assert opt_d.param_groups[0]["lr"] == 1e-4
    with pytest.raises(ValueError, match="lr, lr_d and lr_gan must be > 0"):
        TrainConfig(lr_d=0.0)


def test_best_checkpoint_without_validation_subjects(tiny_data, tmp_path):
    cfg = tiny_config(tiny_data, epochs=2)
    cfg.data.val_fraction = 0.0
    result = fit(cfg, tmp_path / "noval", progress=False)
    assert result.split["val"] == [] and result.layout.best.is_file()  # chosen by training L1


def test_an_interrupt_inside_an_epoch_saves_its_step_once(tiny_data, tmp_path, monkeypatch):
    """Ctrl-C on a step that is also a --checkpoint-every step: one save of that step, not two."""
    import signal

    import pix2gan.train.loop as loop_mod
    import pix2gan.train.state as state_mod
    from pix2gan.errors import TrainingInterrupted

    saved: list[int] = []
    real_save, real_count = loop_mod.save_run_checkpoint, state_mod.LoopState.count

    def counting_save(layout, payload, *, step, keep_last, best):
        saved.append(step)
        return real_save(layout, payload, step=step, keep_last=keep_last, best=best)

    def interrupt_at_step_2(state, losses):
        ok = real_count(state, losses)
        if state.step == 2:
            signal.raise_signal(signal.SIGINT)
        return ok

    monkeypatch.setattr(loop_mod, "save_run_checkpoint", counting_save)
    monkeypatch.setattr(state_mod.LoopState, "count", interrupt_at_step_2)
    with pytest.raises(TrainingInterrupted, match="step 2 of"):
        fit(tiny_config(tiny_data, epochs=3, checkpoint_every=2), tmp_path / "run", progress=False)
    assert saved == [2]
