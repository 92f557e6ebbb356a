"""Evaluate a trained run on its held-out subjects, or external predictions against targets.

Both paths end in an :class:`EvalReport`: per-subject metrics under a rule set (``synthrad2023`` or ``synthrad2025``,
:data:`pix2gan.evaluation.metrics.RULES`), their mean, standard deviation, median and quartiles over subjects, and
(for runs) the per-voxel lookup-table baseline fitted on the run's training subjects, so every number comes with the
context-free reference it has to beat. One PNG panel per subject (source | prediction | target | |error|) is written
next to the report. CT targets are scored in HU under the rules' window; MR targets in the generator's normalised
space [-1, 1] (:func:`~pix2gan.evaluation.scoring.normalised_pair`), so that their figures compare across subjects.
CT targets also get the realism figures beside those distortions (noise power spectrum, sharpness, HU distribution:
:mod:`pix2gan.evaluation.realism`, wired in :class:`~pix2gan.evaluation.scoring.Scoring`).
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
from pix2gan.config import DataConfig, IntensityKind, Mode
from pix2gan.data.intensity import IntensityMap, intensity_maps
from pix2gan.data.subjects import Subject, find_subjects, load_subject
from pix2gan.data.unpaired import find_unpaired_subjects
from pix2gan.evaluation.metrics import Rules, check_rules
from pix2gan.evaluation.scoring import PAIRED_METRICS, Scoring
from pix2gan.evaluation.statistics import STATISTICS, summarise, summary
from pix2gan.evaluation.statistics import nan_to_none as _nan_to_none
from pix2gan.reporting.panels import panel_rows, panel_style, save_panel
from pix2gan.infer.inputs import describe_sources
from pix2gan.infer.outputs import std_path
from pix2gan.infer.translate import Ensemble, Translator
from pix2gan.io import (
    VOLUME_SUFFIXES,
    atomic_write_json,
    check_same_grid,
    is_dicom_folder,
    is_volume_file,
    load_volume,
    save_like,
    volume_name,
)
from pix2gan.errors import InputError

__all__ = ["EvalReport", "STATISTICS", "evaluate_run", "evaluate_folders", "summarise", "summary", "realism_folder"]


def _track(items: Sequence, description: str, enabled: bool):  # noqa: ANN202
    """Iterate with a rich progress bar (count, elapsed, ETA) when ``enabled``."""
    if not enabled or len(items) < 2:
        return items
    from rich.console import Console
    from rich.progress import track

    return track(items, description=description, console=Console(stderr=True), transient=True)


@dataclass
class EvalReport:
    """Metrics per subject with their summaries over subjects (:data:`STATISTICS`); ``baseline`` holds the lookup
    table's figures when computed; ``rules``, ``space`` and ``data_range`` say how the figures were computed."""

    metrics: list[str]
    per_subject: dict[str, dict[str, float]]
    unit: str = ""  # of MAE: "HU" for CT targets
    baseline_per_subject: dict[str, dict[str, float]] = field(default_factory=dict)
    panels: list[Path] = field(default_factory=list)
    predictions: list[Path] = field(default_factory=list)
    rules: str = "synthrad2023"  # a name of pix2gan.evaluation.metrics.RULES
    space: str = ""  # the intensity space scored, e.g. "HU clipped to [-1024, 3000]" or "normalised [-1, 1] (...)"
    data_range: float | None = None  # of PSNR and the structural similarity
    realism: float | None = None  # the generator scored, for a checkpoint holding both of a --gan-warmup run
    realism_default: bool = True  # whether ``realism`` is the run's default (config.infer.realism)
    dial: Any = None  # pix2gan eval of a --gan-warmup run: the realism dial's figures (evaluation.dial.DialReport)
    sources: tuple[str, ...] = ()  # a many-to-one run: the sources the model was given (model order)
    missing: tuple[str, ...] = ()  # and those it went without (--sources)

    def sources_line(self) -> str:
        """The sources scored, in words (``t1 + zte``, ``t1 (zte missing)``); empty for a one-source run."""
        return describe_sources((*self.sources, *self.missing), self.sources) if self.sources else ""

    @property
    def mean(self) -> dict[str, float]:
        return summarise(self.per_subject)[0]

    @property
    def std(self) -> dict[str, float]:
        return summarise(self.per_subject)[1]

    def rules_block(self) -> dict[str, Any]:
        """How the figures were computed (the JSON's ``rules``): rules, intensity space, data range, structural figure."""
        rules = check_rules(self.rules)
        return {"name": rules.name, "space": self.space, "data_range": self.data_range,
                "ssim": f"masked {rules.structural_name}", "source": rules.source}  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rules": self.rules_block(),
            "per_subject": self.per_subject,
            **summary(self.per_subject),
        }  # fmt: skip
        if self.realism is not None:
            out["realism"] = {"value": self.realism, "default": self.realism_default}
        if self.sources:
            out["sources"] = {"used": list(self.sources), "missing": list(self.missing)}
        if self.baseline_per_subject:
            base = self.baseline_per_subject
            out["baseline"] = {"method": "per-voxel lookup table (median per source-intensity bin)",
                               "per_subject": base, **summary(base)}  # fmt: skip
        return _nan_to_none(out)

    def write_json(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_dict())


