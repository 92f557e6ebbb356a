"""Optimisers and the learning-rate schedule (pix2pix and DCGAN: Adam, constant then linear decay to 0).

A ``--gan-warmup`` run's generator has two such schedules in a row (:func:`generator_schedule`): one over the
warm-up, so the regression snapshot is a finished regression, and one over the adversarial epochs, at ``--lr-gan``
(ESRGAN's recipe: train for PSNR, then fine-tune adversarially from it).

Example:
    >>> f = linear_decay(10)
    >>> [round(f(s), 2) for s in (0, 4, 5, 7, 10)]
    [1.0, 1.0, 1.0, 0.6, 0.0]
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from pix2gan.config import TrainConfig

__all__ = ["build_optimizers", "build_schedulers", "gan_scale", "generator_schedule", "linear_decay"]


def build_optimizers(
    generator: nn.Module, discriminator: nn.Module, tc: TrainConfig
) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam for each network (pix2pix: lr 2e-4, betas (0.5, 0.999)), fused into one kernel per step.

    Both networks must already be on their device; fused Adam is ~10 % faster than the per-tensor loop on CPU.
    """
    fused = next(generator.parameters()).device.type in ("cpu", "cuda")
    opt_g = torch.optim.Adam(generator.parameters(), lr=tc.lr, betas=tc.betas, fused=fused)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=tc.lr_d or tc.lr, betas=tc.betas, fused=fused)
    return opt_g, opt_d


def linear_decay(total_steps: int) -> Callable[[int], float]:
    """LR factor per step: 1 for the first half of training, then linearly down to 0 at the last step."""
    half = total_steps // 2

    def factor(step: int) -> float:
        if step <= half:
            return 1.0
        return max(0.0, (total_steps - step) / max(1, total_steps - half))

    return factor


def generator_schedule(total_steps: int, switch: int = 0, gan_scale: float = 1.0) -> Callable[[int], float]:
    """The generator's LR factor per step: :func:`linear_decay` over ``total_steps``; with a warm-up (``switch`` > 0
    steps) one over the warm-up and another, times ``gan_scale`` (``lr_gan / lr``), over the steps after it.

    Example:
        >>> f = generator_schedule(8, switch=4, gan_scale=0.5)
        >>> [round(f(s), 2) for s in range(8)]
        [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25]
    """
    if not switch:
        return linear_decay(total_steps)
    warm, adversarial = linear_decay(switch), linear_decay(total_steps - switch)

    def factor(step: int) -> float:
        return warm(step) if step < switch else gan_scale * adversarial(step - switch)

    return factor


def build_schedulers(
    opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, total_steps: int, switch: int = 0,
    gan_scale: float = 1.0,
) -> tuple[torch.optim.lr_scheduler.LambdaLR, torch.optim.lr_scheduler.LambdaLR]:  # fmt: skip
    """:func:`generator_schedule` for the generator's optimiser, and :func:`linear_decay` over the steps after the
    warm-up's ``switch`` for the discriminator's, which steps only in those.

    Example:
        >>> net = torch.nn.Linear(1, 1)
        >>> opt_g, opt_d = (torch.optim.SGD(net.parameters(), lr=1.0) for _ in range(2))
        >>> sched_g, sched_d = build_schedulers(opt_g, opt_d, 8, switch=4)
        >>> for _ in range(4):
        ...     opt_g.step(); opt_d.step(); sched_g.step(); sched_d.step()
        >>> opt_g.param_groups[0]["lr"], opt_d.param_groups[0]["lr"]
        (1.0, 0.0)
    """
    return (torch.optim.lr_scheduler.LambdaLR(opt_g, generator_schedule(total_steps, switch, gan_scale)),
            torch.optim.lr_scheduler.LambdaLR(opt_d, linear_decay(total_steps - switch)))  # fmt: skip


def gan_scale(tc: TrainConfig) -> float:
    """``lr_gan / lr``: the generator's learning rate after a warm-up's switch, as a factor of its own."""
    return 1.0 if tc.lr_gan is None else tc.lr_gan / tc.lr
