"""One training loop for paired modality synthesis (pix2pix), readable top to bottom.

``fit`` reads the subjects once into slice caches, splits them by subject, and alternates an explicit discriminator
phase and generator phase per batch (:func:`paired_step`). After every epoch it validates on whole validation slices
(MAE in physical units inside the mask), writes a source | prediction | target panel, the loss log and curve, and
the ``latest`` and ``best`` checkpoints, all atomically.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import logging
import math
import random
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from pix2gan.checkpoint import (
    LoadedCheckpoint,
    RunLayout,
    load_checkpoint,
    resume_candidates,
    save_run_checkpoint,
)
from pix2gan.config import GanLoss, Mode, RunConfig, TrainConfig
from pix2gan.data.batches import EpochBatchSampler
from pix2gan.data.device_crop import crop_batch
from pix2gan.data.intensity import IntensityMap, intensity_maps
from pix2gan.data.slices import PairedSlices, SliceCache
from pix2gan.data.subjects import Subject, find_subjects, split_subjects
from pix2gan.engine import (
    DistInfo,
    StepContext,
    broadcast_buffers,
    init_distributed,
    resolve_precision,
    sync_batchnorm,
    wrap_for_training,
)
from pix2gan.losses import diff_augment, gan_loss, l1_loss
from pix2gan.nets import PatchDiscriminator, UNetGenerator, init_weights
from pix2gan.report import save_loss_curve, save_panel
from pix2gan.runstate import StopSignals, rng_state, set_rng_state
from pix2gan.translate import predict_slices
from pix2gan.volumes import (
    InputError,
    atomic_write_json,
    atomic_write_text,
    check_output_folder,
)

__all__ = [
    "build_networks",
    "build_gan_networks",
    "build_optimizers",
    "paired_step",
    "gan_step",
    "fixed_latents",
    "fit",
    "resume_run",
    "FitResult",
    "TrainingError",
    "TrainingInterrupted",
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
    ctx: StepContext | None = None,
    frozen_discriminator: nn.Module | None = None,
) -> dict[str, float]:
    """One pix2pix update: D on (src, real) vs (src, G(src)), then G against D plus lambda * L1.

    Args:
        batch: ``src`` and ``dst`` of shape (B, C, S, S) in [-1, 1], already on the device.
        ctx: precision, gradient scaling and DDP agreement (default: fp32, one process).
        frozen_discriminator: the discriminator as G's phase calls it (under DDP the bare module: D's gradients
            are not wanted there, so they must not be all-reduced); default ``discriminator``.

    Returns:
        ``loss_g`` (total), ``loss_g_gan``, ``loss_g_l1``, ``loss_d``, ``loss_d_real``, ``loss_d_fake``. An update
        whose loss is not finite is skipped (weights and optimiser state untouched).
    """
    ctx = StepContext(device=batch["src"].device) if ctx is None else ctx
    frozen = discriminator if frozen_discriminator is None else frozen_discriminator
    src, dst = batch["src"], batch["dst"]  # (B, C, S, S)
    ctx.start()
    with ctx.autocast():
        fake = generator(src)
    ctx.mark("G")

    # discriminator phase: the generator's output is detached, D learns real pairs from generated ones
    discriminator.requires_grad_(True)
    opt_d.zero_grad(set_to_none=True)
    with ctx.autocast():
        loss_d_fake = gan_loss(discriminator(torch.cat([src, fake.detach()], 1)), False, gan_kind)
        loss_d_real = gan_loss(discriminator(torch.cat([src, dst], 1)), True, gan_kind)
        loss_d = 0.5 * (loss_d_fake + loss_d_real)  # halved as in pix2pix: slows D relative to G
    ctx.backward_step(loss_d, opt_d, "D")

    # generator phase: D is frozen so its weights get no gradients from G's loss
    discriminator.requires_grad_(False)
    opt_g.zero_grad(set_to_none=True)
    with ctx.autocast():
        loss_g_gan = gan_loss(frozen(torch.cat([src, fake], 1)), True, gan_kind, for_discriminator=False)
        loss_g_l1 = l1_loss(fake, dst)
        loss_g = loss_g_gan + lambda_l1 * loss_g_l1
    ctx.backward_step(loss_g, opt_g, "G")
    ctx.end_step()

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
    mode: Mode = Mode.PAIRED
    generator: nn.Module | None = None  # the trained networks (bare modules, in training mode)
    discriminator: nn.Module | None = None

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

    dataset: torch.utils.data.Dataset
    generator: nn.Module
    discriminator: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    step: Callable[[dict[str, torch.Tensor], dict[str, nn.Module], StepContext], dict[str, float]]
    end_epoch: Callable[[int], dict[str, float]]
    checkpoint_extra: dict[str, str]
    split: dict[str, list[str]]
    description: str
    on_device: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None  # e.g. kornia crops


class TrainingError(RuntimeError):
    """Training cannot go on (losses non-finite for too long, a data-loader worker died); one line, no traceback."""


class TrainingInterrupted(Exception):
    """Ctrl-C or SIGTERM: a checkpoint was saved; the message says how to resume."""


@dataclass
class _LoopState:
    """Loop bookkeeping that a checkpoint carries so a resumed run continues exactly where it stopped."""

    step: int = 0
    world: int = 1  # ranks that share the steps
    best: float = float("inf")
    sums: dict[str, float] = field(default_factory=dict)  # finite losses of the current epoch
    counted: int = 0  # finite steps in the current epoch
    nonfinite: int = 0  # steps in a row with a non-finite loss
    step_rows: list[dict[str, Any]] = field(default_factory=list)
    epoch_rows: list[dict[str, Any]] = field(default_factory=list)
    per_epoch: int = 0  # steps per epoch at this world size

    def to_json(self) -> str:
        best = self.best if np.isfinite(self.best) else None
        return json.dumps({"best": best, "sums": self.sums, "counted": self.counted, "nonfinite": self.nonfinite,
                           "world": self.world, "per_epoch": self.per_epoch})  # fmt: skip

    def load_json(self, text: str) -> tuple[int, int]:
        """Restore the bookkeeping; returns the ranks and steps per epoch of the run that saved it."""
        d = json.loads(text)
        self.best = float("inf") if d["best"] is None else float(d["best"])
        self.sums, self.counted, self.nonfinite = dict(d["sums"]), int(d["counted"]), int(d["nonfinite"])
        return int(d.get("world", 1)), int(d.get("per_epoch", self.per_epoch))


def fit(
    cfg: RunConfig, run_dir: str | Path, *, progress: bool = True, console: Any = None, resume: bool = False
) -> FitResult:
    """Train a model of any mode (paired, noise, class) and write the run folder.

    Args:
        cfg: data, model and training configuration; ``cfg.train.mode`` picks the mode.
        run_dir: folder to create; must not already hold a run (unless ``resume``).
        progress: show a rich progress bar (epoch, step, losses, ETA).
        console: rich console to draw on (default: a new one on stderr).
        resume: continue the run in ``run_dir`` from its newest loadable checkpoint (``cfg`` must be its config;
            see :func:`resume_run`). On CPU the result is bit-identical to a run that was never interrupted.

    Returns:
        :class:`FitResult` with the run folder, the subject split (paired mode) and per-epoch figures.

    Raises:
        TrainingInterrupted: Ctrl-C or SIGTERM; a checkpoint of the last finished step was saved first.
        TrainingError: ``max_nonfinite`` non-finite steps in a row, or the data loader failed.
    """
    tc = cfg.train
    run_dir = Path(run_dir)
    layout = RunLayout(run_dir)
    info, device = init_distributed(tc.device)
    try:
        return _fit(cfg, layout, info, device, progress=progress, console=console, resume=resume)
    finally:
        if info.distributed and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _fit(
    cfg: RunConfig, layout: RunLayout, info: DistInfo, device: torch.device, *, progress: bool, console: Any,
    resume: bool,
) -> FitResult:  # fmt: skip
    tc = cfg.train
    run_dir = layout.root
    if info.main:
        check_output_folder(run_dir)  # before the data are read
    if tc.threads:
        torch.set_num_threads(tc.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop sizes: let cuDNN pick the fastest kernels once
    dtype = resolve_precision(tc.precision, device)
    seed_everything(tc.seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    setup = (_setup_paired if tc.mode == Mode.PAIRED else _setup_gan)(
        cfg, layout, device, check_new=info.main and not resume
    )
    if resume and setup.split and layout.split.is_file() and json.loads(layout.split.read_text()) != setup.split:
        raise InputError(f"{layout.root}: the data differ from those the run started with (split); resume needs the same data")
    start = _resume_checkpoint(layout, setup) if resume else None
    if not resume and info.main:
        atomic_write_json(layout.config, cfg.to_dict())
        if setup.split:
            atomic_write_json(layout.split, setup.split)
    info.barrier()
    generator, discriminator, opt_g, opt_d = setup.generator, setup.discriminator, setup.opt_g, setup.opt_d
    sync_batchnorm(generator, device, info)
    sync_batchnorm(discriminator, device, info)
    nets = {
        "g": wrap_for_training(generator, device, info, channels_last=tc.channels_last, compile=tc.compile),
        "d": wrap_for_training(discriminator, device, info, channels_last=tc.channels_last, compile=tc.compile),
    }
    # G's phase calls D without DDP (D's gradients are not wanted there, so they must not be all-reduced)
    nets["d_frozen"] = nets["d"]
    if info.distributed:
        nets["d_frozen"] = torch.compile(discriminator) if tc.compile else discriminator
    ctx = StepContext(device=device, dtype=dtype, distributed=info.distributed, channels_last=tc.channels_last,
                      on_device=setup.on_device)  # fmt: skip
    sampler = EpochBatchSampler(len(setup.dataset), tc.batch_size, tc.seed, rank=info.rank, world=info.world)  # type: ignore[arg-type]
    loader = _loader(setup.dataset, sampler, tc, device)
    per_epoch = len(sampler)
    if per_epoch < 1:
        raise InputError(f"{cfg.data.root}: too few training items for {info.world} ranks of batch size {tc.batch_size}")
    total_steps = tc.epochs * per_epoch
    # pix2pix / DCGAN: constant learning rate for the first half, then linear decay to 0
    sched_g = torch.optim.lr_scheduler.LambdaLR(opt_g, linear_decay(total_steps))
    sched_d = torch.optim.lr_scheduler.LambdaLR(opt_d, linear_decay(total_steps))
    state = _LoopState(world=info.world, per_epoch=per_epoch)
    if start is not None:
        _restore(start, setup, sched_g, sched_d, state, layout, ctx)
        log.info("resuming %s from %s: epoch %d, step %d of %d", run_dir, start.path.name,
                 state.step // per_epoch + 1, state.step, total_steps)  # fmt: skip
        if state.step >= total_steps:
            log.info("%s: the run is already complete; nothing to do", run_dir)
    if info.distributed:  # dropout, latent vectors and DiffAugment differ per rank
        seed_everything(tc.seed * 1_000_003 + 7_919 * info.rank + state.step)
    precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    log.info(
        "%s on %s%s (%s); G %.2fM params, D %.2fM params", setup.description, device,
        f" x {info.world} ranks" if info.distributed else "", precision,
        sum(p.numel() for p in generator.parameters()) / 1e6, sum(p.numel() for p in discriminator.parameters()) / 1e6,
    )  # fmt: skip

    def save(best: bool = False) -> None:
        if info.main:
            _check_finite_weights(generator, discriminator, state.step, layout)
            if state.step_rows:
                atomic_write_text(layout.log, _csv_text(state.step_rows))
            if state.epoch_rows:
                atomic_write_text(layout.epochs, _csv_text(state.epoch_rows))
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
                **({"scaler": ctx.scaler.state_dict()} if ctx.scaler is not None else {}),
                "epoch": state.step // per_epoch,  # completed epochs
                "step": state.step,
                "metrics": json.dumps(state.epoch_rows[-1] if state.epoch_rows else {}),
                "rng": rng_state(),
                "progress": state.to_json(),
            }
            save_run_checkpoint(layout, payload, step=state.step, keep_last=tc.keep_last, best=best)
        info.barrier()

    last_curve = last_save = time.monotonic()
    bar = _Progress(total_steps, tc.epochs, enabled=progress and info.main, console=console, completed=state.step)
    with bar, StopSignals() as stop, _workers_stopped(loader):
        while state.step < total_steps:
            epoch = state.step // per_epoch + 1
            sampler.set_epoch(epoch, state.step % per_epoch)
            t0 = time.perf_counter()
            generator.train()
            discriminator.train()
            for batch in _batches(loader, ctx, stop):
                losses = setup.step(batch, nets, ctx)
                stopping = bool(stop.requested)
                if info.distributed:  # every rank logs the mean losses and stops at the same step
                    losses, stopping = _all_ranks(losses, stopping)
                state.step += 1
                lr = opt_g.param_groups[0]["lr"]
                sched_g.step()
                sched_d.step()
                state.step_rows.append({"epoch": epoch, "step": state.step, "lr": f"{lr:.6g}",
                                        **{k: f"{v:.6g}" for k, v in losses.items()}})  # fmt: skip
                _count(state, losses, tc.max_nonfinite, layout)
                bar.update(epoch, losses)
                if not info.distributed:
                    stopping = bool(stop.requested)  # (DDP: the flag all ranks agreed on above)
                if state.step % per_epoch == 0:
                    break  # the end of the epoch is handled below
                due = (tc.checkpoint_every and state.step % tc.checkpoint_every == 0) or (
                    tc.checkpoint_minutes and time.monotonic() - last_save >= 60.0 * tc.checkpoint_minutes
                )
                if info.distributed and tc.checkpoint_minutes:  # rank clocks differ: rank 0's decides
                    due = _rank0_decides(bool(due))
                if due or stopping:
                    save()
                    last_save = time.monotonic()
                if stopping:
                    stop.requested = stop.requested or "SIGTERM"
                    break
            if stop.requested and state.step % per_epoch:
                save()  # interrupted inside the epoch (possibly while fetching a batch)
                raise _interrupted(stop.requested, state.step, total_steps, per_epoch, layout)

            # --- end of epoch: validate and draw, log, checkpoint (rank 0) ----------------------------------------
            means = {k: v / max(1, state.counted) for k, v in state.sums.items()}
            state.sums, state.counted = {}, 0
            val: dict[str, float] = {}
            if info.main:
                layout.panels.mkdir(parents=True, exist_ok=True)
                val = setup.end_epoch(epoch)
            seconds = time.perf_counter() - t0
            row = {"epoch": epoch, "step": state.step, **{k: round(v, 6) for k, v in means.items()},
                   **{k: round(v, 4) for k, v in val.items()}, "seconds": round(seconds, 2)}  # fmt: skip
            state.epoch_rows.append(row)
            # paired: best by validation MAE (training L1 without validation subjects); GANs: latest only
            score = val.get("val_mae", means.get("loss_g_l1")) if tc.mode == Mode.PAIRED else None
            is_best = score is not None and score <= state.best
            if is_best:
                state.best = float(score)  # type: ignore[arg-type]
            save(best=is_best)
            last_save = time.monotonic()
            if info.main and (epoch == tc.epochs or time.monotonic() - last_curve > 20.0):  # matplotlib: ~1 s a plot
                save_loss_curve(layout.log, layout.loss_curve, epochs_csv=layout.epochs)
                last_curve = time.monotonic()
            shown = ("loss_g_l1", "loss_d") if "loss_g_l1" in means else ("loss_g", "loss_d")
            summary = "  ".join(f"{k.removeprefix('loss_').upper()} {means[k]:.4g}" for k in shown if k in means)
            if "val_mae" in val:
                summary += f"  val MAE {val['val_mae']:.1f}"
            if info.main:
                bar.log(f"epoch {epoch}/{tc.epochs}  {summary}  ({seconds:.1f} s)")
            if stop.requested:
                raise _interrupted(stop.requested, state.step, total_steps, per_epoch, layout)
    for net in (generator, discriminator):
        broadcast_buffers(net, info)  # the ranks end with identical networks, buffers included
    return FitResult(run_dir=run_dir, split=setup.split, epochs=state.epoch_rows, mode=tc.mode,
                     generator=generator, discriminator=discriminator)  # fmt: skip


def _all_ranks(losses: dict[str, float], stopping: bool) -> tuple[dict[str, float], bool]:
    """Mean losses over the ranks, and whether any rank was asked to stop (one all-reduce per step)."""
    keys = list(losses)
    t = torch.tensor([*(losses[k] for k in keys), float(stopping)], dtype=torch.float64)
    if torch.distributed.get_backend() == "nccl":
        t = t.cuda()
    torch.distributed.all_reduce(t)
    world = torch.distributed.get_world_size()
    values = t.cpu().tolist()
    return {k: v / world for k, v in zip(keys, values, strict=False)}, values[-1] > 0


def _rank0_decides(flag: bool) -> bool:
    t = torch.tensor([float(flag)], dtype=torch.float64)
    if torch.distributed.get_backend() == "nccl":
        t = t.cuda()
    torch.distributed.broadcast(t, src=0)
    return bool(t.item())


def resume_run(run_dir: str | Path, *, progress: bool = True, console: Any = None) -> FitResult:
    """Continue the run in ``run_dir`` with the configuration it was started with (its ``config.json``)."""
    layout = RunLayout(Path(run_dir))
    if not layout.root.is_dir():
        raise InputError(f"{layout.root}: run folder not found")
    if not layout.config.is_file():
        raise InputError(f"{layout.config}: not found; {layout.root} is not a pix2gan run folder")
    try:
        cfg = RunConfig.from_dict(json.loads(layout.config.read_text()))
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"{layout.config}: unreadable run configuration ({type(exc).__name__}: {exc})") from None
    return fit(cfg, layout.root, progress=progress, console=console, resume=True)


def _resume_checkpoint(layout: RunLayout, setup: _ModeSetup) -> LoadedCheckpoint | None:
    """The newest checkpoint of the run that loads and matches its data; None to start over (none was saved)."""
    for path in resume_candidates(layout):
        try:
            ckpt = load_checkpoint(path)
        except InputError as exc:
            log.warning("skipping %s", exc)
            continue
        if "rng" not in ckpt.raw or "progress" not in ckpt.raw:
            raise InputError(f"{path}: checkpoint predates resumable runs (no RNG state); cannot resume from it")
        for key, value in setup.checkpoint_extra.items():
            if ckpt.raw.get(key) != value:
                raise InputError(
                    f"{layout.root}: the data differ from those the run started with ({key}); resume needs the same data"
                )
        return ckpt
    log.warning("%s: no checkpoint saved yet; starting the run from its beginning", layout.root)
    return None


def _restore(
    ckpt: LoadedCheckpoint, setup: _ModeSetup, sched_g: Any, sched_d: Any, state: _LoopState, layout: RunLayout,
    ctx: StepContext,
) -> None:  # fmt: skip
    raw = ckpt.raw
    try:
        setup.generator.load_state_dict(raw["generator"])
        setup.discriminator.load_state_dict(raw["discriminator"])
        setup.opt_g.load_state_dict(raw["opt_g"])
        setup.opt_d.load_state_dict(raw["opt_d"])
        sched_g.load_state_dict(raw["sched_g"])
        sched_d.load_state_dict(raw["sched_d"])
        if ctx.scaler is not None and "scaler" in raw:
            ctx.scaler.load_state_dict(raw["scaler"])
        saved_world, old = state.load_json(raw["progress"])
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{ckpt.path}: does not match the run's configuration ({first})") from None
    state.step = int(raw["step"])
    state.step_rows = [r for r in _read_csv(layout.log) if int(r["step"]) <= state.step]
    state.epoch_rows = [
        {k: _number(v) for k, v in r.items()} for r in _read_csv(layout.epochs) if int(r["step"]) <= state.step
    ]
    set_rng_state(raw["rng"])
    if old != state.per_epoch:  # another number of ranks: the same epoch and fraction of it, in the new steps
        new_step = state.step // old * state.per_epoch + round(state.step % old * state.per_epoch / old)
        log.warning("resuming a %d-rank run on %d ranks: step %d becomes step %d", saved_world, state.world,
                    state.step, new_step)  # fmt: skip
        state.step = new_step
        for sched in (sched_g, sched_d):
            sched.last_epoch = new_step - 1
            sched.step()


def _read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a log written by :func:`_csv_text`; numbers of the epoch log become numbers again."""
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _number(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _count(state: _LoopState, losses: dict[str, float], limit: int, layout: RunLayout) -> None:
    """Add a step's losses to the epoch sums, or count it as skipped when any loss is not finite."""
    if all(math.isfinite(v) for v in losses.values()):
        state.nonfinite = 0
        state.counted += 1
        for k, v in losses.items():
            state.sums[k] = state.sums.get(k, 0.0) + v
        return
    state.nonfinite += 1
    if state.nonfinite >= limit:
        terms = ", ".join(f"{k}={v:.4g}" for k, v in losses.items())
        atomic_write_text(layout.log, _csv_text(state.step_rows))
        raise TrainingError(
            f"step {state.step}: non-finite loss for {state.nonfinite} steps in a row ({terms}); stopped. "
            f"Last good checkpoint: {_last_good(layout)}"
        )


def _last_good(layout: RunLayout) -> str:
    return str(layout.latest) if layout.latest.is_file() else "none (no checkpoint saved yet)"


def _check_finite_weights(generator: nn.Module, discriminator: nn.Module, step: int, layout: RunLayout) -> None:
    for name, net in (("generator", generator), ("discriminator", discriminator)):
        if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
            raise TrainingError(
                f"step {step}: the {name}'s weights are no longer finite; not saved. Last good checkpoint: "
                f"{_last_good(layout)}"
            )


def _interrupted(signame: str, step: int, total: int, per_epoch: int, layout: RunLayout) -> TrainingInterrupted:
    return TrainingInterrupted(
        f"{signame}: stopped at epoch {step // per_epoch + (1 if step % per_epoch else 0)}, step {step} of {total}; "
        f"saved {layout.latest}. Resume with: pix2gan train --resume {layout.root}"
    )


@contextlib.contextmanager
def _workers_stopped(loader: DataLoader) -> Iterator[None]:
    """Shut persistent data-loader workers down when training ends, also on errors (no orphaned processes)."""
    try:
        yield
    finally:
        iterator = getattr(loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
            loader._iterator = None


def _batches(loader: DataLoader, ctx: StepContext, stop: StopSignals | None = None) -> Iterator[dict[str, torch.Tensor]]:
    """The loader's batches on ``device``; a failing data set or worker becomes one line instead of a traceback or hang.

    When a stop was requested (Ctrl-C also reaches worker processes), a failed fetch just ends the iteration.
    """
    it = iter(loader)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except Exception as exc:
            if hasattr(it, "_shutdown_workers"):
                it._shutdown_workers()  # the other workers must not outlive the failure
            if stop is not None and stop.requested:
                return
            message = _worker_message(exc)
            if isinstance(exc, InputError):  # also when a worker raised it: the loader re-raises the same type
                raise InputError(message) from None
            raise TrainingError(f"data loading failed: {message}") from None
        yield ctx.prepare(batch)


def _worker_message(exc: BaseException) -> str:
    """The original one-line message of an exception re-raised by a DataLoader worker (which wraps a traceback)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if len(lines) == 1 or not lines[0].startswith("Caught "):
        return lines[0] if not lines[0].startswith("DataLoader worker") else " ".join(lines)
    last = lines[-1]  # "pix2gan.volumes.InputError: /path: problem"
    head, sep, rest = last.partition(": ")
    return rest if sep and "." in head and " " not in head else last


def _setup_paired(cfg: RunConfig, layout: RunLayout, device: torch.device, *, check_new: bool = True) -> _ModeSetup:
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
    if check_new:
        _check_run_dir(layout.root)
    src_map, dst_map = intensity_maps(dc)
    train_cache = SliceCache(_select(subjects, split["train"]), dc, src_map, dst_map)
    val_cache = SliceCache(_select(subjects, split["val"]), dc, src_map, dst_map)
    # a generated target of a percentile modality is mapped back with the training volumes' median scale
    dst_map = IntensityMap(dst_map.kind, dst_map.window, dst_map.percentiles, train_cache.reference_scale("dst"))
    on_device = tc.device_crop if tc.device_crop is not None else device.type == "cuda"
    train_set = PairedSlices(train_cache, tc.image_size, train=True, flip=tc.flip, min_foreground=dc.min_foreground,
                             crop_on_device=on_device)  # fmt: skip
    layout.root.mkdir(parents=True, exist_ok=True)

    generator, discriminator = build_networks(cfg)
    generator.to(device)
    discriminator.to(device)
    opt_g, opt_d = build_optimizers(generator, discriminator, tc)
    picks = _panel_slices(val_cache, tc.panel_slices)

    def step(batch: dict[str, torch.Tensor], nets: dict[str, nn.Module], ctx: StepContext) -> dict[str, float]:
        return paired_step(batch, nets["g"], nets["d"], opt_g, opt_d, gan_kind=tc.gan_loss, lambda_l1=tc.lambda_l1,
                           ctx=ctx, frozen_discriminator=nets["d_frozen"])  # fmt: skip

    def end_epoch(epoch: int) -> dict[str, float]:
        if picks:
            _write_panel(layout.panels / f"epoch_{epoch:03d}.png", generator, val_cache, picks, src_map, dst_map,
                         multiple, device)  # fmt: skip
        return validate(generator, val_cache, dst_map, multiple, device) if val_cache.subjects else {}

    return _ModeSetup(
        dataset=train_set,
        on_device=(lambda batch: crop_batch(batch, tc.image_size)) if on_device else None,
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
    ctx: StepContext | None = None,
    frozen_discriminator: nn.Module | None = None,
) -> dict[str, float]:
    """One DCGAN / CGAN update: ``d_steps`` discriminator updates on real vs generated images, then one generator update.

    Args:
        batch: ``image`` (B, C, S, S) in [-1, 1], and ``label`` (B,) for the class-conditional mode.
        latent_dim: size of z ~ N(0, I).
        real_label: target of real images for the discriminator (below 1: one-sided label smoothing).
        augment: differentiable augmentation of every discriminator input (see :func:`diff_augment`).
        ctx, frozen_discriminator: as for :func:`paired_step`.

    Returns:
        ``loss_g``, ``loss_d``, ``loss_d_real``, ``loss_d_fake``.
    """
    real = batch["image"]  # (B, C, S, S)
    cond = (batch["label"],) if "label" in batch else ()  # class mode: G and D both see the label
    b = real.shape[0]
    aug = diff_augment if augment else (lambda x: x)
    ctx = StepContext(device=real.device) if ctx is None else ctx
    frozen = discriminator if frozen_discriminator is None else frozen_discriminator
    ctx.start()

    # discriminator phase: fresh samples each update, G's graph not needed
    discriminator.requires_grad_(True)
    for _ in range(d_steps):
        with torch.no_grad(), ctx.autocast():
            fake = generator(torch.randn(b, latent_dim, device=real.device), *cond)
        ctx.mark("G")
        opt_d.zero_grad(set_to_none=True)
        with ctx.autocast():
            loss_d_real = gan_loss(discriminator(aug(real), *cond), True, gan_kind, real_label)
            loss_d_fake = gan_loss(discriminator(aug(fake), *cond), False, gan_kind)
            loss_d = loss_d_real + loss_d_fake
        ctx.backward_step(loss_d, opt_d, "D")

    # generator phase: D frozen, G's samples pushed towards "real"
    discriminator.requires_grad_(False)
    opt_g.zero_grad(set_to_none=True)
    with ctx.autocast():
        fake = generator(torch.randn(b, latent_dim, device=real.device), *cond)
        loss_g = gan_loss(frozen(aug(fake), *cond), True, gan_kind, for_discriminator=False)
    ctx.backward_step(loss_g, opt_g, "G")
    ctx.end_step()
    return {"loss_g": loss_g.item(), "loss_d": loss_d.item(), "loss_d_real": loss_d_real.item(),
            "loss_d_fake": loss_d_fake.item()}  # fmt: skip


def build_gan_networks(cfg: RunConfig) -> tuple[nn.Module, nn.Module]:
    """DCGAN generator/discriminator (noise mode) or their class-conditional versions (class mode), N(0, 0.02) init."""
    from pix2gan.nets import (
        ConditionalDiscriminator,
        ConditionalGenerator,
        DCGANDiscriminator,
        DCGANGenerator,
    )

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


def _setup_gan(cfg: RunConfig, layout: RunLayout, device: torch.device, *, check_new: bool = True) -> _ModeSetup:
    """DCGAN (noise) or CGAN (class): images decoded once into memory, per-epoch sample grids from fixed noise."""
    from pix2gan.data.images import images_for_run
    from pix2gan.report import save_grid

    tc = cfg.train
    conditional = tc.mode == Mode.CLASS
    data = images_for_run(cfg)
    if check_new:
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

    def step(batch: dict[str, torch.Tensor], nets: dict[str, nn.Module], ctx: StepContext) -> dict[str, float]:
        return gan_step(batch, nets["g"], nets["d"], opt_g, opt_d, latent_dim=cfg.gan.latent_dim,
                        gan_kind=tc.gan_loss, d_steps=tc.d_steps, real_label=1.0 - tc.label_smoothing,
                        augment=tc.augment, ctx=ctx, frozen_discriminator=nets["d_frozen"])  # fmt: skip

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
        dataset=dataset,
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

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        i = key[0] if isinstance(key, tuple) else key  # no per-item augmentation here: the seed is not needed
        return {k: v[i] for k, v in self.tensors.items()}


def _loader(
    dataset: torch.utils.data.Dataset, sampler: EpochBatchSampler, tc: TrainConfig, device: torch.device
) -> DataLoader:
    """Batches in the sampler's order; its own generator, so creating iterators never draws from the global RNG."""
    workers = tc.num_workers
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        generator=torch.Generator().manual_seed(tc.seed),
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        worker_init_fn=_ignore_stop_signals if workers else None,
        timeout=600.0 if workers else 0.0,  # a worker stuck for 10 minutes is an error, not a hang
    )


def _ignore_stop_signals(worker_id: int) -> None:
    """Workers leave Ctrl-C / SIGTERM to the main process, which finishes the step and saves a checkpoint."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class _Progress:
    """A rich progress bar over all steps: epoch, step, current losses, elapsed time and ETA."""

    def __init__(self, total: int, epochs: int, *, enabled: bool, console: Any = None, completed: int = 0) -> None:
        self.enabled = enabled
        self.epochs = epochs
        self.progress = None
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
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
            self.task = self.progress.add_task("train", total=total, completed=completed, epoch=1, epochs=epochs,
                                               losses="")  # fmt: skip

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
