"""What a run folder holds, read from its files only (never a checkpoint: a report must not need the model).

Evaluation results are found as JSON files: ``pix2gan eval`` keeps its figures in the run folder
(:func:`eval_json_path`: ``RUN/eval/<split>.json`` for paired runs, ``RUN/eval/metrics.json`` for noise/class runs;
the realism dial of a ``--gan-warmup`` run in ``RUN/eval/dial.json`` with its slice ``RUN/eval/dial.png``),
and any ``--json`` file written into the run folder (``RUN/*.json``, ``RUN/eval/*.json``, ``RUN/eval/*/*.json``) is
recognised by its content; a file holding the same figures as one already found is listed once.

Example:
    >>> eval_json_path(Path("runs/demo"), "paired", "test").as_posix(), eval_json_path(Path("r"), "class").as_posix()
    ('runs/demo/eval/test.json', 'r/eval/metrics.json')
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pix2gan.errors import InputError
from pix2gan.runs import RunLayout

__all__ = ["RunFiles", "EvalFile", "eval_json_path", "dial_paths", "read_run", "SPLIT_NAMES"]

SPLIT_NAMES = ("test", "val", "train")


def eval_json_path(run_dir: Path, mode: str, split: str | None = None) -> Path:
    """Where ``pix2gan eval`` keeps the figures of a run: ``eval/<split>.json`` (paired), ``eval/metrics.json``."""
    if mode == "paired":
        if split not in SPLIT_NAMES:
            raise ValueError(f"split must be one of {', '.join(SPLIT_NAMES)}, got {split!r}")
        return Path(run_dir) / "eval" / f"{split}.json"
    return Path(run_dir) / "eval" / "metrics.json"


def dial_paths(run_dir: Path) -> tuple[Path, Path]:
    """Where ``pix2gan eval`` keeps the realism dial of a ``--gan-warmup`` run: ``eval/dial.json``, ``eval/dial.png``.

    Example:
        >>> [p.as_posix() for p in dial_paths(Path("runs/demo"))]
        ['runs/demo/eval/dial.json', 'runs/demo/eval/dial.png']
    """
    return Path(run_dir) / "eval" / "dial.json", Path(run_dir) / "eval" / "dial.png"


@dataclass
class EvalFile:
    """One evaluation JSON: ``kind`` ``paired`` (``EvalReport.to_dict``) or ``gan`` (``GanEvalReport.to_dict``);
    ``split`` when the file's place says which subjects were scored."""

    path: Path
    kind: str
    doc: dict[str, Any]
    split: str | None = None


