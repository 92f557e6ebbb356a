"""Training: the loop (``loop.py``) and what it returns (``result.py``), the one D/G step (``step.py``), loop state
and checkpoint payload (``state.py``), the data loader (``loader.py``), progress bar and logs (``progress.py``),
optimisers and schedules (``optim.py``), ``--minutes`` (``budget.py``) and how a step uses the hardware
(``hardware.py``: precision, DDP)."""

from pix2gan.errors import TrainingError, TrainingInterrupted
from pix2gan.train.loop import FitResult, fit, resume_run, seed_everything
from pix2gan.train.optim import build_optimizers, build_schedulers, linear_decay
from pix2gan.tasks.base import Objective
from pix2gan.train.step import train_step

__all__ = ["fit", "resume_run", "FitResult", "seed_everything", "train_step", "Objective", "build_optimizers",
           "build_schedulers", "linear_decay", "TrainingError", "TrainingInterrupted"]  # fmt: skip
