"""Run-folder layout, atomic checkpoint saving and safe loading.

A checkpoint is a plain dictionary of tensors, numbers and strings, saved with ``torch.save`` through an atomic
rename and loaded with ``torch.load(weights_only=True)``, so loading never unpickles arbitrary objects. Configs and
intensity settings are stored as JSON strings::

    {"format": "pix2gan-checkpoint", "format_version": 1, "pix2gan_version": "0.1.0", "mode": "paired",
     "config": "<RunConfig JSON>",
     "intensity": "<{src, dst} IntensityMap JSON>"            (paired mode)
     "data_info": "<{class_names, source, n_images} JSON>"    (noise and class modes),
     "generator": state_dict, "discriminator": state_dict, "opt_g": ..., "opt_d": ..., "sched_g": ..., "sched_d": ...,
     "epoch": int, "step": int, "metrics": "<JSON of the last validation>"}

Run folder::

    RUN_DIR/config.json  split.json  log.csv  epochs.csv  loss_curve.png  panels/epoch_NNN.png
    RUN_DIR/checkpoints/latest.pt  best.pt (paired mode: lowest validation MAE)
"""

from __future__ import annotations

import json
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import pix2gan
from pix2gan.config import Mode, RunConfig
from pix2gan.data.intensity import IntensityMap
from pix2gan.volumes import InputError, atomic_path

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "RunLayout",
    "save_checkpoint",
    "load_checkpoint",
    "LoadedCheckpoint",
    "find_latest_run",
    "resolve_checkpoint",
]

FORMAT = "pix2gan-checkpoint"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class RunLayout:
    """Paths inside a run folder."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def split(self) -> Path:
        return self.root / "split.json"

    @property
    def log(self) -> Path:
        return self.root / "log.csv"

    @property
    def epochs(self) -> Path:
        return self.root / "epochs.csv"

    @property
    def loss_curve(self) -> Path:
        return self.root / "loss_curve.png"

    @property
    def panels(self) -> Path:
        return self.root / "panels"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def latest(self) -> Path:
        return self.checkpoints / "latest.pt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.pt"


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically (temp file in the same folder, fsync, ``os.replace``)."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "pix2gan_version": pix2gan.__version__, **payload}
    with atomic_path(path, overwrite=True) as tmp:
        torch.save(payload, tmp)


@dataclass
class LoadedCheckpoint:
    """A validated checkpoint: configs rebuilt from JSON, state dicts as tensors."""

    path: Path
    config: RunConfig
    src_map: IntensityMap | None  # paired mode only
    dst_map: IntensityMap | None
    raw: dict[str, Any]
    info: dict[str, Any]  # noise/class modes: class names, data source

    @property
    def mode(self) -> Mode:
        return self.config.train.mode

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
        if config.train.mode == Mode.PAIRED:
            intensity = json.loads(raw["intensity"])
            src_map = IntensityMap.from_dict(intensity["src"])
            dst_map = IntensityMap.from_dict(intensity["dst"])
        else:
            info = json.loads(raw["data_info"])
        raw["generator"]  # noqa: B018  (presence check)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: checkpoint is incomplete or damaged ({type(exc).__name__}: {exc})") from None
    return LoadedCheckpoint(path=path, config=config, src_map=src_map, dst_map=dst_map, raw=raw, info=info)


def find_latest_run(root: str | Path = "runs") -> Path:
    """The most recently written run folder under ``root`` that has a ``checkpoints/latest.pt``."""
    root = Path(root)
    runs = [p for p in root.glob("*/checkpoints/latest.pt")] if root.is_dir() else []
    if not runs:
        raise InputError(f"{root}: no trained run found (train one with `pix2gan train`, or pass --run / --checkpoint)")
    return max(runs, key=lambda p: p.stat().st_mtime).parent.parent


def resolve_checkpoint(run: Path | None = None, checkpoint: Path | None = None, runs_root: Path = Path("runs")) -> Path:
    """The checkpoint a command should use: ``--checkpoint``, else ``--run``'s best (or latest), else the newest run."""
    if checkpoint is not None:
        return checkpoint
    if run is None:
        run = find_latest_run(runs_root)
    if not run.is_dir():
        raise InputError(f"{run}: run folder not found")
    layout = RunLayout(run)
    for candidate in (layout.best, layout.latest):
        if candidate.is_file():
            return candidate
    raise InputError(f"{run}: run folder has no checkpoints/best.pt or latest.pt")
