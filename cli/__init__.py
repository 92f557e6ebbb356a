"""pix2gan command line (installed as the import package ``pix2gan_cli``)."""
