"""The registry of architectures: a name in the configuration -> the constructor of the network.

``train``, ``translate``, ``sample``, ``eval`` and the benchmarks build networks only through
:func:`build_networks` / :func:`build_generator`, so a new architecture is one file in ``nets/`` plus one entry
below (see ``docs/architecture.md``). Paired generators expose ``multiple``: the in-plane sizes they accept are
multiples of it, and inference pads slices up to it.

Example:
    >>> from pix2gan.config import RunConfig
    >>> g, d = build_networks(RunConfig())
    >>> type(g).__name__, type(d).__name__, padding_multiple(RunConfig())
    ('UNetGenerator', 'PatchDiscriminator', 32)
    >>> generator_names("paired"), generator_names("noise")
    (['unet', 'resnet9', 'resnet6'], ['dcgan', 'mlp'])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from pix2gan.config import Mode, RunConfig
from pix2gan.nets.conditional import ConditionalDiscriminator, ConditionalGenerator
from pix2gan.nets.cycle import CycleDiscriminators, CycleGenerators, cycle_discriminators, cycle_generators
from pix2gan.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from pix2gan.nets.layers import init_weights
from pix2gan.nets.mlp import mlp_discriminator, mlp_generator
from pix2gan.nets.patchgan import PatchDiscriminator
from pix2gan.nets.resnet import resnet6, resnet9
from pix2gan.nets.unet import UNetGenerator

__all__ = ["Architecture", "GENERATORS", "DISCRIMINATORS", "build_networks", "build_generator", "check_architectures",
           "generator_names", "discriminator_names", "padding_multiple", "build_cycle_networks",
           "build_cycle_generators"]  # fmt: skip

PAIRED, GANS = (Mode.PAIRED, Mode.UNPAIRED), (Mode.NOISE, Mode.CLASS)  # (unpaired: both ways, see nets/cycle.py)


@dataclass(frozen=True)
class Architecture:
    """A registered network: its constructor (from the whole run configuration) and the modes it serves."""

    build: Callable[[RunConfig], nn.Module]
    modes: tuple[Mode, ...]
    summary: str
    multiple: Callable[[RunConfig], int] = lambda cfg: 1  # paired generators: in-plane sizes must be multiples of it


def _dcgan_generator(cfg: RunConfig) -> nn.Module:
    return ConditionalGenerator(cfg.gan) if cfg.mode == Mode.CLASS else DCGANGenerator(cfg.gan)


def _dcgan_discriminator(cfg: RunConfig) -> nn.Module:
    return ConditionalDiscriminator(cfg.gan) if cfg.mode == Mode.CLASS else DCGANDiscriminator(cfg.gan)


GENERATORS: dict[str, Architecture] = {
    "unet": Architecture(UNetGenerator.from_run_config, PAIRED, "pix2pix U-Net with skip connections (--depth levels)",
                         multiple=lambda cfg: 2**cfg.model.depth),
    "resnet9": Architecture(resnet9, PAIRED, "pix2pix resnet_9blocks: 2 down-samplings, 9 residual blocks",
                            multiple=lambda cfg: 4),
    "resnet6": Architecture(resnet6, PAIRED, "pix2pix resnet_6blocks: 2 down-samplings, 6 residual blocks",
                            multiple=lambda cfg: 4),
    "dcgan": Architecture(_dcgan_generator, GANS, "DCGAN; class mode: label embedding concatenated to z"),
    "mlp": Architecture(mlp_generator, GANS, "fully connected z -> 128 -> 256 -> 512 -> 1024 -> image (the classic GAN)"),
}

DISCRIMINATORS: dict[str, Architecture] = {
    "patchgan": Architecture(PatchDiscriminator.from_run_config, PAIRED, "pix2pix PatchGAN on (source, target) pairs"),
    "dcgan": Architecture(_dcgan_discriminator, GANS, "DCGAN; class mode: projection discriminator"),
    "mlp": Architecture(mlp_discriminator, GANS, "fully connected image -> 512 -> 256 -> logit"),
}


def generator_names(mode: Mode | str | None = None) -> list[str]:
    """Registered generators, all or those serving ``mode``."""
    return [n for n, a in GENERATORS.items() if mode is None or Mode(mode) in a.modes]


def discriminator_names(mode: Mode | str | None = None) -> list[str]:
    """Registered discriminators, all or those serving ``mode``."""
    return [n for n, a in DISCRIMINATORS.items() if mode is None or Mode(mode) in a.modes]


def _entry(table: dict[str, Architecture], kind: str, name: str, mode: Mode) -> Architecture:
    entry = table.get(name)
    if entry is None or mode not in entry.modes:
        choices = ", ".join(n for n, a in table.items() if mode in a.modes)
        where = "unknown" if entry is None else f"not a {mode.value}-mode network"
        raise ValueError(f"--{kind} {name!r}: {where}; {mode.value} mode has: {choices}")
    return entry


def check_architectures(cfg: RunConfig) -> None:
    """Refuse unknown architecture names, or ones of another mode, before any data are read.

    Raises:
        ValueError: naming the option, the value and the choices.
    """
    _entry(GENERATORS, "generator", cfg.nets.generator, cfg.mode)
    _entry(DISCRIMINATORS, "discriminator", cfg.nets.discriminator, cfg.mode)


def build_generator(cfg: RunConfig, *, init: bool = True) -> nn.Module:
    """The generator of ``cfg`` (N(0, init_gain) weights when ``init``; skip it when weights are loaded next); an
    unpaired run's is the pair G_ab, G_ba (:func:`build_cycle_generators`)."""
    if cfg.mode == Mode.UNPAIRED:
        return build_cycle_generators(cfg, init=init)
    net = _entry(GENERATORS, "generator", cfg.nets.generator, cfg.mode).build(cfg)
    if init:
        init_weights(net, cfg.train.init_gain)
    return net


