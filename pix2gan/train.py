"""One training loop for paired modality synthesis (pix2pix), readable top to bottom.

``fit`` reads the subjects once into slice caches, splits them by subject, and alternates an explicit discriminator
phase and generator phase per batch (:func:`paired_step`). After every epoch it validates on whole validation slices
(MAE in physical units inside the mask), writes a source | prediction | target panel, the loss log and curve, and
the ``latest`` and ``best`` checkpoints, all atomically.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from pix2gan.checkpoint import RunLayout, save_checkpoint
from pix2gan.config import GanLoss, Mode, RunConfig, TrainConfig
from pix2gan.data.intensity import IntensityMap, intensity_maps
from pix2gan.data.slices import PairedSlices, SliceCache
from pix2gan.data.subjects import Subject, find_subjects, split_subjects
from pix2gan.losses import diff_augment, gan_loss, l1_loss
from pix2gan.nets import PatchDiscriminator, UNetGenerator, init_weights
from pix2gan.report import save_loss_curve, save_panel
from pix2gan.translate import predict_slices, resolve_device
from pix2gan.volumes import InputError, atomic_write_json, atomic_write_text

__all__ = [
    "build_networks",
    "build_gan_networks",
    "build_optimizers",
    "paired_step",
    "gan_step",
    "fixed_latents",
    "fit",
    "FitResult",
    "linear_decay",
]

log = logging.getLogger("pix2gan")


def build_networks(cfg: RunConfig) -> tuple[UNetGenerator, PatchDiscriminator]:
    """Generator and conditional discriminator with pix2pix's N(0, init_gain) initialisation."""
    generator = UNetGenerator(cfg.model)
    discriminator = PatchDiscriminator.from_config(cfg.model)
    init_weights(generator, cfg.train.init_gain)
    init_weights(discriminator, cfg.train.init_gain)
    return generator, discriminator


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


def linear_decay(total_steps: int):  # noqa: ANN201
    """LR factor per step: 1 for the first half of training, then linearly down to 0 at the last step.

    Example:
        >>> f = linear_decay(10)
        >>> [round(f(s), 2) for s in (0, 4, 5, 7, 10)]
        [1.0, 1.0, 1.0, 0.6, 0.0]
    """
    half = total_steps // 2

    def factor(step: int) -> float:
        if step <= half:
            return 1.0
        return max(0.0, (total_steps - step) / max(1, total_steps - half))

    return factor


def paired_step(
    batch: dict[str, torch.Tensor],
    generator: nn.Module,
    discriminator: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    *,
    gan_kind: GanLoss = GanLoss.LSGAN,
    lambda_l1: float = 100.0,
) -> dict[str, float]:
    """One pix2pix update: D on (src, real) vs (src, G(src)), then G against D plus lambda * L1.

    Args:
        batch: ``src`` and ``dst`` of shape (B, C, S, S) in [-1, 1], already on the device.

    Returns:
        ``loss_g`` (total), ``loss_g_gan``, ``loss_g_l1``, ``loss_d``, ``loss_d_real``, ``loss_d_fake``.
    """
    src, dst = batch["src"], batch["dst"]  # (B, C, S, S)
    fake = generator(src)

    # discriminator phase: the generator's output is detached, D learns real pairs from generated ones
    discriminator.requires_grad_(True)
    opt_d.zero_grad(set_to_none=True)
    loss_d_fake = gan_loss(discriminator(torch.cat([src, fake.detach()], 1)), False, gan_kind)
    loss_d_real = gan_loss(discriminator(torch.cat([src, dst], 1)), True, gan_kind)
    loss_d = 0.5 * (loss_d_fake + loss_d_real)  # halved as in pix2pix: slows D relative to G
    loss_d.backward()
    opt_d.step()

    # generator phase: D is frozen so its weights get no gradients from G's loss
    discriminator.requires_grad_(False)
    opt_g.zero_grad(set_to_none=True)
    loss_g_gan = gan_loss(discriminator(torch.cat([src, fake], 1)), True, gan_kind, for_discriminator=False)
    loss_g_l1 = l1_loss(fake, dst)
    loss_g = loss_g_gan + lambda_l1 * loss_g_l1
    loss_g.backward()
    opt_g.step()

    return {
        "loss_g": loss_g.item(),
        "loss_g_gan": loss_g_gan.item(),
        "loss_g_l1": loss_g_l1.item(),
        "loss_d": loss_d.item(),
        "loss_d_real": loss_d_real.item(),
        "loss_d_fake": loss_d_fake.item(),
    }


