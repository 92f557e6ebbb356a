"""The network sections of a run: the paired generator and PatchGAN (``model``), the noise/class GANs (``gan``)."""

from __future__ import annotations

from dataclasses import dataclass

from pix2gan.config.base import Norm, _check_enum, _FromDict

__all__ = ["ModelConfig", "GanModelConfig"]


@dataclass
class ModelConfig(_FromDict):
    """Generator and discriminator architecture.

    Args:
        generator: generator architecture, a name in :func:`pix2gan.nets.generator_names` (``unet``, ``resnet9``, ...).
        discriminator: discriminator architecture (``patchgan``).
        in_channels / out_channels: channels of the source and target images.
        depth: number of U-Net down-sampling steps; U-Net inputs must be multiples of ``2 ** depth`` (8 = unet_256).
        base_filters: filters of the first U-Net level (``ngf``), doubled per level up to 8x.
        norm: ``batch`` (pix2pix) or ``instance``.
        dropout: dropout 0.5 in the deepest decoder levels, as in pix2pix.
        disc_filters: filters of the first PatchGAN layer (``ndf``).
        disc_layers: strided PatchGAN layers; 3 gives the 70x70 receptive field.
    """

    # demo-sized defaults: ~1 M generator parameters that train in ~5 minutes on 2 CPU cores;
    # pix2pix's unet_256 is depth=8, base_filters=64, disc_filters=64
    generator: str = "unet"
    discriminator: str = "patchgan"
    in_channels: int = 1
    out_channels: int = 1
    depth: int = 5
    base_filters: int = 16
    norm: Norm = Norm.BATCH
    dropout: bool = True
    disc_filters: int = 8
    disc_layers: int = 3

    def __post_init__(self) -> None:
        self.norm = _check_enum("ModelConfig", "norm", self.norm, Norm)  # type: ignore[assignment]
        for name in ("in_channels", "out_channels", "base_filters", "disc_filters"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 2 <= self.depth <= 10:
            raise ValueError(f"ModelConfig.depth must be in [2, 10], got {self.depth}")
        if not 1 <= self.disc_layers <= 6:
            raise ValueError(f"ModelConfig.disc_layers must be in [1, 6], got {self.disc_layers}")


@dataclass
class GanModelConfig(_FromDict):
    """Noise-to-image (DCGAN) and class-conditional (CGAN) networks.

    Args:
        generator: generator architecture (``dcgan``: DCGAN, conditioned by a label embedding in class mode; ``mlp``).
        discriminator: discriminator architecture (``dcgan``: DCGAN, a projection discriminator in class mode; ``mlp``).
        latent_dim: size of the noise vector z.
        channels: image channels (1 grayscale, 3 RGB); 0, the default, takes them from the data when training
            starts (the checkpoint records the number). Networks are built with 1 or 3.
        image_size: side of the square images: 28, 32, 64 or 128.
        gen_filters: filters of the generator's last (highest-resolution) transposed convolution (DCGAN ``ngf``).
        disc_filters: filters of the discriminator's first convolution (DCGAN ``ndf``).
        num_classes: classes for the conditional mode (0 = unconditional).
        embed_dim: size of the learned label embedding concatenated with z in the conditional generator.
    """

    generator: str = "dcgan"
    discriminator: str = "dcgan"
    latent_dim: int = 64
    channels: int = 0
    image_size: int = 32
    gen_filters: int = 32
    disc_filters: int = 32
    num_classes: int = 0
    embed_dim: int = 32

    def __post_init__(self) -> None:
        if self.image_size not in (28, 32, 64, 128):
            raise ValueError(f"GanModelConfig.image_size must be 28, 32, 64 or 128, got {self.image_size}")
        if self.channels not in (0, 1, 3):
            raise ValueError(f"GanModelConfig.channels must be 1 or 3 (0: from the data), got {self.channels}")
        for name in ("latent_dim", "gen_filters", "disc_filters", "embed_dim"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"GanModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_classes < 0 or self.num_classes == 1:
            raise ValueError(f"GanModelConfig.num_classes must be 0 (unconditional) or >= 2, got {self.num_classes}")
