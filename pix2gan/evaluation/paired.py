"""Evaluate a trained run on its held-out subjects, or external predictions against targets.

Both paths end in an :class:`EvalReport`: per-subject metrics, their mean and standard deviation over subjects, and
(for runs) the per-voxel lookup-table baseline fitted on the run's training subjects, so every number comes with the
context-free reference it has to beat. One PNG panel per subject (source | prediction | target | |error|) is written
next to the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pix2gan.evaluation.baseline import LookupTable
from pix2gan.checkpoint import LoadedCheckpoint, load_checkpoint
from pix2gan.runs import RunLayout
from pix2gan.config import IntensityKind, Mode
from pix2gan.data.subjects import Subject, find_subjects, load_subject
from pix2gan.evaluation.metrics import METRICS, evaluate
from pix2gan.report import panel_rows, save_panel
from pix2gan.infer.outputs import std_path
from pix2gan.infer.translate import Ensemble, Translator
from pix2gan.io import NIFTI_SUFFIXES, atomic_write_json, check_same_grid, load_volume, save_like
from pix2gan.errors import InputError

__all__ = ["EvalReport", "evaluate_run", "evaluate_folders", "summarise"]


def _track(items: Sequence, description: str, enabled: bool):  # noqa: ANN202
    """Iterate with a rich progress bar (count, elapsed, ETA) when ``enabled``."""
    if not enabled or len(items) < 2:
        return items
    from rich.console import Console
    from rich.progress import track

    return track(items, description=description, console=Console(stderr=True), transient=True)


def summarise(per_subject: dict[str, dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and (population) standard deviation of each metric over subjects, skipping nan (a subject without bone
    has no bone MAE); nan where no subject has a value."""
    names = list(next(iter(per_subject.values()))) if per_subject else []
    values = {m: np.array([row[m] for row in per_subject.values()], dtype=np.float64) for m in names}
    values = {m: v[~np.isnan(v)] for m, v in values.items()}
    return (
        {m: float(v.mean()) if v.size else float("nan") for m, v in values.items()},
        {m: float(v.std()) if v.size else float("nan") for m, v in values.items()},
    )


def _nan_to_none(obj: Any) -> Any:
    """``obj`` with every float nan replaced by None, so JSON gets null (json.dumps would write NaN, not JSON)."""
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    return None if isinstance(obj, float) and obj != obj else obj


@dataclass
class EvalReport:
    """Metrics per subject with mean and std; ``baseline`` holds the lookup table's figures when computed."""

    metrics: list[str]
    per_subject: dict[str, dict[str, float]]
    unit: str = ""  # of MAE: "HU" for CT targets
    baseline_per_subject: dict[str, dict[str, float]] = field(default_factory=dict)
    panels: list[Path] = field(default_factory=list)
    predictions: list[Path] = field(default_factory=list)

    @property
    def mean(self) -> dict[str, float]:
        return summarise(self.per_subject)[0]

    @property
    def std(self) -> dict[str, float]:
        return summarise(self.per_subject)[1]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"per_subject": self.per_subject, "mean": self.mean, "std": self.std}
        if self.baseline_per_subject:
            mean, std = summarise(self.baseline_per_subject)
            out["baseline"] = {"method": "per-voxel lookup table (median per source-intensity bin)",
                               "per_subject": self.baseline_per_subject, "mean": mean, "std": std}  # fmt: skip
        return _nan_to_none(out)

    def write_json(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_dict())


def _write_subject_panel(path: Path, rows, labels, hu: bool) -> None:  # noqa: ANN001
    windows = {"prediction": (-1000.0, 2000.0), "target": (-1000.0, 2000.0), "|error|": (0.0, 500.0)} if hu else None
    titles = ("source", "prediction", "target", "|error|") if "source" in rows[0] else ("prediction", "target", "|error|")
    save_panel(path, rows, titles=titles, windows=windows, row_labels=labels)


