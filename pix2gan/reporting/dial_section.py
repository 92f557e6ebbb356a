"""The report's "Realism dial" section: the dial of a ``--gan-warmup`` run as ``pix2gan eval`` scored it.

From ``eval/dial.json`` (each realism A's means over the subjects, the run's default A) and ``eval/dial.png`` (one
slice at each A, :mod:`pix2gan.evaluation.dial`), read by :func:`~pix2gan.reporting.run_files.read_run`; the page
shows the section only when one of them is there.
"""

from __future__ import annotations

from pix2gan.reporting.html import cell, esc, figure, table
from pix2gan.reporting.numbers import format_metric, paired_columns, rules_line
from pix2gan.reporting.run_files import RunFiles, dial_paths

__all__ = ["dial_section"]

_DIAL_KEYS = ("mae", "psnr", "ssim", "nps_ratio", "nps_lsd", "sharpness", "sharpness_bone", "hu_w1")


def dial_section(run: RunFiles) -> str:
    """The dial's slice (``eval/dial.png``) and a table of each realism's means (``eval/dial.json``), its default
    marked."""
    doc = run.dial or {}
    values = [v for v in doc.get("values") or [] if isinstance(v, dict) and isinstance(v.get("mean"), dict)
              and isinstance(v.get("realism"), (int, float))]  # fmt: skip
    split, sub = doc.get("split", "test"), doc.get("slice") or {}
    parts = [f'<p class="note">The generator of a --gan-warmup run at realism A: (1 − A) × the regression snapshot '
             f"+ A × the adversarial generator, weight by weight; scored on the {esc(split)} subjects "
             f"(pix2gan translate/eval/export --realism A).</p>"]  # fmt: skip
    latest, written = run.mtime(run.layout.latest), run.mtime(dial_paths(run.root)[0])
    if latest is not None and written is not None and latest > written + 1:
        parts.append(f'<p class="warn">The run has trained since the dial was scored: pix2gan eval --run '
                     f"{esc(run.root)} scores it again.</p>")  # fmt: skip
    if values:
        columns = paired_columns({"rules": doc.get("rules") or {}, "per_subject": {"mean": values[0]["mean"]}})
        columns = {k: columns[k] for k in _DIAL_KEYS if k in columns}
        dr = (doc.get("rules") or {}).get("data_range")
        header = [cell("A"), *(cell(h, num=True, key=k) for k, h in columns.items())]
        rows = [[cell(f"{v['realism']:g}" + (" (default)" if v.get("default") else ""), head=True,
                      key=f"realism-{v['realism']:g}"),
                 *(cell(format_metric(k, v["mean"].get(k), dr), num=True) for k in columns)]
                for v in values]  # fmt: skip
        parts.append('<div class="scroll">' + table(header, rows, id="dial", cls="eval") + "</div>")
        n = len(values[0].get("per_subject") or {})
        parts.append(f'<p class="note">means over the {n} {esc(split)} subject{"s" if n != 1 else ""}; '
                     f"{esc(rules_line(doc))}</p>")  # fmt: skip
    if run.dial_image is not None:
        where = f"{sub.get('subject')}, slice {sub.get('index')}" if sub else "one slice"
        dialled = " | ".join(f"A = {v['realism']:g}" for v in values) or "A = 0 | A = 0.5 | A = 1"
        caption = (f"{where}: source | {dialled} | target, each titled with that subject's figures "
                   f"(eval/{run.dial_image.name})")  # fmt: skip
        parts.append('<div class="wide">' + figure(run.dial_image, caption) + "</div>")
    return "\n".join(parts)
