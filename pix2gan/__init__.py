"""pix2gan: image-to-image translation for medical volumes (pix2pix U-Net + PatchGAN, GAN loss + L1).

Example:
    >>> from pix2gan import ModelConfig, UNetGenerator
    >>> sum(p.numel() for p in UNetGenerator(ModelConfig(in_channels=3, out_channels=3, depth=8, base_filters=64)).parameters())
    54413955
"""

__version__ = "0.1.0"

from pix2gan.config import DataConfig, GanLoss, IntensityKind, Mode, ModelConfig, Norm, RunConfig, TrainConfig
from pix2gan.losses import GANLoss, L1Loss, gan_loss, l1_loss
from pix2gan.nets import PatchDiscriminator, UNetGenerator
from pix2gan.errors import InputError

__all__ = [
    "__version__",
    "DataConfig",
    "ModelConfig",
    "TrainConfig",
    "RunConfig",
    "Mode",
    "Norm",
    "GanLoss",
    "IntensityKind",
    "UNetGenerator",
    "PatchDiscriminator",
    "GANLoss",
    "L1Loss",
    "gan_loss",
    "l1_loss",
    "InputError",
]