@dataclass
class FitResult:
    run_dir: Path
    split: dict[str, list[str]]
    epochs: list[dict[str, float]] = field(default_factory=list)

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.run_dir)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _select(subjects: list[Subject], ids: list[str]) -> list[Subject]:
    by_id = {s.id: s for s in subjects}
    return [by_id[i] for i in ids]


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _check_run_dir(run_dir: Path) -> None:
    if RunLayout(run_dir).latest.exists() or RunLayout(run_dir).config.exists():
        raise InputError(f"{run_dir}: already holds a run; choose another --run-dir")


@torch.no_grad()
def validate(
    generator: nn.Module, cache: SliceCache, dst_map: IntensityMap, multiple: int, device: torch.device
) -> dict[str, float]:
    """Whole-slice validation: L1 in [-1, 1] units and MAE in physical units, both inside the mask."""
    generator.eval()
    l1_sum = mae_sum = count = 0.0
    for subject in cache.subjects:
        pred = predict_slices(generator, subject.src[:, None], multiple, device=device)[:, 0]  # (N, H, W)
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


def _write_panel(
    path: Path, generator: nn.Module, cache: SliceCache, picks: list[tuple[int, int]], src_map: IntensityMap,
    dst_map: IntensityMap, multiple: int, device: torch.device,
) -> None:  # fmt: skip
    rows = []
    generator.eval()
    for s_idx, k in picks:
        s = cache.subjects[s_idx]
        pred = predict_slices(generator, s.src[k : k + 1, None], multiple, device=device)[0, 0].numpy()
        rows.append({
            "source": src_map.inverse(s.src[k].numpy(), s.src_scale),
            "prediction": dst_map.inverse(pred, s.dst_scale),
            "target": dst_map.inverse(s.dst[k].numpy(), s.dst_scale),  # type: ignore[index]
        })  # fmt: skip
    generator.train()
    window = (-1000.0, 2000.0) if dst_map.kind == "hu" else None
    windows = {"prediction": window, "target": window} if window else None
    save_panel(path, rows, titles=("source", "prediction", "target"), windows=windows,
               row_labels=[f"{cache.subjects[i].id} slice {k}" for i, k in picks])  # fmt: skip


@dataclass
class _ModeSetup:
    """What differs between modes; the loop in :func:`fit` is shared.

    ``step(batch)`` runs one update and returns the losses; ``end_epoch(epoch)`` validates and draws the epoch's
    PNG, returning validation figures (``val_mae`` selects the best checkpoint when present).
    """

    loader: DataLoader
    generator: nn.Module
    discriminator: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    step: Callable[[dict[str, torch.Tensor]], dict[str, float]]
    end_epoch: Callable[[int], dict[str, float]]
    checkpoint_extra: dict[str, str]
    split: dict[str, list[str]]
    description: str


