import pytest
import torch
from torch import nn

from pix2gan.config import ModelConfig, Norm
from pix2gan.nets import UNetGenerator, init_weights


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_unet_256_has_pix2pix_parameter_count():
    g = UNetGenerator(ModelConfig(in_channels=3, out_channels=3, depth=8, base_filters=64, norm=Norm.BATCH))
    assert n_params(g) == 54_413_955


def test_unet_128_parameter_count():
    # pix2pix's unet_128 (7 downsamplings) with batch norm, 3 -> 3 channels
    g = UNetGenerator(ModelConfig(in_channels=3, out_channels=3, depth=7, base_filters=64, norm=Norm.BATCH))
    assert n_params(g) == 41_828_995


def test_instance_norm_adds_biases_not_affine():
    batch = UNetGenerator(ModelConfig(depth=5, base_filters=8, norm=Norm.BATCH))
    inst = UNetGenerator(ModelConfig(depth=5, base_filters=8, norm=Norm.INSTANCE))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in inst.modules())
    assert all(not m.affine for m in inst.modules() if isinstance(m, nn.InstanceNorm2d))
    assert n_params(inst) != n_params(batch)


@pytest.mark.parametrize("depth,size", [(2, (4, 8)), (3, (16, 24)), (5, (64, 32)), (6, (64, 128))])
@pytest.mark.parametrize("channels", [(1, 1), (3, 1), (2, 3)])
def test_shapes_and_range(depth, size, channels):
    c_in, c_out = channels
    g = UNetGenerator(ModelConfig(in_channels=c_in, out_channels=c_out, depth=depth, base_filters=4))
    x = torch.randn(2, c_in, *size)
    y = g(x)
    assert y.shape == (2, c_out, *size)
    assert y.abs().max() <= 1.0  # tanh output


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes(dtype):
    g = UNetGenerator(ModelConfig(depth=3, base_filters=4)).to(dtype).eval()
    assert g(torch.zeros(1, 1, 16, 16, dtype=dtype)).dtype == dtype


def test_rejects_sizes_not_multiple_of_2_pow_depth():
    g = UNetGenerator(ModelConfig(depth=4, base_filters=4))
    with pytest.raises(ValueError, match="multiples of 16"):
        g(torch.zeros(1, 1, 24, 32))


def test_dropout_only_on_repeated_deep_levels():
    g = UNetGenerator(ModelConfig(depth=8, base_filters=8, dropout=True))
    with_dropout = [i for i, up in enumerate(g.up) if any(isinstance(m, nn.Dropout) for m in up)]
    assert with_dropout == [4, 5, 6]  # pix2pix: the num_downs - 5 blocks of 8 * ngf around the innermost
    assert not any(isinstance(m, nn.Dropout) for m in UNetGenerator(ModelConfig(depth=8, base_filters=8, dropout=False)).modules())


def test_bottleneck_gives_global_context():
    """Through the innermost level one output pixel sees (almost) the whole 32 x 32 input."""
    torch.manual_seed(0)
    g = UNetGenerator(ModelConfig(depth=5, base_filters=4, dropout=False)).eval()
    x = torch.randn(1, 1, 32, 32, requires_grad=True)
    g(x)[0, 0, 16, 16].backward()
    seen = (x.grad[0, 0].abs() > 0).float().mean().item()
    assert seen > 0.9


def test_init_weights_normal_002():
    torch.manual_seed(0)
    g = UNetGenerator(ModelConfig(depth=8, base_filters=64, in_channels=3, out_channels=3))
    init_weights(g, 0.02)
    conv = g.down[3][1].weight
    assert abs(conv.mean().item()) < 1e-3
    assert conv.std().item() == pytest.approx(0.02, rel=0.02)
    bn = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)][0]
    assert bn.weight.mean().item() == pytest.approx(1.0, abs=0.02)
    assert torch.all(bn.bias == 0)
