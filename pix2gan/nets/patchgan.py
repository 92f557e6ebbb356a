"""PatchGAN discriminator (pix2pix's ``NLayerDiscriminator``): one real/fake logit per overlapping patch.

With 3 strided layers every output logit sees a 70x70 input patch. For conditional synthesis the input is the source
image concatenated with a real or generated target, so the discriminator judges the *pair*.
"""

from __future__ import annotations

import torch
from torch import nn

from pix2gan.config import ModelConfig, Norm, RunConfig
from pix2gan.nets.layers import norm_layer

__all__ = ["PatchDiscriminator", "receptive_field"]


def receptive_field(n_layers: int) -> int:
    """Input patch side seen by one output logit (4x4 kernels; ``n_layers`` stride-2 layers then two stride-1 ones).

    Example:
        >>> receptive_field(3)
        70
    """
    strides = [2] * n_layers + [1, 1]
    rf = 1
    for s in reversed(strides):
        rf = rf * s + (4 - s)
    return rf


class PatchDiscriminator(nn.Module):
    """Fully convolutional discriminator returning raw logits (the loss owns the activation).

    Args:
        in_channels: channels of the discriminator input (source + target channels for paired mode).
        filters: filters of the first layer (``ndf``), doubled per layer up to 8x.
        n_layers: strided layers (3 -> 70x70 patches).
        norm: ``batch`` or ``instance``.

    Shape:
        - Input: :math:`(B, C_{in}, H, W)`.
        - Output: :math:`(B, 1, H', W')` logits, :math:`H' = H / 2^{n} - 2` for ``H`` divisible by ``2^n``.

    Example:
        >>> d = PatchDiscriminator(2, filters=8)
        >>> d(torch.zeros(1, 2, 64, 64)).shape
        torch.Size([1, 1, 6, 6])
    """

    def __init__(self, in_channels: int, filters: int = 64, n_layers: int = 3, norm: Norm = Norm.BATCH) -> None:
        super().__init__()
        use_bias = norm == Norm.INSTANCE
        layers: list[nn.Module] = [nn.Conv2d(in_channels, filters, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1  # the last widening layer keeps the resolution
            layers += [
                nn.Conv2d(filters * prev, filters * mult, 4, stride=stride, padding=1, bias=use_bias),
                norm_layer(norm, filters * mult),
                nn.LeakyReLU(0.2),
            ]
        layers.append(nn.Conv2d(filters * mult, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    @classmethod
    def from_config(cls, config: ModelConfig) -> PatchDiscriminator:
        """Conditional discriminator for a paired model: input is source (+) target channels."""
        return cls(config.in_channels + config.out_channels, config.disc_filters, config.disc_layers, config.norm)

    @classmethod
    def from_run_config(cls, cfg: RunConfig) -> PatchDiscriminator:
        """The paired run's discriminator: every source's centre slice and the target (``discriminator_model``)."""
        return cls.from_config(cfg.discriminator_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