def fit(cfg: RunConfig, run_dir: str | Path, *, progress: bool = True, console: Any = None) -> FitResult:
    """Train a model of any mode (paired, noise, class) and write the run folder.

    Args:
        cfg: data, model and training configuration; ``cfg.train.mode`` picks the mode.
        run_dir: folder to create; must not already hold a run.
        progress: show a rich progress bar (epoch, step, losses, ETA).
        console: rich console to draw on (default: a new one on stderr).

    Returns:
        :class:`FitResult` with the run folder, the subject split (paired mode) and per-epoch figures.
    """
    tc = cfg.train
    run_dir = Path(run_dir)
    layout = RunLayout(run_dir)
    device = resolve_device(tc.device)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    seed_everything(tc.seed)
    setup = (_setup_paired if tc.mode == Mode.PAIRED else _setup_gan)(cfg, layout, device)  # reads the data once
    atomic_write_json(layout.config, cfg.to_dict())
    if setup.split:
        atomic_write_json(layout.split, setup.split)
    generator, discriminator, opt_g, opt_d = setup.generator, setup.discriminator, setup.opt_g, setup.opt_d
    total_steps = tc.epochs * len(setup.loader)
    # pix2pix / DCGAN: constant learning rate for the first half, then linear decay to 0
    sched_g = torch.optim.lr_scheduler.LambdaLR(opt_g, linear_decay(total_steps))
    sched_d = torch.optim.lr_scheduler.LambdaLR(opt_d, linear_decay(total_steps))
    log.info(
        "%s on %s; G %.2fM params, D %.2fM params", setup.description, device,
        sum(p.numel() for p in generator.parameters()) / 1e6, sum(p.numel() for p in discriminator.parameters()) / 1e6,
    )  # fmt: skip

    step_rows: list[dict[str, Any]] = []
    epoch_rows: list[dict[str, Any]] = []
    best = float("inf")
    last_curve = time.perf_counter()
    bar = _Progress(total_steps, tc.epochs, enabled=progress, console=console)
    step = 0
    with bar:
        for epoch in range(1, tc.epochs + 1):
            t0 = time.perf_counter()
            generator.train()
            discriminator.train()
            sums: dict[str, float] = {}
            for batch in setup.loader:
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                losses = setup.step(batch)
                step += 1
                lr = opt_g.param_groups[0]["lr"]
                sched_g.step()
                sched_d.step()
                step_rows.append({"epoch": epoch, "step": step, "lr": f"{lr:.6g}", **{k: f"{v:.6g}" for k, v in losses.items()}})
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.update(epoch, losses)
            means = {k: v / max(1, len(setup.loader)) for k, v in sums.items()}

            # --- end of epoch: validate and draw, log, checkpoint ------------------------------------------------
            layout.panels.mkdir(parents=True, exist_ok=True)
            val = setup.end_epoch(epoch)
            seconds = time.perf_counter() - t0
            row = {"epoch": epoch, "step": step, **{k: round(v, 6) for k, v in means.items()},
                   **{k: round(v, 4) for k, v in val.items()}, "seconds": round(seconds, 2)}  # fmt: skip
            epoch_rows.append(row)
            atomic_write_text(layout.log, _csv_text(step_rows))
            atomic_write_text(layout.epochs, _csv_text(epoch_rows))
            if epoch == tc.epochs or time.perf_counter() - last_curve > 20.0:  # matplotlib is slow: ~1 s a plot
                save_loss_curve(layout.log, layout.loss_curve, epochs_csv=layout.epochs)
                last_curve = time.perf_counter()
            payload = {
                "mode": tc.mode.value,
                "config": json.dumps(cfg.to_dict()),
                **setup.checkpoint_extra,
                "generator": generator.state_dict(),
                "discriminator": discriminator.state_dict(),
                "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(),
                "sched_g": sched_g.state_dict(),
                "sched_d": sched_d.state_dict(),
                "epoch": epoch,
                "step": step,
                "metrics": json.dumps(row),
            }
            layout.checkpoints.mkdir(exist_ok=True)
            save_checkpoint(layout.latest, payload)
            # paired: best by validation MAE (training L1 without validation subjects); GANs: latest only
            score = val.get("val_mae", means.get("loss_g_l1")) if tc.mode == Mode.PAIRED else None
            if score is not None and score <= best:
                best = score
                save_checkpoint(layout.best, payload)
            shown = ("loss_g_l1", "loss_d") if "loss_g_l1" in means else ("loss_g", "loss_d")
            summary = "  ".join(f"{k.removeprefix('loss_').upper()} {means[k]:.4g}" for k in shown if k in means)
            if "val_mae" in val:
                summary += f"  val MAE {val['val_mae']:.1f}"
            bar.log(f"epoch {epoch}/{tc.epochs}  {summary}  ({seconds:.1f} s)")
    return FitResult(run_dir=run_dir, split=setup.split, epochs=epoch_rows)


