"""The report's evaluation of a paired run: the tables of ``pix2gan eval`` (per subject, mean ± std, median,
quartiles, the lookup-table baseline; the realism figures in a table of their own), how they were computed, and the
subjects' panels, read from the run folder (:func:`~pix2gan.reporting.run_files.read_run`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pix2gan.reporting.html import cell, esc, figures, table
from pix2gan.reporting.numbers import (REALISM_LABELS, REALISM_NOTES, data_range_of, format_mean_std, format_metric,
                                      paired_columns, rules_line)
from pix2gan.reporting.run_files import EvalFile, RunFiles

__all__ = ["paired_eval"]


def _paired_unit(doc: dict[str, Any]) -> str:
    return " HU" if str((doc.get("rules") or {}).get("space", "")).startswith("HU") else ""


def _data_range(doc: dict[str, Any]) -> float | None:
    value = (doc.get("rules") or {}).get("data_range")
    return float(value) if isinstance(value, (int, float)) else None


def _paired_table(doc: dict[str, Any], per_subject: dict[str, dict[str, Any]], summary: dict[str, Any],
                  columns: dict[str, str], id: str, mean_label: str) -> str:  # noqa: A002  # fmt: skip
    dr = data_range_of(doc)
    header = [cell("subject"), *(cell(h, num=True, key=k) for k, h in columns.items())]
    rows = [[cell(sid, head=True, key=sid), *(cell(format_metric(k, row.get(k), dr), num=True) for k in columns)]
            for sid, row in per_subject.items()]  # fmt: skip
    mean, std = summary.get("mean") or {}, summary.get("std") or {}
    foot = [("mean", [cell(mean_label, head=True, key="mean"),
                      *(cell(format_mean_std(k, mean.get(k), std.get(k), dr), num=True) for k in columns)])]  # fmt: skip
    if "median" in summary:
        med, q1, q3 = summary.get("median") or {}, summary.get("q1") or {}, summary.get("q3") or {}
        foot.append(("median", [cell("median", head=True, key="median"),
                                *(cell(format_metric(k, med.get(k), dr), num=True) for k in columns)]))
        foot.append(("quartiles", [cell("quartiles q1 – q3", head=True, key="quartiles"), *(cell(
            f"{format_metric(k, q1.get(k), dr)} – {format_metric(k, q3.get(k), dr)}" if q1.get(k) is not None else "–",
            num=True) for k in columns)]))  # fmt: skip
    base = doc.get("baseline") or {}
    if base and summary is doc:
        bmean, bstd = base.get("mean") or {}, base.get("std") or {}
        foot.append(("baseline", [cell("lookup-table baseline", head=True, key="baseline"),
                                  *(cell(format_mean_std(k, bmean.get(k), bstd.get(k), dr), num=True)
                                    for k in columns)]))  # fmt: skip
    return '<div class="scroll">' + table(header, rows, foot=foot, id=id, cls="eval") + "</div>"


def _column_groups(columns: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
    """The distortion figures and, in a table of their own (id suffix ``-realism``), the realism figures: one table
    of both would be wider than the page, and the realism columns would hide behind its scroll bar."""
    realism = {k: h for k, h in columns.items() if k in REALISM_LABELS}
    distortion = {k: h for k, h in columns.items() if k not in realism}
    return [("", distortion)] + ([("-realism", realism)] if realism else [])


def paired_eval(run: RunFiles, ev: EvalFile) -> str:
    """The evaluation of a paired run: the figures' tables (per subject, summaries, the lookup-table baseline), how
    they were computed, and the subjects' panels."""
    doc = ev.doc
    columns = paired_columns(doc)
    name = ev.split or ev.path.stem
    parts = [_paired_table(doc, doc["per_subject"], doc, part, f"eval-{name}{suffix}", "mean ± std")
             for suffix, part in _column_groups(columns)]  # fmt: skip
    parts.append(f'<p class="note">{esc(rules_line(doc))}</p>')
    parts.extend(f'<p class="note">{esc(REALISM_LABELS[k])}: {esc(REALISM_NOTES[k])}</p>' for k in columns
                 if k in REALISM_NOTES)  # fmt: skip
    source = (doc.get("rules") or {}).get("source")
    if source:
        parts.append(f'<p class="note">metrics as computed by {esc(source)}; mean and std over subjects '
                     "(population std), quartiles by linear interpolation</p>")  # fmt: skip
    base = doc.get("baseline") or {}
    if isinstance(base.get("per_subject"), dict) and base["per_subject"]:
        parts.append(f"<details><summary>lookup-table baseline per subject ({esc(base.get('method', ''))})</summary>")
        parts.extend(_paired_table(doc, base["per_subject"], base, part, f"baseline-{name}{suffix}", "mean ± std")
                     for suffix, part in _column_groups(columns))  # fmt: skip
        parts.append("</details>")
    panels = _subject_panels(run, ev)
    if panels:
        titles = "source | prediction | target | |error|"
        parts.append(f'<p class="note">Per subject: three slices (25 %, 50 %, 75 % of the body along the slice axis), '
                     f"{esc(titles)}.</p>")  # fmt: skip
        unit, dr = _paired_unit(doc), data_range_of(doc)
        parts.append(figures([(p, f"{sid}: MAE {format_metric('mae', doc['per_subject'][sid].get('mae'), dr)}{unit}"
                                f" ({run.rel(p)})") for sid, p in panels]))  # fmt: skip
    else:
        parts.append('<p class="note">No subject panels in the run folder (evaluated with --out elsewhere?).</p>')
    return "\n".join(parts)


def _subject_panels(run: RunFiles, ev: EvalFile) -> list[tuple[str, Path]]:
    """(subject, panel PNG) of the subjects an evaluation scored, from its split's folder or any ``eval/*/``."""
    out = []
    for sid in ev.doc["per_subject"]:
        candidates = [run.root / "eval" / ev.split / f"{sid}.png"] if ev.split else []
        realism = ev.doc.get("realism") if isinstance(ev.doc.get("realism"), dict) else {}
        if ev.split and realism.get("default") is False and isinstance(realism.get("value"), (int, float)):
            candidates.insert(0, run.root / "eval" / ev.split / f"realism-{realism['value']:g}" / f"{sid}.png")
        candidates += [ev.path.parent / f"{sid}.png", *sorted(run.root.glob(f"eval/*/{_glob_escape(sid)}.png"))]
        found = next((p for p in candidates if p.is_file()), None)
        if found is not None:
            out.append((sid, found))
    return out


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)
