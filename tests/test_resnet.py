from pathlib import Path

import pytest
import torch
from torch import nn

from pix2gan.config import ModelConfig, Norm, RunConfig
from pix2gan.nets import init_weights
from pix2gan.nets.resnet import ResnetGenerator, resnet6, resnet9


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


PIX2PIX = ModelConfig(in_channels=3, out_channels=3, base_filters=64, norm=Norm.BATCH)


@pytest.mark.parametrize(("build", "expected"), [(resnet9, 11_383_427), (resnet6, 7_841_411)])
def test_pix2pix_parameter_counts(build, expected):
    g = build(RunConfig(model=PIX2PIX))
    assert isinstance(g, ResnetGenerator)
    assert n_params(g) == expected


def test_blocks_and_multiple():
    assert resnet9(RunConfig()).blocks == 9 and resnet6(RunConfig()).blocks == 6
    assert ResnetGenerator(ModelConfig(base_filters=4), blocks=1).multiple == 4


def test_instance_norm_has_conv_biases_and_no_affine():
    """9 blocks, ngf 64, 3 -> 3. Batch norm: 11,383,427 including 10,496 affine norm parameters
    (2 * (64 + 128 + 256 + 18 * 256 + 128 + 64)); instance norm: none of those, but every convolution gets a bias
    (64 + 128 + 256 + 18 * 256 + 128 + 64 = 5,248): 11,383,427 - 10,496 + 5,248 = 11,378,179."""
    g = ResnetGenerator(ModelConfig(in_channels=3, out_channels=3, base_filters=64, norm=Norm.INSTANCE), blocks=9)
    assert n_params(g) == 11_378_179
    convs = [m for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert len(convs) == 1 + 2 + 18 + 2 + 1 and all(m.bias is not None for m in convs)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in g.modules())
    batch = ResnetGenerator(PIX2PIX, blocks=9)
    biased = [m for m in batch.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.bias is not None]
    assert len(biased) == 1  # only the output convolution


def test_dropout_follows_config():
    on = ResnetGenerator(ModelConfig(base_filters=4, dropout=True), blocks=3)
    off = ResnetGenerator(ModelConfig(base_filters=4, dropout=False), blocks=3)
    assert sum(isinstance(m, nn.Dropout) for m in on.modules()) == 3
    assert not any(isinstance(m, nn.Dropout) for m in off.modules())
    assert n_params(on) == n_params(off)


@pytest.mark.parametrize("norm", [Norm.BATCH, Norm.INSTANCE])
def test_shape_range_and_gradients(norm):
    torch.manual_seed(0)
    g = ResnetGenerator(ModelConfig(in_channels=2, out_channels=1, base_filters=4, norm=norm), blocks=2)
    init_weights(g)
    x = torch.randn(2, 2, 20, 28, requires_grad=True)
    y = g(x)
    assert y.shape == (2, 1, 20, 28)
    assert y.min() >= -1 and y.max() <= 1
    y.mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in g.parameters())


@pytest.mark.parametrize("shape", [(1, 1, 18, 28), (1, 1, 20, 30), (1, 1, 21, 21), (1, 20, 28)])
def test_refuses_sizes_not_multiples_of_4(shape):
    g = ResnetGenerator(ModelConfig(base_filters=4), blocks=1)
    with pytest.raises(ValueError, match=r"multiples of 4.*" + str(shape[-1])):
        g(torch.zeros(shape))


def test_negative_blocks_refused():
    with pytest.raises(ValueError, match="blocks"):
        ResnetGenerator(ModelConfig(), blocks=-1)


def test_resnet_generators_end_to_end_through_the_cli(tiny_data, tmp_path):
    """--generator resnet9 / resnet6 through every command: train, resume, translate (odd, oblique), eval, sample."""
    import json

    import nibabel as nib
    import numpy as np
    from typer.testing import CliRunner

    from pix2gan.checkpoint import load_checkpoint
    from pix2gan.runs import RunLayout
    from pix2gan_cli.app import app

    runner = CliRunner()
    source = Path(__file__).parent / "data" / "old_source_t1.nii.gz"  # 27 x 31 x 9: not a multiple of 4 in-plane
    for name in ("resnet9", "resnet6"):
        run = tmp_path / name
        args = ["train", "--data", str(tiny_data), "--generator", name, "--filters", "4", "--disc-filters", "4",
                "--disc-layers", "2", "--image-size", "32", "--epochs", "1", "--device", "cpu", "--run-dir", str(run),
                "--no-progress"]  # fmt: skip
        assert (result := runner.invoke(app, args)).exit_code == 0, result.output
        ckpt = load_checkpoint(RunLayout(run).latest)
        assert ckpt.config.model.generator == name and type(ckpt.generator()).__name__ == "ResnetGenerator"
        assert (result := runner.invoke(app, ["train", "--resume", str(run)])).exit_code == 0, result.output
        out = tmp_path / f"{name}_ct.nii.gz"
        result = runner.invoke(app, ["translate", str(source), "--run", str(run), "-o", str(out), "--device", "cpu"])
        assert result.exit_code == 0, result.output
        written, src = nib.load(out), nib.load(source)
        assert written.shape == src.shape and np.array_equal(written.affine, src.affine)
        assert np.isfinite(written.get_fdata()).all() and written.get_fdata().max() > -1024  # HU, not [-1, 1]
        report = tmp_path / f"{name}.json"
        result = runner.invoke(app, ["eval", "--run", str(run), "--json", str(report), "--device", "cpu", "--no-baseline"])
        assert result.exit_code == 0, result.output
        assert set(json.loads(report.read_text())["mean"]) == {"mae", "mae_air", "mae_soft", "mae_bone", "psnr", "ssim",
                                                               "nps_ratio", "nps_lsd", "sharpness", "sharpness_bone",
                                                               "hu_w1", "std_error_spearman", "std_mean"}  # fmt: skip
        panel = tmp_path / f"{name}.png"
        result = runner.invoke(app, ["sample", "--run", str(run), "-o", str(panel), "--device", "cpu"])
        assert result.exit_code == 0 and panel.stat().st_size > 0, result.output


def test_unknown_or_foreign_generator_names_are_one_clear_line(tiny_data, tmp_path):
    from typer.testing import CliRunner

    from pix2gan_cli.app import app

    for args, expected in ((["--generator", "vit"], "--generator 'vit': unknown; paired mode has: unet, resnet9, resnet6"),
                           (["--generator", "dcgan"], "--generator 'dcgan': not a paired-mode network")):  # fmt: skip
        result = CliRunner().invoke(app, ["train", "--data", str(tiny_data), "--run-dir", str(tmp_path / "r"), *args])
        assert result.exit_code == 2 and expected in " ".join(result.output.split())
        assert not (tmp_path / "r").exists()
