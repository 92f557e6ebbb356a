"""``--tensorboard``: the training logs as TensorBoard event files in ``RUN/tb/``, next to the CSV logs.

The loop hands :class:`TensorBoardLog` what it hands the CSV logs, at the same places: every step's losses and
learning rates (tags ``train/<log.csv column>``, plus ``train/lr_d`` while the discriminator is trained), every
epoch's row (``epoch/<epochs.csv column>``: the mean losses, the validation figures such as ``epoch/val_mae``,
``epoch/seconds``) and the PNG drawn after the epoch (tag ``panel``: the validation panel, or the sample grid of a
noise/class run). Every value is plotted against the global step, the ``step`` column of the CSV files.

A resumed run appends a new event file to the same folder, starting with a marker that makes TensorBoard drop what
the interrupted run logged after its checkpoint (``purge_step``), as the CSV logs are cut back. TensorBoard is an
optional dependency (``pip install pix2gan[tensorboard]``), imported only when a run asks for it.

The writer (a thread, and the event file it creates) starts when the ``with`` block that closes it is entered, never
before: a run whose set-up fails leaves no thread running and no empty event file.

Example:
    >>> with TensorBoardLog(None) as log:  # off: every call does nothing
    ...     log.step(1, {"lr": 2e-4, "loss_g": 0.5}); log.flush()
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pix2gan.errors import InputError

__all__ = ["TensorBoardLog", "require_tensorboard"]

INSTALL_HINT = "pip install pix2gan[tensorboard]"


def require_tensorboard() -> type:
    """torch's ``SummaryWriter``, or one clear error when the ``tensorboard`` package is not installed.

    Raises:
        InputError: ``--tensorboard needs the tensorboard package: pip install pix2gan[tensorboard]``.
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise InputError(f"--tensorboard needs the tensorboard package: {INSTALL_HINT}") from None
    return SummaryWriter


class TensorBoardLog:
    """Scalars and images of a run for TensorBoard; with ``folder`` None (no ``--tensorboard``, or a DDP rank other
    than 0) every method does nothing. The event file is written from entering the ``with`` block to leaving it
    (outside it, too, every method does nothing).

    Args:
        folder: where the event files go (``RUN/tb``), or None.
        purge_step: the first step a resumed run logs: events of the earlier run from this step on are dropped.
    """

    def __init__(self, folder: Path | None, *, purge_step: int | None = None) -> None:
        self.folder, self.purge_step = folder, purge_step
        self.writer: Any = None

    def step(self, step: int, values: dict[str, float]) -> None:
        """One training step's learning rates and losses (the ``log.csv`` columns), as ``train/<name>``."""
        if self.writer is None:
            return
        for name, value in values.items():
            self.writer.add_scalar(f"train/{name}", float(value), step)

    def epoch(self, row: dict[str, Any], panel: Path | None = None) -> None:
        """One ``epochs.csv`` row (its numbers besides ``epoch`` and ``step``) as ``epoch/<column>``, at the row's
        step, and the epoch's PNG ``panel`` when it was drawn."""
        if self.writer is None:
            return
        step = int(row["step"])
        for name, value in row.items():
            if name not in ("epoch", "step"):
                self.writer.add_scalar(f"epoch/{name}", float(value), step)
        if panel is not None and panel.is_file():
            import numpy as np
            from PIL import Image

            with Image.open(panel) as image:
                pixels = np.asarray(image.convert("RGB"))  # (H, W, 3) uint8
            self.writer.add_image("panel", pixels, step, dataformats="HWC")

    def flush(self) -> None:
        """Write what waits in memory (at every checkpoint, with the CSV logs)."""
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def __enter__(self) -> TensorBoardLog:
        """Start the writer (its thread and event file) when there is a folder."""
        if self.folder is not None and self.writer is None:
            self.writer = require_tensorboard()(str(self.folder), purge_step=self.purge_step)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
