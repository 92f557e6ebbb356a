"""Layers and initialisation shared by every architecture.

Example:
    >>> from pix2gan.config import Norm
    >>> type(norm_layer(Norm.BATCH, 8)).__name__, type(norm_layer(Norm.INSTANCE, 8)).__name__
    ('BatchNorm2d', 'InstanceNorm2d')
"""

from __future__ import annotations

import torch
from torch import nn

from pix2gan.config import Norm

__all__ = ["norm_layer", "init_weights", "check_multiple"]


def norm_layer(norm: Norm, channels: int) -> nn.Module:
    """The normalisation pix2pix uses: affine BatchNorm, or InstanceNorm without affine or running stats."""
    if norm == Norm.BATCH:
        return nn.BatchNorm2d(channels)
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """pix2pix's ``normal`` init: conv and linear weights ~ N(0, gain), norm scales ~ N(1, gain), biases 0.

    Embeddings keep their own initialisation (the scale of z for a label embedding).
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)


def check_multiple(x: torch.Tensor, multiple: int, owner: str) -> None:
    """Refuse anything but a (B, C, H, W) batch with H and W multiples of ``multiple``.

    Example:
        >>> check_multiple(torch.zeros(1, 1, 8, 12), 4, "G")
        >>> check_multiple(torch.zeros(1, 1, 8, 10), 4, "G")
        Traceback (most recent call last):
        ValueError: G needs (B, C, H, W) with H, W multiples of 4, got (1, 1, 8, 10)
    """
    if x.ndim != 4 or x.shape[-1] % multiple or x.shape[-2] % multiple:
        raise ValueError(f"{owner} needs (B, C, H, W) with H, W multiples of {multiple}, got {tuple(x.shape)}")
