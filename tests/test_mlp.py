import dataclasses

import pytest
import torch
from torch import nn

from pix2gan.config import GanModelConfig, RunConfig, TrainConfig
from pix2gan.losses import gan_loss
from pix2gan.nets import DCGANDiscriminator, init_weights
from pix2gan.nets.mlp import MLPDiscriminator, MLPGenerator, mlp_discriminator, mlp_generator


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


SMALL = GanModelConfig(latent_dim=8, channels=1, image_size=28)
COND = dataclasses.replace(SMALL, num_classes=10, embed_dim=4)


def test_parameter_counts_by_hand():
    """latent 8, 1 x 28 x 28 images (784 values); Linear = in * out + out, BatchNorm1d = 2 * width.

    Generator: 8->128 1,152; 128->256 33,024 + BN 512; 256->512 131,584 + BN 1,024; 512->1024 525,312 + BN 2,048;
        1024->784 803,600: 1,498,256.
    Discriminator: 784->512 401,920; 512->256 131,328; 256->1 257: 533,505.
    Conditional, 10 classes, embed_dim 4: each network adds a 10 x 4 embedding (40) and 4 inputs to its first layer:
        generator 4 * 128 = 512 -> 1,498,808; discriminator 4 * 512 = 2,048 -> 535,593.
    """
    assert n_params(MLPGenerator(SMALL)) == 1_498_256
    assert n_params(MLPDiscriminator(SMALL)) == 533_505
    assert n_params(MLPGenerator(COND)) == 1_498_808
    assert n_params(MLPDiscriminator(COND)) == 535_593


def test_layout():
    g = MLPGenerator(SMALL)
    assert [m.out_features for m in g.modules() if isinstance(m, nn.Linear)] == [128, 256, 512, 1024, 784]
    assert [m.num_features for m in g.modules() if isinstance(m, nn.BatchNorm1d)] == [256, 512, 1024]
    assert all(m.negative_slope == 0.2 for m in g.modules() if isinstance(m, nn.LeakyReLU))
    d = MLPDiscriminator(SMALL)
    assert [m.out_features for m in d.modules() if isinstance(m, nn.Linear)] == [512, 256, 1]
    assert not any(isinstance(m, (nn.Sigmoid, nn.BatchNorm1d)) for m in d.modules())


@pytest.mark.parametrize("z_shape", [(3, 8), (3, 8, 1, 1)])
def test_generator_shape_and_range(z_shape):
    torch.manual_seed(0)
    g = MLPGenerator(dataclasses.replace(SMALL, channels=3, image_size=32))
    init_weights(g)
    x = g(torch.randn(z_shape) * 50)  # large inputs saturate the tanh, never exceed it
    assert x.shape == (3, 3, 32, 32)
    assert x.min() >= -1 and x.max() <= 1


@pytest.mark.parametrize("z_shape", [(3, 9), (3, 8, 2, 1), (8,)])
def test_generator_refuses_bad_z(z_shape):
    with pytest.raises(ValueError, match="latent_dim=8"):
        MLPGenerator(SMALL)(torch.randn(z_shape))


def test_discriminator_shape_matches_dcgan():
    x = torch.randn(2, 1, 28, 28)
    d, ref = MLPDiscriminator(SMALL), DCGANDiscriminator(dataclasses.replace(SMALL, disc_filters=4))
    assert d(x).shape == ref(x).shape == (2,)
    assert torch.isfinite(gan_loss(d(x), True, "vanilla"))
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        d(torch.randn(2, 1, 32, 32))


def test_gradients_flow():
    torch.manual_seed(0)
    g, d = MLPGenerator(COND), MLPDiscriminator(COND)
    z, labels = torch.randn(4, 8, requires_grad=True), torch.tensor([0, 1, 2, 9])
    gan_loss(d(g(z, labels), labels), True, "lsgan", for_discriminator=False).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    for net in (g, d):
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    assert g.embed.weight.grad.abs().sum() > 0 and d.embed.weight.grad.abs().sum() > 0


