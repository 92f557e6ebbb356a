"""One training loop for every mode, readable top to bottom.

``fit`` builds the task of the run's mode (its data, losses, validation), the networks through the registry, the
optimisers and the data loader, then runs steps (:func:`~pix2gan.train.step.train_step`) until the last one. After
every epoch the task validates and draws its PNG, the loss logs grow (CSV; TensorBoard's with ``--tensorboard``),
and a checkpoint is saved atomically (``best.pt`` follows the task's score). Ctrl-C / SIGTERM finish the current step
and save; ``resume_run`` continues.

With ``--gan-warmup`` the first ``train.warmup_epochs`` epochs step the task's ``warmup_objective`` (regression
alone: no discriminator update, its optimiser and schedule untouched); the generator at the switch is kept
(:meth:`Trainables.keep_regression`) and saved in every later checkpoint, and ``best.pt`` is chosen among the
adversarial epochs only (each of those checkpoints holds both generators).

With ``--minutes`` (``train.minutes``, no ``train.epochs``) the count of epochs is settled during epoch 1 from the
loop's own pace (:mod:`pix2gan.train.budget`; with a warm-up, each phase's from its own first epoch), recorded in
``config.json`` and the schedules sized for it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pix2gan.checkpoint import save_run_checkpoint
from pix2gan.config import RunConfig
from pix2gan.data.batches import EpochBatchSampler
from pix2gan.device import resolve_precision
from pix2gan.errors import InputError
from pix2gan.io import atomic_write_json, check_output_folder
from pix2gan.nets import build_networks, check_architectures
from pix2gan.reporting.curves import save_loss_curve
from pix2gan.runs import RunLayout
from pix2gan.tasks import Task, build_task
from pix2gan.tasks.base import Objective
from pix2gan.train.budget import PROVISIONAL, Budget, budget_text, epochs_text
from pix2gan.train.hardware import (
    DistInfo,
    StepContext,
    broadcast_buffers,
    init_distributed,
    mean_over_ranks,
    rank0_decides,
    sync_batchnorm,
    wrap_for_training,
)
from pix2gan.train.loader import batches, make_loader, workers_stopped
from pix2gan.train.optim import build_optimizers, build_schedulers, gan_scale, generator_schedule, linear_decay
from pix2gan.train.progress import CsvLog, Progress
from pix2gan.train.result import FitResult
from pix2gan.train.runstate import StopSignals, seed_everything
from pix2gan.train.state import (
    LoopState,
    Trainables,
    check_finite_weights,
    checkpoint_payload,
    gather_rank_states,
    interrupted,
    nonfinite_error,
    number,
    restore,
    resume_checkpoint,
)
from pix2gan.train.step import train_step
from pix2gan.train.tensorboard import TensorBoardLog, require_tensorboard

__all__ = ["fit", "resume_run", "FitResult", "seed_everything"]

log = logging.getLogger("pix2gan")


def fit(
    cfg: RunConfig, run_dir: str | Path, *, progress: bool = True, console: Any = None, resume: bool = False
) -> FitResult:
    """Train a model of any mode (paired, noise, class) and write the run folder.

    Args:
        cfg: data, model and training configuration; ``cfg.train.mode`` picks the task. Build it with
            :meth:`RunConfig.from_options` to get the same per-mode defaults as the CLI.
        run_dir: folder to create; must not already hold a run (unless ``resume``).
        progress: show a rich progress bar (epoch, step, losses, ETA).
        console: rich console to draw on (default: a new one on stderr).
        resume: continue the run in ``run_dir`` from its newest loadable checkpoint (``cfg`` must be its config;
            see :func:`resume_run`). On CPU the result is bit-identical to a run that was never interrupted.

    Returns:
        :class:`FitResult` with the run folder, the subject split (paired mode) and per-epoch figures.

    Raises:
        InputError: an unknown architecture, or ``cfg.train.tensorboard`` without the tensorboard package (before
            anything is read or written); a problem with the data.
        TrainingInterrupted: Ctrl-C or SIGTERM; a checkpoint of the last finished step was saved first.
        TrainingError: ``max_nonfinite`` non-finite steps in a row, or the data loader failed.
    """
    check_architectures(cfg)  # before anything is read or written
    if cfg.train.tensorboard:
        require_tensorboard()
    layout = RunLayout(Path(run_dir))
    info, device = init_distributed(cfg.train.device)
    try:
        return _fit(cfg, layout, info, device, progress=progress, console=console, resume=resume)
    finally:
        if info.distributed and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def resume_run(run_dir: str | Path, *, progress: bool = True, console: Any = None) -> FitResult:
    """Continue the run in ``run_dir`` with the configuration it was started with (its ``config.json``)."""
    layout = RunLayout.of_run(run_dir)
    try:
        cfg = RunConfig.from_dict(json.loads(layout.config.read_text()))
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"{layout.config}: unreadable run configuration ({type(exc).__name__}: {exc})") from None
    return fit(cfg, layout.root, progress=progress, console=console, resume=True)


def _write_report(layout: RunLayout) -> None:
    """``RUN/report.html`` at the end of training; a report that cannot be written costs a warning, never the run."""
    try:
        from pix2gan.reporting import write_html_report

        write_html_report(layout.root)
    except Exception as exc:  # noqa: BLE001  (the run is trained and saved: nothing here may fail it)
        log.warning("report.html not written: %s", " ".join(f"{type(exc).__name__}: {exc}".split()))


def _check_new_run(root: Path) -> None:
    if RunLayout(root).latest.exists() or RunLayout(root).config.exists():
        raise InputError(f"{root}: already holds a run; choose another --run-dir")


def _fit(
    cfg: RunConfig, layout: RunLayout, info: DistInfo, device: torch.device, *, progress: bool, console: Any,
    resume: bool,
) -> FitResult:  # fmt: skip
    """Set the run up (:class:`_Training`), then run its epochs until the last step."""
    tc = cfg.train
    if info.main:
        check_output_folder(layout.root)  # before the data are read
    if tc.threads:
        torch.set_num_threads(tc.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop sizes: let cuDNN pick the fastest kernels once
    seed_everything(tc.seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    run = _Training(cfg, layout, info, device, resume=resume)
    state = run.state
    total = run.total_steps if run.budget is None else None  # (--minutes: unknown until settled)
    bar = Progress(total, epochs_text(cfg.train), enabled=progress and info.main, console=console, completed=state.step)
    with bar, run.tb, StopSignals() as stop, workers_stopped(run.loader):
        while state.step < run.total_steps:
            epoch, t0 = state.epoch, time.perf_counter()
            first = state.step
            run.steps_of_epoch(epoch, stop, bar)
            if stop.requested and (state.step % state.per_epoch or state.step == first):
                run.save()  # interrupted inside the epoch (possibly while fetching a batch); once per step
                raise interrupted(stop.requested, state, run.total_steps if run.budget is None else "?", layout)
            run.end_epoch(epoch, t0, bar)
            if stop.requested:
                raise interrupted(stop.requested, state, run.total_steps, layout)
    for net in (run.generator, run.discriminator):
        broadcast_buffers(net, info)  # the ranks end with identical networks, buffers included
    if info.main:
        _write_report(layout)
    return FitResult(run_dir=layout.root, split=run.task.split, epochs=state.epoch_rows, mode=cfg.mode,
                     generator=run.generator, discriminator=run.discriminator, budget=run.budget_text,
                     sources=cfg.data.sources)  # fmt: skip


class _Training:
    """One run being trained: its task, networks, optimisers, loader, state and logs, and how it steps and saves."""

    def __init__(self, cfg: RunConfig, layout: RunLayout, info: DistInfo, device: torch.device, *, resume: bool) -> None:
        tc = self.tc = cfg.train
        if tc.epochs is None:  # --minutes: until settled, any count of 2 or more trains a phase's first epoch the same way
            warm = (tc.gan_warmup_epochs or PROVISIONAL) if tc.gan_warmup else None
            tc = self.tc = dataclasses.replace(tc, gan_warmup_epochs=warm, epochs=(warm or 0) + PROVISIONAL)
        self.cfg, self.layout, self.info, self.device = cfg, layout, info, device
        # the task reads its data; then the networks and optimisers (this order fixes every random number)
        fresh = info.main and not resume
        self.task = task = build_task(cfg, layout, device, check_new=lambda: _check_new_run(layout.root) if fresh else None)
        if resume and task.split and layout.split.is_file() and json.loads(layout.split.read_text()) != task.split:
            raise InputError(f"{layout.root}: the data differ from those the run started with (split); resume needs the same data")
        layout.root.mkdir(parents=True, exist_ok=True)
        self.generator, self.discriminator = generator, discriminator = build_networks(cfg)
        generator.to(device)
        discriminator.to(device)
        opt_g, opt_d = build_optimizers(generator, discriminator, tc)
        start = resume_checkpoint(layout, task.checkpoint_extra) if resume else None
        if fresh:
            atomic_write_json(layout.config, cfg.to_dict())
            if task.split:
                atomic_write_json(layout.split, task.split)
        info.barrier()
        self._wrap(resolve_precision(tc.precision, device))
        self.sampler = EpochBatchSampler(len(task.dataset), tc.batch_size, tc.seed, rank=info.rank, world=info.world)  # type: ignore[arg-type]
        self.loader = make_loader(task.dataset, self.sampler, tc, device)
        per_epoch = len(self.sampler)
        if per_epoch < 1:
            raise InputError(f"{cfg.data.root}: too few training items for {info.world} ranks of batch size {tc.batch_size}")
        self.total_steps = tc.epochs * per_epoch
        self.switch = tc.warmup_epochs * per_epoch  # the first adversarial step is step switch + 1 (0: no warm-up)
        # constant, then linear decay to 0: G's over the warm-up and again after it, D's over the steps after it
        sched_g, sched_d = build_schedulers(opt_g, opt_d, self.total_steps, self.switch, gan_scale(tc))
        self.parts = Trainables(generator, discriminator, opt_g, opt_d, sched_g, sched_d, self.ctx.scaler,
                                objective=task.objective)  # fmt: skip
        self.state = LoopState(world=info.world, per_epoch=per_epoch)
        self.budget: Budget | None = None  # (--minutes: set below, once the run's step is known)
        own_rng = self._restore(start)
        self.budget = Budget.of_run(cfg.train, self.state, info, layout.config)
        if self.budget is None or self.budget.resumed is None:
            self.state.measured = None  # (a checkpoint's time of a first epoch settled already)
        self.budget_text = budget_text(cfg.train)
        self.warm_seconds: float | None = None  # --minutes with a warm-up: epoch 1's time, once measured
        if info.distributed and not own_rng:  # dropout, latents, DiffAugment differ per rank (resumed: its saved stream)
            seed_everything(tc.seed * 1_000_003 + 7_919 * info.rank + self.state.step)
        _log_start(task, generator, discriminator, device, info, self.ctx.dtype)
        self._log_warmup()
        self.last_save = self.last_curve = time.monotonic()

    def settle(self, count: int, bar: Progress) -> None:
        """Fix the epochs of a ``--minutes`` run's phase (:mod:`pix2gan.train.budget`): the schedules, the
        warm-up's switch, ``config.json``; once the run's count is known, the bar."""
        budget, state, train = self.budget, self.state, self.cfg.train
        per_epoch, seconds = state.per_epoch, budget.epoch_seconds  # type: ignore[union-attr]
        if budget.warmup:  # type: ignore[union-attr]  (the adversarial epochs are timed in the first of them)
            train, self.warm_seconds = dataclasses.replace(train, gan_warmup_epochs=count), seconds
            self.tc = dataclasses.replace(self.tc, gan_warmup_epochs=count, epochs=count + PROVISIONAL)
        else:
            train = dataclasses.replace(train, epochs=count + (train.gan_warmup_epochs or 0))
            self.tc = dataclasses.replace(self.tc, epochs=train.epochs)
        self.cfg = dataclasses.replace(self.cfg, train=train)
        self.total_steps, self.switch = self.tc.epochs * per_epoch, self.tc.warmup_epochs * per_epoch
        # (only the step counts differ)
        self.parts.sched_g.lr_lambdas = [generator_schedule(self.total_steps, self.switch, gan_scale(self.tc))]
        self.parts.sched_d.lr_lambdas = [linear_decay(self.total_steps - self.switch)]
        if self.info.main:
            atomic_write_json(self.layout.config, self.cfg.to_dict())
        state.measured = None
        if budget.warmup:  # type: ignore[union-attr]
            self.budget = Budget.of_run(train, state, self.info, self.layout.config)
            log.info("budget %g min: a warm-up of %d epochs (%.2f s each, measured in epoch 1), recorded in %s; the "
                     "adversarial epochs are settled from the time of the first of them", train.minutes, count,
                     seconds, self.layout.config)  # fmt: skip
        else:
            self.budget, self.budget_text = None, budget_text(train, seconds, self.warm_seconds)
            log.info("%s; recorded in %s", self.budget_text, self.layout.config)
            bar.settle(self.total_steps, epochs_text(train))
        self._log_warmup()
        self._keep_regression()  # (a warm-up of one epoch ends here)

    def _switch_known(self) -> bool:
        """Whether the warm-up's switch is settled (a ``--minutes`` run's is not while its warm-up is timed)."""
        return self.budget is None or not self.budget.warmup

    def _log_warmup(self) -> None:
        if self.switch and self._switch_known():
            log.info("regression warm-up: epochs 1-%d train without the discriminator; the adversarial term switches "
                     "on at epoch %d", self.tc.warmup_epochs, self.tc.warmup_epochs + 1)  # fmt: skip

    def _wrap(self, dtype: torch.dtype | None) -> None:
        """The modules the step calls (channels-last, DDP, compile) and the step's context."""
        tc, info, device = self.tc, self.info, self.device
        sync_batchnorm(self.generator, device, info)
        sync_batchnorm(self.discriminator, device, info)
        self.g = wrap_for_training(self.generator, device, info, channels_last=tc.channels_last, compile=tc.compile)
        self.d = wrap_for_training(self.discriminator, device, info, channels_last=tc.channels_last, compile=tc.compile)
        # G's phase calls D without DDP (D's gradients are not wanted there, so they must not be all-reduced)
        bare = torch.compile(self.discriminator) if tc.compile else self.discriminator
        self.d_frozen = bare if info.distributed else self.d
        self.ctx = StepContext(device=device, dtype=dtype, distributed=info.distributed, channels_last=tc.channels_last,
                               on_device=self.task.on_device)  # fmt: skip

    def _restore(self, start: Any) -> bool:
        """Continue from ``start`` (a checkpoint, or None for a new run); logs are cut back to its step. Returns
        whether this rank's own RNG state was restored (see :func:`~pix2gan.train.state.restore`)."""
        state, layout, own_rng = self.state, self.layout, False
        if start is not None:
            own_rng = restore(start, self.parts, state, warmup_epochs=self.tc.warmup_epochs, rank=self.info.rank)
            self._keep_regression()  # (resumed at the switch itself on another number of ranks)
            log.info("resuming %s from %s: epoch %d, step %d of %d", layout.root, start.path.name, state.epoch,
                     state.step, self.total_steps)  # fmt: skip
            if state.step >= self.total_steps:
                log.info("%s: the run is already complete; nothing to do", layout.root)
        self.step_log, self.epoch_log = CsvLog(layout.log), CsvLog(layout.epochs)
        # rank 0 only, opened by _fit's `with`; a resumed run's events supersede the earlier run's from its first step
        self.tb = TensorBoardLog(layout.tb if self.tc.tensorboard and self.info.main else None,
                                 purge_step=state.step + 1 if start is not None else None)
        saved = int(start.raw["step"]) if start is not None else 0  # in the steps of the run that saved it
        if self.info.main:  # rows after the checkpoint's step are written again by this run
            self.step_log.cut(saved)
        rows = self.epoch_log.cut(saved, write=self.info.main)
        state.epoch_rows = [{k: number(v) for k, v in r.items()} for r in rows]
        return own_rng

    def objective(self) -> Objective:
        """The losses of the next step: the task's, or during a warm-up its regression-only ``warmup_objective``."""
        if self.state.step >= self.switch:
            return self.task.objective
        return self.task.warmup_objective  # type: ignore[return-value]  (a warm-up needs a paired task)

    def _keep_regression(self) -> None:
        """At a warm-up run's switch (and after it, if not kept yet): keep the generator as the regression snapshot
        (``--minutes``: once the switch is settled)."""
        if self.switch and self.state.step >= self.switch and self.parts.regression is None and self._switch_known():
            self.parts.keep_regression()

    def _columns(self, cells: dict[str, Any]) -> dict[str, Any]:
        """A log row's losses; a warm-up run's have the adversarial columns from the first row on (``nan`` during
        the warm-up: the logs are CSV files whose columns are those of their first row)."""
        if not self.switch:
            return cells
        return {k: cells.get(k, "nan") for k in self.task.objective.loss_names}  # type: ignore[attr-defined]

    def save(self, best: bool = False) -> None:
        """Checkpoint the current step (rank 0; at most once per step) with the logs flushed before it."""
        state = self.state
        # (DDP: every rank's RNG state and objective state, e.g. its own history pools, go into rank 0's checkpoint)
        ranks = gather_rank_states(self.parts.objective) if state.saved_step != state.step else {}
        if self.info.main and state.saved_step != state.step:
            check_finite_weights(self.generator, self.discriminator, state.step, self.layout)
            self.step_log.flush()
            self.epoch_log.flush()
            self.tb.flush()
            payload = {**checkpoint_payload(self.cfg, self.task.checkpoint_extra, self.parts, state), **ranks}
            save_run_checkpoint(self.layout, payload, step=state.step, keep_last=self.tc.keep_last, best=best)
        state.saved_step = state.step
        self.info.barrier()
        self.last_save = time.monotonic()

    def steps_of_epoch(self, epoch: int, stop: StopSignals, bar: Progress) -> None:
        """Train until the epoch's last step, or until a stop was asked for (a checkpoint saved first)."""
        tc, info, state, parts = self.tc, self.info, self.state, self.parts
        self.sampler.set_epoch(epoch, state.step % state.per_epoch)
        if self.budget is not None and (settled := self.budget.start(state.step)):
            self.settle(settled, bar)  # (resumed between epoch 1's checkpoint and the settlement)
        self.generator.train()
        self.discriminator.train()
        for batch in batches(self.loader, self.ctx, stop):
            objective = self.objective()
            losses = train_step(objective, batch, self.g, self.d, parts.opt_g, parts.opt_d, ctx=self.ctx,
                                frozen_discriminator=self.d_frozen)  # fmt: skip
            stopping = bool(stop.requested)
            if info.distributed:  # every rank logs the mean losses and stops at the same step
                losses, stopping = mean_over_ranks(losses, stopping)
            state.step += 1
            if self.budget is not None and self.budget.after_step(state.step) == 1:
                self.settle(1, bar)  # before the schedulers step: one epoch decays in its second half
            self._keep_regression()
            lr = parts.opt_g.param_groups[0]["lr"]
            lrs = {"lr": lr, **({"lr_d": parts.opt_d.param_groups[0]["lr"]} if objective.d_steps else {})}
            parts.sched_g.step()
            if objective.d_steps:  # (without a GAN term, or in the warm-up, D is never updated, nor its schedule)
                parts.sched_d.step()
            self.step_log.append({"epoch": epoch, "step": state.step, "lr": f"{lr:.6g}",
                                  **self._columns({k: f"{v:.6g}" for k, v in losses.items()})})  # fmt: skip
            self.tb.step(state.step, {**lrs, **losses})
            if not state.count(losses) and state.nonfinite >= tc.max_nonfinite:
                if info.main:
                    self.step_log.flush()
                raise nonfinite_error(state, losses, self.layout)
            bar.update(epoch, self.task.display.bar_text(losses))
            if not info.distributed:
                stopping = bool(stop.requested)  # (DDP: the flag all ranks agreed on above)
            if state.step % state.per_epoch == 0:
                return  # the end of the epoch is handled by end_epoch
            due = (tc.checkpoint_every and state.step % tc.checkpoint_every == 0) or (
                tc.checkpoint_minutes and time.monotonic() - self.last_save >= 60.0 * tc.checkpoint_minutes
            )
            if info.distributed and tc.checkpoint_minutes:  # rank clocks differ: rank 0's decides
                due = rank0_decides(bool(due))
            if due or stopping:
                self.save()
            if stopping:
                stop.requested = stop.requested or "SIGTERM"
                return

    def end_epoch(self, epoch: int, t0: float, bar: Progress) -> None:
        """Validate and draw (rank 0), log the epoch's row, checkpoint (``best.pt`` by the task's score), plot.

        ``t0``: when the epoch started (``time.perf_counter``); its time includes the validation.
        """
        state, info, layout = self.state, self.info, self.layout
        means = state.end_epoch()
        val: dict[str, float] = {}
        if info.main:
            layout.panels.mkdir(parents=True, exist_ok=True)
            val = self.task.end_epoch(epoch, self.generator, self.device)
        measuring = self.budget is not None and self.budget.measures(state.step)
        if measuring:  # the phase's first epoch's time without its checkpoint, saved in it
            state.measured = self.budget.before_save()  # type: ignore[union-attr]
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch, "step": state.step, **self._columns({k: round(v, 6) for k, v in means.items()}),
               **{k: round(v, 4) for k, v in val.items()}, "seconds": round(seconds, 2)}  # fmt: skip
        state.epoch_rows.append(row)
        self.epoch_log.append(row)
        self.tb.epoch(row, layout.panel(epoch))
        # a warm-up run's best is an adversarial epoch's: its checkpoint holds both generators (the realism dial)
        score = self.task.score(means, val) if epoch > self.tc.warmup_epochs else None
        is_best = score is not None and score <= state.best
        if is_best:
            state.best = float(score)  # type: ignore[arg-type]
        self.save(best=is_best)
        if measuring:  # settled with the checkpoint's time; config.json records it
            self.settle(self.budget.after_save(), bar)  # type: ignore[union-attr]
        if info.main and (epoch == self.tc.epochs or time.monotonic() - self.last_curve > 20.0):  # ~1 s a plot
            save_loss_curve(layout.log, layout.loss_curve, epochs_csv=layout.epochs)
            self.last_curve = time.monotonic()
        if info.main:
            bar.log(f"epoch {epoch}/{self.tc.epochs}  {_summary(self.task, means, val)}  ({seconds:.1f} s)")


def _summary(task: Task, means: dict[str, float], val: dict[str, float]) -> str:
    text = "  ".join(f"{k.removeprefix('loss_').upper()} {means[k]:.4g}" for k in task.display.epoch if k in means)
    if "val_mae" in val:
        text += f"  val MAE {val['val_mae']:.1f}"
    return text


def _log_start(task: Task, g: nn.Module, d: nn.Module, device: torch.device, info: DistInfo, dtype: Any) -> None:
    precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    log.info(
        "%s on %s%s (%s); G %.2fM params, D %.2fM params", task.description, device,
        f" x {info.world} ranks" if info.distributed else "", precision,
        sum(p.numel() for p in g.parameters()) / 1e6, sum(p.numel() for p in d.parameters()) / 1e6,
    )  # fmt: skip
