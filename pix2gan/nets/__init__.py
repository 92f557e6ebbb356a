"""Networks: the pix2pix U-Net generator and PatchGAN discriminator, DCGAN and class-conditional GAN networks."""

from pix2gan.nets.conditional import ConditionalDiscriminator, ConditionalGenerator
from pix2gan.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from pix2gan.nets.patchgan import PatchDiscriminator, receptive_field
from pix2gan.nets.unet import UNetGenerator, init_weights

__all__ = [
    "ConditionalDiscriminator",
    "ConditionalGenerator",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "PatchDiscriminator",
    "UNetGenerator",
    "init_weights",
    "receptive_field",
]
