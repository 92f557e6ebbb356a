import dataclasses
import itertools

import pytest
import torch
from torch import nn

from pix2gan.config import GanModelConfig
from pix2gan.nets import (
    ConditionalDiscriminator,
    ConditionalGenerator,
    DCGANDiscriminator,
    DCGANGenerator,
    init_weights,
)
from pix2gan.nets.dcgan import dcgan_layout

SIZES = [28, 32, 64, 128]
CHANNELS = [1, 3]


def small(image_size: int, channels: int, **kw: int) -> GanModelConfig:
    return GanModelConfig(
        **{"latent_dim": 16, "channels": channels, "image_size": image_size, "gen_filters": 8, "disc_filters": 8, **kw}
    )


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def paper_config() -> GanModelConfig:
    return GanModelConfig(latent_dim=100, channels=3, image_size=64, gen_filters=64, disc_filters=64)


# --- unconditional ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("image_size", SIZES)
@pytest.mark.parametrize("channels", CHANNELS)
def test_generator_shape_and_range(image_size, channels):
    torch.manual_seed(0)
    g = DCGANGenerator(small(image_size, channels))
    init_weights(g)
    y = g(torch.randn(3, 16))
    assert y.shape == (3, channels, image_size, image_size)
    assert y.abs().max() <= 1.0  # tanh output
    assert g(torch.randn(3, 16, 1, 1)).shape == y.shape


@pytest.mark.parametrize("image_size", SIZES)
@pytest.mark.parametrize("channels", CHANNELS)
def test_discriminator_logits_and_features(image_size, channels):
    d = DCGANDiscriminator(small(image_size, channels))
    init_weights(d)
    x = torch.randn(3, channels, image_size, image_size)
    logits = d(x)
    assert logits.shape == (3,)
    start, levels = dcgan_layout(image_size)
    assert d.feature_dim == 8 * min(2 ** (levels - 1), 8) * start * start
    assert d.features(x).shape == (3, d.feature_dim)
    # the logit conv covers the whole last map, so it is a linear layer on the features
    w, b = d.head.weight.flatten(), d.head.bias
    torch.testing.assert_close(logits, d.features(x) @ w + b)


@pytest.mark.parametrize("image_size", SIZES)
def test_generator_and_discriminator_resolutions_mirror(image_size):
    """Every generator level is matched by a discriminator level of the same resolution."""
    cfg = small(image_size, 1)
    g, d = DCGANGenerator(cfg), DCGANDiscriminator(cfg)
    sizes_g, sizes_d = [], []
    h = torch.randn(2, 16, 1, 1)
    for m in g.net:
        h = m(h)
        if isinstance(m, nn.ConvTranspose2d):
            sizes_g.append(h.shape[-1])
    h = torch.randn(2, 1, image_size, image_size)
    for m in d.trunk:
        h = m(h)
        if isinstance(m, nn.Conv2d):
            sizes_d.append(h.shape[-1])
    assert sizes_g[-1] == image_size
    assert sizes_g[:-1] == sizes_d[::-1]
    assert sizes_g[0] == (7 if image_size == 28 else 4)


def test_dcgan_64_generator_is_the_paper_layout():
    g = DCGANGenerator(paper_config())
    convs = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [c.in_channels for c in convs] + [convs[-1].out_channels] == [100, 512, 256, 128, 64, 3]
    assert [c.kernel_size for c in convs] == [(4, 4)] * 5
    assert [c.stride for c in convs] == [(1, 1)] + [(2, 2)] * 4
    assert [c.padding for c in convs] == [(0, 0)] + [(1, 1)] * 4
    # the PyTorch DCGAN example's netG has 3,576,704 parameters (no biases); ours adds the output conv's 3
    assert n_params(g) == 3_576_704 + 3


