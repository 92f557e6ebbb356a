"""Evaluation: paired runs with SynthRAD's image metrics (``paired.py``, ``metrics.py``, the lookup-table baseline in
``baseline.py``) and realism figures (``realism.py``, wired in by ``scoring.py``), noise/class runs with offline
generative metrics (``generative.py`` over learned feature spaces in ``features.py``). :func:`evaluate` picks the
evaluation of a run's mode, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pix2gan.checkpoint import load_checkpoint
from pix2gan.config import Mode
from pix2gan.errors import InputError
from pix2gan.evaluation.dial import DIAL_VALUES, DialReport, check_dial, evaluate_dial
from pix2gan.evaluation.generative import GanEvalReport, evaluate_gan_run
from pix2gan.evaluation.metrics import METRICS, RULES, check_rules
from pix2gan.evaluation.paired import EvalReport, evaluate_folders, evaluate_run, summarise, summary
from pix2gan.evaluation.scoring import PAIRED_METRICS, REALISM_METRICS
from pix2gan.runs import RunRef

__all__ = ["EvalOptions", "evaluate", "check_metrics", "check_split", "SPLITS", "EvalReport", "GanEvalReport", "evaluate_run", "evaluate_gan_run",
           "evaluate_folders", "summarise", "summary", "METRICS", "PAIRED_METRICS", "REALISM_METRICS", "RULES",
           "check_rules", "evaluate_dial", "DialReport", "DIAL_VALUES", "check_dial"]  # fmt: skip


SPLITS = ("test", "val", "train")


def check_metrics(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Metric names cleaned (lower case, no blanks or repeats), each one known (:data:`PAIRED_METRICS`; ``realism``
    stands for all of :data:`REALISM_METRICS`).

    Example:
        >>> check_metrics(["PSNR", " ssim", "psnr"])
        ('psnr', 'ssim')
        >>> check_metrics(["mae", "realism", "hu_w1"])
        ('mae', 'nps', 'sharpness', 'hu_w1')
    """
    cleaned = [m.strip().lower() for m in names if m.strip()]
    expanded = [r for m in cleaned for r in (REALISM_METRICS if m == "realism" else (m,))]
    for name in expanded:
        if name not in PAIRED_METRICS:
            raise ValueError(f"unknown metric {name!r}; choose from {', '.join(PAIRED_METRICS)} or realism (the last "
                             f"{len(REALISM_METRICS)})")  # fmt: skip
    return tuple(dict.fromkeys(expanded))


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"--split must be {', '.join(SPLITS[:-1])} or {SPLITS[-1]}, got {split!r}")
    return split


@dataclass
class EvalOptions:
    """Settings of ``pix2gan eval``; each evaluation uses those of its mode.

    Args:
        metrics, split, data_root, baseline, tta, fusion, uncertainty: paired runs (see :func:`evaluate_run`).
        rules: paired runs: the scoring rules, ``synthrad2023`` (default) or ``synthrad2025`` (:data:`RULES`).
        realism: paired runs: the generator of a ``--gan-warmup`` run (see :func:`evaluate_run`).
        dial: paired runs: also score the realism dial (:func:`evaluate_dial`, A = 0, 0.5 and 1); None (default): when
            the checkpoint holds both generators of a ``--gan-warmup`` run; True for another checkpoint is refused.
        sources: paired runs of several sources: those to translate from (default all; see :func:`evaluate_run`).
        n_per_class, n_samples, inception_weights: noise/class runs (see :func:`evaluate_gan_run`).
        out_dir: where predictions, panels and sample grids go (default inside the run folder).
    """

    metrics: tuple[str, ...] = PAIRED_METRICS
    split: str = "test"
    data_root: Path | None = None
    baseline: bool = True
    n_per_class: int = 200
    n_samples: int = 1000
    inception_weights: Path | None = None
    out_dir: Path | None = None
    device: str = "auto"
    progress: bool = False
    tta: bool | None = None
    fusion: str | None = None
    uncertainty: bool | None = None
    rules: str = "synthrad2023"
    realism: float | None = None
    dial: bool | None = None
    sources: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self.metrics = check_metrics(self.metrics)
        check_split(self.split)
        self.rules = check_rules(self.rules).name


def evaluate(ref: RunRef, options: EvalOptions | None = None) -> EvalReport | GanEvalReport:
    """Evaluate the model of ``ref`` (a checkpoint inside a run folder) the way its mode is evaluated."""
    o = options or EvalOptions()
    run_dir = ref.require_run("evaluation needs the run's data and split")
    ckpt = load_checkpoint(ref.checkpoint)  # loaded once; its mode picks the evaluation
    if ckpt.config.data.data_b is not None:
        raise InputError(f"{ckpt.path}: trained on two image folders (--data-b): there are no held-out subjects with "
                         f"targets to score; see its panels/ and pix2gan translate IMAGE.png")  # fmt: skip
    if o.dial:
        check_dial(ckpt)  # refused before the evaluation, not after it
    if ckpt.mode.translates:  # (an unpaired run: G_ab against the held-out subjects' own targets)
        report = evaluate_run(run_dir, checkpoint=ckpt, metrics=o.metrics, split=o.split, data_root=o.data_root,
                              out_dir=o.out_dir, baseline=o.baseline, device=o.device, progress=o.progress, tta=o.tta,
                              fusion=o.fusion, uncertainty=o.uncertainty, rules=o.rules, realism=o.realism,
                              sources=o.sources)  # fmt: skip
        if o.dial or (o.dial is None and ckpt.fixed_realism is None):
            report.dial = evaluate_dial(run_dir, checkpoint=ckpt, metrics=o.metrics, split=o.split,
                                        data_root=o.data_root, out_dir=o.out_dir, device=o.device, progress=o.progress,
                                        tta=o.tta, fusion=o.fusion, uncertainty=o.uncertainty, rules=o.rules,
                                        known={ckpt.realism(o.realism): report}, sources=o.sources)  # fmt: skip
        return report
    if o.sources is not None:
        raise InputError(f"{ckpt.path}: --sources picks the inputs of a model translating several sources; this is a "
                         f"{ckpt.mode} run")  # fmt: skip
    return evaluate_gan_run(run_dir, checkpoint=ckpt, n_per_class=o.n_per_class, n_samples=o.n_samples,
                            inception_weights=o.inception_weights, out_dir=o.out_dir, device=o.device)  # fmt: skip
