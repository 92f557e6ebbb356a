"""Networks, one architecture per file, built by name through :mod:`pix2gan.nets.registry`.

Paired mode: the pix2pix U-Net generator and PatchGAN discriminator. Noise and class modes: DCGAN networks and their
class-conditional versions.
"""

from pix2gan.nets.conditional import ConditionalDiscriminator, ConditionalGenerator
from pix2gan.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from pix2gan.nets.interpolate import blend_state_dicts
from pix2gan.nets.layers import init_weights, norm_layer
from pix2gan.nets.patchgan import PatchDiscriminator, receptive_field
from pix2gan.nets.registry import (
    DISCRIMINATORS,
    GENERATORS,
    Architecture,
    build_generator,
    build_networks,
    check_architectures,
    discriminator_names,
    generator_names,
    padding_multiple,
)
from pix2gan.nets.unet import UNetGenerator

__all__ = [
    "UNetGenerator",
    "PatchDiscriminator",
    "receptive_field",
    "DCGANGenerator",
    "DCGANDiscriminator",
    "ConditionalGenerator",
    "ConditionalDiscriminator",
    "init_weights",
    "blend_state_dicts",
    "norm_layer",
    "Architecture",
    "GENERATORS",
    "DISCRIMINATORS",
    "build_networks",
    "build_generator",
    "check_architectures",
    "generator_names",
    "discriminator_names",
    "padding_multiple",
]
