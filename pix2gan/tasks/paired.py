"""Paired modality synthesis (pix2pix): source slice -> target slice, GAN loss on (source, target) pairs + L1.

Subjects are split by subject, read once into slice caches, and served as random crops; every epoch ends with a
whole-slice validation in physical units (MAE inside the mask, which picks ``best.pt``) and a panel PNG.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pix2gan.config import GanLoss, RunConfig
from pix2gan.data.device_crop import crop_batch
from pix2gan.data.intensity import IntensityMap, intensity_maps, source_maps
from pix2gan.data.slices import PairedSlices, SliceCache
from pix2gan.data.sources import SourceLayout
from pix2gan.data.subjects import Subject, find_subjects, split_subjects
from pix2gan.errors import InputError
from pix2gan.infer.stream import predict_slices
from pix2gan.losses import gan_loss, l1_loss, mask_weighted_l1, ssim_loss
from pix2gan.nets import padding_multiple
from pix2gan.reporting.panels import panel_style, save_panel
from pix2gan.runs import RunLayout
from pix2gan.tasks.base import LossDisplay

__all__ = ["PairedObjective", "PairedTask", "validate"]

log = logging.getLogger("pix2gan")


@dataclass(frozen=True)
class PairedObjective:
    """pix2pix's losses: D on (src, real) vs (src, G(src)), halved; G against D plus ``lambda_l1`` * L1, and the
    options beyond pix2pix: an L1 weighted by the body mask, an SSIM term, no adversarial term at all.

    Batches hold ``src`` (B, 2K + 1, S, S) (the slice and its ``context`` neighbours; with several sources the
    generator's input of ``layout``), ``dst`` (B, 1, S, S) in [-1, 1], and ``mask`` (B, 1, S, S) bool when
    ``mask_weight`` is set. D judges (centre source slice, target); with several sources (the centre slice of each
    source, as the generator got it, target).

    Args:
        gan_kind: the adversarial loss; ``none``: no discriminator updates, G is trained by regression alone.
        lambda_l1: weight of the L1 term.
        mask_weight: weight of the mask's voxels in the L1 term (the others get ``1 - mask_weight``); None: plain L1.
        lambda_ssim: weight of the SSIM term (0: off).
        context: neighbouring slices on each side in ``src``.
        layout: a many-to-one model's input layout (None: one source, ``context`` neighbours each side).
    """

    gan_kind: GanLoss = GanLoss.LSGAN
    lambda_l1: float = 100.0
    reuse_fake: bool = True  # one G(src) per batch: D sees it detached, G's loss back-propagates through it
    mask_weight: float | None = None
    lambda_ssim: float = 0.0
    context: int = 0
    layout: SourceLayout | None = None

    @property
    def d_steps(self) -> int:
        return 0 if self.gan_kind == GanLoss.NONE else 1

    @property
    def loss_names(self) -> tuple[str, ...]:
        """The losses a step reports, in their order: G's (``loss_g`` and its terms), then D's (none without a GAN
        term).

        Example:
            >>> PairedObjective().loss_names
            ('loss_g', 'loss_g_gan', 'loss_g_l1', 'loss_d', 'loss_d_real', 'loss_d_fake')
        """
        adversarial = self.gan_kind != GanLoss.NONE
        g = ("loss_g", *(("loss_g_gan",) if adversarial else ()), "loss_g_l1")
        g += ("loss_g_ssim",) if self.lambda_ssim else ()
        return g + (("loss_d", "loss_d_real", "loss_d_fake") if adversarial else ())

    def generate(self, batch: dict[str, torch.Tensor], generator: nn.Module) -> torch.Tensor:
        return generator(batch["src"])

    def _pair(self, batch: dict[str, torch.Tensor], image: torch.Tensor) -> torch.Tensor:
        """What D judges: the centre source slice (of every source) and an image, as channels."""
        layout = self.layout or SourceLayout(("src",), self.context)
        return torch.cat([layout.centres(batch["src"]), image], 1)

    def d_losses(self, batch: dict[str, torch.Tensor], discriminator: nn.Module, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        loss_d_fake = gan_loss(discriminator(self._pair(batch, fake)), False, self.gan_kind)
        loss_d_real = gan_loss(discriminator(self._pair(batch, batch["dst"])), True, self.gan_kind)
        loss_d = 0.5 * (loss_d_fake + loss_d_real)  # halved as in pix2pix: slows D relative to G
        return {"loss_d": loss_d, "loss_d_real": loss_d_real, "loss_d_fake": loss_d_fake}

    def g_losses(self, batch: dict[str, torch.Tensor], discriminator: nn.Module, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        dst = batch["dst"]
        if self.mask_weight is None:
            loss_g_l1 = l1_loss(fake, dst)
        else:
            loss_g_l1 = mask_weighted_l1(fake, dst, batch["mask"], self.mask_weight)
        terms = {"loss_g_l1": loss_g_l1}
        loss_g = self.lambda_l1 * loss_g_l1
        if self.gan_kind != GanLoss.NONE:
            terms["loss_g_gan"] = gan_loss(discriminator(self._pair(batch, fake)), True, self.gan_kind,
                                           for_discriminator=False)  # fmt: skip
            loss_g = terms["loss_g_gan"] + loss_g
        if self.lambda_ssim:
            terms["loss_g_ssim"] = ssim_loss(fake, dst)
            loss_g = loss_g + self.lambda_ssim * terms["loss_g_ssim"]
        order = ("loss_g_gan", "loss_g_l1", "loss_g_ssim")
        return {"loss_g": loss_g, **{k: terms[k] for k in order if k in terms}}


def _select(subjects: list[Subject], ids: list[str]) -> list[Subject]:
    by_id = {s.id: s for s in subjects}
    return [by_id[i] for i in ids]


@torch.no_grad()
def validate(
    generator: nn.Module, cache: SliceCache, dst_map: IntensityMap, multiple: int, device: torch.device,
    context: int = 0, layout: SourceLayout | None = None,
) -> dict[str, float]:  # fmt: skip
    """Whole-slice validation along each subject's first plane: L1 in [-1, 1] units and MAE in physical units, both
    inside the mask (``context``: neighbouring slices fed on each side, as in training; ``layout``: a many-to-one
    model's input, every source present)."""
    generator.eval()
    l1_sum = mae_sum = count = 0.0
    inputs = None if layout is None else layout.assemble
    for subject in cache.subjects:
        stacks = subject.source_stacks(subject.axes[0], torch.arange(subject.src.shape[0]), context)  # (N, S(2K+1), H, W)
        pred = predict_slices(generator, stacks, multiple, device=device, inputs=inputs)[:, 0]  # (N, H, W)
        target, mask = subject.dst, subject.mask
        n = float(mask.sum())
        l1_sum += float((pred - target).abs()[mask].sum())
        phys_pred = torch.from_numpy(dst_map.inverse(pred.numpy(), subject.dst_scale))
        phys_target = torch.from_numpy(dst_map.inverse(target.numpy(), subject.dst_scale))
        mae_sum += float((phys_pred - phys_target).abs()[mask].sum())
        count += n
    generator.train()
    return {"val_l1": l1_sum / max(count, 1.0), "val_mae": mae_sum / max(count, 1.0)}


def _panel_slices(cache: SliceCache, n: int) -> list[tuple[int, int]]:
    """Up to ``n`` well-filled slices spread over the first validation subject."""
    if not cache.subjects or n <= 0:
        return []
    s = cache.subjects[0]
    fg = s.mask.flatten(1).float().mean(1)
    candidates = torch.nonzero(fg >= 0.5 * float(fg.max())).flatten().tolist()
    picks = np.linspace(0, len(candidates) - 1, min(n, len(candidates))).round().astype(int)
    return [(0, candidates[i]) for i in sorted(set(picks.tolist()))]


class PairedTask:
    """Paired data, pix2pix's losses, whole-slice validation in physical units and a panel per epoch."""

    display = LossDisplay(bar=(("G_gan", "loss_g_gan", ".3f"), ("L1", "loss_g_l1", ".4f"), ("SSIM", "loss_g_ssim", ".4f"),
                               ("D", "loss_d", ".3f")), epoch=("loss_g_l1", "loss_g_ssim", "loss_d"))  # fmt: skip

    def __init__(self, cfg: RunConfig, layout: RunLayout, device: torch.device, *, check_new: Callable[[], None]) -> None:
        tc, dc = cfg.train, cfg.data
        if dc.dst in dc.sources:
            raise InputError(f"--src and --dst are both {dc.src!r}; paired mode translates between two modalities")
        self.multiple = padding_multiple(cfg)
        if tc.image_size % self.multiple:
            raise InputError(f"--image-size {tc.image_size} is not a multiple of {self.multiple}, the padding multiple "
                             f"of the {cfg.model.generator} generator")  # fmt: skip
        subjects = find_subjects(dc.root, [*dc.sources, dc.dst], [dc.mask] if dc.mask else [])
        if dc.mask and not any(dc.mask in s.files for s in subjects):
            log.warning("no subject has a %r modality: slices are selected and scored over the whole image", dc.mask)
        self.split = split_subjects([s.id for s in subjects], dc.val_fraction, dc.test_fraction, dc.split_seed)
        check_new()
        self.src_map, dst_map = intensity_maps(dc)
        train_cache = SliceCache(_select(subjects, self.split["train"]), dc, self.src_map, dst_map)
        self.val_cache = SliceCache(_select(subjects, self.split["val"]), dc, self.src_map, dst_map)
        # a generated target of a percentile modality is mapped back with the training volumes' median scale
        self.dst_map = IntensityMap(dst_map.kind, dst_map.window, dst_map.percentiles, train_cache.reference_scale("dst"))
        crop_on_device = tc.device_crop if tc.device_crop is not None else device.type == "cuda"
        self.layout = SourceLayout.of(cfg)
        self.dataset = PairedSlices(train_cache, tc.image_size, train=True, flip=tc.flip,
                                    min_foreground=dc.min_foreground, crop_on_device=crop_on_device,
                                    with_mask=tc.mask_weight is not None, layout=self.layout,
                                    input_dropout=dc.input_dropout)  # fmt: skip
        self.on_device = (lambda batch: crop_batch(batch, tc.image_size)) if crop_on_device else None
        self.objective = PairedObjective(tc.gan_loss, tc.lambda_l1, mask_weight=tc.mask_weight,
                                         lambda_ssim=tc.lambda_ssim, context=dc.context,
                                         layout=self.layout)  # fmt: skip
        self.warmup_objective = dataclasses.replace(self.objective, gan_kind=GanLoss.NONE)  # regression alone
        self.context = dc.context
        maps = {"src": self.src_map.to_dict(), "dst": self.dst_map.to_dict()}
        if len(dc.sources) > 1:  # each source's own map, by name (the first is "src" too)
            maps["sources"] = {n: m.to_dict() for n, m in source_maps(dc, self.src_map).items()}
        self.checkpoint_extra = {"intensity": json.dumps(maps)}
        how = (f"{'+'.join(dc.planes) if dc.planes else f'axis {dc.slice_axis}'}"
               f"{f', {2 * dc.context + 1}-slice stacks' if dc.context else ''}")
        dropout = f", input dropout {dc.input_dropout:g}" if dc.optional_sources else ""
        self.description = (f"training {' + '.join(dc.sources)} -> {dc.dst}{dropout} on {len(self.dataset)} slices ({how}) from "
                            f"{len(self.split['train'])} subjects (val {len(self.split['val'])}, test "
                            f"{len(self.split['test'])})")  # fmt: skip
        self.panels = layout.panels
        self.picks = _panel_slices(self.val_cache, tc.panel_slices)

    def end_epoch(self, epoch: int, generator: nn.Module, device: torch.device) -> dict[str, float]:
        if self.picks:
            self._write_panel(self.panels / f"epoch_{epoch:03d}.png", generator, device)
        if not self.val_cache.subjects:
            return {}
        return validate(generator, self.val_cache, self.dst_map, self.multiple, device, self.context, self.layout)

    def score(self, means: dict[str, float], val: dict[str, float]) -> float | None:
        """Validation MAE; without validation subjects, the training L1."""
        return val.get("val_mae", means.get("loss_g_l1"))

    def _write_panel(self, path: Path, generator: nn.Module, device: torch.device) -> None:
        """Source | prediction | target | |error| of the picked validation slices (no random numbers drawn: the
        training goes on as without it); the |error| in HU for CT targets, else in the normalised space."""
        hu = self.dst_map.kind == "hu"
        rows = []
        generator.eval()
        for s_idx, k in self.picks:
            s = self.val_cache.subjects[s_idx]
            stack = s.source_stacks(s.axes[0], [k], self.context)  # (1, S (2K + 1), H, W)
            pred = predict_slices(generator, stack, self.multiple, device=device, inputs=self.layout.assemble)[0, 0].numpy()
            target = s.dst[k].numpy()  # type: ignore[index]
            row = {"source": self.src_map.inverse(s.src[k].numpy(), s.src_scale),
                   "prediction": self.dst_map.inverse(pred, s.dst_scale),
                   "target": self.dst_map.inverse(target, s.dst_scale)}  # fmt: skip
            row["|error|"] = np.abs(row["prediction"] - row["target"]) if hu else np.abs(pred - target)
            rows.append(row)
        generator.train()
        windows, error_scale = panel_style(hu)
        save_panel(path, rows, titles=("source", "prediction", "target", "|error|"), windows=windows,
                   error_scale=error_scale,
                   row_labels=[f"{self.val_cache.subjects[i].id} slice {k}" for i, k in self.picks])  # fmt: skip
