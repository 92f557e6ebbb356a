"""Class-conditional GAN networks built on the DCGAN stacks.

The generator concatenates z with a learned label embedding (Mirza & Osindero, 2014, with an embedding in place
of the one-hot vector) and runs a :class:`DCGANGenerator` built for ``latent_dim + embed_dim`` inputs. The
discriminator is a projection discriminator (Miyato & Koyama, 2018):

.. math:: D(x, y) = w^T \\phi(x) + b + \\langle e_y, \\phi(x) \\rangle

where :math:`\\phi(x)` are the DCGAN discriminator's flattened features, :math:`w, b` its logit convolution (a
linear layer on :math:`\\phi`, since its kernel covers the whole map) and :math:`e_y` a learned class embedding of
the same size as :math:`\\phi(x)`.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from pix2gan.config import GanModelConfig
from pix2gan.nets.dcgan import DCGANDiscriminator, DCGANGenerator

__all__ = ["ConditionalDiscriminator", "ConditionalGenerator", "check_labels"]


def check_labels(labels: torch.Tensor, num_classes: int, batch: int | None = None) -> None:
    """Raise ``ValueError`` unless ``labels`` is an int64 vector of classes in ``[0, num_classes)``.

    The range check reads ``labels.min()`` and ``labels.max()`` only (one synchronisation on GPU).

    Args:
        labels: class indices, shape ``(B,)``.
        num_classes: number of classes.
        batch: expected ``B`` (the batch size of the images or noise), or ``None`` not to check it.

    Example:
        >>> check_labels(torch.tensor([0, 2]), num_classes=3)
        >>> check_labels(torch.tensor([0, 3]), num_classes=3)
        Traceback (most recent call last):
            ...
        ValueError: labels must be in [0, 3), got values in [0, 3]
    """
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dtype != torch.int64:
        raise ValueError(f"labels must be int64 (torch.long) class indices, got dtype {labels.dtype}")
    if labels.ndim != 1:
        raise ValueError(f"labels must have shape (B,), got {tuple(labels.shape)}")
    if batch is not None and labels.shape[0] != batch:
        raise ValueError(f"labels hold {labels.shape[0]} entries for a batch of {batch}")
    if labels.numel() == 0:
        return
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= num_classes:
        raise ValueError(f"labels must be in [0, {num_classes}), got values in [{lo}, {hi}]")


def _check_num_classes(owner: str, config: GanModelConfig) -> None:
    if config.num_classes < 2:
        raise ValueError(f"{owner} needs GanModelConfig.num_classes >= 2, got {config.num_classes}")


class ConditionalGenerator(nn.Module):
    """Class-conditional DCGAN generator: ``G(z, y) = DCGAN([z, embed(y)])``.

    The embedding keeps PyTorch's N(0, 1) initialisation (the scale of z); :func:`pix2gan.nets.init_weights`
    leaves embeddings alone.

    Args:
        config: as :class:`DCGANGenerator`, plus ``num_classes`` (>= 2) and ``embed_dim``.

    Shape:
        - Input: ``z`` :math:`(B, L)` or :math:`(B, L, 1, 1)` with ``L = latent_dim``; ``labels`` :math:`(B,)` int64.
        - Output: :math:`(B, C, S, S)` in [-1, 1].

    Example:
        >>> cfg = GanModelConfig(latent_dim=16, channels=1, image_size=28, gen_filters=8, num_classes=10, embed_dim=4)
        >>> g = ConditionalGenerator(cfg)
        >>> g(torch.randn(3, 16), torch.tensor([0, 1, 9])).shape
        torch.Size([3, 1, 28, 28])
    """

    def __init__(self, config: GanModelConfig) -> None:
        super().__init__()
        _check_num_classes("ConditionalGenerator", config)
        self.config = config
        self.embed = nn.Embedding(config.num_classes, config.embed_dim)
        # the same DCGAN stack, its projection widened to take the label embedding alongside z
        self.generator = DCGANGenerator(dataclasses.replace(config, latent_dim=config.latent_dim + config.embed_dim))

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        latent = self.config.latent_dim
        if z.ndim == 4 and tuple(z.shape[1:]) == (latent, 1, 1):
            z = z.flatten(1)
        elif not (z.ndim == 2 and z.shape[1] == latent):
            raise ValueError(
                f"ConditionalGenerator(latent_dim={latent}) needs z of shape (B, {latent}) or (B, {latent}, 1, 1), "
                f"got {tuple(z.shape)}"
            )
        check_labels(labels, self.config.num_classes, batch=z.shape[0])
        h = torch.cat([z, self.embed(labels).to(z.dtype)], dim=1)  # (B, latent_dim + embed_dim)
        return self.generator(h)


class ConditionalDiscriminator(nn.Module):
    """Projection discriminator (Miyato & Koyama, 2018) on the DCGAN trunk; returns raw logits, no sigmoid.

    The class embedding has one row of ``feature_dim`` per class and is initialised Glorot-uniform, as in the
    authors' code (``l_y``); :func:`pix2gan.nets.init_weights` leaves embeddings alone.

    Args:
        config: as :class:`DCGANDiscriminator`, plus ``num_classes`` (>= 2).

    Shape:
        - Input: ``x`` :math:`(B, C, S, S)`; ``labels`` :math:`(B,)` int64.
        - Output: :math:`(B,)` logits.

    Example:
        >>> cfg = GanModelConfig(channels=3, image_size=32, disc_filters=8, num_classes=4)
        >>> d = ConditionalDiscriminator(cfg)
        >>> x = torch.randn(2, 3, 32, 32)
        >>> d(x, torch.tensor([1, 3])).shape, d.features(x).shape
        (torch.Size([2]), torch.Size([2, 512]))
    """

    def __init__(self, config: GanModelConfig) -> None:
        super().__init__()
        _check_num_classes("ConditionalDiscriminator", config)
        self.config = config
        self.body = DCGANDiscriminator(config)
        self.feature_dim: int = self.body.feature_dim
        self.embed = nn.Embedding(config.num_classes, self.feature_dim)
        nn.init.xavier_uniform_(self.embed.weight)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x): the DCGAN trunk's flattened features, shape ``(B, feature_dim)``."""
        return self.body.features(x)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.body._check(x)
        check_labels(labels, self.config.num_classes, batch=x.shape[0])
        h = self.body.trunk(x)  # (B, F', k, k)
        phi = h.flatten(1)  # (B, feature_dim)
        unconditional = self.body.head(h).flatten()  # w^T phi + b, (B,)
        projection = (self.embed(labels).to(phi.dtype) * phi).sum(dim=1)  # <e_y, phi>, (B,)
        return unconditional + projection
