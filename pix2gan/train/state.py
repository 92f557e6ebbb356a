"""The loop's state, what a checkpoint holds of it, and how a resumed run gets it back.

A checkpoint carries the weights, both optimisers and schedulers, the fp16 gradient scaler, the step, the best
score, the current epoch's partial sums, the non-finite streak, every RNG state (as tensors and JSON) and the
objective's own state where it has one (CycleGAN's history pools: ``objective_state``). Under DDP each rank has its
own global RNG stream (dropout, latent vectors, DiffAugment) and its own objective state: rank 0's are ``rng`` and
``objective_state``, the other ranks' are kept as ``rng_ranks`` and ``objective_state_ranks``. So a resumed run
continues exactly where it stopped; on CPU it ends bit-identical to one never interrupted (under DDP: on the same
number of ranks). A
``--gan-warmup`` run's checkpoints from its switch on also hold the generator at the switch (``generator_regression``).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from pix2gan.checkpoint import LoadedCheckpoint, load_checkpoint, resume_candidates
from pix2gan.config import RunConfig
from pix2gan.errors import InputError, TrainingError, TrainingInterrupted
from pix2gan.runs import RunLayout
from pix2gan.train.runstate import rng_state, set_rng_state

__all__ = ["LoopState", "Trainables", "checkpoint_payload", "resume_checkpoint", "restore", "check_finite_weights",
           "interrupted", "gather_rank_states"]  # fmt: skip

log = logging.getLogger("pix2gan")


@dataclass
class LoopState:
    """Loop bookkeeping that a checkpoint carries so a resumed run continues exactly where it stopped."""

    step: int = 0
    world: int = 1  # ranks that share the steps
    per_epoch: int = 0  # steps per epoch at this world size
    best: float = float("inf")
    sums: dict[str, float] = field(default_factory=dict)  # finite losses of the current epoch
    counted: int = 0  # finite steps in the current epoch
    nonfinite: int = 0  # steps in a row with a non-finite loss
    epoch_rows: list[dict[str, Any]] = field(default_factory=list)  # one small row per epoch
    saved_step: int = -1  # the step of the newest checkpoint (an interrupt never saves the same step twice)
    measured: float | None = None  # --minutes, at the end of epoch 1: its seconds before the checkpoint

    @property
    def epoch(self) -> int:
        """The epoch the next step belongs to (1-based)."""
        return self.step // self.per_epoch + 1

    def to_json(self) -> str:
        best = self.best if np.isfinite(self.best) else None
        return json.dumps({"best": best, "sums": self.sums, "counted": self.counted, "nonfinite": self.nonfinite,
                           "world": self.world, "per_epoch": self.per_epoch,
                           **({"measured": self.measured} if self.measured is not None else {})})  # fmt: skip

    def load_json(self, text: str) -> tuple[int, int]:
        """Restore the bookkeeping; returns the ranks and steps per epoch of the run that saved it."""
        d = json.loads(text)
        self.best = float("inf") if d["best"] is None else float(d["best"])
        self.sums, self.counted, self.nonfinite = dict(d["sums"]), int(d["counted"]), int(d["nonfinite"])
        self.measured = d.get("measured")
        return int(d.get("world", 1)), int(d.get("per_epoch", self.per_epoch))

    def count(self, losses: dict[str, float]) -> bool:
        """Add a step's losses to the epoch sums; False (and the streak grows) when any of them is not finite."""
        if all(math.isfinite(v) for v in losses.values()):
            self.nonfinite = 0
            self.counted += 1
            for k, v in losses.items():
                self.sums[k] = self.sums.get(k, 0.0) + v
            return True
        self.nonfinite += 1
        return False

    def end_epoch(self) -> dict[str, float]:
        """The epoch's mean losses; the sums start again."""
        means = {k: v / max(1, self.counted) for k, v in self.sums.items()}
        self.sums, self.counted = {}, 0
        return means


_PARTS = ("generator", "discriminator", "opt_g", "opt_d", "sched_g", "sched_d")  # the state dicts a checkpoint holds


