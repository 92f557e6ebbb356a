"""What a task gives the training loop: its data, its losses, and what it does at the end of each epoch.

A task is built from the run configuration (reading and checking its data) before the networks exist; the loop
then builds the networks through the registry and calls the task back with them. Adding a mode is one file in
``tasks/`` implementing :class:`Task`, plus its entry in :data:`pix2gan.tasks.TASKS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn


__all__ = ["Task", "Objective", "Generated", "LossDisplay"]


class Generated(Protocol):
    """What an objective's ``generate`` returns: a tensor, or a structure of them (CycleGAN's translations, cycles
    and identities) whose ``detach()`` gives the same structure without the graph (what D's phase takes)."""

    def detach(self) -> Generated: ...


class Objective(Protocol):
    """The losses of one mode, as the step calls them.

    ``reuse_fake``: pix2pix makes one fake per batch, which D sees detached and G's loss back-propagates through;
    GANs draw fresh noise for every D update and again for G's. ``d_steps``: D updates per G update. An objective
    with state of its own (CycleGAN's history pools) also has ``state_dict()`` / ``load_state_dict()``: checkpoints
    keep it (:class:`~pix2gan.train.state.Trainables`).
    """

    reuse_fake: bool
    d_steps: int

    def generate(self, batch: dict[str, torch.Tensor], generator: nn.Module) -> Generated:
        """A fake for this batch: G(source), or G(z[, label]); or a structure of images (CycleGAN's)."""
        ...

    def d_losses(self, batch: dict[str, torch.Tensor], discriminator: nn.Module, fake: Generated) -> dict[str, torch.Tensor]:
        """The discriminator's loss ``loss_d`` first, then its terms."""
        ...

    def g_losses(self, batch: dict[str, torch.Tensor], discriminator: nn.Module, fake: Generated) -> dict[str, torch.Tensor]:
        """The generator's loss ``loss_g`` first, then its terms."""
        ...


@dataclass(frozen=True)
class LossDisplay:
    """How the progress bar and the epoch line show a task's losses: (label, key, format) triples."""

    bar: tuple[tuple[str, str, str], ...]
    epoch: tuple[str, ...] = field(default=("loss_g", "loss_d"))

    def bar_text(self, losses: dict[str, float]) -> str:
        """The losses the bar shows (those a step did not report, e.g. D's without a GAN term, are left out).

        Example:
            >>> LossDisplay(bar=(("G", "loss_g", ".3f"), ("D", "loss_d", ".3f"))).bar_text({"loss_g": 0.5})
            'G 0.500'
        """
        return "  ".join(f"{label} {losses[key]:{fmt}}" for label, key, fmt in self.bar if key in losses)


class Task(Protocol):
    """A training mode.

    Attributes:
        objective: the losses the one D/G step runs.
        warmup_objective: the losses of a ``--gan-warmup``'s regression epochs (no discriminator: ``d_steps`` 0);
            None where the mode has no regression term.
        dataset: training items; indexed by ``(index, seed)`` so random crops are reproducible.
        split: subject split (paired) or empty.
        checkpoint_extra: JSON strings stored in every checkpoint (intensity settings, class names); a resumed run
            must find the same values.
        description: one line saying what is trained on what.
        display: which losses the progress bar and the epoch line show.
        on_device: a function applied to each batch once on the device (device-side crops), or None.
    """

    objective: Objective
    warmup_objective: Objective | None
    dataset: torch.utils.data.Dataset
    split: dict[str, list[str]]
    checkpoint_extra: dict[str, str]
    description: str
    display: LossDisplay
    on_device: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None

    def end_epoch(self, epoch: int, generator: nn.Module, device: torch.device) -> dict[str, float]:
        """Validate and draw the epoch's PNG; returns validation figures (may be empty)."""
        ...

    def score(self, means: dict[str, float], val: dict[str, float]) -> float | None:
        """Lower is better; the checkpoint with the lowest score becomes ``best.pt`` (None: no best checkpoint)."""
        ...