def test_dcgan_64_discriminator_is_the_paper_layout():
    d = DCGANDiscriminator(paper_config())
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.in_channels for c in convs] + [1] == [3, 64, 128, 256, 512, 1]
    assert convs[-1].kernel_size == (4, 4) and convs[-1].stride == (1, 1) and convs[-1].padding == (0, 0)
    assert [m.num_features for m in d.modules() if isinstance(m, nn.BatchNorm2d)] == [128, 256, 512]
    assert d.feature_dim == 512 * 4 * 4
    # the PyTorch DCGAN example's netD has 2,765,568 parameters (no biases); ours adds the first and last conv's
    assert n_params(d) == 2_765_568 + 64 + 1


def test_28_starts_at_7x7_and_128_is_capped_at_8ngf():
    g28 = DCGANGenerator(GanModelConfig(latent_dim=10, channels=1, image_size=28, gen_filters=8))
    first = g28.net[0]
    assert first.kernel_size == (7, 7) and first.out_channels == 16
    d28 = DCGANDiscriminator(GanModelConfig(channels=1, image_size=28, disc_filters=8))
    assert d28.head.kernel_size == (7, 7)
    g128 = DCGANGenerator(GanModelConfig(latent_dim=10, channels=1, image_size=128, gen_filters=8))
    assert [m.out_channels for m in g128.modules() if isinstance(m, nn.ConvTranspose2d)] == [64, 64, 32, 16, 8, 1]


@pytest.mark.parametrize("net", [DCGANGenerator, DCGANDiscriminator])
def test_no_bias_before_batch_norm(net):
    layers = list(net(small(64, 3)).net if net is DCGANGenerator else net(small(64, 3)).trunk)
    for conv, nxt in itertools.pairwise(layers):
        if isinstance(nxt, nn.BatchNorm2d):
            assert conv.bias is None


def test_bad_inputs_raise_value_error():
    cfg = small(32, 3)
    with pytest.raises(ValueError, match=r"\(2, 15\)"):
        DCGANGenerator(cfg)(torch.randn(2, 15))
    with pytest.raises(ValueError, match=r"\(2, 16, 2, 2\)"):
        DCGANGenerator(cfg)(torch.randn(2, 16, 2, 2))
    with pytest.raises(ValueError, match=r"\(2, 1, 32, 32\)"):
        DCGANDiscriminator(cfg)(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"\(2, 3, 64, 64\)"):
        DCGANDiscriminator(cfg).features(torch.randn(2, 3, 64, 64))


# --- conditional -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("image_size", SIZES)
@pytest.mark.parametrize("channels", CHANNELS)
def test_conditional_shapes(image_size, channels):
    torch.manual_seed(0)
    cfg = small(image_size, channels, num_classes=5, embed_dim=4)
    g, d = ConditionalGenerator(cfg), ConditionalDiscriminator(cfg)
    init_weights(g)
    init_weights(d)
    labels = torch.tensor([0, 4, 2])
    y = g(torch.randn(3, 16), labels)
    assert y.shape == (3, channels, image_size, image_size)
    assert y.abs().max() <= 1.0
    assert g(torch.randn(3, 16, 1, 1), labels).shape == y.shape
    logits = d(y, labels)
    assert logits.shape == (3,)
    assert d.features(y).shape == (3, d.feature_dim)


def test_conditional_generator_reuses_the_dcgan_stack_with_wider_input():
    cfg = small(64, 3, num_classes=10, embed_dim=6)
    g = ConditionalGenerator(cfg)
    assert isinstance(g.generator, DCGANGenerator)
    assert g.generator.net[0].in_channels == 16 + 6
    plain = DCGANGenerator(dataclasses.replace(cfg, latent_dim=22))
    assert n_params(g) == n_params(plain) + 10 * 6