def _setup_paired(cfg: RunConfig, layout: RunLayout, device: torch.device) -> _ModeSetup:
    """pix2pix: subjects split by subject, slice caches, U-Net + PatchGAN, whole-slice validation in HU."""
    tc, dc = cfg.train, cfg.data
    if dc.src == dc.dst:
        raise InputError(f"--src and --dst are both {dc.src!r}; paired mode translates between two modalities")
    multiple = cfg.model.multiple
    if tc.image_size % multiple:
        raise InputError(
            f"--image-size {tc.image_size} is not a multiple of 2^depth = {multiple} (model depth {cfg.model.depth})"
        )
    subjects = find_subjects(dc.root, [dc.src, dc.dst], [dc.mask] if dc.mask else [])
    if dc.mask and not any(dc.mask in s.files for s in subjects):
        log.warning("no subject has a %r modality: slices are selected and scored over the whole image", dc.mask)
    split = split_subjects([s.id for s in subjects], dc.val_fraction, dc.test_fraction, dc.split_seed)
    _check_run_dir(layout.root)
    src_map, dst_map = intensity_maps(dc)
    train_cache = SliceCache(_select(subjects, split["train"]), dc, src_map, dst_map)
    val_cache = SliceCache(_select(subjects, split["val"]), dc, src_map, dst_map)
    # a generated target of a percentile modality is mapped back with the training volumes' median scale
    dst_map = IntensityMap(dst_map.kind, dst_map.window, dst_map.percentiles, train_cache.reference_scale("dst"))
    train_set = PairedSlices(train_cache, tc.image_size, train=True, flip=tc.flip, min_foreground=dc.min_foreground)
    layout.root.mkdir(parents=True, exist_ok=True)

    generator, discriminator = build_networks(cfg)
    generator.to(device)
    discriminator.to(device)
    opt_g, opt_d = build_optimizers(generator, discriminator, tc)
    picks = _panel_slices(val_cache, tc.panel_slices)

    def step(batch: dict[str, torch.Tensor]) -> dict[str, float]:
        return paired_step(batch, generator, discriminator, opt_g, opt_d, gan_kind=tc.gan_loss, lambda_l1=tc.lambda_l1)

    def end_epoch(epoch: int) -> dict[str, float]:
        if picks:
            _write_panel(layout.panels / f"epoch_{epoch:03d}.png", generator, val_cache, picks, src_map, dst_map,
                         multiple, device)  # fmt: skip
        return validate(generator, val_cache, dst_map, multiple, device) if val_cache.subjects else {}

    return _ModeSetup(
        loader=_loader(train_set, tc, device),
        generator=generator, discriminator=discriminator, opt_g=opt_g, opt_d=opt_d, step=step, end_epoch=end_epoch,
        checkpoint_extra={"intensity": json.dumps({"src": src_map.to_dict(), "dst": dst_map.to_dict()})},
        split=split,
        description=f"training {dc.src} -> {dc.dst} on {len(train_set)} slices from {len(split['train'])} subjects "
        f"(val {len(split['val'])}, test {len(split['test'])})",
    )  # fmt: skip


