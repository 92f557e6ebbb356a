"""Slices of volumes for the noise and class modes (``pix2gan.data.volume_slices``, named ``nifti_slices`` before it
read every format): the source tag they record, and checkpoints that carry the old tag."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from typer.testing import CliRunner

from pix2gan.checkpoint import load_checkpoint, save_checkpoint
from pix2gan.data.images import load_images
from pix2gan.infer.sample import GanSampler
from pix2gan.runs import RunLayout
from pix2gan_cli.app import app

TINY_GAN = ["--image-size", "28", "--filters", "8", "--disc-filters", "8", "--latent-dim", "16", "--embed-dim", "8",
            "--batch-size", "16", "--epochs", "1", "--no-progress", "--device", "cpu"]  # fmt: skip


def cli(*args: str | os.PathLike):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_volume_slices_are_tagged_volumes(tiny_data: Path) -> None:
    data = load_images(tiny_data, image_size=16, labelled=False, src="ct")
    assert data.source == f"volumes:{tiny_data}:ct" and len(data) > 0


def test_a_class_run_saved_with_the_old_nifti_source_tag_loads_and_samples(tiny_data: Path, tmp_path: Path) -> None:
    """A class-mode checkpoint whose ``data_info`` names its data ``nifti:<root>:<modality>`` (written before the
    rename) loads, keeps its tag and class names, and samples through the command line like a new one."""
    run = tmp_path / "lvl"
    result = cli("train", "--mode", "class", "--data", tiny_data, "--src", "t1", "--run-dir", run, *TINY_GAN)
    assert result.exit_code == 0, result.output
    latest = RunLayout(run).latest
    raw = torch.load(latest, weights_only=True)
    info = json.loads(raw["data_info"])
    assert info["source"] == f"volumes:{tiny_data}:t1"  # what this version writes
    old = tmp_path / "old.pt"
    save_checkpoint(old, {**raw, "data_info": json.dumps({**info, "source": f"nifti:{tiny_data}:t1"})})

    ckpt = load_checkpoint(old)
    assert ckpt.info == {**info, "source": f"nifti:{tiny_data}:t1"}
    sampler = GanSampler(ckpt, device="cpu")
    assert sampler.class_names == ["lower", "middle", "upper"]
    new_images = GanSampler(load_checkpoint(latest), device="cpu").generate(sampler.latents(3, 0), torch.arange(3))
    assert (sampler.generate(sampler.latents(3, 0), torch.arange(3)) == new_images).all()  # the same generator
    png = tmp_path / "old.png"
    result = cli("sample", "--checkpoint", old, "--n", "6", "-o", png, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert png.stat().st_size > 0
