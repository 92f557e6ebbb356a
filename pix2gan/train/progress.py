"""What a person watching training sees: a rich progress bar, and the append-only CSV logs.

``log.csv`` (one row per step) and ``epochs.csv`` (one per epoch) are appended to: rows wait in memory until the
next checkpoint flushes them, so memory does not grow with the run and a save never rewrites what is on disk.
On resume each log is cut back to the checkpoint's step, once.

Example:
    >>> import tempfile, pathlib
    >>> log = CsvLog(pathlib.Path(tempfile.mkdtemp()) / "log.csv")
    >>> log.append({"step": 1, "loss": 0.5}); log.append({"step": 2, "loss": 0.25}); log.flush()
    >>> log.cut(1)
    [{'step': '1', 'loss': '0.5'}]
    >>> log.path.read_text().splitlines()
    ['step,loss', '1,0.5']
"""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from pathlib import Path
from typing import Any

from pix2gan.io import atomic_write_text

__all__ = ["CsvLog", "Progress"]

log = logging.getLogger("pix2gan")


class CsvLog:
    """A CSV file that grows by appending rows; the columns are those of the first row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pending: list[dict[str, Any]] = []
        self.fields: list[str] | None = None

    def append(self, row: dict[str, Any]) -> None:
        self.pending.append(row)

    def flush(self) -> None:
        """Write the waiting rows at the end of the file (with the header when the file is new), and fsync."""
        if not self.pending:
            return
        new = not self.path.is_file() or self.path.stat().st_size == 0
        if self.fields is None:
            self.fields = self._header() if not new else list(self.pending[0])
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.fields)
        if new:
            writer.writeheader()
        writer.writerows(self.pending)
        with open(self.path, "a", newline="") as fh:
            fh.write(buf.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
        self.pending = []

    def _header(self) -> list[str]:
        with open(self.path, newline="") as fh:
            return next(csv.reader(fh), [])

    def cut(self, step: int, *, write: bool = True) -> list[dict[str, str]]:
        """Drop the rows after ``step`` (a resumed run writes them again); returns the rows kept.

        With ``write`` false the file is only read (DDP ranks other than 0 write nothing).
        """
        self.pending = []
        if not self.path.is_file():
            return []
        with open(self.path, newline="") as fh:
            reader = csv.DictReader(fh)
            self.fields = list(reader.fieldnames or [])
            rows = [r for r in reader if int(r["step"]) <= step]
        if not write:
            return rows
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.fields)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.path, buf.getvalue())
        return rows


class Progress:
    """A rich progress bar over all steps: epoch, step, current losses, elapsed time and ETA."""

    def __init__(
        self, total: int | None, epochs: int | str, *, enabled: bool, console: Any = None, completed: int = 0
    ) -> None:
        self.enabled = enabled
        self.epochs = epochs
        self.progress = None
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self.progress = RichProgress(
                TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[losses]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            )
            self.task = self.progress.add_task("train", total=total, completed=completed, epoch=1, epochs=epochs,
                                               losses="")  # fmt: skip

    def __enter__(self) -> Progress:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def update(self, epoch: int, text: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, advance=1, epoch=epoch, losses=text)

    def settle(self, total: int, epochs: str) -> None:
        """The count of epochs became known (``--minutes``): the bar's total and its epoch count."""
        self.epochs = epochs
        if self.progress is not None:
            self.progress.update(self.task, total=total, epochs=epochs)

    def log(self, message: str) -> None:
        if self.progress is not None:
            self.progress.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}", highlight=False)
        else:
            log.info(message)