def test_conditional_labels_change_the_image():
    torch.manual_seed(0)
    g = MLPGenerator(COND).eval()
    z = torch.randn(1, 8).repeat(2, 1)
    with torch.no_grad():
        a, b = g(z, torch.tensor([3, 3])), g(z, torch.tensor([3, 5]))
    assert torch.equal(a[0], a[1])
    assert not torch.allclose(b[0], b[1])
    d = MLPDiscriminator(COND).eval()
    x = torch.randn(1, 1, 28, 28).repeat(2, 1, 1, 1)
    logits = d(x, torch.tensor([0, 1]))
    assert logits[0] != logits[1]


def test_labels_required_or_refused():
    z, x = torch.randn(2, 8), torch.randn(2, 1, 28, 28)
    with pytest.raises(ValueError, match="labels are required"):
        MLPGenerator(COND)(z)
    with pytest.raises(ValueError, match="labels are required"):
        MLPDiscriminator(COND)(x)
    with pytest.raises(ValueError, match="must not be given"):
        MLPGenerator(SMALL)(z, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="must not be given"):
        MLPDiscriminator(SMALL)(x, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"in \[0, 10\)"):
        MLPGenerator(COND)(z, torch.tensor([0, 10]))
    with pytest.raises(ValueError, match="2 entries for a batch of 3"):
        MLPDiscriminator(COND)(torch.randn(3, 1, 28, 28), torch.tensor([0, 1]))


def test_unresolved_channels_refused():
    with pytest.raises(ValueError, match="channels"):
        MLPGenerator(dataclasses.replace(SMALL, channels=0))


def test_builders_follow_the_mode():
    gan = dataclasses.replace(COND)
    noise = RunConfig(train=TrainConfig(mode="noise"), gan=gan)
    assert not mlp_generator(noise).conditional and not mlp_discriminator(noise).conditional
    klass = RunConfig(train=TrainConfig(mode="class"), gan=gan)
    assert mlp_generator(klass).conditional and mlp_discriminator(klass).conditional
    with pytest.raises(ValueError, match="num_classes >= 2"):
        mlp_generator(RunConfig(train=TrainConfig(mode="class"), gan=SMALL))


@pytest.mark.parametrize("mode", ["noise", "class"])
def test_mlp_gan_trains_and_samples_through_the_cli(mode, tmp_path):
    """`--generator mlp --discriminator mlp`: the classic fully connected GAN next to the DCGAN, same tool."""
    from typer.testing import CliRunner

    from pix2gan.checkpoint import load_checkpoint
    from pix2gan.data.digits import write_digit_folder
    from pix2gan.runs import RunLayout
    from pix2gan_cli.app import app

    digits = tmp_path / "digits"
    write_digit_folder(digits, per_class=6, size=28, seed=0)
    run = tmp_path / "run"
    runner = CliRunner()
    args = ["train", "--mode", mode, "--data", str(digits), "--generator", "mlp", "--discriminator", "mlp",
            "--image-size", "28", "--latent-dim", "8", "--batch-size", "12", "--epochs", "2", "--device", "cpu",
            "--run-dir", str(run), "--no-progress"]  # fmt: skip
    assert (result := runner.invoke(app, args)).exit_code == 0, result.output
    ckpt = load_checkpoint(RunLayout(run).latest)
    g = ckpt.generator()
    assert type(g).__name__ == "MLPGenerator" and g.conditional == (mode == "class")
    log = (run / "log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,step,lr,loss_g,loss_d") and len(log) == 1 + 2 * 5  # 60 images / 12 per step
    grid = tmp_path / "grid.png"
    result = runner.invoke(app, ["sample", "--run", str(run), "-o", str(grid), "--n", "16", "--device", "cpu"])
    assert result.exit_code == 0 and grid.stat().st_size > 0, result.output
    weights = ckpt.raw["generator"]
    assert all(torch.isfinite(t).all() for t in weights.values() if t.is_floating_point())


def test_mlp_names_are_refused_in_paired_mode(tmp_path):
    from pix2gan.config import RunConfig
    from pix2gan.nets import check_architectures

    with pytest.raises(ValueError, match="--generator 'mlp': not a paired-mode network; paired mode has: unet"):
        check_architectures(RunConfig.from_options("paired", generator="mlp"))
