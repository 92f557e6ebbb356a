"""Fully connected GAN ("MLP GAN") of the course material, unconditional or class-conditional.

The generator maps z through hidden layers of 128, 256, 512 and 1024 units (Linear, BatchNorm1d on all but the first,
LeakyReLU(0.2)) to ``C * S * S`` values with a tanh, reshaped to an image; the discriminator flattens the image and
maps it through 512 and 256 units with LeakyReLU(0.2) to one raw logit (the loss owns the activation: no sigmoid).
This is the classic MNIST GAN (PyTorch-GAN's ``gan.py``). In class mode a learned label embedding is concatenated to
z in the generator and to the flattened image in the discriminator, as in the course's conditional LSGAN (Mirza &
Osindero, 2014). ``GanModelConfig.gen_filters`` / ``disc_filters`` do not apply: the widths are fixed.

Differences from the course code: the BatchNorm1d layers use PyTorch's default ``eps`` (``BatchNorm1d(n, 0.8)`` in the
course sets ``eps=0.8``, a port of Keras' ``momentum=0.8``), and the conditional version keeps the unconditional
layout (LeakyReLU, tanh, a 512-256-1 discriminator) rather than the LSGAN report's GELU and sigmoid.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from pix2gan.config import GanModelConfig, Mode, RunConfig
from pix2gan.nets.conditional import check_labels

__all__ = ["MLPDiscriminator", "MLPGenerator", "mlp_discriminator", "mlp_generator"]

GEN_WIDTHS = (128, 256, 512, 1024)
DISC_WIDTHS = (512, 256)


def _image_dim(owner: str, config: GanModelConfig) -> int:
    if config.channels < 1:
        raise ValueError(f"{owner} needs GanModelConfig.channels set (1 or 3), got {config.channels}")
    return config.channels * config.image_size**2


def _labels(owner: str, config: GanModelConfig, labels: torch.Tensor | None, batch: int) -> torch.Tensor | None:
    """Validate ``labels`` against the network's conditioning; return them (``None`` for an unconditional network)."""
    if config.num_classes >= 2:
        if labels is None:
            raise ValueError(f"{owner} is class-conditional ({config.num_classes} classes): labels are required")
        check_labels(labels, config.num_classes, batch=batch)
        return labels
    if labels is not None:
        raise ValueError(f"{owner} is unconditional (num_classes=0): labels must not be given")
    return None


