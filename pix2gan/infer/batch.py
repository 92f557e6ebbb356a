"""Many volumes at once: a bad file does not stop a folder, and the files are shared across processes or GPUs.

:func:`translate_many` translates a planned list of (input, output) pairs (:func:`~pix2gan.infer.outputs.plan_outputs`)
and returns a :class:`BatchResult`. A volume that fails with an :class:`~pix2gan.errors.InputError` (corrupt,
truncated, wrong shape, NaN, several DICOM series...) is recorded with its one-line error, leaves nothing behind (no
output, ``_std`` map or data file; an old output it would have replaced is kept: see
:meth:`~pix2gan.infer.translate.Ensemble.translate_file`), and the others go on. Any other error (a bug, out of
memory) stops everything.

Three ways to run, the same outputs bit for bit:

* one process (``nproc=1``): the pairs in order, with an ensemble already loaded or loaded here;
* ``nproc=N``: N worker processes (the ``spawn`` start method: forking a process that holds torch is unsafe), each
  building the ensemble once from the picklable ``spec`` (the keyword arguments of
  :func:`~pix2gan.infer.translate.load_ensemble`; models are never pickled) on its device -- ``cuda:i`` for worker i
  with ``auto`` / ``cuda`` (round robin when there are fewer GPUs than workers), else the device given -- with
  ``cores // N`` torch threads each. The protocol: a :class:`~concurrent.futures.ProcessPoolExecutor` is handed every
  pair as one task and each task returns a :class:`FileResult` (input, output, seconds, error line or None) as it
  completes; a worker that raises anything but an InputError, or dies (killed, out of memory), becomes one
  :class:`WorkerError` in the parent instead of a hang (a plain ``multiprocessing.Pool`` waits forever for the task
  of a killed worker). After a worker error no new pair starts, but the pairs in progress finish and are reported
  before the error is raised; after a death the staging folders of the pairs in progress are removed;
* under ``torchrun`` (``WORLD_SIZE`` > 1, ``RANK`` set): rank r translates the pairs ``i % WORLD_SIZE == r`` on
  ``cuda:LOCAL_RANK`` (or the device given); with a gloo process group the ranks wait for each other's planning
  before writing, and rank 0 gathers every rank's results and reports them all; without one each rank reports its own.

Example:
    >>> worker_devices("cpu", 2)
    ['cpu', 'cpu']
    >>> r = BatchResult([FileResult(Path("a.nii.gz"), Path("a_ct.nii.gz"), 1.0, None),
    ...                  FileResult(Path("b.nii.gz"), Path("b_ct.nii.gz"), 0.1, "b.nii.gz: empty file (0 bytes)")],
    ...                 total=2, devices=["cpu"])
    >>> len(r.translated), r.failure_summary()
    (1, ', 1 failed: b.nii.gz')
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import torch

from pix2gan.device import resolve_device, resolve_precision
from pix2gan.errors import InputError
from pix2gan.io.atomic import discard_staging, staging_folders
from pix2gan.infer.inputs import SourceFiles
from pix2gan.infer.translate import Ensemble, load_ensemble

__all__ = ["BatchResult", "FileResult", "WorkerError", "planning_device", "torchrun_rank", "translate_many",
           "worker_devices"]  # fmt: skip

log = logging.getLogger(__name__)

Loader = Callable[..., Ensemble]


class FileResult(NamedTuple):
    """One volume's outcome: ``error`` is its one-line InputError message (naming the file), or None if written;
    ``input`` is a many-to-one model's :class:`~pix2gan.infer.inputs.SourceFiles` where the plan has one."""

    input: Path | SourceFiles
    output: Path
    seconds: float
    error: str | None


class WorkerError(RuntimeError):
    """A worker process failed with something other than an InputError, or died; one line naming the file.

    ``results`` holds the volumes the other workers finished (each also passed to ``on_result``), in completion order.
    """

    def __init__(self, message: str, results: list[FileResult] | None = None) -> None:
        super().__init__(message)
        self.results = results or []


