"""GAN training that keeps the HU: ``--gan-warmup`` (regression epochs first, then the adversarial term) and the
realism dial (``--realism``: the regression snapshot and the adversarial generator blended weight by weight).

One tiny warm-up run (2 epochs of 6 steps, F = 0.5: the switch after step 6, a checkpoint every step) is trained
through the command line once for the module; the tests read its checkpoints, resume it from around the switch, and
translate, evaluate and export it at several realisms.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from helpers import assert_identical, assert_one_clear_line, final_state, run_at_step
from pix2gan.checkpoint import load_checkpoint
from pix2gan.config import GanLoss, RunConfig, TrainConfig
from pix2gan.errors import InputError
from pix2gan.infer.translate import Ensemble, Translator
from pix2gan.nets import blend_state_dicts
from pix2gan.runs import RunLayout
from pix2gan.train import resume_run
from pix2gan_cli.app import app

TINY = ["--depth", "3", "--filters", "4", "--disc-filters", "4", "--disc-layers", "2", "--image-size", "32",
        "--batch-size", "4", "--epochs", "2", "--device", "cpu", "--threads", "2", "--no-progress"]  # fmt: skip
runner = CliRunner()


@pytest.fixture(scope="module")
def warm(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The warm-up run (``pix2gan train --gan-warmup 0.5``), with what each step saw: the objective's D updates, the
    discriminator's weights, opt_d's state and learning rate, and opt_g's learning rate before the step."""
    import pix2gan.train.loop as loop

    seen: list[tuple[int, dict, int, float]] = []
    real_step = loop.train_step

    def spy(objective, batch, g, d, opt_g, opt_d, **kw):  # noqa: ANN001, ANN202
        d_state = {k: v.clone() for k, v in d.state_dict().items()}
        seen.append((objective.d_steps, d_state, len(opt_d.state), opt_d.param_groups[0]["lr"], opt_g.param_groups[0]["lr"]))
        return real_step(objective, batch, g, d, opt_g, opt_d, **kw)

    run = tmp_path_factory.mktemp("warm") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop, "train_step", spy)
        result = runner.invoke(app, ["train", "--data", str(tiny_data), *TINY, "--gan-warmup", "0.5", "--no-tta",
                                     "--checkpoint-every", "1", "--keep-last", "100", "--run-dir", str(run)])  # fmt: skip
    assert result.exit_code == 0, result.output
    return {"run": run, "seen": seen}


def _step(run: Path, step: int) -> dict:
    return torch.load(RunLayout(run).checkpoints / f"step_{step:08d}.pt", weights_only=True)


def test_the_switch_is_exact_and_d_starts_there(warm):
    run, seen = warm["run"], warm["seen"]
    assert load_checkpoint(RunLayout(run).latest).config.train.warmup_epochs == 1
    assert [d_steps for d_steps, *_ in seen] == [0] * 6 + [1] * 6  # epoch 1 regression alone, epoch 2 adversarial
    initial = seen[0][1]
    for i in range(7):  # D untouched before every warm-up step and before the first adversarial one
        assert_identical(seen[i][1], initial, f"D before step {i + 1}")
        assert seen[i][2] == 0, f"opt_d has a state before step {i + 1}"
    assert seen[7][2] > 0  # the first adversarial step (7) updated D
    assert seen[6][3] == 2e-4  # D's learning rate (pix2pix's) starts at its full value at the switch
    # G's schedule (at the regression's 1e-3) decays to 0 over the warm-up and starts again at the switch
    decay = [1e-3] * 4 + [1e-3 * 2 / 3, 1e-3 / 3]
    assert [lr for *_, lr in seen] == pytest.approx(decay + decay, rel=1e-12)
    for step in range(1, 7):
        raw = _step(run, step)
        assert ("generator_regression" in raw) == (step == 6)
        assert_identical(raw["discriminator"], initial, f"D at step {step}")
        assert raw["opt_d"]["state"] == {} and raw["sched_d"]["last_epoch"] == 0
    snapshot = _step(run, 6)["generator"]  # the generator at the end of the warm-up ...
    for step in range(6, 13):  # ... kept in its checkpoint and every later one
        assert_identical(_step(run, step)["generator_regression"], snapshot, f"snapshot at step {step}")
    last = _step(run, 12)
    # D's linear decay is sized for the 6 adversarial steps: it ends at 0 (sized for all 12 it would still be at 2e-4)
    assert last["sched_d"]["last_epoch"] == 6 and last["opt_d"]["param_groups"][0]["lr"] == 0.0
    assert last["opt_g"]["param_groups"][0]["lr"] == 0.0
    # best.pt is an adversarial epoch's (both generators); warm-up rows log D's columns as nan
    assert "generator_regression" in torch.load(RunLayout(run).best, weights_only=True)
    rows = (run / "log.csv").read_text().splitlines()
    assert rows[0].split(",")[-3:] == ["loss_d", "loss_d_real", "loss_d_fake"]
    assert rows[6].endswith("nan,nan,nan") and "nan" not in rows[7]