class MLPGenerator(nn.Module):
    """Fully connected generator: z (and a class label when ``num_classes >= 2``) to an image in [-1, 1].

    BatchNorm1d needs at least 2 samples per batch in training mode (any batch in eval mode).

    Args:
        config: ``latent_dim``, ``channels``, ``image_size``; ``num_classes`` and ``embed_dim`` for the conditional
            version (``num_classes >= 2``). ``gen_filters`` is not used.

    Shape:
        - Input: ``z`` :math:`(B, L)` or :math:`(B, L, 1, 1)` with ``L = latent_dim``; ``labels`` :math:`(B,)` int64
          when conditional, else ``None``.
        - Output: :math:`(B, C, S, S)` with ``C = channels``, ``S = image_size``.

    Example:
        >>> g = MLPGenerator(GanModelConfig(latent_dim=8, channels=1, image_size=28))
        >>> g(torch.randn(2, 8)).shape
        torch.Size([2, 1, 28, 28])
        >>> c = MLPGenerator(GanModelConfig(latent_dim=8, channels=3, image_size=32, num_classes=10, embed_dim=4))
        >>> c(torch.randn(2, 8, 1, 1), torch.tensor([3, 7])).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(self, config: GanModelConfig) -> None:
        super().__init__()
        self.config = config
        self.conditional = config.num_classes >= 2
        out_dim = _image_dim("MLPGenerator", config)
        self.embed = nn.Embedding(config.num_classes, config.embed_dim) if self.conditional else None
        c_in = config.latent_dim + (config.embed_dim if self.conditional else 0)
        layers: list[nn.Module] = []
        for i, width in enumerate(GEN_WIDTHS):
            layers.append(nn.Linear(c_in, width))
            if i > 0:  # the first hidden layer is not normalised (PyTorch-GAN's gan.py)
                layers.append(nn.BatchNorm1d(width))
            layers.append(nn.LeakyReLU(0.2))
            c_in = width
        layers += [nn.Linear(c_in, out_dim), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        latent = self.config.latent_dim
        if z.ndim == 4 and tuple(z.shape[1:]) == (latent, 1, 1):
            z = z.flatten(1)  # (B, L)
        elif not (z.ndim == 2 and z.shape[1] == latent):
            raise ValueError(
                f"MLPGenerator(latent_dim={latent}) needs z of shape (B, {latent}) or (B, {latent}, 1, 1), "
                f"got {tuple(z.shape)}"
            )
        labels = _labels("MLPGenerator", self.config, labels, z.shape[0])
        if self.embed is not None and labels is not None:
            z = torch.cat([z, self.embed(labels).to(z.dtype)], dim=1)  # (B, L + E)
        c, s = self.config.channels, self.config.image_size
        return self.net(z).view(z.shape[0], c, s, s)  # (B, C, S, S)


class MLPDiscriminator(nn.Module):
    """Fully connected discriminator on the flattened image (and a label embedding when ``num_classes >= 2``).

    Returns one raw logit per image, shaped ``(B,)`` like :class:`~pix2gan.nets.dcgan.DCGANDiscriminator`.

    Args:
        config: ``channels``, ``image_size``; ``num_classes`` and ``embed_dim`` for the conditional version.
            ``disc_filters`` is not used.

    Shape:
        - Input: ``x`` :math:`(B, C, S, S)`; ``labels`` :math:`(B,)` int64 when conditional, else ``None``.
        - Output: :math:`(B,)` logits.

    Example:
        >>> d = MLPDiscriminator(GanModelConfig(channels=1, image_size=28, num_classes=10, embed_dim=4))
        >>> d(torch.randn(2, 1, 28, 28), torch.tensor([0, 9])).shape
        torch.Size([2])
    """

    def __init__(self, config: GanModelConfig) -> None:
        super().__init__()
        self.config = config
        self.conditional = config.num_classes >= 2
        c_in = _image_dim("MLPDiscriminator", config)
        self.embed = nn.Embedding(config.num_classes, config.embed_dim) if self.conditional else None
        c_in += config.embed_dim if self.conditional else 0
        layers: list[nn.Module] = []
        for width in DISC_WIDTHS:
            layers += [nn.Linear(c_in, width), nn.LeakyReLU(0.2)]
            c_in = width
        layers.append(nn.Linear(c_in, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        c, s = self.config.channels, self.config.image_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (c, s, s):
            raise ValueError(f"MLPDiscriminator needs images of shape (B, {c}, {s}, {s}), got {tuple(x.shape)}")
        labels = _labels("MLPDiscriminator", self.config, labels, x.shape[0])
        h = x.flatten(1)  # (B, C * S * S)
        if self.embed is not None and labels is not None:
            h = torch.cat([h, self.embed(labels).to(h.dtype)], dim=1)  # (B, C * S * S + E)
        return self.net(h).flatten()  # (B,)


def _gan_config(cfg: RunConfig, owner: str) -> GanModelConfig:
    """``cfg.gan``, conditional iff the run is in class mode."""
    if cfg.mode == Mode.CLASS:
        if cfg.gan.num_classes < 2:
            raise ValueError(f"{owner} in class mode needs GanModelConfig.num_classes >= 2, got {cfg.gan.num_classes}")
        return cfg.gan
    return dataclasses.replace(cfg.gan, num_classes=0) if cfg.gan.num_classes else cfg.gan


def mlp_generator(cfg: RunConfig) -> MLPGenerator:
    """The MLP generator of a noise or class run (``cfg.gan``; conditional in class mode).

    Example:
        >>> from pix2gan.config import RunConfig
        >>> mlp_generator(RunConfig.from_options("noise", channels=1)).conditional
        False
    """
    return MLPGenerator(_gan_config(cfg, "mlp_generator"))


def mlp_discriminator(cfg: RunConfig) -> MLPDiscriminator:
    """The MLP discriminator of a noise or class run (``cfg.gan``; conditional in class mode)."""
    return MLPDiscriminator(_gan_config(cfg, "mlp_discriminator"))
