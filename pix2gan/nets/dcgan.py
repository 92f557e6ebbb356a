"""DCGAN noise-to-image generator and discriminator (Radford et al., 2016), scaled to 28, 32, 64 and 128 pixels.

The generator projects z to a small map (4x4, or 7x7 for 28-pixel images such as MNIST) with a transposed
convolution, then doubles the resolution and halves the channels with 4x4 stride-2 transposed convolutions, each
followed by batch norm and ReLU, and ends with a transposed convolution to the image channels and a tanh. The
discriminator mirrors it with 4x4 stride-2 convolutions, LeakyReLU(0.2) and batch norm on all but the first layer,
and a last convolution whose kernel covers the whole remaining map, giving one logit per image.

Widths follow the paper's 64x64 layout (``8ngf, 4ngf, 2ngf, ngf``): the feature map before the output has ``ngf``
channels and each coarser level doubles it, capped at ``8 * ngf`` as in pix2pix's U-Net. At 128 pixels the 4x4 map
therefore has ``8 * ngf`` channels, not ``16 * ngf``: it keeps the parameter count (and the memory of the first
projection) close to the 64-pixel network.

=====  =========  ========================================  ===============================
size   start map  generator widths (start -> output)        discriminator widths
=====  =========  ========================================  ===============================
28     7x7        2ngf, ngf                                 ndf, 2ndf (7x7 logit kernel)
32     4x4        4ngf, 2ngf, ngf                           ndf, 2ndf, 4ndf
64     4x4        8ngf, 4ngf, 2ngf, ngf (the paper)         ndf, 2ndf, 4ndf, 8ndf
128    4x4        8ngf, 8ngf, 4ngf, 2ngf, ngf               ndf, 2ndf, 4ndf, 8ndf, 8ndf
=====  =========  ========================================  ===============================
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from pix2gan.config import GanModelConfig

__all__ = ["DCGANDiscriminator", "DCGANGenerator", "dcgan_layout"]

_MAX_MULT = 8  # width cap, in multiples of ngf / ndf


def dcgan_layout(image_size: int) -> tuple[int, int]:
    """Side of the smallest feature map and number of hidden feature maps for an image size.

    ``image_size == start * 2 ** levels``: the generator has ``levels`` normalised feature maps (the first one made
    by projecting z) before the output convolution; the discriminator has ``levels`` strided convolutions before its
    logit convolution.

    Args:
        image_size: side of the square images: 28, 32, 64 or 128.

    Returns:
        ``(start, levels)``.

    Example:
        >>> dcgan_layout(64), dcgan_layout(28)
        ((4, 4), (7, 2))
    """
    layouts = {28: (7, 2), 32: (4, 3), 64: (4, 4), 128: (4, 5)}
    if image_size not in layouts:
        raise ValueError(f"DCGAN image_size must be 28, 32, 64 or 128, got {image_size}")
    return layouts[image_size]


def _check_channels(owner: str, config: GanModelConfig) -> None:
    if config.channels not in (1, 3):
        raise ValueError(f"{owner} needs GanModelConfig.channels 1 or 3, got {config.channels} (0 means: from the data, "
                         "which training sets before building the networks)")  # fmt: skip


def _widths(filters: int, levels: int) -> list[int]:
    """Channels per level from fine to coarse: ``filters * min(2 ** i, 8)``."""
    return [filters * min(2**i, _MAX_MULT) for i in range(levels)]


class DCGANGenerator(nn.Module):
    """DCGAN generator: noise vector to image in [-1, 1].

    The convolutions followed by batch norm have no bias (the norm has its own shift); only the output convolution
    has one. Weights are left at PyTorch's defaults: apply :func:`pix2gan.nets.init_weights` for the paper's
    N(0, 0.02).

    The whole stack is ``self.net``, fed with a ``(B, latent_dim, 1, 1)`` tensor; :class:`ConditionalGenerator`
    reuses this class with ``latent_dim + embed_dim`` inputs.

    Args:
        config: ``latent_dim``, ``channels``, ``image_size`` and ``gen_filters`` (``ngf``) are used.

    Shape:
        - Input: :math:`(B, L)` or :math:`(B, L, 1, 1)` with ``L = latent_dim``.
        - Output: :math:`(B, C, S, S)` with ``C = channels``, ``S = image_size``.

    Example:
        >>> g = DCGANGenerator(GanModelConfig(latent_dim=16, channels=3, image_size=64, gen_filters=8))
        >>> g(torch.randn(2, 16)).shape
        torch.Size([2, 3, 64, 64])
        >>> [m.out_channels for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
        [64, 32, 16, 8, 3]
    """

    def __init__(self, config: GanModelConfig) -> None:
        super().__init__()
        _check_channels("DCGANGenerator", config)
        self.config = config
        start, levels = dcgan_layout(config.image_size)
        self.start_size = start
        widths = _widths(config.gen_filters, levels)[::-1]  # coarse to fine: (8ngf, 4ngf, 2ngf, ngf) at 64

        # project z: (B, L, 1, 1) -> (B, widths[0], start, start)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(config.latent_dim, widths[0], start, stride=1, padding=0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
        ]
        for c_in, c_out in itertools.pairwise(widths):  # each step doubles the resolution
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
        layers += [nn.ConvTranspose2d(widths[-1], config.channels, 4, stride=2, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        latent = self.config.latent_dim
        if z.ndim == 4 and tuple(z.shape[1:]) == (latent, 1, 1):
            pass
        elif z.ndim == 2 and z.shape[1] == latent:
            z = z[:, :, None, None]  # (B, L, 1, 1)
        else:
            raise ValueError(
                f"DCGANGenerator(latent_dim={latent}) needs z of shape (B, {latent}) or (B, {latent}, 1, 1), "
                f"got {tuple(z.shape)}"
            )
        return self.net(z)  # (B, C, S, S)


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator returning one raw logit per image (the loss owns the activation; no sigmoid).

    ``trunk`` holds the strided convolutions; ``head`` is the logit convolution whose kernel covers the whole last
    map, i.e. a linear layer on the flattened features. :meth:`features` returns those features, of size
    :attr:`feature_dim` (``8 * ndf * 4 * 4`` at 64 pixels), for a projection discriminator or feature matching.

    Args:
        config: ``channels``, ``image_size`` and ``disc_filters`` (``ndf``) are used.

    Shape:
        - Input: :math:`(B, C, S, S)` with ``C = channels``, ``S = image_size``.
        - Output: :math:`(B,)` logits.

    Example:
        >>> d = DCGANDiscriminator(GanModelConfig(channels=1, image_size=28, disc_filters=8))
        >>> x = torch.randn(2, 1, 28, 28)
        >>> d(x).shape, d.features(x).shape, d.feature_dim
        (torch.Size([2]), torch.Size([2, 784]), 784)
    """

    def __init__(self, config: GanModelConfig) -> None:
        super().__init__()
        _check_channels("DCGANDiscriminator", config)
        self.config = config
        start, levels = dcgan_layout(config.image_size)
        widths = _widths(config.disc_filters, levels)  # fine to coarse: (ndf, 2ndf, 4ndf, 8ndf) at 64

        # the paper: no batch norm on the first layer (it sees the images); the other convs get no bias for BN
        layers: list[nn.Module] = [nn.Conv2d(config.channels, widths[0], 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        for c_in, c_out in itertools.pairwise(widths):  # each step halves the resolution
            layers += [
                nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.2),
            ]
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Conv2d(widths[-1], 1, start, stride=1, padding=0)  # (B, F', start, start) -> (B, 1, 1, 1)
        self.feature_dim: int = widths[-1] * start * start

    def _check(self, x: torch.Tensor) -> None:
        c, s = self.config.channels, self.config.image_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (c, s, s):
            raise ValueError(f"{type(self).__name__} needs images of shape (B, {c}, {s}, {s}), got {tuple(x.shape)}")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Flattened activations of the last hidden layer (before the logit convolution), shape ``(B, feature_dim)``."""
        self._check(x)
        return self.trunk(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self.head(self.trunk(x)).flatten()  # (B,)