def test_label_changes_the_generated_image():
    torch.manual_seed(0)
    cfg = small(32, 1, num_classes=4, embed_dim=8)
    g = ConditionalGenerator(cfg)
    init_weights(g)
    g.eval()  # running statistics: every sample is generated independently of the others
    z = torch.randn(1, 16).expand(4, 16)
    with torch.no_grad():
        different = g(z, torch.arange(4))
        same = g(z, torch.full((4,), 2))
    for i in range(4):
        for j in range(i + 1, 4):
            assert not torch.allclose(different[i], different[j])
        torch.testing.assert_close(same[i], same[0])
    torch.testing.assert_close(same[0], different[2])


def test_projection_discriminator_depends_on_label():
    torch.manual_seed(0)
    cfg = small(28, 1, num_classes=3)
    d = ConditionalDiscriminator(cfg)
    init_weights(d)
    d.eval()
    x = torch.randn(1, 1, 28, 28).expand(3, 1, 28, 28)
    with torch.no_grad():
        logits = d(x, torch.arange(3))
        assert len(set(logits.tolist())) == 3
        # with the class embedding zeroed it is exactly the unconditional DCGAN discriminator
        d.embed.weight.zero_()
        torch.testing.assert_close(d(x, torch.arange(3)), d.body(x))


def test_projection_formula():
    torch.manual_seed(0)
    d = ConditionalDiscriminator(small(32, 3, num_classes=4)).eval()
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([3, 1])
    phi = d.features(x)
    expected = phi @ d.body.head.weight.flatten() + d.body.head.bias + (d.embed.weight[y] * phi).sum(1)
    torch.testing.assert_close(d(x, y), expected)


def test_gradients_reach_the_embeddings():
    torch.manual_seed(0)
    cfg = small(28, 1, num_classes=3, embed_dim=4)
    g, d = ConditionalGenerator(cfg), ConditionalDiscriminator(cfg)
    labels = torch.tensor([0, 2])
    d(g(torch.randn(2, 16), labels), labels).sum().backward()
    for emb in (g.embed, d.embed):
        grad = emb.weight.grad
        assert grad is not None
        assert grad[0].abs().sum() > 0 and grad[2].abs().sum() > 0
        assert grad[1].abs().sum() == 0  # class 1 was not in the batch


@pytest.mark.parametrize("num_classes", [0])
@pytest.mark.parametrize("net", [ConditionalGenerator, ConditionalDiscriminator])
def test_conditional_needs_classes(net, num_classes):
    with pytest.raises(ValueError, match="num_classes >= 2, got 0"):
        net(small(32, 1, num_classes=num_classes))


@pytest.mark.parametrize(
    "labels,match",
    [
        (torch.tensor([0, 3]), r"\[0, 3\), got values in \[0, 3\]"),
        (torch.tensor([-1, 0]), r"got values in \[-1, 0\]"),
        (torch.tensor([0, 1], dtype=torch.int32), "torch.int32"),
        (torch.tensor([0.0, 1.0]), "torch.float32"),
        (torch.tensor([[0, 1]]), r"\(1, 2\)"),
        (torch.tensor([0, 1, 2]), "3 entries for a batch of 2"),
    ],
)
def test_bad_labels_raise_value_error(labels, match):
    cfg = small(28, 1, num_classes=3)
    g, d = ConditionalGenerator(cfg), ConditionalDiscriminator(cfg)
    with pytest.raises(ValueError, match=match):
        g(torch.randn(2, 16), labels)
    with pytest.raises(ValueError, match=match):
        d(torch.randn(2, 1, 28, 28), labels)


@pytest.mark.parametrize("net", [DCGANDiscriminator, ConditionalDiscriminator])
def test_discriminators_have_no_sigmoid(net):
    d = net(small(64, 3, num_classes=2))
    assert not any(isinstance(m, nn.Sigmoid) for m in d.modules())
    # logits are unbounded: a scaled-up head gives values outside (0, 1)
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        d.eval()
        body = d if isinstance(d, DCGANDiscriminator) else d.body
        body.head.weight.mul_(1000.0)
        out = d(x) if net is DCGANDiscriminator else d(x, torch.tensor([0, 1, 0, 1]))
    assert (out.abs() > 1).any()