def _new_report(scoring: Scoring) -> EvalReport:
    """An empty report that says how its figures are computed."""
    return EvalReport(metrics=list(scoring.metrics), per_subject={}, unit="HU" if scoring.hu else "",
                      rules=scoring.rules.name, space=scoring.space, data_range=scoring.data_range)  # fmt: skip


def _write_subject_panel(path: Path, rows: list[dict[str, np.ndarray]], labels: list[str], hu: bool) -> None:
    windows, error_scale = panel_style(hu)
    titles = ("source", "prediction", "target", "|error|") if "source" in rows[0] else ("prediction", "target", "|error|")
    save_panel(path, rows, titles=titles, windows=windows, error_scale=error_scale, row_labels=labels)


def evaluate_run(
    run_dir: str | Path,
    *,
    checkpoint: str | Path | LoadedCheckpoint | None = None,
    metrics: Sequence[str] = PAIRED_METRICS,
    split: str = "test",
    data_root: str | Path | None = None,
    out_dir: str | Path | None = None,
    baseline: bool = True,
    device: str = "auto",
    progress: bool = False,
    tta: bool | None = None,
    fusion: str | None = None,
    uncertainty: bool | None = None,
    rules: str | Rules = "synthrad2023",
    realism: float | None = None,
    sources: Sequence[str] | None = None,
) -> EvalReport:
    """Translate the run's ``split`` subjects, score them against their targets under ``rules``, write panels.

    CT targets are scored in HU under the rules' window. MR targets (any target intensity but ``hu``) are scored in
    the generator's normalised space (:func:`~pix2gan.evaluation.scoring.normalised_pair`: each target through its
    own percentiles, as training normalises it, the prediction through the model's reference scale, which recovers
    the generator's output), with data range 2, so the figures compare across subjects; the lookup-table baseline is
    fitted and scored there too.

    The model is used as ``translate`` uses it (its planes, context and recommended test-time augmentation, unless
    ``tta`` / ``fusion`` override them). When it makes several predictions per volume (or ``uncertainty``), their
    voxel-wise standard deviation is written beside each prediction and scored: ``std_error_spearman`` says how
    well it ranks the absolute errors inside the mask, ``std_mean`` is its mean there.

    Args:
        run_dir: the run folder (its ``split.json`` names the subjects).
        checkpoint: checkpoint (file or already loaded) to use (default the run's best, else latest).
        metrics: names from :data:`~pix2gan.evaluation.scoring.PAIRED_METRICS` (default all: distortion and, for CT
            targets, realism).
        split: ``test`` (default), ``val`` or ``train``.
        data_root: data folder (default the one the run was trained on).
        out_dir: where predictions and panels go (default ``RUN_DIR/eval/<split>``; at a ``realism`` other than the
            run's default, its own folder in there, :func:`realism_folder`, so the default's files are kept).
        baseline: also fit the per-voxel lookup table on the training subjects and score it the same way.
        progress: show a progress bar over subjects.
        tta, fusion: override the model's recommended test-time augmentation and fusion.
        uncertainty: score the standard deviation across predictions (default: when there are several).
        rules: ``synthrad2023`` (default) or ``synthrad2025`` (:data:`pix2gan.evaluation.metrics.RULES`).
        realism: the generator of a ``--gan-warmup`` run, as ``translate --realism`` (default: the run's recorded one).
        sources: a many-to-one run: the sources to translate from (default all; a subset for a model trained with
            input dropout, whose predictions then go to ``sources-<names>/`` in the default folder); recorded in the
            report. The lookup-table baseline maps the first of them.

    Raises:
        InputError: a missing run folder, split or subject, or a subject that cannot be scored (a constant MR
            target, an empty mask), naming its file.
    """
    layout = RunLayout(Path(run_dir))
    ckpt = _run_checkpoint(layout, checkpoint)
    translator = Ensemble([Translator.from_checkpoint(ckpt, device=device, tta=tta, fusion=fusion, realism=realism)])
    used = translator.check_sources(translator.sources if sources is None else list(sources))  # refused first
    splits = layout.read_split()
    subjects = _split_subjects(layout, splits, split, Path(data_root) if data_root else Path(ckpt.config.data.root),
                               ckpt.config.data, ckpt.mode == Mode.UNPAIRED, used)  # fmt: skip
    baseline = baseline and ckpt.mode != Mode.UNPAIRED  # (the lookup table is fitted on pairs; unpaired runs have none)
    out = Path(out_dir) if out_dir else sources_folder(realism_folder(layout.root / "eval" / split, ckpt, realism),
                                                       translator.sources, used)  # fmt: skip
    scoring = Scoring.of(check_rules(rules), metrics, ckpt.dst_map, "each target by its own percentiles {lo:g}/{hi:g},"
                          " the prediction by the model's reference scale")  # fmt: skip
    src_map = translator.members[0].src_maps[used[0]]  # the baseline's input: the first source given
    train = [subjects[i] for i in splits.get("train", []) if i in subjects]
    lut = _fit_lut(train, ckpt, used[0], src_map) if baseline else None
    report = _new_report(scoring)
    if len(translator.sources) > 1:
        report.sources, report.missing = used, tuple(n for n in translator.sources if n not in used)
    if ckpt.fixed_realism is None:
        report.realism, report.realism_default = ckpt.realism(realism), ckpt.realism(realism) == ckpt.realism()
    for sid in _track(splits[split], f"evaluating {len(splits[split])} subjects", progress):
        _evaluate_subject(report, subjects[sid], ckpt, translator, scoring, lut, out, uncertainty, used, src_map)
    return report


