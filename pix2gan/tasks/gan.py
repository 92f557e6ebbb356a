"""Noise-to-image (DCGAN) and class-conditional (CGAN) GANs: real images vs G(z) or G(z, label).

Images are decoded once into memory; every epoch ends with a sample grid drawn from the same fixed noise, so grids
compare across epochs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from pix2gan.config import GanLoss, Mode, RunConfig
from pix2gan.losses import diff_augment, gan_loss
from pix2gan.runs import RunLayout
from pix2gan.tasks.base import LossDisplay

__all__ = ["GanObjective", "GanTask", "TensorRows", "fixed_latents"]


@dataclass(frozen=True)
class GanObjective:
    """DCGAN / CGAN losses; batches hold ``image`` (B, C, S, S) in [-1, 1] and, in class mode, ``label`` (B,).

    Args:
        latent_dim: size of z ~ N(0, I).
        real_label: target of real images for the discriminator (below 1: one-sided label smoothing).
        augment: differentiable augmentation of every discriminator input (see :func:`diff_augment`).
    """

    latent_dim: int
    gan_kind: GanLoss = GanLoss.LSGAN
    d_steps: int = 1
    real_label: float = 1.0
    augment: bool = True
    reuse_fake: bool = False  # fresh samples for every D update and for G's

    def _cond(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return (batch["label"],) if "label" in batch else ()  # class mode: G and D both see the label

    def _aug(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x) if self.augment else x

    def generate(self, batch: dict[str, torch.Tensor], generator: nn.Module) -> torch.Tensor:
        real = batch["image"]
        return generator(torch.randn(real.shape[0], self.latent_dim, device=real.device), *self._cond(batch))

    def d_losses(self, batch: dict[str, torch.Tensor], discriminator: nn.Module, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        cond = self._cond(batch)
        loss_d_real = gan_loss(discriminator(self._aug(batch["image"]), *cond), True, self.gan_kind, self.real_label)
        loss_d_fake = gan_loss(discriminator(self._aug(fake), *cond), False, self.gan_kind)
        return {"loss_d": loss_d_real + loss_d_fake, "loss_d_real": loss_d_real, "loss_d_fake": loss_d_fake}

    def g_losses(self, batch: dict[str, torch.Tensor], discriminator: nn.Module, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = discriminator(self._aug(fake), *self._cond(batch))
        return {"loss_g": gan_loss(logits, True, self.gan_kind, for_discriminator=False)}


class TensorRows(torch.utils.data.Dataset):
    """Rows of in-memory tensors as dicts (``image`` and optionally ``label``)."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tensors = tensors
        self.n = len(next(iter(tensors.values())))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        i = key[0] if isinstance(key, tuple) else key  # no per-item augmentation here: the seed is not needed
        return {k: v[i] for k, v in self.tensors.items()}


def fixed_latents(cfg: RunConfig, class_names: list[str], per_row: int = 8, seed: int = 1234) -> dict[str, torch.Tensor]:
    """The same noise every epoch (so sample grids compare across epochs): 8 x 8, or one row per class."""
    g = torch.Generator().manual_seed(seed)
    if cfg.mode == Mode.CLASS:
        labels = torch.arange(len(class_names)).repeat_interleave(per_row)
        z = torch.randn(per_row, cfg.gan.latent_dim, generator=g).repeat(len(class_names), 1)  # same z per column
        return {"z": z, "label": labels}
    return {"z": torch.randn(per_row * per_row, cfg.gan.latent_dim, generator=g)}


class GanTask:
    """Images (folders, NIfTI slices, torchvision sets), the GAN losses, and a sample grid per epoch.

    The data decide the channels and classes: ``cfg.gan`` is updated with them, so the checkpoint records them.
    """

    display = LossDisplay(bar=(("G", "loss_g", ".3f"), ("D", "loss_d", ".3f")), epoch=("loss_g", "loss_d"))
    on_device = None

    def __init__(self, cfg: RunConfig, layout: RunLayout, device: torch.device, *, check_new: Callable[[], None]) -> None:
        from pix2gan.data.images import images_for_run

        tc = cfg.train
        self.split: dict[str, list[str]] = {}  # no subjects: nothing to hold out
        self.conditional = cfg.mode == Mode.CLASS
        data = images_for_run(cfg)
        check_new()
        cfg.gan = dataclasses.replace(cfg.gan, channels=int(data.images.shape[1]),
                                      num_classes=data.num_classes if self.conditional else 0)  # fmt: skip
        tensors = {"image": data.images, **({"label": data.labels} if self.conditional else {})}
        self.dataset = TensorRows(tensors)
        self.warmup_objective = None  # (no regression term to warm up with)
        self.objective = GanObjective(cfg.gan.latent_dim, tc.gan_loss, tc.d_steps, 1.0 - tc.label_smoothing, tc.augment)
        info = {"class_names": data.class_names, "source": data.source, "n_images": len(data)}
        self.checkpoint_extra = {"data_info": json.dumps(info)}
        kind = f"{data.num_classes} classes" if self.conditional else "unlabelled"
        self.description = (f"training a {cfg.mode.value}-mode GAN on {len(data)} images ({kind}, "
                            f"{cfg.gan.channels} x {cfg.gan.image_size}^2) from {data.source}")  # fmt: skip
        self.class_names = data.class_names
        self.fixed = fixed_latents(cfg, data.class_names)
        self.panels = layout.panels

    @torch.no_grad()
    def end_epoch(self, epoch: int, generator: nn.Module, device: torch.device) -> dict[str, float]:
        from pix2gan.reporting.grids import save_grid

        generator.eval()
        cond = (self.fixed["label"].to(device),) if self.conditional else ()
        images = generator(self.fixed["z"].to(device), *cond).cpu().numpy()
        generator.train()
        save_grid(self.panels / f"epoch_{epoch:03d}.png", images, nrow=8,
                  row_labels=self.class_names if self.conditional else None)  # fmt: skip
        return {}

    def score(self, means: dict[str, float], val: dict[str, float]) -> float | None:
        """No best checkpoint: a GAN's losses do not rank its samples."""
        return None
