"""The pix2pix ResNet generator (Johnson et al., 2016, as used by pix2pix and CycleGAN: ``resnet_9blocks``).

An encoder of a 7x7 convolution and two 3x3 stride-2 convolutions (``ngf -> 2ngf -> 4ngf`` channels, a quarter of the
resolution), ``blocks`` residual blocks at ``4 * ngf`` channels and that resolution, and a decoder of two 3x3
stride-2 transposed convolutions back to ``ngf`` channels and a 7x7 convolution to the output with a tanh. The 7x7
and residual convolutions pad by reflection, so borders are not darkened by zero padding.

With ``base_filters=64``, batch norm and 3 -> 3 channels the network has exactly pix2pix's parameter counts:
11,383,427 with 9 blocks (``resnet_9blocks``, :func:`resnet9`) and 7,841,411 with 6 (``resnet_6blocks``,
:func:`resnet6`). ``ModelConfig.depth`` does not apply: the network always downsamples twice.

Reference: J. Johnson, A. Alahi, L. Fei-Fei, "Perceptual Losses for Real-Time Style Transfer and Super-Resolution",
ECCV 2016; P. Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017.
"""

from __future__ import annotations

import torch
from torch import nn

from pix2gan.config import ModelConfig, Norm, RunConfig
from pix2gan.nets.layers import check_multiple, norm_layer

__all__ = ["ResidualBlock", "ResnetGenerator", "resnet6", "resnet9"]

_LEVELS = 2  # stride-2 down-sampling steps


class ResidualBlock(nn.Module):
    """``x + F(x)`` with ``F`` = pad, 3x3 conv, norm, ReLU, [dropout 0.5], pad, 3x3 conv, norm (same channels)."""

    def __init__(self, channels: int, norm: Norm, dropout: bool) -> None:
        super().__init__()
        use_bias = norm == Norm.INSTANCE  # batch norm has its own shift
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, bias=use_bias),
            norm_layer(norm, channels),
            nn.ReLU(),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, kernel_size=3, bias=use_bias)]
        layers.append(norm_layer(norm, channels))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)  # (B, C, H, W)


class ResnetGenerator(nn.Module):
    """ResNet generator (encoder, residual blocks, decoder) with a tanh output in [-1, 1].

    Args:
        config: ``in_channels``, ``out_channels``, ``base_filters`` (``ngf``), ``norm`` and ``dropout`` (dropout
            0.5 inside every residual block; pix2pix's default unless ``--no_dropout``) are used; ``depth`` is not.
        blocks: residual blocks (9: ``resnet_9blocks``, 6: ``resnet_6blocks``).

    Shape:
        - Input: :math:`(B, C_{in}, H, W)` with ``H`` and ``W`` multiples of 4 (:attr:`multiple`).
        - Output: :math:`(B, C_{out}, H, W)`.

    Example:
        >>> g = ResnetGenerator(ModelConfig(base_filters=4), blocks=2)
        >>> g(torch.zeros(2, 1, 20, 28)).shape
        torch.Size([2, 1, 20, 28])
        >>> g.multiple
        4
    """

    def __init__(self, config: ModelConfig, blocks: int = 9) -> None:
        super().__init__()
        if blocks < 0:
            raise ValueError(f"ResnetGenerator needs blocks >= 0, got {blocks}")
        self.config = config
        self.blocks = blocks
        ngf, norm = config.base_filters, config.norm
        use_bias = norm == Norm.INSTANCE  # convolutions followed by batch norm need no bias

        # (B, C_in, H, W) -> (B, ngf, H, W)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(config.in_channels, ngf, kernel_size=7, bias=use_bias),
            norm_layer(norm, ngf),
            nn.ReLU(),
        ]
        for i in range(_LEVELS):  # (B, ngf * 2^i, H / 2^i, W / 2^i) -> (B, ngf * 2^(i+1), H / 2^(i+1), W / 2^(i+1))
            c_in, c_out = ngf * 2**i, ngf * 2 ** (i + 1)
            layers += [
                nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1, bias=use_bias),
                norm_layer(norm, c_out),
                nn.ReLU(),
            ]
        width = ngf * 2**_LEVELS
        layers += [ResidualBlock(width, norm, config.dropout) for _ in range(blocks)]  # (B, 4ngf, H / 4, W / 4)
        for i in reversed(range(_LEVELS)):  # each step doubles the resolution and halves the channels
            c_in, c_out = ngf * 2 ** (i + 1), ngf * 2**i
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1, bias=use_bias),
                norm_layer(norm, c_out),
                nn.ReLU(),
            ]
        # (B, ngf, H, W) -> (B, C_out, H, W)
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, config.out_channels, kernel_size=7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    @classmethod
    def from_run_config(cls, cfg: RunConfig, blocks: int = 9) -> ResnetGenerator:
        """The generator of a paired run (``cfg.model``)."""
        return cls(cfg.generator_model, blocks=blocks)  # one input channel per slice of the 2.5-D stack

    @property
    def multiple(self) -> int:
        """In-plane sizes the generator accepts are multiples of this (two stride-2 levels)."""
        return 2**_LEVELS

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_multiple(x, self.multiple, f"ResnetGenerator(blocks={self.blocks})")
        return self.net(x)  # (B, C_out, H, W)


def resnet9(cfg: RunConfig) -> ResnetGenerator:
    """pix2pix's ``resnet_9blocks`` built from ``cfg.model`` (the registry's constructor).

    Example:
        >>> from pix2gan.config import RunConfig
        >>> resnet9(RunConfig()).blocks
        9
    """
    return ResnetGenerator.from_run_config(cfg, blocks=9)


def resnet6(cfg: RunConfig) -> ResnetGenerator:
    """pix2pix's ``resnet_6blocks`` built from ``cfg.model`` (the registry's constructor)."""
    return ResnetGenerator.from_run_config(cfg, blocks=6)