def sources_folder(base: Path, sources: Sequence[str], used: Sequence[str]) -> Path:
    """Where predictions from the sources ``used`` of a model of ``sources`` go: ``base`` for all of them, else
    ``base/sources-<used>``.

    Example:
        >>> [sources_folder(Path("eval/test"), ("t1", "zte"), u).as_posix() for u in (("t1", "zte"), ("zte",))]
        ['eval/test', 'eval/test/sources-zte']
    """
    return base if set(used) == set(sources) else base / f"sources-{'+'.join(used)}"


def realism_folder(base: Path, ckpt: LoadedCheckpoint, realism: float | None) -> Path:
    """Where the predictions of ``ckpt`` at ``realism`` go under ``base``: ``base`` itself at the run's default
    realism (or for a checkpoint holding one generator), else ``base/realism-<A>``.

    Example:
        >>> from pix2gan.config import RunConfig
        >>> ckpt = LoadedCheckpoint(Path("best.pt"), RunConfig(), None, None, {"generator_regression": {}}, {})
        >>> [realism_folder(Path("eval/test"), ckpt, a).as_posix() for a in (None, 1.0, 0.5, 0.0)]
        ['eval/test', 'eval/test', 'eval/test/realism-0.5', 'eval/test/realism-0']
    """
    value = ckpt.realism(realism)
    return base if ckpt.fixed_realism is not None or value == ckpt.realism() else base / f"realism-{value:g}"


def _run_checkpoint(layout: RunLayout, checkpoint: str | Path | LoadedCheckpoint | None) -> LoadedCheckpoint:
    """The paired (or unpaired) checkpoint to evaluate: the one given, or the run's best (else latest)."""
    if not layout.root.is_dir():
        raise InputError(f"{layout.root}: run folder not found")
    if not isinstance(checkpoint, LoadedCheckpoint):
        checkpoint = load_checkpoint(Path(checkpoint) if checkpoint else layout.model_checkpoint())
    return checkpoint if checkpoint.mode == Mode.UNPAIRED else checkpoint.require(Mode.PAIRED)