def build_networks(cfg: RunConfig) -> tuple[nn.Module, nn.Module]:
    """Generator and discriminator of the run's mode with pix2pix's / DCGAN's N(0, init_gain) initialisation.

    Both are constructed before either is initialised: that order fixes the random numbers each one gets, so the
    same seed gives the same weights as every earlier version of pix2gan. An unpaired run's are CycleGAN's pairs
    (:func:`build_cycle_networks`).
    """
    if cfg.mode == Mode.UNPAIRED:
        return build_cycle_networks(cfg)
    generator = _entry(GENERATORS, "generator", cfg.nets.generator, cfg.mode).build(cfg)
    discriminator = _entry(DISCRIMINATORS, "discriminator", cfg.nets.discriminator, cfg.mode).build(cfg)
    init_weights(generator, cfg.train.init_gain)
    init_weights(discriminator, cfg.train.init_gain)
    return generator, discriminator


def build_cycle_generators(cfg: RunConfig, *, init: bool = True) -> CycleGenerators:
    """CycleGAN's G_ab and G_ba: the run's paired generator architecture (``model.generator``) both ways (see
    :mod:`pix2gan.nets.cycle` for their channels); N(0, init_gain) weights when ``init``."""
    entry = _entry(GENERATORS, "generator", cfg.model.generator, Mode.PAIRED)
    net = cycle_generators(cfg, entry.build)
    if init:
        init_weights(net, cfg.train.init_gain)
    return net


def build_cycle_networks(cfg: RunConfig) -> tuple[CycleGenerators, CycleDiscriminators]:
    """CycleGAN's networks: G_ab and G_ba (the paired generator architecture), D_a and D_b (PatchGANs judging one
    domain each), constructed in that order and then initialised N(0, init_gain), as :func:`build_networks` does.

    Example:
        >>> from pix2gan.config import ModelConfig
        >>> g, d = build_cycle_networks(RunConfig(model=ModelConfig(generator="resnet9", base_filters=4)))
        >>> type(g.g_ab).__name__, type(g.g_ba).__name__, type(d.d_a).__name__, type(d.d_b).__name__
        ('ResnetGenerator', 'ResnetGenerator', 'PatchDiscriminator', 'PatchDiscriminator')
    """
    _entry(DISCRIMINATORS, "discriminator", cfg.model.discriminator, Mode.PAIRED)  # (PatchGAN: the one there is)
    generators = cycle_generators(cfg, _entry(GENERATORS, "generator", cfg.model.generator, Mode.PAIRED).build)
    discriminators = cycle_discriminators(cfg)
    init_weights(generators, cfg.train.init_gain)
    init_weights(discriminators, cfg.train.init_gain)
    return generators, discriminators


def padding_multiple(cfg: RunConfig) -> int:
    """The in-plane multiple the generator's inputs must have: slices are padded up to it (1: any size)."""
    return _entry(GENERATORS, "generator", cfg.nets.generator, cfg.mode).multiple(cfg)
