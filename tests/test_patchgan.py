import pytest
import torch

from pix2gan.config import ModelConfig, Norm
from pix2gan.nets import PatchDiscriminator, receptive_field


def test_70x70_patchgan_parameter_count():
    d = PatchDiscriminator(6, filters=64, n_layers=3, norm=Norm.BATCH)
    assert sum(p.numel() for p in d.parameters()) == 2_768_705


@pytest.mark.parametrize("n_layers,expected", [(1, 16), (2, 34), (3, 70), (4, 142)])
def test_receptive_field_formula(n_layers, expected):
    assert receptive_field(n_layers) == expected


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_receptive_field_measured_by_gradient(n_layers):
    """The input region that influences one central logit is exactly receptive_field x receptive_field."""
    torch.manual_seed(0)
    d = PatchDiscriminator(2, filters=4, n_layers=n_layers, norm=Norm.BATCH).eval()  # no cross-pixel coupling
    x = torch.randn(1, 2, 192, 192, requires_grad=True)
    out = d(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad[0].abs().sum(0).sum(1)).flatten()
    cols = torch.nonzero(x.grad[0].abs().sum(0).sum(0)).flatten()
    rf = receptive_field(n_layers)
    assert int(rows.max() - rows.min() + 1) <= rf and int(cols.max() - cols.min() + 1) <= rf
    assert int(rows.max() - rows.min() + 1) >= rf - 2  # borders of the field may carry zero weight after ReLU


@pytest.mark.parametrize("size", [64, 128, 256])
def test_output_is_a_grid_of_logits(size):
    d = PatchDiscriminator.from_config(ModelConfig(in_channels=1, out_channels=1, disc_filters=8))
    y = d(torch.randn(2, 2, size, size))
    assert y.shape == (2, 1, size // 8 - 2, size // 8 - 2)
    # logits, not probabilities: no sigmoid at the end
    assert not isinstance(d.net[-1], torch.nn.Sigmoid)


def test_from_config_is_conditional_on_the_source():
    cfg = ModelConfig(in_channels=3, out_channels=2, disc_filters=8)
    assert PatchDiscriminator.from_config(cfg).net[0].in_channels == 5
