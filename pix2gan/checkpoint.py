"""Checkpoints: atomic saving, safe loading, and the generator rebuilt from what a checkpoint holds.

A checkpoint is a plain dictionary of tensors, numbers and strings, saved with ``torch.save`` through an atomic
rename and loaded with ``torch.load(weights_only=True)``, so loading never unpickles arbitrary objects. Configs and
intensity settings are stored as JSON strings::

    {"format": "pix2gan-checkpoint", "format_version": 1, "pix2gan_version": "0.1.0", "mode": "paired",
     "config": "<RunConfig JSON>",
     "intensity": "<{src, dst} IntensityMap JSON>"            (paired and unpaired modes; a many-to-one run's also
                                                              "sources": {name: map}, in channel order; its config's
                                                              data.src lists the sources, data.input_dropout > 0
                                                              says any of them may be missing)
     "data_info": "<{class_names, source, n_images} JSON>"    (noise and class modes; unpaired runs on two image
                                                              folders: {source, source_b, n_images, channels}),
     "generator": state_dict, "discriminator": state_dict, "opt_g": ..., "opt_d": ..., "sched_g": ..., "sched_d": ...,
     "generator_regression": state_dict   (a --gan-warmup run, from its switch to the adversarial term on: the
                                           generator at the end of the regression warm-up),
     "objective_state": {name: {name: tensor}}   (an objective with state of its own: CycleGAN's history pools),
     "objective_state_ranks": {"1": {...}, ...}  (DDP: the other ranks' objective states; rank 0's is objective_state),
     "epoch": int (completed epochs), "step": int, "metrics": "<JSON of the last epoch's row>",
     "rng": {"torch": ByteTensor, "cuda": [ByteTensor], "numpy_keys": tensor, "numpy": JSON, "python": JSON},
     "rng_ranks": {"1": {...}, ...}  (DDP: the other ranks' RNG states, as ``rng``; rank 0's is ``rng``),
     "progress": "<JSON: best score, partial sums of the current epoch, non-finite streak>"}

The run folder's layout is in :mod:`pix2gan.runs`. Everything a model needs to be rebuilt and used as trained
(architecture names and sizes, intensity settings, modality names, slice axis) is in ``config`` and ``intensity``,
so :meth:`LoadedCheckpoint.generator` needs nothing else.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

import pix2gan
from pix2gan.config import GanLoss, Mode, RunConfig
from pix2gan.data.intensity import IntensityMap
from pix2gan.errors import InputError
from pix2gan.io import atomic_path, fsync_folder
from pix2gan.nets import blend_state_dicts, build_generator
from pix2gan.runs import RunLayout

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "save_checkpoint",
    "load_checkpoint",
    "LoadedCheckpoint",
    "save_run_checkpoint",
    "resume_candidates",
]

log = logging.getLogger("pix2gan")
_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")

FORMAT = "pix2gan-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically (temp file in the same folder, fsync, ``os.replace``)."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "pix2gan_version": pix2gan.__version__, **payload}
    with atomic_path(path, overwrite=True) as tmp:
        torch.save(payload, tmp)


def save_run_checkpoint(layout: RunLayout, payload: dict[str, Any], *, step: int, keep_last: int, best: bool) -> Path:
    """Save ``checkpoints/step_<step>.pt``, point ``latest.pt`` (and ``best.pt`` if ``best``) at it, keep the last few.

    Every name is switched with ``os.replace``, so each of them is a complete checkpoint at every moment: a kill at
    any point leaves the previous ``latest.pt`` loadable.
    """
    layout.checkpoints.mkdir(parents=True, exist_ok=True)
    path = layout.checkpoints / f"step_{step:08d}.pt"
    save_checkpoint(path, payload)
    _replace_with_link(path, layout.latest)
    if best:
        _replace_with_link(path, layout.best)
    for old in _step_files(layout)[keep_last:]:
        old.unlink(missing_ok=True)
    return path


def _replace_with_link(src: Path, dst: Path) -> None:
    """Atomically make ``dst`` the same file as ``src`` (a hard link; a copy where links are not supported)."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.link")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
    os.replace(tmp, dst)
    fsync_folder(dst.parent)