@dataclass
class BatchResult:
    """What :func:`translate_many` did.

    Args:
        results: one per volume this process knows of, in plan order (under torchrun without a process group, or
            on a rank other than 0: this rank's share only).
        total: volumes planned, all processes together.
        devices: the device of each process that translated.
        report: whether this process reports the batch (prints the summary and sets the exit code): false on
            torchrun ranks other than 0 once rank 0 has gathered every result.
        scope: ``rank R/W`` when each torchrun rank reports only its own share, else empty.
    """

    results: list[FileResult]
    total: int
    devices: list[str]
    report: bool = True
    scope: str = ""
    seconds: float = 0.0

    @property
    def translated(self) -> list[FileResult]:
        return [r for r in self.results if r.error is None]

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.error is not None]

    def where(self) -> str:
        """The devices, in words: ``cpu``, or ``2 processes on cuda:0, cuda:1``."""
        if len(self.devices) == 1:
            return self.devices[0]
        names = list(dict.fromkeys(self.devices))
        return f"{len(self.devices)} processes on {', '.join(names)}"

    def failure_summary(self, limit: int = 5) -> str:
        """``, M failed: a, b`` (the first ``limit`` inputs, then how many more), or ``""`` when none failed."""
        failed = self.failed
        if not failed:
            return ""
        names = ", ".join(str(r.input) for r in failed[:limit])
        more = f" and {len(failed) - limit} more (see the error lines above)" if len(failed) > limit else ""
        return f", {len(failed)} failed: {names}{more}"


