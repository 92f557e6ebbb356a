"""The realism dial scored: the generator of a ``--gan-warmup`` run at several realisms A (0, 0.5 and 1), side by side.

A run trained with ``--gan-warmup`` holds the regression snapshot and the adversarial generator; ``--realism A``
blends them (:meth:`~pix2gan.checkpoint.LoadedCheckpoint.generator`). :func:`evaluate_dial` scores the split at each
A with :func:`~pix2gan.evaluation.paired.evaluate_run` (no lookup-table baseline: it does not depend on A) and writes

- ``RUN/eval/dial.json``: per A, every metric's summaries over subjects (mean, std, median, quartiles) and per-subject
  figures, and which A is the run's default (``config.infer.realism``);
- ``RUN/eval/dial.png``: one slice (the middle of the body of the split's first subject) as
  source | A = 0 | A = 0.5 | A = 1 | target, each prediction titled with its A and that subject's MAE, NPS ratio and
  sharpness, in the evaluation panels' windows.

Predictions at the default A are the evaluation's own (``RUN/eval/<split>/``); the others go to
``RUN/eval/<split>/realism-<A>/`` (:func:`~pix2gan.evaluation.paired.realism_folder`), so neither overwrites the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pix2gan.checkpoint import LoadedCheckpoint
from pix2gan.data.subjects import load_subject
from pix2gan.errors import InputError
from pix2gan.evaluation.metrics import Rules
from pix2gan.evaluation.paired import (EvalReport, _modalities, _nan_to_none, _run_checkpoint, _split_subjects,
                                       evaluate_run, realism_folder, sources_folder, summary)  # fmt: skip
from pix2gan.evaluation.scoring import PAIRED_METRICS
from pix2gan.io import atomic_write_json, load_volume
from pix2gan.reporting.numbers import format_metric
from pix2gan.reporting.panels import HU_WINDOW, body_slices, save_panel
from pix2gan.reporting.run_files import dial_paths
from pix2gan.runs import RunLayout

__all__ = ["DIAL_VALUES", "DialReport", "evaluate_dial", "check_dial"]

DIAL_VALUES = (0.0, 0.5, 1.0)
"""The realisms the dial scores: the regression snapshot, the half-way blend, the adversarial generator."""


@dataclass
class DialReport:
    """The evaluation at each realism (``reports``, in the order scored), the run's default realism, the slice drawn
    and the files written."""

    split: str
    default: float
    reports: dict[float, EvalReport]
    subject: str
    axis: int
    index: int
    folders: dict[float, Path] = field(default_factory=dict)  # where each realism's predictions are
    json_path: Path | None = None
    image: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``RUN/eval/dial.json`` (nan as null: strict JSON)."""
        first = next(iter(self.reports.values()))
        values = [_nan_to_none({"realism": a, "default": a == self.default,
                                "predictions": str(self.folders.get(a, "")), **summary(r.per_subject),
                                "per_subject": r.per_subject}) for a, r in self.reports.items()]  # fmt: skip
        return _nan_to_none({"split": self.split, "default": self.default, "unit": first.unit,
                             "rules": first.rules_block(), "metrics": first.metrics,
                             "slice": {"subject": self.subject, "axis": self.axis, "index": self.index},
                             "values": values})  # fmt: skip


def check_dial(ckpt: LoadedCheckpoint) -> None:
    """Refuse (one line naming the checkpoint) to dial a checkpoint that does not hold both generators.

    Raises:
        InputError: a checkpoint of a run without ``--gan-warmup``, or saved before its switch.
    """
    only = ckpt.fixed_realism
    if only is not None:
        raise InputError(f"{ckpt.path}: --dial needs both generators of a --gan-warmup run past its switch; this "
                         f"checkpoint holds one (realism {only:g}): leave --dial out")  # fmt: skip


