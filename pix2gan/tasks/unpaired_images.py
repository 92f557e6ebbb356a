"""Unpaired training on two folders of 2-D images (``--data A/ --data-b B/``: the classic horse <-> zebra course
experiment): what :class:`~pix2gan.tasks.unpaired.UnpairedTask` does differently there than on volumes.

The images of both folders are decoded once (:class:`~pix2gan.data.unpaired.ImageFolderPair`: centre-cropped and
resized to ``--image-size``, each folder grayscale or RGB as its files are) and sampled independently. Their channels
set the generators' (``model.in_channels`` for A, ``model.out_channels`` for B, recorded in the run's config); where
they differ the identity loss is off, with a log line. There are no subjects, so nothing is held out: ``best.pt``
follows the training cycle loss. Each epoch ends with a panel of a -> b -> a and b -> a -> b for the first image of
each folder, shown as the images are (0-255).

Example:
    >>> import tempfile
    >>> from PIL import Image
    >>> from pix2gan.config import RunConfig
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for name, mode in (("horse", "RGB"), ("zebra", "L")):
    ...         (Path(tmp) / name).mkdir()
    ...         Image.new(mode, (40, 30)).save(Path(tmp) / name / "1.png")
    ...     cfg = RunConfig.from_options("unpaired", data=f"{tmp}/horse", data_b=f"{tmp}/zebra", image_size=16)
    ...     folders = ImageFolders(cfg, check_new=lambda: None)
    >>> cfg.model.in_channels, cfg.model.out_channels, len(folders.dataset), folders.objective.identity
    (3, 1, 1, False)
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from pix2gan.config import RunConfig
from pix2gan.data.unpaired import ImageFolderPair
from pix2gan.errors import InputError
from pix2gan.infer.cycle_panel import save_cycle_images
from pix2gan.tasks.unpaired_objective import CycleObjective, identity_refusal, identity_weight

__all__ = ["ImageFolders"]

log = logging.getLogger("pix2gan")


class ImageFolders:
    """The data, objective and panel of an unpaired run on two image folders (``cfg.data.root`` is A, the sources;
    ``cfg.data.data_b`` B, the targets).

    Sets ``cfg.model``'s channels from the images (A's in, B's out), as the noise and class modes take theirs from
    their data, so the run's config and checkpoints record them.

    ``rank``: this process's rank under DDP (each rank's history pools draw their own streams).

    Attributes:
        dataset: the :class:`~pix2gan.data.unpaired.ImageFolderPair`.
        objective: CycleGAN's losses for these channels.
        checkpoint_extra: the folders, their image counts and channels (``data_info``); a resumed run must find
            the same.
        description: one line saying what is trained on what.

    Raises:
        InputError: ``--src`` equal to ``--dst``; a missing folder, one without images, an image that cannot be decoded
            or has transparent pixels (naming it).
    """

    def __init__(self, cfg: RunConfig, *, check_new: Callable[[], None], rank: int = 0) -> None:
        dc, tc = cfg.data, cfg.train
        if dc.src == dc.dst:
            raise InputError(f"--src and --dst are both {dc.src!r}; name the two image folders' domains differently")
        self.dataset = data = ImageFolderPair(dc.root, str(dc.data_b), tc.image_size, flip=tc.flip)
        (ca, cb), (na, nb) = data.channels, (len(data.a), len(data.b))
        identity = identity_weight(tc.lambda_identity, identity_refusal(ca, cb))  # (refused before the run folder)
        check_new()
        cfg.model = dataclasses.replace(cfg.model, in_channels=ca, out_channels=cb)
        self.src, self.dst = dc.src, dc.dst
        self.objective = CycleObjective(gan_kind=tc.gan_loss, lambda_cycle=tc.lambda_cycle, lambda_identity=identity,
                                        src_channels=ca, dst_channels=cb,
                                        pool_size=tc.pool_size, seed=tc.seed, rank=rank)  # fmt: skip
        info = {"source": dc.root, "source_b": dc.data_b, "n_images": [na, nb], "channels": [ca, cb]}
        self.checkpoint_extra = {"data_info": json.dumps(info)}
        self.description = (f"training {dc.src} <-> {dc.dst} (unpaired, CycleGAN) on {na} {_kind(ca)} {dc.src} images "
                            f"from {dc.root} and {nb} {_kind(cb)} {dc.dst} images from {dc.data_b}, "
                            f"{tc.image_size} x {tc.image_size}")  # fmt: skip
        log.warning("two image folders hold no validation subjects: best.pt follows the training cycle loss")

    @torch.no_grad()
    def write_panel(self, path: Path, generator: nn.Module, device: torch.device) -> None:
        """The first image of each folder through both cycles, one row each: a | G_ab(a) | G_ba(G_ab(a)) and
        b | G_ba(b) | G_ab(G_ba(b)), shown as the images are ([-1, 1] as 0-255; no random numbers drawn)."""
        save_cycle_images(path, generator, self.dataset.a[:1], self.dataset.b[:1], device, [self.src, self.dst])


def _kind(channels: int) -> str:
    return "RGB" if channels == 3 else "grayscale"
