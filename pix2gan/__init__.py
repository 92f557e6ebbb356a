"""pix2gan: image-to-image translation for medical volumes (pix2pix U-Net + PatchGAN, GAN loss + L1), and noise and
class-conditional GANs with the same code. ``docs/architecture.md`` maps the package.

Example:
    >>> from pix2gan import RunConfig, build_networks
    >>> cfg = RunConfig.from_options("paired", depth=8, filters=64, context=0)  # one slice in, as pix2pix
    >>> cfg.model.in_channels, cfg.model.out_channels = 3, 3
    >>> sum(p.numel() for p in build_networks(cfg)[0].parameters())  # pix2pix's unet_256
    54413955
"""

__version__ = "0.1.0"

from pix2gan.config import DataConfig, GanLoss, GanModelConfig, IntensityKind, Mode, ModelConfig, Norm, RunConfig, TrainConfig
from pix2gan.errors import InputError, TrainingError, TrainingInterrupted
from pix2gan.losses import GANLoss, L1Loss, gan_loss, l1_loss
from pix2gan.nets import PatchDiscriminator, UNetGenerator, build_generator, build_networks

__all__ = [
    "__version__",
    "DataConfig",
    "ModelConfig",
    "GanModelConfig",
    "TrainConfig",
    "RunConfig",
    "Mode",
    "Norm",
    "GanLoss",
    "IntensityKind",
    "build_networks",
    "build_generator",
    "UNetGenerator",
    "PatchDiscriminator",
    "GANLoss",
    "L1Loss",
    "gan_loss",
    "l1_loss",
    "InputError",
    "TrainingError",
    "TrainingInterrupted",
]