def evaluate_run(
    run_dir: str | Path,
    *,
    checkpoint: str | Path | LoadedCheckpoint | None = None,
    metrics: Sequence[str] = METRICS,
    split: str = "test",
    data_root: str | Path | None = None,
    out_dir: str | Path | None = None,
    baseline: bool = True,
    device: str = "auto",
    progress: bool = False,
    tta: bool | None = None,
    fusion: str | None = None,
    uncertainty: bool | None = None,
) -> EvalReport:
    """Translate the run's ``split`` subjects, compare with their targets in physical units, write panels.

    The model is used as ``translate`` uses it (its planes, context and recommended test-time augmentation, unless
    ``tta`` / ``fusion`` override them). When it makes several predictions per volume (or ``uncertainty``), their
    voxel-wise standard deviation is written beside each prediction and scored: ``std_error_spearman`` says how
    well it ranks the absolute errors inside the mask, ``std_mean`` is its mean there.

    Args:
        run_dir: the run folder (its ``split.json`` names the subjects).
        checkpoint: checkpoint (file or already loaded) to use (default the run's best, else latest).
        metrics: names from :data:`pix2gan.metrics.METRICS`.
        split: ``test`` (default), ``val`` or ``train``.
        data_root: data folder (default the one the run was trained on).
        out_dir: where predictions and panels go (default ``RUN_DIR/eval/<split>``).
        baseline: also fit the per-voxel lookup table on the training subjects and score it the same way.
        progress: show a progress bar over subjects.
        tta, fusion: override the model's recommended test-time augmentation and fusion.
        uncertainty: score the standard deviation across predictions (default: when there are several).
    """
    layout = RunLayout(Path(run_dir))
    if not layout.root.is_dir():
        raise InputError(f"{layout.root}: run folder not found")
    if isinstance(checkpoint, LoadedCheckpoint):
        ckpt = checkpoint.require(Mode.PAIRED)
    else:
        ckpt = load_checkpoint(Path(checkpoint) if checkpoint else layout.model_checkpoint(), expect_mode=Mode.PAIRED)
    splits = layout.read_split()
    ids = splits.get(split, [])
    if not ids:
        raise InputError(f"{layout.split}: the {split!r} split is empty")
    dc = ckpt.config.data
    root = Path(data_root) if data_root else Path(dc.root)
    subjects = {s.id: s for s in find_subjects(root, [dc.src, dc.dst], [dc.mask] if dc.mask else [])}
    missing = [i for i in ids if i not in subjects]
    if missing:
        raise InputError(f"{root}: subject {missing[0]!r} of the run's {split} split is not in the data folder")
    out = Path(out_dir) if out_dir else layout.root / "eval" / split
    translator = Ensemble([Translator.from_checkpoint(ckpt, device=device, tta=tta, fusion=fusion)])
    hu = ckpt.dst_map.kind == IntensityKind.HU
    window = tuple(dc.hu_window) if hu else None
    names = [dc.src, dc.dst] + ([dc.mask] if dc.mask else [])

    lut = _fit_lut([subjects[i] for i in splits.get("train", []) if i in subjects], names, ckpt) if baseline else None
    report = EvalReport(metrics=list(metrics), per_subject={}, unit="HU" if hu else "")
    for sid in _track(ids, f"evaluating {len(ids)} subjects", progress):
        vols = load_subject(subjects[sid], names)
        source, target = vols[dc.src], vols[dc.dst]
        mask = vols[dc.mask].data > 0 if dc.mask and dc.mask in vols else None
        with_std = uncertainty if uncertainty is not None else len(translator.passes(source.affine)) > 1
        result = translator.translate_volume(source, uncertainty=with_std)
        pred = result.image
        report.per_subject[sid] = evaluate(pred, target.data, mask, metrics=metrics, window=window, std=result.std)  # type: ignore[arg-type]
        if lut is not None:
            norm = ckpt.src_map.forward(source.data, ckpt.src_map.scale_of(source.data))
            report.baseline_per_subject[sid] = evaluate(lut.apply(norm), target.data, mask, metrics=metrics, window=window)  # type: ignore[arg-type]
        pred_path = out / f"{sid}_{dc.dst}.nii.gz"
        save_like(pred_path, pred, source, overwrite=True, describe=f"pix2gan {dc.dst}")
        if result.std is not None:
            save_like(std_path(pred_path), result.std, source, overwrite=True, describe=f"pix2gan {dc.dst} std")
        rows, labels = panel_rows(source.data, pred, target.data, dc.slice_axis, mask)
        panel = out / f"{sid}.png"
        _write_subject_panel(panel, rows, labels, hu)
        report.predictions.append(pred_path)
        report.panels.append(panel)
    return report


