"""``train --minutes``: how many epochs a run gets, settled from the time of its own first epoch.

A run given ``train.minutes`` and no ``train.epochs`` times the steps of its epoch 1 (after the first
:data:`WARM_STEPS`, whose one-off costs - first calls, kernel selection - would not recur) and the end-of-epoch work
(validation, the panel, the checkpoint), and settles ``epochs = max(least, round(60 x minutes / seconds per
epoch))``. The loop records the count in ``config.json`` (``train.epochs``; ``train.minutes`` stays for the record),
so a resumed run repeats it and never measures again. Epoch 1's checkpoint holds the epoch's time before its own
save (``measured`` in its ``progress``): a run killed between that checkpoint and the settlement settles from it
when resumed.

The run is then the one ``--epochs N`` would train, bit for bit: nothing of epoch 1 depends on N as long as it is
settled in time. The learning rate is constant over the first half of the steps (:func:`~pix2gan.train.optim.
linear_decay`), so for any N >= 2 over the whole epoch 1, and the count can wait for the epoch's end. Whether N is
1 must be known before the middle step of epoch 1 changes a learning rate: at step ``per_epoch // 2 + 1``, before
the schedulers step, the steps timed so far decide it (one epoch when the budget is under 1.5 epochs of steps).

A ``--gan-warmup F`` run has two phases of different cost (an adversarial step also updates the discriminator), and
each has a schedule of its own, constant over its first half: the **warm-up** gets F of the budget, settled from
the time of epoch 1 (``train.gan_warmup_epochs``, at least 2), and the **adversarial epochs** the rest, settled from
the time of the first of them (``train.epochs``, at least 2 after the warm-up). The run is then the one ``--epochs N``
with that warm-up trains, bit for bit, and it meets its budget although its two kinds of epoch cost differ.

Under DDP rank 0's clock decides (its figures are broadcast): every rank settles the same count at the same step.

Example:
    >>> settle(300.0, 25.0), settle(300.0, 400.0), settle(300.0, 400.0, least=2), settle(60.0, 40.0)
    (12, 1, 2, 2)
"""

from __future__ import annotations

import math
from pathlib import Path
from time import perf_counter

from pix2gan.config import TrainConfig
from pix2gan.errors import InputError
from pix2gan.train.hardware import DistInfo, rank0_number
from pix2gan.train.state import LoopState

__all__ = ["Budget", "settle", "budget_text", "epochs_text", "WARM_STEPS", "PROVISIONAL"]

WARM_STEPS = 2  # first steps of a run left out of the step time (one-off costs)
PROVISIONAL = 2  # epochs a phase counts on until settled (any count >= 2 trains its first epoch the same way)


def settle(seconds: float, epoch_seconds: float, least: int = 1) -> int:
    """Epochs that fit ``seconds`` at ``epoch_seconds`` each, to the nearest (halves up), at least ``least``."""
    return max(least, math.floor(seconds / max(epoch_seconds, 1e-9) + 0.5))


