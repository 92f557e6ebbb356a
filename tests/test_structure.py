"""The layout holds: every module imports on its own (no import cycles), old checkpoints still work, and Python
callers get the CLI's defaults."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import pix2gan
from pix2gan.checkpoint import load_checkpoint
from pix2gan.config import Mode, RunConfig
from pix2gan.infer.translate import Translator
from pix2gan.io import GEOMETRY_FIELDS
from pix2gan.runs import RunLayout
from pix2gan.train import fit
from pix2gan_cli.app import app

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory) -> Path:
    from pix2gan.data.digits import write_digit_folder

    root = tmp_path_factory.mktemp("digits") / "digits"
    write_digit_folder(root, per_class=8, size=28, seed=0)
    return root
MODULES = sorted(m.name for m in pkgutil.walk_packages(pix2gan.__path__, "pix2gan."))


_FRESH_IMPORTS = """
import importlib, sys
import numpy, torch, nibabel, rich  # third-party packages load once; every pix2gan module is imported afresh
failures = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "pix2gan" or m.startswith(("pix2gan.", "pix2gan_cli"))]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failures.append(f"{name}: {type(exc).__name__}: {exc}")
print("\\n".join(failures))
sys.exit(1 if failures else 0)
"""


def test_every_module_imports_on_its_own():
    """Each module imported first, with no other pix2gan module loaded: a cycle fails whichever module enters it first."""
    done = subprocess.run([sys.executable, "-c", _FRESH_IMPORTS, *MODULES, "pix2gan_cli.app"], capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert {"pix2gan.nets.registry", "pix2gan.tasks.paired", "pix2gan.train.loop", "pix2gan.infer.translate"} <= set(MODULES)


def test_a_checkpoint_written_before_the_restructuring_still_translates(tmp_path):
    """tests/data holds a checkpoint and a translation made by commit 3a50455 (see tests/data/README.md)."""
    ckpt = load_checkpoint(DATA / "old_paired_checkpoint.pt")
    assert ckpt.mode == Mode.PAIRED and ckpt.config.model.generator == "unet"  # the default filled in
    out = tmp_path / "ct.nii.gz"
    result = CliRunner().invoke(app, ["translate", str(DATA / "old_source_t1.nii.gz"), "--checkpoint",
                                      str(DATA / "old_paired_checkpoint.pt"), "-o", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    new, old, src = nib.load(out), nib.load(DATA / "old_expected_ct.nii.gz"), nib.load(DATA / "old_source_t1.nii.gz")
    assert new.shape == src.shape == (27, 31, 9)
    np.testing.assert_array_equal(new.affine, src.affine)
    for key in GEOMETRY_FIELDS:
        np.testing.assert_array_equal(new.header[key], src.header[key])
    # the same weights and arithmetic on the same machine: equal to float rounding across BLAS builds
    np.testing.assert_allclose(new.get_fdata(), old.get_fdata(), atol=0.05)


def test_translator_rebuilds_the_old_generator_through_the_registry():
    tr = Translator.from_checkpoint(DATA / "old_paired_checkpoint.pt", device="cpu")
    assert type(tr.generator).__name__ == "UNetGenerator" and tr.multiple == 2**tr.config.model.depth


@pytest.mark.parametrize("mode", ["noise", "class"])
def test_python_callers_get_the_cli_defaults(mode, digits_dir, tmp_path):
    """fit() of a config built in Python trains with the same settings as `pix2gan train --mode MODE`."""
    cli_run = tmp_path / "cli"
    result = CliRunner().invoke(app, ["train", "--mode", mode, "--data", str(digits_dir), "--run-dir", str(cli_run),
                                      "--epochs", "1", "--no-progress", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    py_run = tmp_path / "python"
    cfg = RunConfig.from_options(mode, data=str(digits_dir), epochs=1, device="cpu")
    fit(cfg, py_run, progress=False)
    cli_cfg, py_cfg = (json.loads(RunLayout(r).config.read_text()) for r in (cli_run, py_run))
    assert cli_cfg == py_cfg
    assert py_cfg["train"]["batch_size"] == 32 and py_cfg["gan"]["generator"] == "dcgan"  # not the paired defaults
    # a config built field by field gets the mode's defaults too
    plain = RunConfig(train=pix2gan.TrainConfig(mode=mode))
    assert (plain.train.epochs, plain.train.batch_size) == (200, 32)
    for key in ("generator", "discriminator"):
        a, b = (torch.load(RunLayout(r).latest, weights_only=True)[key] for r in (cli_run, py_run))
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_paired_recommendations_apply_unless_given():
    """`pix2gan train` (and RunConfig.from_options) use the benchmark's recommendations; a field-by-field config and
    noise/class runs keep pix2pix's / DCGAN's values, and a GAN term brings pix2pix's learning rate back."""
    from pix2gan.options import REGRESSION_LR, run_config

    cfg = run_config("paired")
    assert (cfg.train.gan_loss, cfg.train.lr, cfg.data.context, cfg.infer.tta) == ("none", REGRESSION_LR, 2, True)
    assert cfg.train.epochs == 150 and RunConfig().train.epochs == 100
    gan = run_config("paired", gan_loss="lsgan")
    assert (gan.train.lr, gan.data.context) == (2e-4, 2)
    assert run_config("paired", gan_loss="none", lr=5e-4).train.lr == 5e-4
    pix2pix = run_config("paired", gan_loss="lsgan", context=0, tta=False, epochs=100)
    assert pix2pix.to_dict() == {**RunConfig(data=pix2pix.data).to_dict()}  # the dataclasses' pix2pix defaults
    plain = RunConfig()
    assert (plain.train.gan_loss, plain.train.lr, plain.data.context, plain.infer.tta) == ("lsgan", 2e-4, 0, False)
    noise = run_config("noise")
    assert (noise.train.gan_loss, noise.train.lr, noise.data.context, noise.infer.tta) == ("lsgan", 2e-4, 0, False)