def gan_step(
    batch: dict[str, torch.Tensor],
    generator: nn.Module,
    discriminator: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    *,
    latent_dim: int,
    gan_kind: GanLoss = GanLoss.LSGAN,
    d_steps: int = 1,
    real_label: float = 1.0,
    augment: bool = True,
) -> dict[str, float]:
    """One DCGAN / CGAN update: ``d_steps`` discriminator updates on real vs generated images, then one generator update.

    Args:
        batch: ``image`` (B, C, S, S) in [-1, 1], and ``label`` (B,) for the class-conditional mode.
        latent_dim: size of z ~ N(0, I).
        real_label: target of real images for the discriminator (below 1: one-sided label smoothing).
        augment: differentiable augmentation of every discriminator input (see :func:`diff_augment`).

    Returns:
        ``loss_g``, ``loss_d``, ``loss_d_real``, ``loss_d_fake``.
    """
    real = batch["image"]  # (B, C, S, S)
    cond = (batch["label"],) if "label" in batch else ()  # class mode: G and D both see the label
    b = real.shape[0]
    aug = diff_augment if augment else (lambda x: x)

    # discriminator phase: fresh samples each update, G's graph not needed
    discriminator.requires_grad_(True)
    for _ in range(d_steps):
        with torch.no_grad():
            fake = generator(torch.randn(b, latent_dim, device=real.device), *cond)
        opt_d.zero_grad(set_to_none=True)
        loss_d_real = gan_loss(discriminator(aug(real), *cond), True, gan_kind, real_label)
        loss_d_fake = gan_loss(discriminator(aug(fake), *cond), False, gan_kind)
        loss_d = loss_d_real + loss_d_fake
        loss_d.backward()
        opt_d.step()

    # generator phase: D frozen, G's samples pushed towards "real"
    discriminator.requires_grad_(False)
    opt_g.zero_grad(set_to_none=True)
    fake = generator(torch.randn(b, latent_dim, device=real.device), *cond)
    loss_g = gan_loss(discriminator(aug(fake), *cond), True, gan_kind, for_discriminator=False)
    loss_g.backward()
    opt_g.step()
    return {"loss_g": loss_g.item(), "loss_d": loss_d.item(), "loss_d_real": loss_d_real.item(),
            "loss_d_fake": loss_d_fake.item()}  # fmt: skip


def build_gan_networks(cfg: RunConfig) -> tuple[nn.Module, nn.Module]:
    """DCGAN generator/discriminator (noise mode) or their class-conditional versions (class mode), N(0, 0.02) init."""
    from pix2gan.nets import ConditionalDiscriminator, ConditionalGenerator, DCGANDiscriminator, DCGANGenerator

    if cfg.train.mode == Mode.CLASS:
        generator, discriminator = ConditionalGenerator(cfg.gan), ConditionalDiscriminator(cfg.gan)
    else:
        generator, discriminator = DCGANGenerator(cfg.gan), DCGANDiscriminator(cfg.gan)
    init_weights(generator, cfg.train.init_gain)
    init_weights(discriminator, cfg.train.init_gain)
    return generator, discriminator


def fixed_latents(cfg: RunConfig, class_names: list[str], per_row: int = 8, seed: int = 1234) -> dict[str, torch.Tensor]:
    """The same noise every epoch (so sample grids compare across epochs): 8 x 8, or one row per class."""
    g = torch.Generator().manual_seed(seed)
    if cfg.train.mode == Mode.CLASS:
        labels = torch.arange(len(class_names)).repeat_interleave(per_row)
        z = torch.randn(per_row, cfg.gan.latent_dim, generator=g).repeat(len(class_names), 1)  # same z per column
        return {"z": z, "label": labels}
    return {"z": torch.randn(per_row * per_row, cfg.gan.latent_dim, generator=g)}