def _fit_lut(train: list[Subject], names: list[str], ckpt) -> LookupTable | None:  # noqa: ANN001
    if not train:
        return None
    dc = ckpt.config.data
    xs, ys = [], []
    for subject in train:
        vols = load_subject(subject, names)
        src = vols[dc.src].data
        inside = vols[dc.mask].data > 0 if dc.mask and dc.mask in vols else np.ones(src.shape, dtype=bool)
        xs.append(ckpt.src_map.forward(src, ckpt.src_map.scale_of(src))[inside])
        ys.append(vols[dc.dst].data[inside])
    return LookupTable.fit(xs, ys)


def _nifti_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise InputError(f"{folder}: folder not found")
    files = {p.name: p for p in sorted(folder.iterdir()) if p.is_file() and p.name.endswith(NIFTI_SUFFIXES)}
    if not files:
        raise InputError(f"{folder}: no .nii or .nii.gz files")
    return files


def evaluate_folders(
    pred_dir: str | Path,
    target_dir: str | Path,
    mask_dir: str | Path | None = None,
    *,
    metrics: Sequence[str] = METRICS,
    window: tuple[float, float] | None = (-1024.0, 3000.0),
    out_dir: str | Path | None = None,
    source_dir: str | Path | None = None,
    progress: bool = False,
) -> EvalReport:
    """Score every prediction in ``pred_dir`` against the file of the same name in ``target_dir`` (and ``mask_dir``).

    Args:
        window: CT clip window (SynthRAD rules), or None for MR targets (no clipping, data range of the target).
        out_dir: where the panels go (default ``<pred_dir>_eval``).
        source_dir: optional folder of the source volumes (same file names), drawn as the panels' first column.
        progress: show a progress bar over files.
    """
    preds = _nifti_files(Path(pred_dir))
    targets = _nifti_files(Path(target_dir))
    masks = _nifti_files(Path(mask_dir)) if mask_dir else {}
    sources = _nifti_files(Path(source_dir)) if source_dir else {}
    for name in preds:
        if name not in targets:
            raise InputError(f"{Path(pred_dir) / name}: no target of the same name in {target_dir}")
        if mask_dir and name not in masks:
            raise InputError(f"{Path(pred_dir) / name}: no mask of the same name in {mask_dir}")
        if source_dir and name not in sources:
            raise InputError(f"{Path(pred_dir) / name}: no source of the same name in {source_dir}")
    out = Path(out_dir) if out_dir else Path(str(Path(pred_dir).resolve()) + "_eval")
    report = EvalReport(metrics=list(metrics), per_subject={}, unit="HU" if window is not None else "")
    for name in _track(list(preds), f"evaluating {len(preds)} predictions", progress):
        path = preds[name]
        pred, target = load_volume(path), load_volume(targets[name])
        check_same_grid(target, pred)
        mask = None
        if mask_dir:
            mask_vol = load_volume(masks[name])
            check_same_grid(target, mask_vol)
            mask = mask_vol.data > 0
            if not mask.any():
                raise InputError(f"{masks[name]}: mask is empty")
        sid = name.removesuffix(".gz").removesuffix(".nii")
        report.per_subject[sid] = evaluate(pred.data, target.data, mask, metrics=metrics, window=window)
        source = None
        if source_dir:
            source_vol = load_volume(sources[name])
            check_same_grid(target, source_vol)
            source = source_vol.data
        rows, labels = panel_rows(source, pred.data, target.data, 2, mask)
        panel = out / f"{sid}.png"
        _write_subject_panel(panel, rows, labels, window is not None)
        report.panels.append(panel)
    return report