def _split_subjects(layout: RunLayout, splits: dict[str, list[str]], split: str, root: Path,
                    dc: DataConfig, unpaired: bool = False, sources: Sequence[str] | None = None) -> dict[str, Subject]:  # fmt: skip
    """The data folder's subjects by id, checked to hold every subject of the (non-empty) ``split`` (with the
    ``sources`` scored, default all of the run's)."""
    ids = splits.get(split, [])
    if not ids:
        raise InputError(f"{layout.split}: the {split!r} split is empty")
    if unpaired:  # subjects may hold one side only; those scored must hold both
        subjects = {s.id: s for s in find_unpaired_subjects(root, dc.src, dc.dst, [dc.mask] if dc.mask else [])}
    else:
        subjects = {s.id: s for s in find_subjects(root, [*(sources or dc.sources), dc.dst], [dc.mask] if dc.mask else [])}
    missing = [i for i in ids if i not in subjects]
    if missing:
        raise InputError(f"{root}: subject {missing[0]!r} of the run's {split} split is not in the data folder")
    one_sided = [i for i in ids if not {*(sources or dc.sources), dc.dst} <= subjects[i].files.keys()]
    if one_sided:
        raise InputError(f"{subjects[one_sided[0]].folder}: holds only one of {dc.src} and {dc.dst}; an unpaired run "
                         f"is scored on subjects holding both (its val and test splits)")  # fmt: skip
    return subjects


def _evaluate_subject(report: EvalReport, subject: Subject, ckpt: LoadedCheckpoint, translator: Ensemble,
                      scoring: Scoring, lut: LookupTable | None, out: Path, uncertainty: bool | None,
                      used: Sequence[str], src_map: IntensityMap) -> None:  # fmt: skip
    """Translate one subject from the sources ``used``, score it (and the lookup table, from the first of them
    through ``src_map``) into ``report``, write its prediction and panel."""
    dc, dst_map = ckpt.config.data, ckpt.dst_map
    vols = load_subject(subject, _modalities(dc, used))
    source, target = vols[used[0]], vols[dc.dst]  # the primary source: the prediction's grid, format and panel
    mask = vols[dc.mask].data > 0 if dc.mask and dc.mask in vols else None
    if mask is not None and not mask.any():
        raise InputError(f"{vols[dc.mask].path}: mask is empty")
    with_std = uncertainty if uncertainty is not None else len(translator.passes(source.affine)) > 1
    result = translator.translate_volume({n: vols[n] for n in used}, uncertainty=with_std)
    pred, scored_target = scoring.pair(result.image, target.data, target.path, dst_map.reference)
    std = result.std
    if not scoring.hu and std is not None and dst_map.reference is not None:  # MR: the uncertainty in its units too
        std = std * (2.0 / (dst_map.reference[1] - dst_map.reference[0]))
    report.per_subject[subject.id] = scoring.score(pred, scored_target, mask, target.path, std=std,
                                                   affine=target.affine)  # fmt: skip
    if lut is not None:
        norm = src_map.forward(source.data, src_map.scale_of(source.data))
        report.baseline_per_subject[subject.id] = scoring.score(lut.apply(norm), scored_target, mask, target.path,
                                                                affine=target.affine)  # fmt: skip
    suffix = source.path.name[len(volume_name(source.path)) :] or ".nii.gz"  # the source's format; DICOM: NIfTI
    pred_path = out / f"{subject.id}_{dc.dst}{suffix}"
    save_like(pred_path, result.image, source, overwrite=True, describe=f"pix2gan {dc.dst}")
    if result.std is not None:
        save_like(std_path(pred_path), result.std, source, overwrite=True, describe=f"pix2gan {dc.dst} std")
    error = None if scoring.hu else np.abs(pred - scored_target)  # MR: the error where it is scored
    rows, labels = panel_rows(source.data, result.image, target.data, dc.slice_axis, mask, error=error)
    panel = out / f"{subject.id}.png"
    _write_subject_panel(panel, rows, labels, scoring.hu)
    report.predictions.append(pred_path)
    report.panels.append(panel)


def _modalities(dc: DataConfig, sources: Sequence[str] | None = None) -> list[str]:
    """The files a subject is read from: the sources (default all of the run's), target and, when the run has one,
    mask."""
    return [*(dc.sources if sources is None else sources), dc.dst] + ([dc.mask] if dc.mask else [])