def torchrun_rank() -> tuple[int, int, int, int] | None:
    """(rank, world size, local rank, local world size) under torchrun (``WORLD_SIZE`` > 1 and ``RANK`` set), else None."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or "RANK" not in os.environ:
        return None
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    return int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")), local_world


def worker_devices(device: str, n: int) -> list[str]:
    """The device of each of ``n`` workers: ``cuda:i`` for worker i with ``auto`` / ``cuda`` where there is CUDA
    (round robin over the GPUs when there are fewer than ``n``), else ``device`` for all (``cpu``, ``cuda:N``).

    Raises:
        ValueError: an unknown device, or CUDA asked for where there is none.
    """
    resolved = resolve_device(device)
    if resolved.type == "cuda" and resolved.index is None:
        count = torch.cuda.device_count()
        return [f"cuda:{i % count}" for i in range(n)]
    return [str(resolved)] * n


def planning_device(device: str, nproc: int) -> str:
    """Where this process loads the models it plans with: its rank's device under torchrun, ``cpu`` when ``nproc``
    workers will translate (the devices are checked here, before anything starts), else ``device``."""
    ranked = torchrun_rank()
    if ranked is not None:
        _, _, local, local_world = ranked
        return worker_devices(device, local_world)[local]
    if nproc > 1:
        worker_devices(device, nproc)  # refuse a bad --device now, not in every worker
        return "cpu"
    return device


def translate_many(
    plan: list[tuple[Path | SourceFiles, Path]],
    spec: dict[str, Any],
    *,
    nproc: int = 1,
    ensemble: Ensemble | None = None,
    overwrite: bool = False,
    dtype: str = "float32",
    uncertainty: bool = False,
    series: str | None = None,
    keep_going: bool = True,
    on_result: Callable[[FileResult], None] | None = None,
    loader: Loader = load_ensemble,
) -> BatchResult:
    """Translate every (input, output) pair of ``plan``; a volume failing with an InputError is recorded and skipped.

    Args:
        plan: the pairs, from :func:`~pix2gan.infer.outputs.plan_outputs` (already checked: nothing is re-planned);
            an input is a volume, or a many-to-one model's :class:`~pix2gan.infer.inputs.SourceFiles` (picklable).
        spec: the keyword arguments of ``loader`` (:func:`~pix2gan.infer.translate.load_ensemble`: ``runs``,
            ``checkpoints``, ``device``, ``batch_size``, ``precision``, ``tta``, ``fusion``, and any other it takes,
            passed through as they are); picklable: each worker rebuilds the ensemble from it, with its own ``device``.
        nproc: worker processes (at most one per pair); 1 translates in this process. Under torchrun each rank is one
            process and ``nproc`` must be 1.
        ensemble: the models already loaded in this process (used when translating here; else loaded from ``spec``).
        overwrite, dtype, uncertainty, series: as :meth:`~pix2gan.infer.translate.Ensemble.translate_file`.
        keep_going: false to raise the first InputError instead (one volume: its error is the command's).
        on_result: called in this process with each :class:`FileResult` as it comes (in completion order).
        loader: how an ensemble is built from ``spec`` (a picklable, importable function).

    Returns:
        A :class:`BatchResult`, results in plan order.

    Raises:
        WorkerError: a worker failed with anything but an InputError, or died.
        ValueError: ``nproc`` < 1, or ``nproc`` > 1 under torchrun.
    """
    if nproc < 1:
        raise ValueError(f"--nproc must be at least 1, got {nproc}")
    options = {"overwrite": overwrite, "dtype": dtype, "uncertainty": uncertainty, "series": series}
    report = on_result or (lambda result: None)
    order = {pair: i for i, pair in enumerate(plan)}
    start = time.perf_counter()
    ranked = torchrun_rank()
    if ranked is not None:
        if nproc > 1:
            raise ValueError("--nproc and torchrun both start processes; use one of them")
        return _translate_as_rank(plan, spec, ranked, ensemble, options, keep_going, report, loader, start)
    if nproc == 1:
        ensemble = ensemble if ensemble is not None else loader(**spec)
        results = [_translate_here(ensemble, pair, options, keep_going, report) for pair in plan]
        devices = [str(ensemble.members[0].device)]
    else:
        results, devices = _translate_in_workers(plan, spec, min(nproc, len(plan)), options, keep_going, report, loader)
    results.sort(key=lambda r: order[(r.input, r.output)])
    return BatchResult(results, len(plan), devices, seconds=time.perf_counter() - start)


# --- one volume -----------------------------------------------------------------------------------------------------


def _translate_one(
    ensemble: Ensemble, in_path: Path | SourceFiles, out_path: Path, options: dict[str, Any], keep_going: bool
) -> FileResult:
    """Translate one pair; an InputError becomes the result's error line (or is raised: not ``keep_going``), any other
    error is raised. Either way a failed volume leaves nothing behind: :meth:`Ensemble.translate_file` moves its
    files (the output, its ``_std`` map, their data files) into place only once all are written. A many-to-one
    model's sources (:class:`SourceFiles`) are read by name; their error line names them (the subject folder)."""
    t0 = time.perf_counter()
    try:
        if isinstance(in_path, SourceFiles):
            ensemble.translate_file(None, out_path, inputs=in_path.named(), **options)
        else:
            ensemble.translate_file(in_path, out_path, **options)
    except InputError as exc:
        if not keep_going and isinstance(in_path, SourceFiles):
            raise InputError(_naming(str(exc), in_path)) from None
        if not keep_going:
            raise
        return FileResult(in_path, out_path, time.perf_counter() - t0, _naming(str(exc), in_path))
    return FileResult(in_path, out_path, time.perf_counter() - t0, None)


def _translate_here(
    ensemble: Ensemble, pair: tuple[Path | SourceFiles, Path], options: dict[str, Any], keep_going: bool,
    report: Callable[[FileResult], None],
) -> FileResult:  # fmt: skip
    result = _translate_one(ensemble, *pair, options, keep_going)
    report(result)
    return result


def _naming(message: str, in_path: Path | SourceFiles) -> str:
    """The error as one line that names the input (readers name it already; say it where one does not)."""
    line = " ".join(message.split())
    return line if str(in_path) in line or in_path.name in line else f"{in_path}: {line}"


# --- worker processes -----------------------------------------------------------------------------------------------


@dataclass
class _Worker:
    """This worker process's state, set once by :func:`_init_worker`; the ensemble is built at the first task."""

    device: str = "cpu"
    spec: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    keep_going: bool = True
    loader: Loader = load_ensemble
    ensemble: Ensemble | None = None


_WORKER = _Worker()


def _init_worker(devices: Any, spec: dict[str, Any], options: dict[str, Any], keep_going: bool, loader: Loader,
                 threads: int) -> None:  # fmt: skip
    """Run once in each worker: take a device, set the threads; Ctrl-C is the parent's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    _WORKER.device, _WORKER.spec, _WORKER.options = devices.get(), spec, options
    _WORKER.keep_going, _WORKER.loader = keep_going, loader


def _work(in_path: Path | SourceFiles, out_path: Path) -> FileResult:
    """One task: build the ensemble if this is the worker's first, translate one pair."""
    w = _WORKER
    try:
        if w.ensemble is None:
            w.ensemble = w.loader(**{**w.spec, "device": w.device})
        return _translate_one(w.ensemble, in_path, out_path, w.options, w.keep_going)
    except InputError:
        raise
    except Exception as exc:
        raise WorkerError(f"{in_path}: {type(exc).__name__}: {exc} (worker on {w.device})") from exc


_DIED = "a worker process died (killed, or out of memory?)"


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _translate_in_workers(
    plan: list[tuple[Path | SourceFiles, Path]], spec: dict[str, Any], n: int, options: dict[str, Any], keep_going: bool,
    report: Callable[[FileResult], None], loader: Loader,
) -> tuple[list[FileResult], list[str]]:  # fmt: skip
    import multiprocessing

    devices = worker_devices(str(spec.get("device", "auto")), n)
    for name in dict.fromkeys(devices):  # e.g. --precision bf16 on a GPU without it: refused here, once
        resolve_precision(str(spec.get("precision", "auto")), torch.device(name))
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.SimpleQueue()
    for device in devices:
        queue.put(device)
    pool = ProcessPoolExecutor(n, mp_context=ctx, initializer=_init_worker,
                               initargs=(queue, spec, options, keep_going, loader, max(1, _cores() // n)))  # fmt: skip
    results: list[FileResult] = []
    errors: dict[int, str] = {}  # plan index -> worker error: nothing new starts after the first; those in progress
    died = False  # finish and are reported; the error of the earliest volume in the plan is the one raised
    try:
        futures = {pool.submit(_work, *pair): i for i, pair in enumerate(plan)}
        for future in as_completed(futures):
            if future.cancelled():
                continue
            try:
                result = future.result()
            except BrokenProcessPool:  # every worker is gone, and the volumes they were writing with them
                died = True
                continue
            except WorkerError as exc:
                errors[futures[future]] = str(exc)
                for other in futures:
                    other.cancel()
                continue
            results.append(result)
            report(result)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # the volumes in progress finish (or their worker is gone)
        done = {(r.input, r.output) for r in results}
        for _, output in (pair for pair in plan if pair not in done):  # what a killed worker was writing
            for partial in staging_folders(output):
                discard_staging(partial)
    if errors:
        raise WorkerError(f"{errors[min(errors)]}; stopped after {len(results)} of {len(plan)} volume(s)", results)
    if died:
        raise WorkerError(f"{_DIED} after {len(results)} of {len(plan)} volume(s); the volumes in progress were not "
                          "written", results)  # fmt: skip
    return results, devices


# --- torchrun ranks -------------------------------------------------------------------------------------------------


def _translate_as_rank(
    plan: list[tuple[Path | SourceFiles, Path]], spec: dict[str, Any], ranked: tuple[int, int, int, int], ensemble: Ensemble | None,
    options: dict[str, Any], keep_going: bool, report: Callable[[FileResult], None], loader: Loader, start: float,
) -> BatchResult:  # fmt: skip
    import torch.distributed as dist

    rank, world, local, local_world = ranked
    if ensemble is None:
        ensemble = loader(**{**spec, "device": worker_devices(str(spec.get("device", "auto")), local_world)[local]})
    ours = not dist.is_initialized()
    grouped = _process_group() if dist.is_available() else False
    if grouped:
        dist.barrier()  # every rank has planned (and checked its outputs) before any writes
    results = [_translate_here(ensemble, pair, options, keep_going, report) for pair in plan[rank::world]]
    device = str(ensemble.members[0].device)
    if not grouped:
        return BatchResult(results, len(plan), [device], scope=f"rank {rank}/{world}",
                           seconds=time.perf_counter() - start)  # fmt: skip
    gathered: list[Any] | None = [None] * world if rank == 0 else None
    dist.gather_object((results, device), gathered, dst=0)
    if ours:
        dist.destroy_process_group()
    if rank != 0:
        return BatchResult(results, len(plan), [device], report=False, seconds=time.perf_counter() - start)
    order = {pair: i for i, pair in enumerate(plan)}
    every = sorted((r for part, _ in gathered for r in part), key=lambda r: order[(r.input, r.output)])  # type: ignore[union-attr]
    return BatchResult(every, len(plan), [d for _, d in gathered], seconds=time.perf_counter() - start)  # type: ignore[union-attr]


def _process_group() -> bool:
    """Join (or set up) a gloo process group over torchrun's rendezvous; False, with a warning, where none can be."""
    import torch.distributed as dist

    if dist.is_initialized():
        return True
    try:  # ranks may finish their shares hours apart: the final gather must not time out
        dist.init_process_group("gloo", timeout=timedelta(days=1))
    except (ValueError, RuntimeError) as exc:
        log.warning("no process group (%s): each rank reports its own volumes", " ".join(str(exc).split()))
        return False
    return True