@dataclass
class RunFiles:
    """The readable contents of a run folder; ``notes`` says what could not be read."""

    layout: RunLayout
    config: dict[str, Any]
    split: dict[str, list[str]] | None = None
    epochs: list[dict[str, str]] = field(default_factory=list)
    log_rows: int = 0
    evals: list[EvalFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dial: dict[str, Any] | None = None  # eval/dial.json: the realism dial's figures
    dial_image: Path | None = None  # eval/dial.png: one slice at each realism

    @property
    def root(self) -> Path:
        return self.layout.root

    @property
    def mode(self) -> str:
        return str(self.config.get("train", {}).get("mode", "paired"))

    def section(self, name: str) -> dict[str, Any]:
        value = self.config.get(name)
        return value if isinstance(value, dict) else {}

    def mtime(self, path: Path) -> float | None:
        try:
            return path.stat().st_mtime
        except OSError:
            return None

    def rel(self, path: Path) -> str:
        """``path`` relative to the run folder (as written on the page), or as it is when it lies elsewhere."""
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(path)

    @property
    def started(self) -> float | None:
        """When the run began: its ``config.json`` is written first."""
        return self.mtime(self.layout.config)

    @property
    def last_written(self) -> float | None:
        """When training last wrote its logs or a checkpoint."""
        times = [self.mtime(p) for p in (self.layout.log, self.layout.epochs, self.layout.latest)]
        return max((t for t in times if t is not None), default=None)

    def epoch_panels(self) -> list[Path]:
        """``panels/epoch_NNN.png`` in epoch order."""
        folder = self.layout.panels
        return sorted(folder.glob("epoch_*.png")) if folder.is_dir() else []

    def checkpoint_name(self, link: Path) -> str | None:
        """The step file ``latest.pt`` / ``best.pt`` is a hard link to, or the link's own name."""
        try:
            target = link.stat()
        except OSError:
            return None
        for step in sorted(self.layout.checkpoints.glob("step_*.pt")):
            try:
                if step.stat().st_ino == target.st_ino and step.stat().st_dev == target.st_dev:
                    return step.name
            except OSError:
                continue
        return link.name


def read_run(run_dir: Path) -> RunFiles:
    """Read ``run_dir``'s configuration, split, epoch log and evaluation JSONs.

    Raises:
        InputError: the folder does not exist, or holds no readable ``config.json``.
    """
    layout = RunLayout.of_run(run_dir)
    try:
        config = json.loads(layout.config.read_text())
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
    except (ValueError, OSError) as exc:
        raise InputError(f"{layout.config}: unreadable run configuration ({exc})") from None
    run = RunFiles(layout=layout, config=config)
    if layout.split.is_file():
        try:
            run.split = layout.read_split()
        except InputError as exc:
            run.notes.append(str(exc))
    run.epochs = _read_csv(layout.epochs, run.notes)
    run.log_rows = len(_read_csv(layout.log, run.notes))
    run.evals = _find_evals(layout.root, run.notes)
    run.dial, run.dial_image = _read_dial(layout.root, run.notes)
    return run


def _read_dial(root: Path, notes: list[str]) -> tuple[dict[str, Any] | None, Path | None]:
    """``eval/dial.json`` (None when absent or unreadable, with a note) and ``eval/dial.png`` (None when absent)."""
    doc_path, image = dial_paths(root)
    image_found = image if image.is_file() else None
    if not doc_path.is_file():
        return None, image_found
    try:
        doc = json.loads(doc_path.read_text())
        if not isinstance(doc, dict) or not isinstance(doc.get("values"), list):
            raise ValueError("no list of values")
    except (ValueError, OSError) as exc:
        notes.append(f"{doc_path}: unreadable realism dial ({exc})")
        return None, image_found
    return doc, image_found


def _read_csv(path: Path, notes: list[str]) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    try:
        with open(path, newline="") as fh:
            return [row for row in csv.DictReader(fh) if None not in row.values()]  # a row being appended: dropped
    except (OSError, csv.Error) as exc:
        notes.append(f"{path}: unreadable ({exc})")
        return []


def _kind(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return None
    if isinstance(doc.get("per_subject"), dict) and isinstance(doc.get("rules"), dict):
        return "paired"
    if isinstance(doc.get("metrics"), dict) and "mode" in doc:
        return "gan"
    return None


def _find_evals(root: Path, notes: list[str]) -> list[EvalFile]:
    """Every evaluation JSON of the run folder, the ones ``pix2gan eval`` keeps first, duplicates dropped."""
    canonical = [root / "eval" / f"{s}.json" for s in SPLIT_NAMES] + [root / "eval" / "metrics.json"]
    others = [*sorted(root.glob("*.json")), *sorted(root.glob("eval/*.json")), *sorted(root.glob("eval/*/*.json"))]
    found: list[EvalFile] = []
    for path in dict.fromkeys([p for p in canonical if p.is_file()] + others):
        if path.name.startswith(".") or path in (root / "config.json", root / "split.json"):
            continue
        try:
            doc = json.loads(path.read_text())
        except (ValueError, OSError) as exc:
            if path in canonical:
                notes.append(f"{path}: unreadable evaluation file ({exc})")
            continue
        kind = _kind(doc)
        if kind is None or any(e.doc == doc for e in found):
            continue
        split = path.stem if path.parent == root / "eval" and path.stem in SPLIT_NAMES else None
        found.append(EvalFile(path=path, kind=kind, doc=doc, split=split))
    return found