def _fit_lut(train: list[Subject], ckpt: LoadedCheckpoint, source: str, src_map: IntensityMap) -> LookupTable | None:
    """The per-voxel lookup table from ``source`` (normalised by ``src_map``) fitted on the training subjects (None
    without any), in the space targets are scored in."""
    if not train:
        return None
    dc = ckpt.config.data
    xs, ys = [], []
    for subject in train:
        vols = load_subject(subject, _modalities(dc, [source]))
        src = vols[source].data
        inside = vols[dc.mask].data > 0 if dc.mask and dc.mask in vols else np.ones(src.shape, dtype=bool)
        xs.append(src_map.forward(src, src_map.scale_of(src))[inside])
        dst = vols[dc.dst].data
        if ckpt.dst_map.kind != IntensityKind.HU:  # MR targets are scored in the normalised space: fit it there
            dst = ckpt.dst_map.forward(dst, ckpt.dst_map.scale_of(dst))
        ys.append(dst[inside])
    return LookupTable.fit(xs, ys)


def _volume_files(folder: Path) -> dict[str, Path]:
    """The volumes of a folder by name without format suffix: files of any supported format, DICOM series folders."""
    if not folder.is_dir():
        raise InputError(f"{folder}: folder not found")
    files: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or not (is_volume_file(entry) or is_dicom_folder(entry)):
            continue
        name = volume_name(entry)
        if name in files:
            raise InputError(f"{folder}: {name} is there twice ({files[name].name} and {entry.name}); keep one")
        files[name] = entry
    if not files:
        raise InputError(f"{folder}: no volumes ({', '.join(VOLUME_SUFFIXES)} files or DICOM series folders)")
    return files


def evaluate_folders(
    pred_dir: str | Path,
    target_dir: str | Path,
    mask_dir: str | Path | None = None,
    *,
    metrics: Sequence[str] = PAIRED_METRICS,
    modality: str = "ct",
    rules: str | Rules = "synthrad2023",
    out_dir: str | Path | None = None,
    source_dir: str | Path | None = None,
    progress: bool = False,
) -> EvalReport:
    """Score every prediction in ``pred_dir`` against the file of the same name in ``target_dir`` (and ``mask_dir``).

    Args:
        modality: the targets' modality name; it picks the intensity rule as training does
            (:meth:`DataConfig.default_intensity`): CT-like names (``ct``, ``cbct``, ``sct``) are scored in HU under
            the rules' window; the others (MR) in the normalised space, each target's percentiles (0.5/99.5) fitted
            on the target and applied to both (:func:`~pix2gan.evaluation.scoring.normalised_pair`).
        rules: ``synthrad2023`` (default) or ``synthrad2025`` (:data:`pix2gan.evaluation.metrics.RULES`).
        out_dir: where the panels go (default ``<pred_dir>_eval``).
        source_dir: optional folder of the source volumes (same file names), drawn as the panels' first column.
        progress: show a progress bar over files.
    """
    preds = _volume_files(Path(pred_dir))
    targets = _volume_files(Path(target_dir))
    masks = _volume_files(Path(mask_dir)) if mask_dir else {}
    sources = _volume_files(Path(source_dir)) if source_dir else {}
    for name, path in preds.items():
        if name not in targets:
            raise InputError(f"{path}: no target of the same name in {target_dir}")
        if mask_dir and name not in masks:
            raise InputError(f"{path}: no mask of the same name in {mask_dir}")
        if source_dir and name not in sources:
            raise InputError(f"{path}: no source of the same name in {source_dir}")
    out = Path(out_dir) if out_dir else Path(str(Path(pred_dir).resolve()) + "_eval")
    target_map = intensity_maps(DataConfig(dst=modality))[1]  # the rule training uses for that modality name
    scoring = Scoring.of(check_rules(rules), metrics, target_map, "percentiles {lo:g}/{hi:g} of each target, "
                          "applied to prediction and target")  # fmt: skip
    report = _new_report(scoring)
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
        sid = name
        scored = scoring.pair(pred.data, target.data, targets[name])
        report.per_subject[sid] = scoring.score(*scored, mask, targets[name], affine=target.affine)
        source = None
        if source_dir:
            source_vol = load_volume(sources[name])
            check_same_grid(target, source_vol)
            source = source_vol.data
        error = None if scoring.hu else np.abs(scored[0] - scored[1])  # MR: the error where it is scored
        rows, labels = panel_rows(source, pred.data, target.data, 2, mask, error=error)
        panel = out / f"{sid}.png"
        _write_subject_panel(panel, rows, labels, scoring.hu)
        report.panels.append(panel)
    return report
