"""Training modes as task objects: what differs per mode (data, losses, validation, panels, best score).

The loop in :mod:`pix2gan.train.loop` has no mode branches: :func:`build_task` picks the task once.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from pix2gan.config import Mode, RunConfig
from pix2gan.runs import RunLayout
from pix2gan.tasks.base import LossDisplay, Task
from pix2gan.tasks.gan import GanObjective, GanTask
from pix2gan.tasks.paired import PairedObjective, PairedTask
from pix2gan.tasks.unpaired import UnpairedTask

__all__ = ["TASKS", "Task", "LossDisplay", "build_task", "PairedTask", "PairedObjective", "GanTask", "GanObjective",
           "UnpairedTask"]  # fmt: skip

TASKS: dict[Mode, type] = {Mode.PAIRED: PairedTask, Mode.NOISE: GanTask, Mode.CLASS: GanTask,
                           Mode.UNPAIRED: UnpairedTask}  # fmt: skip


def build_task(cfg: RunConfig, layout: RunLayout, device: torch.device, *, check_new: Callable[[], None]) -> Task:
    """The task of ``cfg``'s mode; reads and checks its data (``check_new`` runs once the data are found)."""
    return TASKS[cfg.mode](cfg, layout, device, check_new=check_new)