@dataclass
class Trainables:
    """Everything a checkpoint saves and a resume restores, besides the loop state."""

    generator: nn.Module
    discriminator: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    sched_g: Any
    sched_d: Any
    scaler: Any = None  # the fp16 GradScaler
    regression: dict[str, torch.Tensor] | None = None  # a warm-up run's generator at its switch (a copy)
    objective: Any = None  # the task's objective: its state_dict(), where it has one (CycleGAN's pools), is kept

    def state_dicts(self) -> dict[str, Any]:
        out = {name: getattr(self, name).state_dict() for name in _PARTS}
        if self.regression is not None:
            out["generator_regression"] = self.regression
        if hasattr(self.objective, "state_dict"):  # (no key for a stateless objective: those checkpoints as before)
            out["objective_state"] = self.objective.state_dict()
        return {**out, **({"scaler": self.scaler.state_dict()} if self.scaler is not None else {})}

    def keep_regression(self) -> None:
        """Keep a copy of the generator as it is now: the regression snapshot, at a warm-up run's switch."""
        self.regression = {k: v.detach().clone() for k, v in self.generator.state_dict().items()}


def gather_rank_states(objective: Any) -> dict[str, Any]:
    """Under DDP, the other ranks' global RNG states and objective states for rank 0's checkpoint: on rank 0
    ``{"rng_ranks": {"1": rng_state, ...}, "objective_state_ranks": {"1": state, ...}}`` (the latter only for an
    objective with state), ``{}`` on the others; ``{}`` with one process.

    A collective: every rank calls it at the same step (the loop's ``save``), right where rank 0 takes its own
    :func:`~pix2gan.train.runstate.rng_state` for ``rng``.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return {}
    world, rank = dist.get_world_size(), dist.get_rank()
    if world == 1:
        return {}
    stateful = hasattr(objective, "state_dict")
    mine = {"rng": rng_state(), **({"objective": objective.state_dict()} if stateful else {})}
    states: list[Any] | None = [None] * world if rank == 0 else None
    dist.gather_object(mine, states, dst=0)  # (tensors on the CPU; pickled only in transit)
    if states is None:
        return {}
    out = {"rng_ranks": {str(r): state["rng"] for r, state in enumerate(states) if r}}
    if stateful:
        out["objective_state_ranks"] = {str(r): state["objective"] for r, state in enumerate(states) if r}
    return out


def checkpoint_payload(cfg: RunConfig, extra: dict[str, str], parts: Trainables, state: LoopState) -> dict[str, Any]:
    """The dictionary a checkpoint stores (see :mod:`pix2gan.checkpoint` for the format)."""
    return {
        "mode": cfg.mode.value,
        "config": json.dumps(cfg.to_dict()),
        **extra,
        **parts.state_dicts(),
        "epoch": state.step // state.per_epoch,  # completed epochs
        "step": state.step,
        "metrics": json.dumps(state.epoch_rows[-1] if state.epoch_rows else {}),
        "rng": rng_state(),
        "progress": state.to_json(),
    }


def resume_checkpoint(layout: RunLayout, extra: dict[str, str]) -> LoadedCheckpoint | None:
    """The newest checkpoint of the run that loads and matches its data; None to start over (none was saved)."""
    for path in resume_candidates(layout):
        try:
            ckpt = load_checkpoint(path)
        except InputError as exc:
            log.warning("skipping %s", exc)
            continue
        if "rng" not in ckpt.raw or "progress" not in ckpt.raw:
            raise InputError(f"{path}: checkpoint predates resumable runs (no RNG state); cannot resume from it")
        for key, value in extra.items():
            if ckpt.raw.get(key) != value:
                raise InputError(
                    f"{layout.root}: the data differ from those the run started with ({key}); resume needs the same data"
                )
        return ckpt
    log.warning("%s: no checkpoint saved yet; starting the run from its beginning", layout.root)
    return None


def restore(
    ckpt: LoadedCheckpoint, parts: Trainables, state: LoopState, *, warmup_epochs: int = 0, rank: int = 0
) -> bool:
    """Load weights, optimisers, schedulers, scaler, loop state and RNG states from ``ckpt``, and the objective's
    state of this DDP ``rank`` (rank 0's is ``objective_state``, the others' in ``objective_state_ranks``).

    A run saved with another number of DDP ranks continues at the same epoch and fraction of it, in the new steps
    (the discriminator's schedule counts from the end of the ``warmup_epochs``); a rank the checkpoint has no
    objective state for keeps its fresh one.

    Returns:
        Whether this rank got its own global RNG state back: always with one process; under DDP when the run was
        saved on the same number of ranks with every rank's state (``rng``, ``rng_ranks``). Otherwise (another
        number of ranks, or a checkpoint that predates ``rng_ranks``) every rank has rank 0's, and the caller
        seeds each rank's stream afresh, the same way on all of them.
    """
    raw = ckpt.raw
    try:
        for name in _PARTS:
            getattr(parts, name).load_state_dict(raw[name])
        if "generator_regression" in raw:
            parts.regression = dict(raw["generator_regression"])
        stateful = hasattr(parts.objective, "load_state_dict")
        if "objective_state" in raw or stateful:  # (saved by another kind of objective: refused)
            if not stateful:
                raise KeyError("objective_state: the run's objective keeps no state")
            own = raw["objective_state"] if rank == 0 else raw.get("objective_state_ranks", {}).get(str(rank))
            if own is not None:
                parts.objective.load_state_dict(own)
            else:
                log.warning("%s: no objective state (history pools) saved for rank %d; it starts afresh", ckpt.path,
                            rank)  # fmt: skip
        if parts.scaler is not None and "scaler" in raw:
            parts.scaler.load_state_dict(raw["scaler"])
        saved_world, old = state.load_json(raw["progress"])
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{ckpt.path}: does not match the run's configuration ({first})") from None
    state.step = state.saved_step = int(raw["step"])
    set_rng_state(raw["rng"])
    ranks = raw.get("rng_ranks", {})
    own = state.world == 1 or (saved_world == state.world and all(str(r) in ranks for r in range(1, state.world)))
    if own and rank:
        set_rng_state(ranks[str(rank)])
    elif not own and saved_world == state.world and rank == 0:
        log.warning("%s: no RNG state saved for the other ranks; dropout, latent vectors and augmentation of every "
                    "rank continue from a fresh per-rank seed (not bit-identical to an uninterrupted run)", ckpt.path)
    if old != state.per_epoch:  # another number of ranks: the same epoch and fraction of it, in the new steps
        new_step = state.step // old * state.per_epoch + round(state.step % old * state.per_epoch / old)
        log.warning("resuming a %d-rank run on %d ranks: step %d becomes step %d", saved_world, state.world,
                    state.step, new_step)  # fmt: skip
        state.step = new_step
        for sched, start in ((parts.sched_g, 0), (parts.sched_d, warmup_epochs * state.per_epoch)):
            sched.last_epoch = max(0, new_step - start) - 1
            sched.step()
    return own


def _last_good(layout: RunLayout) -> str:
    return str(layout.latest) if layout.latest.is_file() else "none (no checkpoint saved yet)"


def nonfinite_error(state: LoopState, losses: dict[str, float], layout: RunLayout) -> TrainingError:
    terms = ", ".join(f"{k}={v:.4g}" for k, v in losses.items())
    return TrainingError(
        f"step {state.step}: non-finite loss for {state.nonfinite} steps in a row ({terms}); stopped. "
        f"Last good checkpoint: {_last_good(layout)}"
    )


def check_finite_weights(generator: nn.Module, discriminator: nn.Module, step: int, layout: RunLayout) -> None:
    """Refuse to save weights that are no longer finite (the last good checkpoint stays ``latest``)."""
    for name, net in (("generator", generator), ("discriminator", discriminator)):
        if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
            raise TrainingError(
                f"step {step}: the {name}'s weights are no longer finite; not saved. Last good checkpoint: "
                f"{_last_good(layout)}"
            )


def interrupted(signame: str, state: LoopState, total: int | str, layout: RunLayout) -> TrainingInterrupted:
    step, per_epoch = state.step, state.per_epoch
    return TrainingInterrupted(
        f"{signame}: stopped at epoch {step // per_epoch + (1 if step % per_epoch else 0)}, step {step} of {total}; "
        f"saved {layout.latest}. Resume with: pix2gan train --resume {layout.root}"
    )


def number(text: str) -> int | float | str:
    """A CSV cell as the number it was written from.

    Example:
        >>> number("3"), number("0.5"), number("x")
        (3, 0.5, 'x')
    """
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
