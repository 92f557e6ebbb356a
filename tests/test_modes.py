"""Noise and class modes through the CLI: train, sample, eval, and what paired-only commands refuse."""

from __future__ import annotations

import json
import math
import shutil
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


# Sample grids of 28-px images: each drawn at 2x (56 px) with 2-px white gaps, plus a 90-px margin for row labels.
TILE, GAP, LABEL_MARGIN = 56, 2, 90
SAMPLE_KINDS = {  # name: (options, rows, columns, rows labelled)
    "all": (["--label", "all"], 10, 6, True),  # a row per class, 64 // 10 = 6 samples (the same z per column)
    "label7": (["--label", "7", "--n", "16"], 4, 4, False),  # 16 samples of class 7 in a 4 x 4 square
    "walk": (["--walk", "2", "--steps", "5"], 5, 6, True),  # a row per value of z[2], a column per seed (6)
    "interpolate": (["--interpolate", "--steps", "6"], 10, 6, True),  # a row per class, a column per point
}


@pytest.fixture(scope="module")
def sample_pngs(class_run, tmp_path_factory) -> dict[str, np.ndarray]:
    folder = tmp_path_factory.mktemp("samples")
    pngs = {}
    for name, (args, *_) in SAMPLE_KINDS.items():
        result = cli("sample", "--run", class_run, *args, "-o", folder / f"{name}.png")
        assert result.exit_code == 0, result.output
        pngs[name] = np.asarray(Image.open(folder / f"{name}.png").convert("RGB"))
    return pngs


def _tiles(png: np.ndarray, rows: int, cols: int, labelled: bool) -> np.ndarray:
    """The (rows, cols, 56, 56) gray tiles of a sample grid, after checking its size and white gaps."""
    left = LABEL_MARGIN if labelled else GAP
    assert png.shape == (GAP + rows * (TILE + GAP), left + cols * (TILE + GAP), 3)
    assert (png[..., 0] == png[..., 1]).all() and (png[..., 0] == png[..., 2]).all()  # 1-channel samples: gray
    gray = png[..., 0]
    assert (gray[:GAP] == 255).all() and (gray[:, left - GAP : left] == 255).all()
    tiles = np.empty((rows, cols, TILE, TILE), np.uint8)
    for r in range(rows):
        y = GAP + r * (TILE + GAP)
        assert (gray[y + TILE : y + TILE + GAP] == 255).all()  # the gap below every row
        for c in range(cols):
            x = left + c * (TILE + GAP)
            assert (gray[y : y + TILE, x + TILE : x + TILE + GAP] == 255).all()  # the gap right of every tile
            tile = gray[y : y + TILE, x : x + TILE]
            assert (tile[0::2, 0::2] == tile[1::2, 1::2]).all()  # each sample pixel drawn as a 2 x 2 block
            tiles[r, c] = tile
    if labelled:
        assert (gray[:, : left - GAP] < 128).any()  # row label text in the margin
    return tiles


@pytest.mark.parametrize("kind", SAMPLE_KINDS)
def test_sample_kinds_layout(sample_pngs, kind):
    _, rows, cols, labelled = SAMPLE_KINDS[kind]
    tiles = _tiles(sample_pngs[kind], rows, cols, labelled)
    flat = tiles.reshape(rows * cols, -1)
    assert all((t != 255).any() for t in flat)  # every cell holds a sample, none is left blank
    if kind == "label7":  # one class, 16 latent vectors: 16 different samples
        assert len(np.unique(flat, axis=0)) == 16
    elif kind == "walk":  # the rows sweep z[2]: every row differs from every other, column by column
        assert all(not np.array_equal(tiles[a, c], tiles[b, c]) for c in range(cols) for a in range(rows) for b in range(a))
    else:  # a row per class: within each column (one latent vector or interpolation point) the classes differ
        assert all(not np.array_equal(tiles[a, c], tiles[b, c]) for c in range(cols) for a in range(rows) for b in range(a))
        if kind == "interpolate":  # the path moves from seed 0's z to seed 1's: its two ends differ in every row
            assert all(not np.array_equal(tiles[r, 0], tiles[r, -1]) for r in range(rows))


