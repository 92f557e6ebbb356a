"""Networks: the pix2pix U-Net generator and the PatchGAN discriminator."""

from pix2gan.nets.patchgan import PatchDiscriminator, receptive_field
from pix2gan.nets.unet import UNetGenerator, init_weights

__all__ = ["UNetGenerator", "PatchDiscriminator", "init_weights", "receptive_field"]