def _setup_gan(cfg: RunConfig, layout: RunLayout, device: torch.device) -> _ModeSetup:
    """DCGAN (noise) or CGAN (class): images decoded once into memory, per-epoch sample grids from fixed noise."""
    from pix2gan.data.images import images_for_run
    from pix2gan.report import save_grid

    tc = cfg.train
    conditional = tc.mode == Mode.CLASS
    data = images_for_run(cfg)
    _check_run_dir(layout.root)
    # the data decide channels and classes; the config records them for the checkpoint
    cfg.gan = dataclasses.replace(
        cfg.gan, channels=int(data.images.shape[1]), num_classes=data.num_classes if conditional else 0
    )
    layout.root.mkdir(parents=True, exist_ok=True)
    tensors = {"image": data.images}
    if conditional:
        tensors["label"] = data.labels
    dataset = _TensorDict(tensors)

    generator, discriminator = build_gan_networks(cfg)
    generator.to(device)
    discriminator.to(device)
    opt_g, opt_d = build_optimizers(generator, discriminator, tc)
    fixed = {k: v.to(device) for k, v in fixed_latents(cfg, data.class_names).items()}

    def step(batch: dict[str, torch.Tensor]) -> dict[str, float]:
        return gan_step(batch, generator, discriminator, opt_g, opt_d, latent_dim=cfg.gan.latent_dim,
                        gan_kind=tc.gan_loss, d_steps=tc.d_steps, real_label=1.0 - tc.label_smoothing,
                        augment=tc.augment)  # fmt: skip

    @torch.no_grad()
    def end_epoch(epoch: int) -> dict[str, float]:
        generator.eval()
        images = generator(fixed["z"], *((fixed["label"],) if conditional else ())).cpu().numpy()
        generator.train()
        save_grid(layout.panels / f"epoch_{epoch:03d}.png", images, nrow=8,
                  row_labels=data.class_names if conditional else None)  # fmt: skip
        return {}

    info = {"class_names": data.class_names, "source": data.source, "n_images": len(data)}
    kind = f"{data.num_classes} classes" if conditional else "unlabelled"
    return _ModeSetup(
        loader=_loader(dataset, tc, device),
        generator=generator, discriminator=discriminator, opt_g=opt_g, opt_d=opt_d, step=step, end_epoch=end_epoch,
        checkpoint_extra={"data_info": json.dumps(info)},
        split={},
        description=f"training a {tc.mode.value}-mode GAN on {len(data)} images ({kind}, "
        f"{cfg.gan.channels} x {cfg.gan.image_size}^2) from {data.source}",
    )  # fmt: skip


class _TensorDict(torch.utils.data.Dataset):
    """Rows of in-memory tensors as dicts (``image`` and optionally ``label``)."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tensors = tensors
        self.n = len(next(iter(tensors.values())))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i] for k, v in self.tensors.items()}


def _loader(dataset: torch.utils.data.Dataset, tc: TrainConfig, device: torch.device) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=tc.batch_size,
        shuffle=True,
        drop_last=len(dataset) >= tc.batch_size,  # type: ignore[arg-type]
        num_workers=tc.num_workers,
        generator=torch.Generator().manual_seed(tc.seed),
        pin_memory=device.type == "cuda",
        persistent_workers=tc.num_workers > 0,
    )


class _Progress:
    """A rich progress bar over all steps: epoch, step, current losses, elapsed time and ETA."""

    def __init__(self, total: int, epochs: int, *, enabled: bool, console: Any = None) -> None:
        self.enabled = enabled
        self.epochs = epochs
        self.progress = None
        if enabled:
            from rich.progress import (
                BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
            )  # fmt: skip

            self.progress = Progress(
                TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[losses]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            )
            self.task = self.progress.add_task("train", total=total, epoch=1, epochs=epochs, losses="")

    def __enter__(self) -> _Progress:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def update(self, epoch: int, losses: dict[str, float]) -> None:
        if self.progress is None:
            return
        if "loss_g_l1" in losses:
            text = f"G_gan {losses['loss_g_gan']:.3f}  L1 {losses['loss_g_l1']:.4f}  D {losses['loss_d']:.3f}"
        else:
            text = f"G {losses['loss_g']:.3f}  D {losses['loss_d']:.3f}"
        self.progress.update(self.task, advance=1, epoch=epoch, losses=text)

    def log(self, message: str) -> None:
        if self.progress is not None:
            self.progress.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}", highlight=False)
        else:
            log.info(message)
