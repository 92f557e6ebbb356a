"""The training data loader: batches in the epoch sampler's order, and loader failures as one line, never a hang.

Example:
    >>> worker_message(RuntimeError("Caught InputError in DataLoader worker process 0.\\nTraceback ...\\n"
    ...                             "pix2gan.errors.InputError: a.nii.gz: slice 3 could not be prepared"))
    'a.nii.gz: slice 3 could not be prepared'
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader

from pix2gan.config import TrainConfig
from pix2gan.data.batches import EpochBatchSampler
from pix2gan.errors import InputError, TrainingError
from pix2gan.train.hardware import StepContext
from pix2gan.train.runstate import StopSignals

__all__ = ["make_loader", "batches", "workers_stopped", "worker_message"]


def make_loader(
    dataset: torch.utils.data.Dataset, sampler: EpochBatchSampler, tc: TrainConfig, device: torch.device
) -> DataLoader:
    """Batches in the sampler's order; its own generator, so creating iterators never draws from the global RNG."""
    workers = tc.num_workers
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        generator=torch.Generator().manual_seed(tc.seed),
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        worker_init_fn=_ignore_stop_signals if workers else None,
        timeout=600.0 if workers else 0.0,  # a worker stuck for 10 minutes is an error, not a hang
    )


def _ignore_stop_signals(worker_id: int) -> None:
    """Workers leave Ctrl-C / SIGTERM to the main process, which finishes the step and saves a checkpoint."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@contextlib.contextmanager
def workers_stopped(loader: DataLoader) -> Iterator[None]:
    """Shut persistent data-loader workers down when training ends, also on errors (no orphaned processes)."""
    try:
        yield
    finally:
        iterator = getattr(loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
            loader._iterator = None


def batches(loader: DataLoader, ctx: StepContext, stop: StopSignals | None = None) -> Iterator[dict[str, torch.Tensor]]:
    """The loader's batches on ``device``; a failing data set or worker becomes one line instead of a traceback or hang.

    When a stop was requested (Ctrl-C also reaches worker processes), a failed fetch just ends the iteration.
    """
    it = iter(loader)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except Exception as exc:
            if hasattr(it, "_shutdown_workers"):
                it._shutdown_workers()  # the other workers must not outlive the failure
            if stop is not None and stop.requested:
                return
            message = worker_message(exc)
            if isinstance(exc, InputError):  # also when a worker raised it: the loader re-raises the same type
                raise InputError(message) from None
            raise TrainingError(f"data loading failed: {message}") from None
        yield ctx.prepare(batch)


def worker_message(exc: BaseException) -> str:
    """The original one-line message of an exception re-raised by a DataLoader worker (which wraps a traceback)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if len(lines) == 1 or not lines[0].startswith("Caught "):
        return lines[0] if not lines[0].startswith("DataLoader worker") else " ".join(lines)
    last = lines[-1]  # "pix2gan.errors.InputError: /path: problem"
    head, sep, rest = last.partition(": ")
    return rest if sep and "." in head and " " not in head else last