def _step_files(layout: RunLayout) -> list[Path]:
    """Step checkpoints, newest first."""
    if not layout.checkpoints.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in layout.checkpoints.iterdir() if (m := _STEP_FILE.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def resume_candidates(layout: RunLayout) -> list[Path]:
    """Checkpoints to resume from, best first: step files newest first, then ``latest.pt``.

    Leftover temporary files of a save that was killed are removed on the way.
    """
    if layout.checkpoints.is_dir():
        for stale in layout.checkpoints.glob(".*"):
            if stale.is_file():
                stale.unlink(missing_ok=True)
    return [*_step_files(layout), *([layout.latest] if layout.latest.is_file() else [])]


@dataclass
class LoadedCheckpoint:
    """A validated checkpoint: configs rebuilt from JSON, state dicts as tensors."""

    path: Path
    config: RunConfig
    src_map: IntensityMap | None  # paired and unpaired modes only
    dst_map: IntensityMap | None
    raw: dict[str, Any]
    info: dict[str, Any]  # noise/class modes: class names, data source

    @property
    def mode(self) -> Mode:
        return self.config.train.mode

    @property
    def fixed_realism(self) -> float | None:
        """None when the checkpoint holds both generators of a ``--gan-warmup`` run (any realism can be dialled);
        else the realism of its only generator: 0 for a run without a GAN term or a checkpoint of the warm-up, 1 for
        an adversarial run trained without warm-up (and for noise and class runs)."""
        if "generator_regression" in self.raw:
            return None
        tc = self.config.train
        return 0.0 if tc.gan_loss == GanLoss.NONE or tc.gan_warmup > 0 else 1.0

    def check_realism(self, realism: float) -> None:
        """Refuse ``realism`` (one line naming the checkpoint) unless it is in [0, 1] and this checkpoint can give it.

        Raises:
            InputError: out of range, or another value than the realism of the checkpoint's only generator.
        """
        if not 0.0 <= realism <= 1.0:
            raise InputError(f"{self.path}: --realism must be in [0, 1], got {realism:g}")
        only = self.fixed_realism
        if only is None or realism == only:
            return
        tc = self.config.train
        if tc.gan_loss == GanLoss.NONE:
            why = "trained without a GAN term"
        else:
            why = "saved during the regression warm-up" if tc.gan_warmup > 0 else "trained without --gan-warmup"
        raise InputError(f"{self.path}: --realism {realism:g} needs both generators of a --gan-warmup run; this "
                         f"checkpoint was {why} and holds one (realism {only:g}): leave --realism out")  # fmt: skip

    def realism(self, realism: float | None = None) -> float:
        """The realism :meth:`generator` gives for ``realism``: the value asked for, else the run's default
        (``config.infer.realism``); a checkpoint holding one generator gives that one's (:attr:`fixed_realism`).

        Raises:
            InputError: a ``realism`` the checkpoint cannot give (:meth:`check_realism`).
        """
        if realism is not None:
            self.check_realism(realism)
        only = self.fixed_realism
        return only if only is not None else self.config.infer.realism if realism is None else float(realism)

    def generator_state(self, realism: float | None = None) -> dict[str, torch.Tensor]:
        """The generator's state dict at ``realism`` (see :meth:`generator`)."""
        realism = self.realism(realism)
        if self.fixed_realism is not None:
            return self.raw["generator"]
        try:
            return dict(blend_state_dicts(self.raw["generator_regression"], self.raw["generator"], realism))
        except ValueError as exc:
            raise InputError(f"{self.path}: the regression snapshot does not match the generator ({exc})") from None

    def generator(self, device: torch.device | str = "cpu", *, realism: float | None = None) -> nn.Module:
        """The trained generator, rebuilt through the network registry, in eval mode on ``device``.

        Args:
            realism: for a checkpoint of a ``--gan-warmup`` run, the blend (1 - A) x the regression snapshot + A x
                the adversarial generator (:func:`~pix2gan.nets.blend_state_dicts`); None: the run's default
                (``config.infer.realism``), or the only generator of a checkpoint that holds one.

        Raises:
            InputError: the weights do not fit the architecture the checkpoint's config describes; a ``realism`` the
                checkpoint cannot give (:meth:`check_realism`).
        """
        state = self.generator_state(realism)
        try:
            net = build_generator(self.config, init=False)
            net.load_state_dict(state)
        except (RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise InputError(f"{self.path}: generator weights do not match its model config ({first})") from None
        return net.to(device).eval()

    def require(self, mode: Mode) -> LoadedCheckpoint:
        """This checkpoint, if it is of ``mode``; else one clear InputError."""
        _check_mode(self.path, self.mode, mode)
        return self


def _check_mode(path: Path, have: Mode, want: Mode | None) -> None:
    if want is not None and have != want:
        raise InputError(
            f"{path}: checkpoint is from a {have.value}-mode run; this command needs a {want.value}-mode model"
        )


def load_checkpoint(path: str | Path, *, expect_mode: Mode | None = None) -> LoadedCheckpoint:
    """Load and validate a checkpoint without unpickling code.

    Raises:
        InputError: missing, truncated, corrupt, foreign (not a pix2gan checkpoint), a newer format, a crafted pickle
            that ``weights_only`` refuses, or a checkpoint of another mode than ``expect_mode``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip container; anything else is damaged or foreign
        raise InputError(f"{path}: not a readable checkpoint, truncated or corrupt (no torch archive)")
    try:  # every member's CRC: damaged weight bytes would otherwise load silently as garbage
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise InputError(f"{path}: not a readable checkpoint, truncated or corrupt ({type(exc).__name__})") from None
    if damaged is not None:
        raise InputError(f"{path}: corrupt checkpoint (checksum mismatch in {damaged})")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise InputError(
            f"{path}: refused to load: it holds pickled objects other than tensors and plain containers"
            " (weights_only); it may be malicious"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable checkpoint, truncated or corrupt ({type(exc).__name__})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise InputError(f"{path}: not a pix2gan checkpoint")
    version = raw.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InputError(
            f"{path}: checkpoint format {version} is newer than this pix2gan understands ({FORMAT_VERSION}); upgrade"
        )
    src_map = dst_map = None
    info: dict[str, Any] = {}
    try:
        config = RunConfig.from_dict(json.loads(raw["config"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: checkpoint is incomplete or damaged ({type(exc).__name__}: {exc})") from None
    _check_mode(path, config.train.mode, expect_mode)
    try:
        if config.train.mode.translates and config.data.data_b is None:  # (image folders: no intensity maps)
            intensity = json.loads(raw["intensity"])
            src_map = IntensityMap.from_dict(intensity["src"])
            dst_map = IntensityMap.from_dict(intensity["dst"])
        else:
            info = json.loads(raw["data_info"])
        raw["generator"]  # noqa: B018  (presence check)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: checkpoint is incomplete or damaged ({type(exc).__name__}: {exc})") from None
    return LoadedCheckpoint(path=path, config=config, src_map=src_map, dst_map=dst_map, raw=raw, info=info)
