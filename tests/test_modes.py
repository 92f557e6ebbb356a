"""Noise and class modes through the CLI: train, sample, eval, and what paired-only commands refuse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pix2gan.data.digits import write_digit_folder
from test_cli import assert_one_clear_line, cli

TINY_GAN = ["--image-size", "28", "--filters", "8", "--disc-filters", "8", "--latent-dim", "16", "--embed-dim", "8",
            "--batch-size", "16", "--epochs", "2", "--no-progress", "--device", "cpu"]  # fmt: skip


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("digits") / "digits"
    write_digit_folder(root, per_class=12, size=28, seed=0)
    return root


@pytest.fixture(scope="module")
def class_run(digits, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("gan") / "class"
    result = cli("train", "--mode", "class", "--data", digits, "--run-dir", run, *TINY_GAN)
    assert result.exit_code == 0, result.output
    return run


@pytest.fixture(scope="module")
def noise_run(digits, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("gan") / "noise"
    result = cli("train", "--mode", "noise", "--data", digits, "--run-dir", run, *TINY_GAN)
    assert result.exit_code == 0, result.output
    return run


@pytest.mark.parametrize("which", ["class_run", "noise_run"])
def test_run_folder_like_paired(which, request):
    run = request.getfixturevalue(which)
    for name in ("config.json", "log.csv", "epochs.csv", "loss_curve.png", "checkpoints/latest.pt",
                 "panels/epoch_001.png", "panels/epoch_002.png"):  # fmt: skip
        assert (run / name).is_file(), name
    raw = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
    info = json.loads(raw["data_info"])
    config = json.loads(raw["config"])
    assert config["gan"]["channels"] == 1 and config["gan"]["image_size"] == 28
    if which == "class_run":
        assert raw["mode"] == "class" and info["class_names"] == [str(d) for d in range(10)]
        assert config["gan"]["num_classes"] == 10
        # one row per class in the per-epoch grid: 10 rows of 28 px at 2x
        assert Image.open(run / "panels" / "epoch_002.png").size[1] > 10 * 56
    else:
        assert raw["mode"] == "noise" and config["gan"]["num_classes"] == 0


def test_fixed_noise_grids_are_reproducible(class_run, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert cli("sample", "--run", class_run, "--seed", "3", "-o", a).exit_code == 0
    assert cli("sample", "--run", class_run, "--seed", "3", "-o", b).exit_code == 0
    assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
    assert_one_clear_line(cli("sample", "--run", class_run, "--seed", "3", "-o", a), "already exists")


@pytest.mark.parametrize(
    "args",
    [["--label", "all"], ["--label", "7", "--n", "16"], ["--walk", "2", "--steps", "5"], ["--interpolate", "--steps", "6"]],
)
def test_sample_kinds(class_run, tmp_path, args):
    out = tmp_path / "s.png"
    result = cli("sample", "--run", class_run, *args, "-o", out)
    assert result.exit_code == 0, result.output
    assert Image.open(out).size[0] > 50


def test_sample_bad_options(class_run, noise_run):
    assert_one_clear_line(cli("sample", "--run", class_run, "--label", "eleven"), "--label 'eleven' is not a class")
    assert_one_clear_line(cli("sample", "--run", noise_run, "--walk", "99"), "--walk 99: latent coordinates are 0 .. 15")


def test_noise_sample_default_output(noise_run):
    result = cli("sample", "--run", noise_run, "--n", "9", "--seed", "5")
    assert result.exit_code == 0, result.output
    assert (noise_run / "samples" / "grid-seed5.png").is_file()


def test_translate_refuses_generative_checkpoints(class_run, tmp_path, tiny_data):
    result = cli("translate", tiny_data / "sub-001" / "t1.nii.gz", "--run", class_run, "-o", tmp_path / "o.nii.gz")
    assert_one_clear_line(result, "checkpoint is from a class-mode run; this command needs a paired-mode model")
    assert not (tmp_path / "o.nii.gz").exists()


def test_eval_class_run(class_run, tmp_path):
    out = tmp_path / "gan.json"
    result = cli("eval", "--run", class_run, "--n-per-class", "8", "--json", out)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    for key in ("classifier_accuracy", "class_consistency", "frechet_distance", "kid", "diversity_generated",
                "diversity_real", "diversity_ratio"):  # fmt: skip
        assert key in report["metrics"], key
    assert 0 <= report["metrics"]["class_consistency"] <= 1 and report["metrics"]["frechet_distance"] >= 0
    assert sorted(report["per_class"]) == sorted(str(d) for d in range(10))
    assert "skipped" in result.output  # no Inception weights: said in one line, nothing downloaded
    assert (class_run / "eval" / "samples.png").is_file()


def test_eval_noise_run(noise_run, tmp_path):
    result = cli("eval", "--run", noise_run, "--n-samples", "64", "--json", tmp_path / "n.json")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "n.json").read_text())["metrics"]
    assert "class_consistency" not in metrics and metrics["diversity_real"] > 0


def test_class_mode_needs_classes(tmp_path):
    one = tmp_path / "one"
    (one / "a").mkdir(parents=True)
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(one / "a" / "x.png")
    result = cli("train", "--mode", "class", "--data", one, "--run-dir", tmp_path / "r", *TINY_GAN)
    assert_one_clear_line(result, "needs at least 2 class subfolders")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_torchvision_names_fail_clearly_without_torchvision_or_files(name, tmp_path):
    result = cli("train", "--mode", "noise", "--data", name, "--data-root", tmp_path, "--run-dir", tmp_path / "r", *TINY_GAN)
    assert_one_clear_line(result, name)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--mode", "cgan"], "--mode 'cgan' is not one of paired, noise, class"),
        (["--mode", "noise", "--image-size", "48"], "image_size must be 28, 32, 64 or 128"),
        (["--mode", "noise", "--gan-loss", "wgan"], "'wgan' is not one of lsgan, vanilla, hinge"),
    ],
)
def test_bad_mode_options(digits, tmp_path, args, needle):
    result = cli("train", "--data", digits, "--run-dir", tmp_path / "r", "--epochs", "1", "--no-progress", *args)
    assert_one_clear_line(result, needle)


def test_nifti_slices_with_level_labels(tiny_data, tmp_path):
    """With NIfTI data, class mode labels slices by anatomical level (3 classes)."""
    run = tmp_path / "lvl"
    result = cli("train", "--mode", "class", "--data", tiny_data, "--src", "t1", "--run-dir", run, *TINY_GAN)
    assert result.exit_code == 0, result.output
    info = json.loads(torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["data_info"])
    assert info["class_names"] == ["lower", "middle", "upper"]


def test_noise_mode_accepts_ct_slices_and_refuses_labels(tiny_data, noise_run, tmp_path):
    """--src ct with the default --dst ct is fine outside paired mode; --label on a noise model is an error."""
    run = tmp_path / "ct"
    result = cli("train", "--mode", "noise", "--data", tiny_data, "--src", "ct", "--run-dir", run, *TINY_GAN)
    assert result.exit_code == 0, result.output
    assert_one_clear_line(cli("sample", "--run", noise_run, "--label", "3"), "labels apply to class-mode runs")


def test_class_walk_holds_the_class_fixed(class_run, tmp_path):
    from pix2gan.checkpoint import load_checkpoint
    from pix2gan.sampling import GanSampler

    sampler = GanSampler(load_checkpoint(class_run / "checkpoints" / "latest.pt"), device="cpu")
    a, _, _ = sampler.walk(1, seeds=2, steps=3, label="4")
    b, _, _ = sampler.walk(1, seeds=2, steps=3, label="4")
    assert np.array_equal(a, b)
    assert sampler._labels(None, 3, 0).tolist() == [0, 0, 0]


def test_eval_with_checkpoint_only(class_run, tmp_path):
    result = cli("eval", "--checkpoint", class_run / "checkpoints" / "latest.pt", "--n-per-class", "4")
    assert result.exit_code == 0, result.output