@pytest.mark.parametrize("resume_at", [4, 6, 8])
def test_resume_across_the_switch_is_bit_identical(warm, tmp_path, monkeypatch, resume_at):
    """Resumed inside the warm-up, at the switch, and after it: the run that never stopped, snapshot included."""
    import pix2gan.train.loop as loop

    for drawing in ("_write_report", "save_loss_curve"):  # (figures only: not what is compared, and slow)
        monkeypatch.setattr(loop, drawing, lambda *args, **kwargs: None)
    run = warm["run"]
    copy = run_at_step(run, tmp_path / "run", resume_at)
    resume_run(copy, progress=False)
    assert_identical(final_state(copy), final_state(run), f"resumed at {resume_at}")
    assert "generator_regression" in final_state(copy)
    assert (copy / "log.csv").read_text() == (run / "log.csv").read_text()


def test_the_dial_at_0_and_1_gives_the_stored_generators_bit_for_bit(warm):
    ckpt = load_checkpoint(RunLayout(warm["run"]).latest)
    regression, adversarial = ckpt.raw["generator_regression"], ckpt.raw["generator"]
    assert_identical(ckpt.generator(realism=0.0).state_dict(), regression, "realism 0")
    assert_identical(ckpt.generator(realism=1.0).state_dict(), adversarial, "realism 1")
    assert_identical(ckpt.generator().state_dict(), adversarial, "the default, 1.0")
    half = ckpt.generator(realism=0.5).state_dict()
    stats = [k for k in half if k.endswith("running_var")]
    assert stats, "the U-Net's batch-norm statistics are blended too"
    for key, value in half.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, (regression[key] + adversarial[key]) / 2, rtol=0, atol=1e-6)
        else:
            assert torch.equal(value, adversarial[key]), key
    assert not torch.equal(half[stats[0]], adversarial[stats[0]])
    ckpt.config.infer.realism = 0.5  # the run's recorded default (train --realism) is what translate uses unasked
    assert_identical(ckpt.generator().state_dict(), half, "the recorded default")


def test_blend_refuses_other_networks_and_values():
    a = {"w": torch.zeros(2)}
    with pytest.raises(ValueError, match="alpha must be in"):
        blend_state_dicts(a, a, 1.5)
    with pytest.raises(ValueError, match="different entries"):
        blend_state_dicts(a, {"v": torch.zeros(2)}, 0.5)
    with pytest.raises(ValueError, match=r"w is \(2,\)"):
        blend_state_dicts(a, {"w": torch.zeros(3)}, 0.5)


