"""The one adversarial update, written once: a discriminator phase, then a generator phase, over a task's losses.

What differs between modes lives in an :class:`~pix2gan.tasks.base.Objective`: how a fake is made from a batch,
and the discriminator's and generator's losses. This module owns how those losses become updates: which network
is frozen when, gradient scaling and skipped non-finite updates (through :class:`~pix2gan.train.hardware.StepContext`).

Example:
    >>> from pix2gan.config import RunConfig, ModelConfig
    >>> from pix2gan.nets import build_networks
    >>> from pix2gan.tasks.paired import PairedObjective
    >>> from pix2gan.train.optim import build_optimizers
    >>> cfg = RunConfig(model=ModelConfig(depth=3, base_filters=4, disc_filters=4))
    >>> g, d = build_networks(cfg)
    >>> opt_g, opt_d = build_optimizers(g, d, cfg.train)
    >>> batch = {"src": torch.zeros(2, 1, 32, 32), "dst": torch.zeros(2, 1, 32, 32)}
    >>> sorted(train_step(PairedObjective(), batch, g, d, opt_g, opt_d))
    ['loss_d', 'loss_d_fake', 'loss_d_real', 'loss_g', 'loss_g_gan', 'loss_g_l1']
"""

from __future__ import annotations

import torch
from torch import nn

from pix2gan.tasks.base import Objective
from pix2gan.train.hardware import StepContext

__all__ = ["train_step"]


def train_step(
    objective: Objective,
    batch: dict[str, torch.Tensor],
    generator: nn.Module,
    discriminator: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    *,
    ctx: StepContext | None = None,
    frozen_discriminator: nn.Module | None = None,
) -> dict[str, float]:
    """One update: ``objective.d_steps`` discriminator updates on real vs generated data, then one generator update.

    Args:
        batch: the task's batch, already on the device (e.g. ``src``/``dst`` (B, C, S, S), or ``image``/``label``).
        ctx: precision, gradient scaling and DDP agreement (default: fp32, one process).
        frozen_discriminator: the discriminator as G's phase calls it (under DDP the bare module: D's gradients
            are not wanted there, so they must not be all-reduced); default ``discriminator``.

    Returns:
        The generator's losses then the discriminator's (none when ``objective.d_steps`` is 0), as floats. An update whose loss is not finite is skipped
        (weights and optimiser state untouched).
    """
    ctx = StepContext(device=next(iter(batch.values())).device) if ctx is None else ctx
    frozen = discriminator if frozen_discriminator is None else frozen_discriminator
    ctx.start()
    fake = None
    if objective.reuse_fake:
        with ctx.autocast():
            fake = objective.generate(batch, generator)
        ctx.mark("G")

    # discriminator phase: generated data carry no graph back to G; D learns to tell them from real data
    # (an objective without an adversarial term has no D phase: d_steps 0)
    d_terms: dict[str, torch.Tensor] = {}
    discriminator.requires_grad_(True)
    for _ in range(objective.d_steps):
        if fake is None or not objective.reuse_fake:
            with torch.no_grad(), ctx.autocast():
                fake = objective.generate(batch, generator)
            ctx.mark("G")
        opt_d.zero_grad(set_to_none=True)
        with ctx.autocast():
            d_terms = objective.d_losses(batch, discriminator, fake.detach())
        ctx.backward_step(d_terms["loss_d"], opt_d, "D")

    # generator phase: D is frozen so its weights get no gradients from G's loss
    discriminator.requires_grad_(False)
    opt_g.zero_grad(set_to_none=True)
    with ctx.autocast():
        if not objective.reuse_fake:
            fake = objective.generate(batch, generator)
        g_terms = objective.g_losses(batch, frozen, fake)
    ctx.backward_step(g_terms["loss_g"], opt_g, "G")
    ctx.end_step()
    return {k: v.item() for k, v in {**g_terms, **d_terms}.items()}