def test_sample_kinds_give_different_images(sample_pngs):
    tiles = {kind: _tiles(sample_pngs[kind], rows, cols, labelled) for kind, (_, rows, cols, labelled) in SAMPLE_KINDS.items()}
    kinds = list(tiles)
    for i, a in enumerate(kinds):
        for b in kinds[:i]:
            rows, cols = min(tiles[a].shape[0], tiles[b].shape[0]), min(tiles[a].shape[1], tiles[b].shape[1])
            assert not np.array_equal(tiles[a][:rows, :cols], tiles[b][:rows, :cols]), (a, b)
    # --label all and --interpolate draw the same layout (10 classes x 6): it is the contents that differ
    assert sample_pngs["all"].shape == sample_pngs["interpolate"].shape
    assert not np.array_equal(sample_pngs["all"], sample_pngs["interpolate"])


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


GAN_METRICS = ["frechet_distance", "kid", "diversity_generated", "diversity_real", "diversity_ratio"]


def _check_gan_figures(report: dict, mode: str, generated: int, real: int) -> dict[str, float]:
    """Figures every noise/class report shares, checked against each other; returns the metrics."""
    metrics = report["metrics"]
    assert report["mode"] == mode
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    assert metrics["frechet_distance"] >= 0 and metrics["diversity_generated"] >= 0 and metrics["diversity_real"] > 0
    assert metrics["diversity_ratio"] == pytest.approx(metrics["diversity_generated"] / metrics["diversity_real"], rel=1e-12)
    # no Inception weights: FID skipped (said so, nothing downloaded); the counts behind the figures are stated
    assert "fid" not in metrics and "kid_inception" not in metrics
    assert any("InceptionV3 space skipped" in note for note in report["notes"])
    assert any(note.startswith(f"{generated} generated vs {real} real images") for note in report["notes"])
    return metrics


def test_eval_class_run(class_run, tmp_path):
    out = tmp_path / "gan.json"
    result = cli("eval", "--run", class_run, "--n-per-class", "8", "--json", out)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    # 8 generated per class for 10 classes; all 120 real digits (12 per class), as the cap is --n-samples (1000)
    metrics = _check_gan_figures(report, "class", generated=80, real=120)
    assert set(metrics) == {"classifier_accuracy", "class_consistency", *GAN_METRICS}
    per_class = report["per_class"]
    assert list(per_class) == [str(d) for d in range(10)]
    # each class has 8 samples, so its consistency is k / 8, and (equal counts) the overall figure is their mean
    assert all(0 <= v <= 1 and (8 * v).is_integer() for v in per_class.values()), per_class
    assert metrics["class_consistency"] == pytest.approx(sum(per_class.values()) / 10, abs=1e-12)
    # the classifier is scored on ceil(10 % of 120) = 12 held-out real digits
    assert 0 <= metrics["classifier_accuracy"] <= 1 and 12 * metrics["classifier_accuracy"] == pytest.approx(
        round(12 * metrics["classifier_accuracy"]), abs=1e-9
    )
    assert report["grids"] == [str(class_run / "eval" / "samples.png")]
    assert (class_run / "eval" / "samples.png").is_file()
    assert "skipped" in result.output and "class consistency of generated images" in result.output
    assert f"{100 * metrics['class_consistency']:.1f} %" in result.output  # the table shows what the JSON holds


def test_eval_noise_run(noise_run, tmp_path):
    out = tmp_path / "n.json"
    result = cli("eval", "--run", noise_run, "--n-samples", "64", "--json", out)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    # 64 generated; --n-samples also caps the real images: 64 of the 120
    metrics = _check_gan_figures(report, "noise", generated=64, real=64)
    assert set(metrics) == set(GAN_METRICS)  # no classifier, no class consistency in noise mode
    assert report["per_class"] == {}
    assert report["grids"] == [str(noise_run / "eval" / "samples.png")]
    assert f"{metrics['diversity_ratio']:.4g}" in result.output


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