def evaluate_dial(
    run_dir: str | Path,
    *,
    checkpoint: str | Path | LoadedCheckpoint | None = None,
    values: Sequence[float] = DIAL_VALUES,
    metrics: Sequence[str] = PAIRED_METRICS,
    split: str = "test",
    data_root: str | Path | None = None,
    out_dir: str | Path | None = None,
    device: str = "auto",
    progress: bool = False,
    tta: bool | None = None,
    fusion: str | None = None,
    uncertainty: bool | None = None,
    rules: str | Rules = "synthrad2023",
    known: Mapping[float, EvalReport] | None = None,
    sources: Sequence[str] | None = None,
) -> DialReport:
    """Score the run's ``split`` at each realism of ``values``; write ``RUN/eval/dial.json`` and ``RUN/eval/dial.png``.

    Args:
        run_dir, checkpoint, metrics, split, data_root, device, progress, tta, fusion, uncertainty, rules: as
            :func:`~pix2gan.evaluation.paired.evaluate_run`.
        values: the realisms, each in [0, 1] (default 0, 0.5 and 1).
        out_dir: the folder of the predictions at the default realism (default ``RUN/eval/<split>``); the others go
            to ``realism-<A>/`` in it.
        known: evaluations already made with the same settings, by realism (``pix2gan eval``'s own): used as they
            are, not translated again.
        sources: a many-to-one run's sources to translate from (default all), as
            :func:`~pix2gan.evaluation.paired.evaluate_run`; the panel shows the first of them.

    Raises:
        InputError: a checkpoint without both generators (:func:`check_dial`), a value outside [0, 1], and whatever
            :func:`~pix2gan.evaluation.paired.evaluate_run` refuses.
    """
    layout = RunLayout(Path(run_dir))
    ckpt = _run_checkpoint(layout, checkpoint)
    check_dial(ckpt)
    for a in values:
        ckpt.check_realism(float(a))
    dc = ckpt.config.data
    used = [n for n in dc.sources if n in (sources or dc.sources)]  # (refused by evaluate_run when not acceptable)
    base = Path(out_dir) if out_dir else sources_folder(layout.root / "eval" / split, dc.sources, used)
    reports: dict[float, EvalReport] = {}
    folders: dict[float, Path] = {}
    known = dict(known or {})
    taken = {r.predictions[0].parent for r in known.values() if r.predictions}  # (an --out of eval --realism A)
    for a in dict.fromkeys(float(v) for v in values):
        if a in known:
            reports[a] = known[a]
            folders[a] = reports[a].predictions[0].parent if reports[a].predictions else base
            continue
        folders[a] = realism_folder(base, ckpt, a)
        folders[a] = base / f"realism-{a:g}" if folders[a] in taken else folders[a]
        reports[a] = evaluate_run(layout.root, checkpoint=ckpt, metrics=metrics, split=split, data_root=data_root,
                                  out_dir=folders[a], baseline=False, device=device, progress=progress, tta=tta,
                                  fusion=fusion, uncertainty=uncertainty, rules=rules, realism=a,
                                  sources=sources)  # fmt: skip
    sid = layout.read_split()[split][0]
    subject = _split_subjects(layout, {split: [sid]}, split, Path(data_root) if data_root else Path(dc.root), dc,
                              sources=used)[sid]  # fmt: skip
    vols = load_subject(subject, _modalities(dc, used))
    mask = vols[dc.mask].data > 0 if dc.mask and dc.mask in vols else np.ones(vols[dc.dst].shape, dtype=bool)
    index = body_slices(mask, dc.slice_axis, (0.5,))[0]
    dial = DialReport(split=split, default=ckpt.realism(), reports=reports, subject=sid, axis=dc.slice_axis,
                      index=index, folders=folders)  # fmt: skip
    dial.json_path, dial.image = dial_paths(layout.root)
    if set(used) != set(dc.sources):  # a subset's dial is not the run's: beside its predictions
        dial.json_path, dial.image = base / dial.json_path.name, base / dial.image.name
    columns = _draw(dial, vols[used[0]].data, vols[dc.dst].data)
    save_panel(dial.image, [columns], titles=list(columns), windows=_windows(dial, list(columns)))
    atomic_write_json(dial.json_path, dial.to_dict())
    return dial


def _title(dial: DialReport, a: float) -> str:
    """A prediction's column title: its A (and whether it is the default), the slice's subject's MAE, NPS ratio and
    sharpness, where scored."""
    report = dial.reports[a]
    row = report.per_subject[dial.subject]
    lines = [f"A = {a:g}{' (default)' if a == dial.default else ''}",
             f"MAE {format_metric('mae', row.get('mae'), report.data_range)}{' ' + report.unit if report.unit else ''}"]
    lines += [f"{label} {format_metric(k, row[k])}" for k, label in (("nps_ratio", "NPS ratio"), ("sharpness", "sharp"))
              if k in row]  # fmt: skip
    return "\n".join(lines).replace("–", "-")  # (the panels' bitmap font has no en dash)


def _draw(dial: DialReport, source: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
    """The slice of each column by title: source, each realism's prediction (read back from its file), target."""
    columns = {"source": np.take(source, dial.index, axis=dial.axis)}
    for a, report in dial.reports.items():
        pred = load_volume(report.predictions[list(report.per_subject).index(dial.subject)]).data
        columns[_title(dial, a)] = np.take(pred, dial.index, axis=dial.axis)
    columns["target"] = np.take(target, dial.index, axis=dial.axis)
    return columns


def _windows(dial: DialReport, titles: list[str]) -> dict[str, tuple[float, float]] | None:
    """CT targets: every prediction and the target in the panels' HU window; else each image its own percentiles."""
    if next(iter(dial.reports.values())).unit != "HU":
        return None
    return {t: HU_WINDOW for t in titles if t != "source"}