class Budget:
    """The clock of the first epoch of a ``--minutes`` run's phase, and the count of epochs it settles.

    A phase is the whole run, or with ``--gan-warmup`` its warm-up (``warmup``) or its adversarial epochs (the
    count returned is then theirs: the loop adds the warm-up).

    Args:
        seconds: the phase's share of the budget.
        per_epoch: steps per epoch.
        offset: the step the phase starts after (0, or the warm-up's switch).
        start: the step the run (or its resumption, before the settlement) starts from.
        least: the fewest epochs the phase can have.
        info: the ranks (rank 0's clock decides).
        warmup: the phase is a warm-up (the count settled is ``train.gan_warmup_epochs``).
    """

    def __init__(self, seconds: float, per_epoch: int, offset: int, start: int, least: int, info: DistInfo,
                 warmup: bool = False) -> None:  # fmt: skip
        self.seconds, self.per_epoch, self.offset, self.info, self.warmup = seconds, per_epoch, offset, info, warmup
        start = min(max(start - offset, 0), per_epoch - 1)  # within the phase's first epoch
        # one epoch is possible until the middle step of epoch 1 changes a learning rate (a resumed run past it: >= 2)
        self.decide_one = per_epoch // 2 + 1 if least == 1 and start < per_epoch // 2 + 1 else None
        self.least = max(least, 1 if self.decide_one else 2)
        first = start + min(WARM_STEPS, (per_epoch - start - 1) // 2)  # the step time is taken after this step
        self.first = min(first, self.decide_one - 1) if self.decide_one else first
        self.t_first: float | None = None
        self.t_last: float | None = None
        self.epoch_seconds = float("nan")  # what the settlement measured
        self.resumed: float | None = None  # resumed after the first epoch's checkpoint: the epoch's time it saved
        self.t_saving = 0.0

    @classmethod
    def of_run(cls, tc: TrainConfig, state: LoopState, info: DistInfo, config: Path) -> Budget | None:
        """The clock of a ``--minutes`` run whose count is not settled yet (new, or resumed at ``state.step``); None
        otherwise.

        Raises:
            InputError: such a run resumed past its phase's first epoch without the epoch's time (``config``: its
                config.json).
        """
        if tc.epochs is not None:
            return None
        total, f, per_epoch = 60.0 * float(tc.minutes), tc.gan_warmup, state.per_epoch  # type: ignore[arg-type]
        if not f:
            phase = (total, 0, tc.least_epochs, False)
        elif tc.gan_warmup_epochs is None:
            phase = (f * total, 0, PROVISIONAL, True)
        else:
            phase = ((1.0 - f) * total, tc.gan_warmup_epochs * per_epoch, PROVISIONAL, False)
        seconds, offset, least, warmup = phase
        if state.step >= offset + per_epoch and state.measured is None:
            what = "train.gan_warmup_epochs" if warmup else "train.epochs"
            raise InputError(f"{config}: {what} is missing (a --minutes run settles it in the first epoch of its phase)")
        budget = cls(seconds, per_epoch, offset, state.step, least, info, warmup)
        if state.step >= offset + per_epoch:  # (the first epoch done with a constant learning rate: 2 epochs or more)
            budget.resumed, budget.least = state.measured, max(budget.least, 2)
        return budget

    def measures(self, step: int) -> bool:
        """Whether ``step`` ends the first epoch of the phase (the one timed)."""
        return step == self.offset + self.per_epoch

    def start(self, step: int) -> int | None:
        """An epoch's steps begin (at ``step``). Returns the count when it is already known: resumed from the
        checkpoint of the phase's first epoch before the settlement that follows it (from the epoch's time it saved,
        without the checkpoint's own)."""
        if self.resumed is not None:
            self.epoch_seconds = self.resumed
            return settle(self.seconds, self.resumed, self.least)
        if step - self.offset == self.first and self.t_first is None:
            self.t_first = perf_counter()
        return None

    def after_step(self, step: int) -> int | None:
        """After step ``step`` (before the schedulers step): 1 when the run is settled to one epoch now, else None."""
        step -= self.offset
        if not 0 < step <= self.per_epoch:
            return None
        now = perf_counter()
        if step == self.first:
            self.t_first = now
        if step == self.per_epoch:
            self.t_last = now
        if step != self.decide_one:
            return None
        seconds = rank0_number(self._step_seconds(step, now) * self.per_epoch, self.info)  # steps alone
        if settle(self.seconds, seconds) > 1:
            return None
        self.epoch_seconds = seconds
        return 1

    def before_save(self) -> float:
        """After the first epoch's validation: the epoch's seconds so far (steps, then validation and panel)."""
        self.t_saving = now = perf_counter()
        last = self.t_last if self.t_last is not None else now
        seconds = self._step_seconds(self.per_epoch, last) * self.per_epoch + now - last
        self.epoch_seconds = rank0_number(seconds, self.info)
        return self.epoch_seconds

    def after_save(self) -> int:
        """After the first epoch's checkpoint: the settled count, from the whole epoch."""
        self.epoch_seconds += rank0_number(perf_counter() - self.t_saving, self.info)
        return settle(self.seconds, self.epoch_seconds, self.least)

    def _step_seconds(self, step: int, now: float) -> float:
        """Mean seconds per step from the end of step :attr:`first` to ``now`` (the end of ``step``)."""
        return (now - (self.t_first if self.t_first is not None else now)) / max(1, step - self.first)


def epochs_text(tc: TrainConfig) -> str:
    """The count of epochs as the progress bar shows it, with a ``--minutes`` budget ("?" until settled).

    Example:
        >>> [epochs_text(TrainConfig(epochs=e, minutes=m)) for e, m in ((9, None), (None, 5), (7, 5))]
        ['9', '? (5 min)', '7 (5 min)']
    """
    count = "?" if tc.epochs is None else str(tc.epochs)
    return count if tc.minutes is None else f"{count} ({tc.minutes:g} min)"


def budget_text(tc: TrainConfig, seconds: float | None = None, warm_seconds: float | None = None) -> str:
    """What a ``--minutes`` run settled on, for its log and summary ("" without a budget or before settling);
    ``seconds``: the seconds per epoch just measured (None: settled when the run started, before a resume), and
    with a warm-up ``warm_seconds``: those of the warm-up's epoch 1.

    Example:
        >>> budget_text(TrainConfig(minutes=5, epochs=12), 24.9)
        'budget 5 min: settled on 12 epochs (24.90 s per epoch measured in epoch 1)'
        >>> budget_text(TrainConfig(minutes=5, epochs=12, gan_warmup=0.5, gan_warmup_epochs=7), 30.0, 21.5)
        'budget 5 min: settled on 12 epochs: 7 of warm-up (21.50 s each, measured in epoch 1) and 5 adversarial (30.00 s each, measured in epoch 8)'
    """
    if tc.minutes is None or tc.epochs is None:
        return ""
    head = f"budget {tc.minutes:g} min: settled on {tc.epochs} epoch{'s' * (tc.epochs != 1)}"
    if not tc.gan_warmup:
        how = "when the run started" if seconds is None else f"{seconds:.2f} s per epoch measured in epoch 1"
        return f"{head} ({how})"
    warm = tc.warmup_epochs

    def how(s: float | None, epoch: int) -> str:
        return "settled when the run started" if s is None else f"{s:.2f} s each, measured in epoch {epoch}"

    return f"{head}: {warm} of warm-up ({how(warm_seconds, 1)}) and {tc.epochs - warm} adversarial ({how(seconds, warm + 1)})"
