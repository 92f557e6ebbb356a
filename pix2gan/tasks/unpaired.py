"""Unpaired modality synthesis (CycleGAN): G_ab (source -> target) and G_ba (target -> source), trained on source and
target slices drawn independently, so scans that were never registered (or come from different patients) train as
they are.

A subject folder may hold the source, the target or both (:mod:`pix2gan.data.unpaired`); only subjects holding both
can be held out, and validation scores G_ab against their own targets exactly as the paired task does (MAE in
physical units inside the mask, which picks ``best.pt``). Without any subject holding both there is no validation:
the score falls back to the training cycle loss (the log says so). Every epoch ends with a panel of a -> b -> a and
b -> a -> b for one slice. Under DDP each rank keeps its own history pools, seeded per rank (see
:mod:`pix2gan.nets.cycle` for how a step runs under DDP). Two folders of 2-D images (``--data-b``) train too:
:mod:`pix2gan.tasks.unpaired_images`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from pix2gan.config import RunConfig
from pix2gan.data.intensity import IntensityMap, Scale, intensity_maps
from pix2gan.data.planes import context_stack
from pix2gan.data.slices import SliceCache
from pix2gan.data.unpaired import UnpairedSlices, find_unpaired_subjects, modality_cache, split_unpaired
from pix2gan.errors import InputError
from pix2gan.infer.cycle_panel import cycle_rows, save_cycle_panel
from pix2gan.nets import padding_multiple
from pix2gan.runs import RunLayout
from pix2gan.tasks.base import LossDisplay
from pix2gan.tasks.paired import _panel_slices, validate
from pix2gan.tasks.unpaired_objective import CycleObjective, identity_refusal, identity_weight
from pix2gan.tasks.unpaired_images import ImageFolders

__all__ = ["UnpairedTask"]

log = logging.getLogger("pix2gan")


class UnpairedTask:
    """Unpaired data sampled independently per side, CycleGAN's losses with seeded history pools, validation of
    G_ab on the held-out subjects holding both modalities, and a cycle panel per epoch."""

    display = LossDisplay(bar=(("G_ab", "loss_g_gan_ab", ".3f"), ("G_ba", "loss_g_gan_ba", ".3f"),
                               ("cyc_a", "loss_g_cycle_a", ".4f"), ("cyc_b", "loss_g_cycle_b", ".4f"),
                               ("D", "loss_d", ".3f")),
                          epoch=("loss_g_cycle_a", "loss_g_cycle_b", "loss_d"))  # fmt: skip
    warmup_objective = None  # (no regression term to warm up with: --gan-warmup is refused for this mode)
    on_device = None
    images: ImageFolders | None = None  # two image folders (--data-b) instead of subjects

    def __init__(self, cfg: RunConfig, layout: RunLayout, device: torch.device, *, check_new: Callable[[], None]) -> None:
        tc, dc = cfg.train, cfg.data
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        rank = torch.distributed.get_rank() if distributed else 0  # (each rank's pools draw their own streams)
        self.multiple = padding_multiple(cfg)
        if tc.image_size % self.multiple:
            raise InputError(f"--image-size {tc.image_size} is not a multiple of {self.multiple}, the padding multiple "
                             f"of the {cfg.model.generator} generator")  # fmt: skip
        if dc.data_b is not None:  # two folders of 2-D images (horse <-> zebra): pix2gan.tasks.unpaired_images
            self.images = images = ImageFolders(cfg, check_new=check_new, rank=rank)
            self.dataset, self.objective, self.split, self.panels = images.dataset, images.objective, {}, layout.panels
            self.checkpoint_extra, self.description = images.checkpoint_extra, images.description
            return
        subjects = find_unpaired_subjects(dc.root, dc.src, dc.dst, [dc.mask] if dc.mask else [])
        self.split = split_unpaired(subjects, dc.src, dc.dst, dc.val_fraction, dc.test_fraction, dc.split_seed)
        mc = cfg.model
        identity = identity_weight(tc.lambda_identity, identity_refusal(mc.in_channels, mc.out_channels, dc.context))
        check_new()
        src_map, dst_map = intensity_maps(dc)
        train = [s for s in subjects if s.id in self.split["train"]]
        sides = (modality_cache(train, dc, dc.src, src_map), modality_cache(train, dc, dc.dst, dst_map))
        self.dataset = UnpairedSlices(*sides, tc.image_size, flip=tc.flip, min_foreground=dc.min_foreground,
                                      context=dc.context)  # fmt: skip
        self.val_cache = SliceCache([s for s in subjects if s.id in self.split["val"]], dc, src_map, dst_map)
        # generated images of a percentile modality (either side) are mapped back with its training volumes' median scale
        self.src_map, self.dst_map = (IntensityMap(m.kind, m.window, m.percentiles, self.dataset.reference_scale(side))
                                      for m, side in ((src_map, "src"), (dst_map, "dst")))  # fmt: skip
        self.objective = CycleObjective(gan_kind=tc.gan_loss, lambda_cycle=tc.lambda_cycle,
                                        lambda_identity=identity, src_channels=mc.in_channels,
                                        dst_channels=mc.out_channels, context=dc.context, pool_size=tc.pool_size,
                                        seed=tc.seed, rank=rank)  # fmt: skip
        self.context = dc.context
        self.checkpoint_extra = {"intensity": json.dumps({"src": self.src_map.to_dict(), "dst": self.dst_map.to_dict()})}
        n_src, n_dst = (sum(modality in s.files for s in train) for modality in (dc.src, dc.dst))
        self.description = (f"training {dc.src} <-> {dc.dst} (unpaired, CycleGAN) on {len(self.dataset.src_items)} "
                            f"{dc.src} and {len(self.dataset.dst_items)} {dc.dst} slices from {len(train)} subjects "
                            f"({n_src} with {dc.src}, {n_dst} with {dc.dst}; val {len(self.split['val'])}, test "
                            f"{len(self.split['test'])})")  # fmt: skip
        if not self.val_cache.subjects:
            log.warning("no validation subject (none held out holds both %s and %s): best.pt follows the training "
                        "cycle loss, not a validation MAE", dc.src, dc.dst)  # fmt: skip
        self.panels = layout.panels

    def end_epoch(self, epoch: int, generator: nn.Module, device: torch.device) -> dict[str, float]:
        if self.images is not None:  # (no validation subjects)
            self.images.write_panel(self.panels / f"epoch_{epoch:03d}.png", generator, device)
            return {}
        self._write_panel(self.panels / f"epoch_{epoch:03d}.png", generator, device)
        if not self.val_cache.subjects:
            return {}
        return validate(generator, self.val_cache, self.dst_map, self.multiple, device, self.context)

    def score(self, means: dict[str, float], val: dict[str, float]) -> float | None:
        """Validation MAE of G_ab; without validation subjects, the training cycle loss (both directions)."""
        if "val_mae" in val:
            return val["val_mae"]
        cycles = [means[k] for k in ("loss_g_cycle_a", "loss_g_cycle_b") if k in means]
        return sum(cycles) if cycles else None

    def _slices(self) -> tuple[torch.Tensor, Scale | None, torch.Tensor, Scale | None, list[str]]:
        """The panel's slices: a source stack (2K + 1, H, W) and a target slice (H, W) with their scales, from the
        first validation subject (the same slice of both), else from the first training subject of each side."""
        picks = _panel_slices(self.val_cache, 3)
        if picks:
            s, k = self.val_cache.subjects[0], picks[len(picks) // 2][1]  # (the middle of the well-filled slices)
            labels = [f"{s.id} {k}: a>b>a", f"{s.id} {k}: b>a>b"]
            return context_stack(s.src, k, self.context), s.src_scale, s.dst[k], s.dst_scale, labels  # type: ignore[index]
        src, dst = (cache.subjects[0] for cache in self.dataset.caches)
        ka, kb = src.src.shape[0] // 2, dst.src.shape[0] // 2
        labels = [f"{src.id} {ka}: a>b>a", f"{dst.id} {kb}: b>a>b"]
        return context_stack(src.src, ka, self.context), src.src_scale, dst.src[kb], dst.src_scale, labels

    def _write_panel(self, path: Path, generator: nn.Module, device: torch.device) -> None:
        """a -> G_ab -> G_ba and b -> G_ba -> G_ab of one slice each, in physical units (no random numbers drawn)."""
        a_stack, a_scale, b, b_scale, labels = self._slices()
        generator.eval()
        rows = cycle_rows(generator, a_stack[None], b[None], (self.src_map, self.dst_map), (a_scale, b_scale),
                          context=self.context, multiple=self.multiple, device=device)  # fmt: skip
        generator.train()
        save_cycle_panel(path, rows, labels)
