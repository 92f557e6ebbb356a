"""Which generator of a checkpoint translates, and with which configuration and intensity maps.

A paired run has one generator (source -> target). An unpaired (CycleGAN) run has two: G_ab (source -> target,
the default) and G_ba (target -> source, ``reverse``). G_ba is used with :func:`~pix2gan.nets.cycle.reversed_config`
(modalities and intensity settings swapped, one slice in) and the checkpoint's maps swapped: the target's map
normalises its input, the source's maps its output back (a generated T1 with the training volumes' reference
scale, a generated CT in HU). :class:`~pix2gan.infer.translate.Translator` and :mod:`pix2gan.infer.export` both take
their generator from here, so ``translate --reverse`` and ``export --reverse`` cannot disagree.

Example:
    >>> from pix2gan.checkpoint import LoadedCheckpoint
    >>> from pix2gan.config import ModelConfig
    >>> from pix2gan.data.intensity import intensity_maps
    >>> from pix2gan.nets import build_generator
    >>> cfg = RunConfig.from_options("unpaired", src="t1", dst="ct", filters=4)
    >>> ckpt = LoadedCheckpoint(Path("g.pt"), cfg, *intensity_maps(cfg.data), {"generator": build_generator(cfg).state_dict()}, {})
    >>> d = directed(ckpt, reverse=True)
    >>> d.name, d.config.data.src, d.config.data.dst, d.src_map.kind.value, d.dst_map.kind.value
    ('G_ba', 'ct', 't1', 'hu', 'percentile')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from pix2gan.checkpoint import LoadedCheckpoint
from pix2gan.config import Mode, RunConfig
from pix2gan.data.intensity import IntensityMap
from pix2gan.errors import InputError
from pix2gan.nets.cycle import reversed_config

__all__ = ["Directed", "directed", "require_exported_direction", "GENERATOR_NAMES"]

GENERATOR_NAMES = ("G", "G_ab", "G_ba")  # a paired run's one generator; an unpaired run's two


@dataclass(frozen=True)
class Directed:
    """One generator of a checkpoint ready to translate in one direction.

    Args:
        generator: the network (eval mode): (B, (2K + 1) C_in, H, W) in [-1, 1] -> (B, C_out, H, W).
        config: the configuration it is used with (``data.src`` is its input modality, ``data.dst`` its output).
        src_map / dst_map: the intensity maps of its input and its output (None for a run on two image folders:
            :func:`pix2gan.infer.images.image_directed`).
        name: ``G`` (a paired run's generator), ``G_ab`` or ``G_ba`` (an unpaired run's).
    """

    generator: nn.Module
    config: RunConfig
    src_map: IntensityMap
    dst_map: IntensityMap
    name: str


def directed(
    ckpt: LoadedCheckpoint, *, reverse: bool = False, realism: float | None = None, device: torch.device | str = "cpu"
) -> Directed:
    """The generator of a paired checkpoint, or G_ab (G_ba with ``reverse``) of an unpaired one, in eval mode on
    ``device``; ``realism``: as :meth:`LoadedCheckpoint.generator`.

    Raises:
        InputError: a checkpoint of another mode (noise, class) or of image folders; ``reverse`` with a paired
            run's; no intensity maps; a ``realism`` the checkpoint cannot give.
    """
    if ckpt.config.data.data_b is not None:
        raise InputError(f"{ckpt.path}: trained on two image folders (--data-b): it translates 2-D images "
                         f"(pix2gan.infer.images.ImageTranslator), not volumes")  # fmt: skip
    if ckpt.mode != Mode.UNPAIRED:
        ckpt.require(Mode.PAIRED)
        if reverse:
            raise InputError(f"{ckpt.path}: --reverse translates with G_ba of an unpaired (CycleGAN) run; this is "
                             f"a paired-mode run, which has one direction")  # fmt: skip
    if ckpt.src_map is None or ckpt.dst_map is None:
        raise InputError(f"{Path(ckpt.path)}: checkpoint has no intensity maps; not a paired or unpaired model")
    generator = ckpt.generator(device, realism=realism)
    if ckpt.mode != Mode.UNPAIRED:
        return Directed(generator, ckpt.config, ckpt.src_map, ckpt.dst_map, "G")
    if reverse:  # (CycleGenerators: the direction picks the module and the maps)
        return Directed(generator.g_ba, reversed_config(ckpt.config), ckpt.dst_map, ckpt.src_map, "G_ba")
    return Directed(generator.g_ab, ckpt.config, ckpt.src_map, ckpt.dst_map, "G_ab")


def require_exported_direction(name: str, config: RunConfig, generator: str, *, reverse: bool) -> None:
    """Refuse ``reverse`` with an exported model that is not G_ba: an export holds one direction (``generator``,
    one of :data:`GENERATOR_NAMES`, translating ``config.data.src`` -> ``config.data.dst``).

    Raises:
        InputError: ``reverse`` and ``generator`` is not ``G_ba`` (one line naming ``name``).
    """
    if reverse and generator != "G_ba":
        raise InputError(f"{name}: --reverse: this exported model translates {config.data.src} -> "
                         f"{config.data.dst}, not with G_ba; export the run with --reverse")  # fmt: skip
