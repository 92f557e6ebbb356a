"""pix2gan: image-to-image translation for medical volumes (pix2pix U-Net + PatchGAN)."""
__version__ = "0.1.0"
