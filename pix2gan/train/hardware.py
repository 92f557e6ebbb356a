"""How a training step uses the hardware: precision, gradient scaling, channels-last, compile, and DDP.

The step in :mod:`pix2gan.train.step` is written once; a :class:`StepContext` decides how their forward passes
run (autocast to bf16/fp16 or plain fp32) and how a loss becomes an update (gradient scaler for fp16, skipping
non-finite losses, agreeing on that skip across DDP ranks). :func:`init_distributed` reads torchrun's environment.

Example:
    >>> ctx = StepContext()                       # fp32 on the CPU, one process
    >>> net = torch.nn.Linear(2, 1)
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
    >>> with ctx.autocast():
    ...     loss = net(torch.ones(1, 2)).square().sum()
    >>> ctx.backward_step(loss, opt)
    True
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


from pix2gan.device import resolve_device

__all__ = ["DistInfo", "StepContext", "broadcast_buffers", "init_distributed", "mean_over_ranks", "rank0_decides",
           "rank0_number", "sync_batchnorm", "wrap_for_training"]  # fmt: skip

@dataclass(frozen=True)
class DistInfo:
    """This process's place in a torchrun job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the only process that writes the run folder."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def init_distributed(device_name: str) -> tuple[DistInfo, torch.device]:
    """Join the process group torchrun set up (``WORLD_SIZE`` > 1) and pick this rank's device.

    ``auto``/``cuda`` map to ``cuda:LOCAL_RANK`` under torchrun; NCCL on GPUs, gloo on CPUs. Without torchrun this
    only resolves the device.
    """

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), resolve_device(device_name)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    return DistInfo(rank=rank, world=world, local_rank=local), device


def wrap_for_training(
    net: nn.Module, device: torch.device, info: DistInfo, *, channels_last: bool = False, compile: bool = False
) -> nn.Module:
    """The module the training step calls: channels-last, DDP across ranks, then ``torch.compile``.

    The returned module shares its parameters with ``net``; save and validate with ``net`` itself.
    """
    if channels_last:
        net.to(memory_format=torch.channels_last)
    wrapped: nn.Module = net
    if info.distributed:
        wrapped = nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None
        )  # buffers (BatchNorm running statistics) follow rank 0's at every forward
    if compile:
        wrapped = torch.compile(wrapped)  # type: ignore[assignment]
    return wrapped


def sync_batchnorm(net: nn.Module, device: torch.device, info: DistInfo) -> nn.Module:
    """Batch-norm statistics over the global batch under DDP on GPUs (SyncBatchNorm needs CUDA; on CPU ranks the
    layers stay per-rank and DDP broadcasts rank 0's running statistics)."""
    if info.distributed and device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(net)
    return net


def broadcast_buffers(net: nn.Module, info: DistInfo) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics), which DDP syncs only before a forward."""
    if info.distributed:
        for buffer in net.buffers():
            dist.broadcast(buffer.data, src=0)


@dataclass
class StepContext:
    """How one training step runs.

    Args:
        device: where the step runs (decides the autocast device type).
        dtype: autocast dtype, or None for fp32.
        distributed: ranks must agree on skipping a non-finite update.
        channels_last: batches are converted to channels-last (with networks in that format).
        timings: when a dict, :meth:`mark` adds synchronised wall time per phase to it (benchmarks).
    """

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype | None = None
    distributed: bool = False
    channels_last: bool = False
    timings: dict[str, float] | None = None
    scaler: Any = None
    on_device: Any = None  # a function applied to each batch once it is on the device (e.g. paired crops)
    _last: float = 0.0
    _scaled: bool = False  # the scaler stepped an optimiser in this step

    def __post_init__(self) -> None:
        if self.dtype == torch.float16 and self.scaler is None:
            self.scaler = torch.amp.GradScaler(self.device.type)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def start(self) -> None:
        """Begin timing a step."""
        if self.timings is not None:
            self._sync()
            self._last = time.perf_counter()

    def mark(self, phase: str) -> None:
        """Charge the time since the last mark to ``phase`` (only when timing)."""
        if self.timings is not None:
            self._sync()
            now = time.perf_counter()
            self.timings[phase] = self.timings.get(phase, 0.0) + now - self._last
            self._last = now

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, phase: str = "") -> bool:
        """Back-propagate ``loss`` and update, unless it is not finite (on any rank): then the update is skipped.

        Returns:
            Whether the update was applied.
        """
        finite = torch.isfinite(loss.detach()).to(torch.float32)
        if self.distributed:
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)  # every rank skips, or none does
        ok = bool(finite)
        if ok or self.distributed:  # DDP ranks always run backward: its gradient all-reduce needs every rank
            (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
        if phase:
            self.mark(phase)
        if ok:
            if self.scaler is not None:
                self.scaler.step(optimizer)
                self._scaled = True
            else:
                optimizer.step()
        self.mark("optimiser")
        return ok

    def end_step(self) -> None:
        """After both networks' updates: adapt the fp16 loss scale."""
        if self.scaler is not None and self._scaled:
            self.scaler.update()
        self._scaled = False

    def prepare(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Move a batch to the device (asynchronously from pinned memory), apply :attr:`on_device`, and make 4-D
        image tensors channels-last when asked. Crop offsets (``top``, ``left``) stay on the host."""
        out = {k: v if k in ("top", "left") else v.to(self.device, non_blocking=True) for k, v in batch.items()}
        if self.on_device is not None:
            out = self.on_device(out)
        if self.channels_last:
            out = {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 and v.is_floating_point() else v
                   for k, v in out.items()}  # fmt: skip
        return out


def mean_over_ranks(losses: dict[str, float], stopping: bool) -> tuple[dict[str, float], bool]:
    """Mean losses over the ranks, and whether any rank was asked to stop (one all-reduce per step)."""
    keys = list(losses)
    t = torch.tensor([*(losses[k] for k in keys), float(stopping)], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    world = dist.get_world_size()
    values = t.cpu().tolist()
    return {k: v / world for k, v in zip(keys, values, strict=False)}, values[-1] > 0


def rank0_decides(flag: bool) -> bool:
    """Rank 0's value of ``flag`` on every rank (e.g. a time-based checkpoint: rank clocks differ)."""
    t = torch.tensor([float(flag)], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.broadcast(t, src=0)
    return bool(t.item())


def rank0_number(value: float, info: DistInfo) -> float:
    """Rank 0's ``value`` on every rank (one process: ``value``), e.g. a time that decides what every rank does."""
    if not info.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.broadcast(t, src=0)
    return float(t.item())
