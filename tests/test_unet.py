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
    """Exact counts for depth 5, ngf 8, 1 -> 1 channels: level widths 8, 16, 32, 64, 64; all kernels 4 x 4.

    Convolution weights (the same with either norm):
        down  1->8 128, 8->16 2048, 16->32 8192, 32->64 32768, 64->64 65536         = 108672
        up    64->64 65536 (innermost), 128->32 65536, 64->16 16384, 32->8 4096, 16->1 256 = 151808
    Batch norm: affine BatchNorm (scale + shift) on down levels 1-3 (16 + 32 + 64 channels) and on every up level
        but the outermost (64 + 32 + 16 + 8): 2 * (112 + 120) = 464; convolutions have no bias except the
        outermost (1): 108672 + 151808 + 464 + 1 = 260945.
    Instance norm: no affine parameters; every convolution has a bias instead: down 8 + 16 + 32 + 64 + 64 = 184,
        up 64 + 32 + 16 + 8 + 1 = 121: 108672 + 151808 + 184 + 121 = 260785.
    """
    batch = UNetGenerator(ModelConfig(depth=5, base_filters=8, norm=Norm.BATCH))
    inst = UNetGenerator(ModelConfig(depth=5, base_filters=8, norm=Norm.INSTANCE))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in inst.modules())
    norms = [m for m in inst.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 7 and all(not m.affine and not m.track_running_stats for m in norms)
    assert n_params(batch) == 260_945
    assert n_params(inst) == 260_785
    bn = sum(p.numel() for m in batch.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters())
    assert bn == 464
    biases = [m.bias.numel() for m in inst.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert biases == [8, 16, 32, 64, 64, 1, 8, 16, 32, 64]  # down 0..4, then up 0..4 (outermost first)
    assert sum(biases) == 184 + 121


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