def test_warmup_options_and_refusals(tiny_data, tmp_path):
    cfg = RunConfig.from_options("paired", gan_warmup=0.5, epochs=4)  # the recommended none gives way to lsgan
    assert (cfg.train.gan_loss.value, cfg.train.warmup_epochs, cfg.infer.realism) == ("lsgan", 2, 1.0)
    # a warm-up is a regression: G at the regression's learning rate, D at pix2pix's; --lr-gan for G after the switch
    assert (cfg.train.lr, cfg.train.lr_d, cfg.train.lr_gan) == (1e-3, 2e-4, None)
    assert RunConfig.from_options("paired", gan_warmup=0.5, lr=5e-4, lr_gan=1e-4).train.lr_d is None  # (= --lr)
    assert RunConfig.from_options("paired").train.gan_warmup == 0.75  # the paired default since issue 18
    assert RunConfig.from_options("paired", gan_loss="none").train.gan_warmup == 0.0
    assert RunConfig.from_options("paired", realism=0.3).infer.realism == 0.3
    for kwargs, message in (({"gan_warmup": 1.0}, r"in \[0, 1\)"), ({"gan_warmup": 0.5, "gan_loss": "none"}, "gan-loss is none"),
                            ({"gan_warmup": 0.5, "epochs": 1}, "one regression and one adversarial epoch"),
                            ({"gan_warmup": 0.1, "epochs": 4}, "gives 0 warm-up epochs"),
                            ({"lr_gan": 1e-4, "epochs": 4}, "--lr-gan is the generator's learning rate after a --gan-warmup"),
                            ({"gan_warmup": 0.5, "epochs": 4, "gan_warmup_epochs": 4}, "one regression and one adversarial"),
                            ({"gan_warmup": 0.5, "mode": "noise"}, "for paired runs")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            TrainConfig(**kwargs)
    result = runner.invoke(app, ["train", "--data", str(tiny_data), *TINY, "--gan-loss", "none", "--gan-warmup", "0.5",
                                 "--run-dir", str(tmp_path / "r")])  # fmt: skip
    assert_one_clear_line(result, "--gan-warmup needs an adversarial term")
    assert not (tmp_path / "r").exists()


def _nifti(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj, dtype=np.float32)


def test_translate_eval_export_and_ensembles_at_a_realism(warm, tiny_run, tiny_data, tmp_path):
    run, best = warm["run"], RunLayout(warm["run"]).best
    sid = RunLayout(run).read_split()["test"][0]
    src = tiny_data / sid / "t1.nii.gz"
    result = runner.invoke(app, ["translate", str(src), "--run", str(run), "--realism", "0.5", "-o",
                                 str(tmp_path / "half.nii.gz"), "--device", "cpu"])  # fmt: skip
    assert result.exit_code == 0, result.output
    half = _nifti(tmp_path / "half.nii.gz")
    python = Translator.from_checkpoint(best, device="cpu", realism=0.5).translate_file(src, tmp_path / "py.nii.gz")
    assert np.array_equal(_nifti(python), half)  # the Python API gives what the command gives

    # eval scores the same prediction
    result = runner.invoke(app, ["eval", "--run", str(run), "--realism", "0.5", "--no-baseline", "--device", "cpu",
                                 "--out", str(tmp_path / "eval")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert np.array_equal(_nifti(tmp_path / "eval" / f"{sid}_ct.nii.gz"), half)

    # an export at 0.5 is the same generator: within 1e-4 HU of translate --realism 0.5; it is one generator only
    model = tmp_path / "m.pt2"
    result = runner.invoke(app, ["export", "--run", str(run), "--realism", "0.5", "-o", str(model)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["translate", str(src), "--model", str(model), "-o", str(tmp_path / "exported.nii.gz"),
                                 "--device", "cpu"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert np.abs(_nifti(tmp_path / "exported.nii.gz") - half).max() <= 1e-4
    result = runner.invoke(app, ["translate", str(src), "--model", str(model), "--realism", "0.3", "-o", str(tmp_path / "x.nii.gz")])
    assert_one_clear_line(result, f"{model}: an exported model is one generator (realism 0.5)")

    # an ensemble dials the members that hold both generators; the others are used as they are
    result = runner.invoke(app, ["translate", str(src), "--run", str(run), "--run", str(tiny_run), "--realism", "0.5",
                                 "-o", str(tmp_path / "ens.nii.gz"), "--device", "cpu"])  # fmt: skip
    assert result.exit_code == 0, result.output
    members = [Translator.from_checkpoint(best, device="cpu", realism=0.5),
               Translator.from_checkpoint(RunLayout(tiny_run).best, device="cpu")]  # fmt: skip
    expected = Ensemble(members).translate_file(src, tmp_path / "ens_py.nii.gz")
    assert np.array_equal(_nifti(tmp_path / "ens.nii.gz"), _nifti(expected))


def test_a_model_with_one_generator_refuses_another_realism(warm, tiny_run, tiny_data, tmp_path):
    src = next(tiny_data.iterdir()) / "t1.nii.gz"
    checkpoint = RunLayout(tiny_run).best  # adversarial, no warm-up: realism 1 only
    args = [str(src), "-o", str(tmp_path / "o.nii.gz"), "--device", "cpu"]
    result = runner.invoke(app, ["translate", *args, "--run", str(tiny_run), "--realism", "0.5"])
    assert_one_clear_line(result, f"{checkpoint}: --realism 0.5 needs both generators of a --gan-warmup run; this "
                                  "checkpoint was trained without --gan-warmup")  # fmt: skip
    result = runner.invoke(app, ["translate", *args, "--run", str(tiny_run), "--run", str(tiny_run), "--realism", "0"])
    assert_one_clear_line(result, "no model of the ensemble holds both generators")
    for command in (["eval", "--run", str(tiny_run)], ["export", "--run", str(tiny_run), "-o", str(tmp_path / "m.pt2")]):
        assert_one_clear_line(runner.invoke(app, [*command, "--realism", "0.5"]), f"{checkpoint}: --realism 0.5")
    assert not (tmp_path / "o.nii.gz").exists() and not (tmp_path / "m.pt2").exists()
    result = runner.invoke(app, ["translate", *args, "--run", str(tiny_run), "--realism", "1"])  # its only generator
    assert result.exit_code == 0, result.output
    with pytest.raises(InputError, match="saved during the regression warm-up"):  # a warm-up checkpoint: realism 0 only
        load_checkpoint(RunLayout(warm["run"]).checkpoints / "step_00000003.pt").generator(realism=1.0)
    regression = load_checkpoint(checkpoint)
    regression.config.train.gan_loss = GanLoss.NONE  # (as a --gan-loss none run's): realism 0 only
    assert regression.fixed_realism == 0.0 and regression.realism(0.0) == 0.0
    with pytest.raises(InputError, match=f"{checkpoint}: --realism 1 .* trained without a GAN term"):
        regression.generator(realism=1.0)


def test_a_resume_on_another_number_of_ranks_counts_d_schedule_from_the_switch():
    """Saved by 2 ranks (4 steps an epoch) 2 steps after a 1-epoch warm-up, resumed on 1 rank (8 steps an epoch):
    step 6 becomes 12, G's schedule stands at step 12 of 16, 4 steps into its second (adversarial, at lr_gan = 0.25 x lr)
    schedule, and D's at step 4 of its 8 (not 12: it would be at 0)."""
    from pix2gan.checkpoint import LoadedCheckpoint
    from pix2gan.train.optim import build_schedulers
    from pix2gan.train.runstate import rng_state
    from pix2gan.train.state import LoopState, Trainables, restore

    def parts(total: int, switch: int) -> Trainables:
        g, d = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)
        opt_g, opt_d = torch.optim.SGD(g.parameters(), lr=1.0), torch.optim.SGD(d.parameters(), lr=1.0)
        return Trainables(g, d, opt_g, opt_d, *build_schedulers(opt_g, opt_d, total, switch, gan_scale=0.25))

    old = parts(8, 4)
    for sched, steps in ((old.sched_g, 6), (old.sched_d, 2)):
        for _ in range(steps):
            sched.optimizer.step()
            sched.step()
    raw = {**old.state_dicts(), "step": 6, "rng": rng_state(), "progress": LoopState(world=2, per_epoch=4).to_json()}
    new, state = parts(16, 8), LoopState(world=1, per_epoch=8)
    restore(LoadedCheckpoint(Path("step_6.pt"), RunConfig(), None, None, raw, {}), new, state, warmup_epochs=1)
    assert (state.step, new.sched_g.last_epoch, new.sched_d.last_epoch) == (12, 12, 4)
    assert (new.opt_g.param_groups[0]["lr"], new.opt_d.param_groups[0]["lr"]) == (0.25, 1.0)