def _sampling_tools():
    """GanSampler and the class-consistency classifier."""
    from pix2gan.evaluation.features import class_consistency, train_classifier
    from pix2gan.infer.sample import GanSampler

    return GanSampler, train_classifier, class_consistency


def test_class_walk_holds_the_class_fixed(class_run):
    """A classifier that tells the generator's classes apart sees the asked-for class at every step of a walk.

    After 2 epochs the generator's digits are not recognisable (a classifier of real digits is at chance on them) and
    its label barely shows beside z. So its label embedding is amplified 10x (the class then dominates its output)
    and the class-consistency classifier is trained on its own class-conditioned samples; held out, it must name
    their class every time before its verdict on the walks counts.
    """
    from pix2gan.checkpoint import load_checkpoint

    GanSampler, train_classifier, class_consistency = _sampling_tools()
    sampler = GanSampler(load_checkpoint(class_run / "checkpoints" / "latest.pt"), device="cpu")
    with torch.no_grad():
        sampler.generator.embed.weight.mul_(10.0)
    labels = torch.arange(10).repeat_interleave(20)
    z = torch.randn(len(labels), sampler.latent_dim, generator=torch.Generator().manual_seed(1))
    classifier, accuracy = train_classifier(torch.from_numpy(sampler.generate(z, labels)), labels, 10, epochs=10,
                                            batch_size=20, lr=1e-2, holdout=0.25, width=8, seed=0)  # fmt: skip
    assert accuracy == 1.0  # 50 held-out samples
    for label, dim in (("4", 1), ("7", 5), (None, 1)):  # no label: the first class, "0"
        images, seeds, rows = sampler.walk(dim, seeds=3, steps=5, span=3.0, label=label)
        assert images.shape == (15, 1, 28, 28) and seeds == 3 and rows == [f"z[{dim}]={v:+.1f}" for v in (-3, -1.5, 0, 1.5, 3)]
        assert len(np.unique(images.reshape(15, -1), axis=0)) == 15  # z[dim] and the seed change every image
        asked = torch.full((15,), int(label or 0))
        assert class_consistency(classifier, torch.from_numpy(images), asked) == 1.0, label


def test_eval_with_checkpoint_only(class_run, tmp_path):
    """--checkpoint alone: the run is the checkpoint's folder, and that checkpoint (not latest.pt) is evaluated.

    The checkpoint given has a generator with every weight and bias zeroed: all its samples are the same flat image,
    so its diversity is 0 and the classifier puts every sample in one class: class consistency exactly 1 / 10.
    """
    run = tmp_path / "run"
    shutil.copytree(class_run, run, ignore=shutil.ignore_patterns("eval"))
    raw = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
    raw["generator"] = {k: torch.zeros_like(v) if k.endswith(("weight", "bias")) else v for k, v in raw["generator"].items()}
    torch.save(raw, run / "checkpoints" / "zeroed.pt")
    out = tmp_path / "zeroed.json"
    result = cli("eval", "--checkpoint", run / "checkpoints" / "zeroed.pt", "--n-per-class", "4", "--json", out)
    assert result.exit_code == 0, result.output
    assert f"{run}-classmode" in "".join(result.output.split())  # the table's title (wrapped at 80 columns) names the run
    assert "class consistency of generated images" in result.output and f"metrics written to {out}" in result.output
    report = json.loads(out.read_text())
    metrics = _check_gan_figures(report, "class", generated=40, real=120)
    assert metrics["diversity_generated"] == 0 and metrics["diversity_ratio"] == 0
    assert metrics["class_consistency"] == pytest.approx(0.1)
    assert sorted(report["per_class"].values()) == [0.0] * 9 + [1.0]
    assert report["grids"] == [str(run / "eval" / "samples.png")] and (run / "eval" / "samples.png").is_file()
    # the run's own latest.pt gives other figures: it was not used above
    latest = tmp_path / "latest.json"
    assert cli("eval", "--run", run, "--n-per-class", "4", "--json", latest).exit_code == 0
    assert json.loads(latest.read_text())["metrics"]["diversity_generated"] > 0
