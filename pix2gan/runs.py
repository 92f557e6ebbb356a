"""Run folders: where a run's files are, where new runs go, and which checkpoint a command uses.

One rule for every command (``translate``, ``eval``, ``sample``): ``--checkpoint FILE`` when given, else the run's
``best.pt`` (paired runs), else its ``latest.pt``; the run is ``--run``, else the folder holding the checkpoint, else
the newest run under :func:`runs_root` (``$PIX2GAN_RUNS``, else ``./runs``), where ``train`` also puts new runs.

Run folder::

    RUN_DIR/config.json  split.json  log.csv  epochs.csv  loss_curve.png  panels/epoch_NNN.png
    RUN_DIR/tb/                            with --tensorboard: TensorBoard event files
    RUN_DIR/checkpoints/step_SSSSSSSS.pt   the last ``keep_last`` saves
    RUN_DIR/checkpoints/latest.pt          the newest save (a hard link to its step file)
    RUN_DIR/checkpoints/best.pt            paired mode: lowest validation MAE (a hard link as well)

Example:
    >>> RunLayout(Path("runs/t1ct")).latest.as_posix()
    'runs/t1ct/checkpoints/latest.pt'
    >>> run_of_checkpoint(Path("/nowhere/model.pt")) is None
    True
    >>> runs_root({"PIX2GAN_RUNS": "/data/runs"}).as_posix(), runs_root({}).as_posix()
    ('/data/runs', 'runs')
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pix2gan.errors import InputError

__all__ = ["RUNS_ROOT", "RUNS_ENV", "runs_root", "RunLayout", "RunRef", "new_run_dir", "find_latest_run",
           "run_of_checkpoint", "resolve_run", "resolve_checkpoint"]  # fmt: skip

RUNS_ROOT = Path("runs")  # where runs go when PIX2GAN_RUNS is not set (relative to the current folder)
RUNS_ENV = "PIX2GAN_RUNS"


def runs_root(environ: Mapping[str, str] | None = None) -> Path:
    """The folder new runs go to and the newest run is looked for in: ``$PIX2GAN_RUNS``, else ``./runs``.

    Read at every call (not at import), so a changed environment takes effect.
    """
    value = (os.environ if environ is None else environ).get(RUNS_ENV, "")
    return Path(value).expanduser() if value else RUNS_ROOT


@dataclass(frozen=True)
class RunLayout:
    """Paths inside a run folder."""

    root: Path

    @classmethod
    def of_run(cls, run_dir: str | Path) -> RunLayout:
        """The layout of an existing run folder: one that holds a ``config.json``.

        Raises:
            InputError: the folder does not exist, or holds no ``config.json``.
        """
        layout = cls(Path(run_dir))
        if not layout.root.is_dir():
            raise InputError(f"{layout.root}: run folder not found")
        if not layout.config.is_file():
            raise InputError(f"{layout.config}: not found; {layout.root} is not a pix2gan run folder")
        return layout

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

    def panel(self, epoch: int) -> Path:
        """The PNG drawn after ``epoch`` (a validation panel, or a sample grid)."""
        return self.panels / f"epoch_{epoch:03d}.png"

    @property
    def tb(self) -> Path:
        """TensorBoard event files (``--tensorboard``)."""
        return self.root / "tb"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def latest(self) -> Path:
        return self.checkpoints / "latest.pt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.pt"

    def read_split(self) -> dict[str, list[str]]:
        """The run's subject split (``split.json``: train / val / test lists of subject ids), checked."""
        if not self.split.is_file():
            raise InputError(f"{self.split}: run has no split.json")
        try:
            splits = json.loads(self.split.read_text())
            return {name: list(splits[name]) for name in ("train", "val", "test") if name in splits}
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InputError(f"{self.split}: not a valid split file (train / val / test lists of subject ids)") from None

    def model_checkpoint(self) -> Path:
        """The checkpoint to use the run's model from: ``best.pt`` when there is one, else ``latest.pt``."""
        for candidate in (self.best, self.latest):
            if candidate.is_file():
                return candidate
        raise InputError(f"{self.root}: run folder has no checkpoints/best.pt or latest.pt")


def new_run_dir(name: str, root: Path | None = None) -> Path:
    """``root/<name>-<YYYYmmdd-HHMMSS>``: the folder of a new run when none is given (``root``: :func:`runs_root`)."""
    return (runs_root() if root is None else root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def find_latest_run(root: str | Path | None = None) -> Path:
    """The most recently written run folder under ``root`` (:func:`runs_root`) that has a ``checkpoints/latest.pt``."""
    root = runs_root() if root is None else Path(root)
    runs = [p for p in root.glob("*/checkpoints/latest.pt")] if root.is_dir() else []
    if not runs:
        raise InputError(f"{root}: no trained run found (train one with `pix2gan train`, or pass --run / --checkpoint)")
    return max(runs, key=lambda p: p.stat().st_mtime).parent.parent


def run_of_checkpoint(checkpoint: Path) -> Path | None:
    """The run folder a checkpoint file lies in (``RUN/checkpoints/X.pt`` next to ``RUN/config.json``), or None."""
    run = checkpoint.parent.parent
    if checkpoint.parent.name == "checkpoints" and RunLayout(run).config.is_file():
        return run
    return None


@dataclass(frozen=True)
class RunRef:
    """The checkpoint a command uses, and the run folder it belongs to (None for a checkpoint outside any run)."""

    checkpoint: Path
    run_dir: Path | None

    def require_run(self, why: str) -> Path:
        """The run folder, or one clear error saying why it is needed."""
        if self.run_dir is None:
            raise InputError(f"{self.checkpoint}: not inside a run folder; pass --run RUN_DIR as well ({why})")
        return self.run_dir


def resolve_run(run: Path | None = None, checkpoint: Path | None = None, runs_root: Path | None = None) -> RunRef:
    """The checkpoint and run folder a command should use (see the module's rule)."""
    if checkpoint is not None:
        return RunRef(checkpoint=checkpoint, run_dir=run if run is not None else run_of_checkpoint(checkpoint))
    if run is None:
        run = find_latest_run(runs_root)
    if not run.is_dir():
        raise InputError(f"{run}: run folder not found")
    return RunRef(checkpoint=RunLayout(run).model_checkpoint(), run_dir=run)


def resolve_checkpoint(run: Path | None = None, checkpoint: Path | None = None, runs_root: Path | None = None) -> Path:
    """The checkpoint file of :func:`resolve_run`."""
    return resolve_run(run, checkpoint, runs_root).checkpoint
