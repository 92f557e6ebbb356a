"""``pix2gan train --config FILE`` (flat option names or a run's config.json; options given win) and ``PIX2GAN_RUNS``
(where new runs go and where the newest run is looked for)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import assert_identical, assert_one_clear_line, final_state
from pix2gan.config import RunConfig
from pix2gan.config.files import load_config_file, run_config_with_file
from pix2gan.errors import InputError
from pix2gan.options import run_config
from pix2gan.runs import RunLayout, find_latest_run, new_run_dir, resolve_run, runs_root
from pix2gan_cli.app import app

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "t1_ct.yaml"
TINY = ["--depth", "3", "--filters", "4", "--disc-filters", "4", "--disc-layers", "2", "--image-size", "32",
        "--batch-size", "4", "--device", "cpu", "--threads", "1", "--no-progress"]  # fmt: skip
TINY_YAML = """\
depth: 3
filters: 4
disc-filters: 4
disc_layers: 2
image-size: 32
batch_size: 4
device: cpu
threads: 1
"""


def cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def original(tiny_data, tmp_path_factory) -> Path:
    """A tiny run with settings beyond the defaults (a GAN term, context, a weighted L1), trained through the CLI."""
    run = tmp_path_factory.mktemp("original") / "A"
    result = cli("train", "--data", tiny_data, "--run-dir", run, "--epochs", "1", *TINY, "--gan-loss", "lsgan",
                 "--context", "1", "--mask-weight", "0.9", "--seed", "7")  # fmt: skip
    assert result.exit_code == 0, result.output
    return run


# --------------------------------------------------------------------------------------------------------------------
# a run's config.json
# --------------------------------------------------------------------------------------------------------------------
def test_training_from_a_runs_config_json_repeats_it_bit_for_bit(original, tmp_path, monkeypatch):
    """`train --config A/config.json --run-dir B`: the same configuration, weights, optimiser states and step log.
    From another folder: the data root in config.json is absolute, where the original data were."""
    monkeypatch.chdir(tmp_path)
    again = tmp_path / "B"
    result = cli("train", "--config", RunLayout(original).config, "--run-dir", again, "--no-progress")
    assert result.exit_code == 0, result.output
    assert json.loads(RunLayout(again).config.read_text()) == json.loads(RunLayout(original).config.read_text())
    assert_identical(final_state(again), final_state(original), "B")
    assert RunLayout(again).log.read_text() == RunLayout(original).log.read_text()
    assert RunLayout(again).split.read_text() == RunLayout(original).split.read_text()


def test_a_runs_config_json_loads_as_its_run_config(original):
    saved = json.loads(RunLayout(original).config.read_text())
    cfg = load_config_file(RunLayout(original).config)
    assert isinstance(cfg, RunConfig) and cfg == RunConfig.from_dict(saved) and cfg.to_dict() == saved
    # options given override single fields, the rest stays as resolved in the file (no recommendations re-applied)
    cfg = run_config_with_file(RunLayout(original).config, epochs=3, dst="t1", beta1=0.9)
    assert (cfg.train.epochs, cfg.data.dst, cfg.data.dst_intensity, cfg.train.betas) == (3, "t1", "percentile", (0.9, 0.999))
    assert (cfg.train.gan_loss, cfg.train.lr, cfg.data.context, cfg.train.seed) == ("lsgan", 2e-4, 1, 7)
    assert run_config_with_file(RunLayout(original).config, data="elsewhere").data.root == str(Path("elsewhere").resolve())
    # a section or field the file lacks takes the dataclass default, as a config written by an older version does
    del saved["infer"], saved["train"]["tensorboard"]
    assert RunConfig.from_dict(saved).infer.tta is False and RunConfig.from_dict(saved).train.tensorboard is False


# --------------------------------------------------------------------------------------------------------------------
# flat option names
# --------------------------------------------------------------------------------------------------------------------
def test_flat_yaml_options(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("src: t1\ndst: ct\nepochs: 50\ngan-loss: lsgan\nplanes: [axial, coronal]\nlambda_l1: 50\n"
                    "lr: 1e-3\nmask: null\nflip: false\nbeta2: 0.99\n")  # fmt: skip
    options = load_config_file(path)
    assert options == {"src": "t1", "dst": "ct", "epochs": 50, "gan_loss": "lsgan", "planes": ("axial", "coronal"),
                       "lambda_l1": 50.0, "lr": 1e-3, "mask": "", "flip": False, "beta2": 0.99}  # fmt: skip
    assert run_config_with_file(path) == run_config("paired", **options)
    cfg = run_config_with_file(path)
    assert (cfg.data.mask, cfg.data.planes, cfg.train.betas, cfg.data.context) == (None, ("axial", "coronal"), (0.5, 0.99), 2)
    # null: the default, as an option not given
    path.write_text("epochs: null\ngan-loss: null\ndata: null\n")
    assert load_config_file(path) == {"epochs": None, "gan_loss": None, "data": None}
    assert run_config_with_file(path) == run_config("paired")
    # a JSON file of the same options, and the mode from the file unless --mode is given
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"mode": "class", "epochs": 3, "filters": 8}))
    assert run_config_with_file(path).gan.gen_filters == 8 and run_config_with_file(path).mode == "class"
    assert run_config_with_file(path, "noise").mode == "noise"


def test_the_example_config_parses_to_its_options():
    assert load_config_file(EXAMPLE) == {
        "mode": "paired", "data": "samples", "src": "t1", "dst": "ct", "mask": "mask",
        "planes": ("axial", "coronal", "sagittal"), "context": 2, "gan_loss": "none", "mask_weight": 0.95,
        "lambda_ssim": 1.0, "epochs": 150, "batch_size": 4, "image_size": 64, "lr": 1e-3, "seed": 0, "tta": True,
        "fusion": "mean", "tensorboard": False,
    }  # fmt: skip
    cfg = run_config_with_file(EXAMPLE)
    assert cfg.data.planes == ("axial", "coronal", "sagittal") and cfg.data.context == 2 and cfg.train.lambda_ssim == 1.0


def test_options_given_on_the_command_line_win_over_the_file(tiny_data, tmp_path):
    path = tmp_path / "cfg.yml"
    path.write_text(f"data: {tiny_data}\n{TINY_YAML}epochs: 5\ngan_loss: lsgan\nplanes: [axial, coronal]\nseed: 3\n")
    run = tmp_path / "run"
    result = cli("train", "--config", path, "--epochs", "1", "--seed", "4", "--planes", "axial", "--run-dir", run,
                 "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    saved = RunConfig.from_dict(json.loads(RunLayout(run).config.read_text()))
    assert (saved.train.epochs, saved.train.seed, saved.data.planes) == (1, 4, ("axial",))  # given
    assert (saved.train.gan_loss, saved.model.depth, saved.data.root) == ("lsgan", 3, str(tiny_data))  # the file's
    assert saved.data.context == 2  # neither: the library's default for the mode


# --------------------------------------------------------------------------------------------------------------------
# errors: one line naming the file and the key, exit code 2, nothing written
# --------------------------------------------------------------------------------------------------------------------
BAD_FILES = {
    "wrong-type": ("cfg.yaml", "epochs: many\n", "cfg.yaml: epochs: expected an integer, got 'many'"),
    "list-for-number": ("cfg.yaml", "lr: [1, 2]\n", "cfg.yaml: lr: expected a number, got [1, 2]"),
    "bool-for-number": ("cfg.yaml", "batch-size: true\n", "cfg.yaml: batch-size: expected an integer, got true"),
    "number-for-flag": ("cfg.yaml", "flip: 1\n", "cfg.yaml: flip: expected true or false, got 1"),
    "bad-enum": ("cfg.yaml", "gan_loss: lsgann\n", "cfg.yaml: gan_loss: expected one of lsgan, vanilla, hinge, none, got 'lsgann'"),
    "bad-mode": ("cfg.yaml", "mode: cgan\n", "cfg.yaml: mode: expected one of paired, noise, class, unpaired, got 'cgan'"),
    "unknown-key": ("cfg.yaml", "epoch: 3\n", "cfg.yaml: epoch: unknown option (did you mean 'epochs'?)"),
    "cli-only-key": ("cfg.yaml", "nproc: 2\n", "cfg.yaml: nproc: unknown option"),
    "twice": ("cfg.yaml", "gan-loss: lsgan\ngan_loss: none\n", "cfg.yaml: gan_loss: option given twice"),
    "out-of-range": ("cfg.yaml", "depth: 99\n", "cfg.yaml: ModelConfig.depth must be in [2, 10], got 99"),
    "bad-plane": ("cfg.yaml", "planes: [axial, front]\n", "cfg.yaml: DataConfig.planes: 'front' is not one of"),
    "not-a-mapping": ("cfg.yaml", "- epochs\n", "cfg.yaml: expected a mapping of option names to values, got ['epochs']"),
    "bad-yaml": ("cfg.yaml", "planes: [axial\n", "cfg.yaml: not valid YAML (line 2, column 1"),
    "bad-json": ("cfg.json", '{"epochs": 3', "cfg.json: not valid JSON (line 1, column 13"),
    "suffix": ("cfg.toml", "epochs = 3\n", "cfg.toml: a config file is .yaml, .yml or .json"),
    "nested-wrong-type": ("run.json", '{"train": {"epochs": "x"}}', "run.json: train.epochs: expected an integer, got 'x'"),
    "nested-unknown-field": ("run.json", '{"train": {"epoch": 3}}', "run.json: train.epoch: unknown field (did you mean 'epochs'?)"),
    "nested-unknown-section": ("run.json", '{"trian": {"epochs": 3}}', "run.json: trian: unknown option (did you mean 'train'?)"),
    "nested-mixed": ("run.json", '{"train": {"epochs": 3}, "epochs": 3}', "run.json: epochs: unknown section"),
    "nested-bad-enum": ("run.json", '{"model": {"norm": "layer"}}', "run.json: model.norm: expected one of batch, instance, got 'layer'"),
    "nested-section-not-mapping": ("run.json", '{"train": {"epochs": 3}, "data": "x"}', "run.json: data: expected a mapping of fields, got 'x'"),
}


@pytest.mark.parametrize("case", BAD_FILES.values(), ids=list(BAD_FILES))
def test_a_bad_config_file_is_one_line_and_writes_nothing(case, tmp_path, monkeypatch):
    name, text, needle = case
    monkeypatch.chdir(tmp_path)  # messages name the file as given
    Path(name).write_text(text)
    result = cli("train", "--config", name, "--run-dir", tmp_path / "run", "--data", tmp_path / "no-data",
                 "--device", "cpu", "--no-progress")  # fmt: skip
    assert_one_clear_line(result, needle)
    assert sorted(os.listdir(tmp_path)) == [name]  # no run folder, nothing else
    with pytest.raises(InputError, match="^" + re.escape(needle)):
        run_config_with_file(name)


def test_a_missing_file_and_conflicts_are_one_line(original, tmp_path):
    assert_one_clear_line(cli("train", "--config", tmp_path / "none.yaml", *TINY), "none.yaml: config file not found")
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    assert_one_clear_line(cli("train", "--config", folder, *TINY), "folder.yaml: not a file")
    result = cli("train", "--config", RunLayout(original).config, "--mode", "noise", "--run-dir", tmp_path / "r")
    assert_one_clear_line(result, "holds a paired-mode run configuration; --mode noise cannot change it")
    result = cli("train", "--config", RunLayout(original).config, "--resume", original)
    assert_one_clear_line(result, "--config does not go with --resume")
    assert sorted(os.listdir(tmp_path)) == ["folder.yaml"]


# --------------------------------------------------------------------------------------------------------------------
# PIX2GAN_RUNS
# --------------------------------------------------------------------------------------------------------------------
def test_pix2gan_runs_is_read_at_call_time(tmp_path, monkeypatch):
    monkeypatch.delenv("PIX2GAN_RUNS", raising=False)
    assert runs_root() == Path("runs") and new_run_dir("t12ct").parent == Path("runs")
    monkeypatch.setenv("PIX2GAN_RUNS", str(tmp_path / "elsewhere"))
    assert runs_root() == tmp_path / "elsewhere" and new_run_dir("t12ct").parent == tmp_path / "elsewhere"
    with pytest.raises(InputError, match="elsewhere: no trained run found"):
        find_latest_run()
    monkeypatch.setenv("PIX2GAN_RUNS", "")  # empty: the default
    assert runs_root() == Path("runs")


def test_train_translate_and_eval_use_pix2gan_runs(original, tiny_data, tmp_path, monkeypatch):
    """New runs go to $PIX2GAN_RUNS; translate and eval without --run pick the newest run there, not one in ./runs."""
    runs = tmp_path / "shared-runs"
    monkeypatch.setenv("PIX2GAN_RUNS", str(runs))
    monkeypatch.chdir(tmp_path)
    result = cli("train", "--data", tiny_data, "--epochs", "1", *TINY, "--gan-loss", "lsgan", "--context", "1",
                 "--mask-weight", "0.9", "--seed", "7")  # fmt: skip
    assert result.exit_code == 0, result.output
    (trained,) = runs.iterdir()
    assert trained.name.startswith("t12ct-") and RunLayout(trained).latest.is_file()
    assert not (tmp_path / "runs").exists()
    assert_identical(final_state(trained), final_state(original), "trained")  # the same options, the same run
    # a newer run beside it, and a still newer one in ./runs that must not be picked
    newer, decoy = runs / "newer", tmp_path / "runs" / "decoy"
    shutil.copytree(trained, newer)
    shutil.copytree(trained, decoy)
    now = RunLayout(trained).latest.stat().st_mtime
    os.utime(RunLayout(newer).latest, (now + 10, now + 10))
    os.utime(RunLayout(decoy).latest, (now + 20, now + 20))
    assert resolve_run().run_dir == newer
    scan = tmp_path / "scan.nii.gz"
    shutil.copy(next(tiny_data.glob("*/t1.nii.gz")), scan)
    result = cli("translate", scan, "-o", tmp_path / "out.nii.gz", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert str(RunLayout(newer).best) in "".join(result.output.split()), result.output  # (lines wrapped)
    result = cli("eval", "--device", "cpu", "--no-baseline", "--out", tmp_path / "eval")
    assert result.exit_code == 0, result.output
    assert str(newer) in "".join(result.output.split()), result.output
