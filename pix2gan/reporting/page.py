"""The run report: one self-contained HTML page written from a run folder's files.

Sections: an overview (what was trained, on what, how far, the headline figures), the evaluation (the tables of
``pix2gan eval``, its panels or sample grids; a paired run's in :mod:`pix2gan.reporting.eval_section`), the realism
dial of a ``--gan-warmup`` run when ``eval`` scored it (:mod:`pix2gan.reporting.dial_section`: one slice and the
figures at A = 0, 0.5 and 1), training (loss and validation curves, the last epoch's panel or grids, the per-epoch
figures) and the configuration (``config.json`` section by section, the subject split).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from pix2gan.config.training import warmup_epochs_of
from pix2gan.io import atomic_write_text, check_new_file
from pix2gan.reporting.dial_section import dial_section
from pix2gan.reporting.eval_section import paired_eval
from pix2gan.reporting.html import cell, esc, figure, figures, page, table
from pix2gan.reporting.image_run import NO_EVAL, NO_SPLIT, image_run_rows, is_image_run_config, lowest_cycle
from pix2gan.reporting.numbers import (GAN_LABELS, data_range_of, format_gan_metric, format_mean_std, format_metric,
                                      paired_columns)
from pix2gan.reporting.run_files import EvalFile, RunFiles, read_run
from pix2gan.reporting.sources_rows import source_rows, sources_text

__all__ = ["write_html_report", "render_html_report", "config_value", "REPORT_NAME"]

REPORT_NAME = "report.html"

_MODES = {"paired": "paired (pix2pix image-to-image)", "noise": "noise (GAN: noise → image)",
          "class": "class (class-conditional GAN)", "unpaired": "unpaired (CycleGAN: image-to-image both ways)"}  # fmt: skip
_UNUSED = {"paired": "gan", "noise": "model", "class": "model", "unpaired": "gan"}  # the config section not used


def write_html_report(run_dir: str | Path, *, out: str | Path | None = None) -> Path:
    """Write the report of the run in ``run_dir`` to ``out`` (default ``RUN/report.html``, replaced); return its path.

    Only the run folder's files are read (never a checkpoint), and the page is written atomically.

    Raises:
        InputError: no such run folder, no readable ``config.json``, or ``out`` cannot be written.
    """
    run_dir = Path(run_dir)
    target = Path(out) if out is not None else run_dir / REPORT_NAME
    text = render_html_report(run_dir)
    check_new_file(target, overwrite=True)
    atomic_write_text(target, text)
    return target


def render_html_report(run_dir: str | Path) -> str:
    """The report of the run in ``run_dir`` as one HTML document (images embedded, no external reference)."""
    run = read_run(Path(run_dir))
    sections = [("overview", "Overview", _overview(run)), ("evaluation", "Evaluation", _evaluation(run)),
                ("training", "Training", _training(run))]  # fmt: skip
    if run.dial is not None or run.dial_image is not None:
        sections.insert(2, ("dial", "Realism dial", dial_section(run)))
    samples = _samples(run)
    if samples:
        sections.append(("samples", "Samples", samples))
    sections.append(("configuration", "Configuration", _configuration(run)))
    body = "\n".join(f'<section id="{a}"><h2>{esc(label)}</h2>\n{content}</section>' for a, label, content in sections)
    data = run.section("data")
    arrow = {"paired": "→", "unpaired": "↔"}.get(run.mode)
    what = f"{sources_text(data)} {arrow} {data.get('dst')}" if arrow else f"images of {data.get('root')}"
    subtitle = f"{_MODES.get(run.mode, run.mode)} · {what} · {_span(run)}"
    footer = (f"pix2gan report, written {_when(time.time())} from the files of {run.root.resolve()} "
              "(no checkpoint was read)")  # fmt: skip
    return page(f"pix2gan report: {run.root.name}", run.root.name, subtitle, [(a, label) for a, label, _ in sections],
                body, footer)  # fmt: skip


# --- small helpers --------------------------------------------------------------------------------------------------


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t is not None else "?"


def _span(run: RunFiles) -> str:
    start, end = run.started, run.last_written
    if start is None:
        return ""
    if end is None or _when(end) == _when(start):
        return f"trained {_when(start)}"
    return f"trained {_when(start)} – {_when(end)}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def _number(value: str | None) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _stats(items: list[tuple[str, str]]) -> str:
    cards = "".join(f'<div class="stat"><div class="v">{esc(v)}</div><div class="k">{esc(k)}</div></div>'
                    for k, v in items)  # fmt: skip
    return f'<div class="stats">{cards}</div>' if cards else ""


def _eval_title(ev: EvalFile) -> str:
    if ev.kind == "gan":
        return f"{ev.doc.get('mode', 'generative')} mode: generated vs real images"
    realism = ev.doc.get("realism") if isinstance(ev.doc.get("realism"), dict) else {}
    at = f" at realism {realism['value']:g}" if isinstance(realism.get("value"), (int, float)) else ""
    return (f"{ev.split} subjects" if ev.split else ev.path.name) + at


# --- overview -------------------------------------------------------------------------------------------------------


def _best_epoch(run: RunFiles) -> dict[str, str] | None:
    scored = [row for row in run.epochs if _number(row.get("val_mae")) is not None]
    return min(scored, key=lambda row: _number(row["val_mae"])) if scored else None  # type: ignore[arg-type,return-value]


def _planned(train: dict[str, Any]) -> str:
    """The run's count of epochs ("?" while a ``--minutes`` run has not settled it), with its budget.

    Example:
        >>> _planned({"epochs": 12}), _planned({"epochs": None, "minutes": 4.0}), _planned({"epochs": 9, "minutes": 4})
        ('12', '? (4 min budget)', '9 (4 min budget)')
    """
    count = "?" if train.get("epochs") is None else str(train["epochs"])
    return count if train.get("minutes") is None else f"{count} ({float(train['minutes']):g} min budget)"


def _warmup(train: dict[str, Any]) -> str:
    """A ``--gan-warmup`` run's phases, for the training row ("" without one)."""
    if not train.get("gan_warmup"):
        return ""
    epochs, warm = train.get("epochs"), train.get("gan_warmup_epochs")
    if warm is None and epochs is not None:
        warm = warmup_epochs_of(float(train["gan_warmup"]), int(epochs))
    first = f"{warm} epochs" if warm is not None else f"{float(train['gan_warmup']):g} of the budget"
    lr_d = train.get("lr_d") or train.get("lr")
    return (f"; regression warm-up of {first}, then {train.get('gan_loss')} at G lr {train.get('lr_gan') or train.get('lr')}, "
            f"D lr {lr_d}")


def _identity(weight: Any, context: Any) -> str:
    """An unpaired run's identity term (None: CycleGAN's 0.5 where it applies, off with ``--context``)."""
    if weight is None:
        return "identity off (--context)" if context else "identity 0.5 × λ cycle"
    return f"identity {weight} × λ cycle" if weight else "no identity term"


def _headline(run: RunFiles) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    train = run.section("train")
    items.append(("epochs trained", f"{len(run.epochs)} / {_planned(train)}"))
    seconds = sum(_number(row.get("seconds")) or 0.0 for row in run.epochs)
    if seconds:
        items.append(("training time (steps and validation)", _duration(seconds)))
    best = _best_epoch(run)
    if best is not None:
        unit = " (HU)" if run.section("data").get("dst_intensity") == "hu" else ""
        of = " of G_ab" if run.mode == "unpaired" else ""
        items.append((f"best validation MAE{of}{unit}, epoch {best['epoch']}", format_metric("mae", _number(best["val_mae"]))))
    elif run.mode == "unpaired" and (cycle := lowest_cycle(run.epochs)) is not None:  # (no validation: best.pt's score)
        items.append((f"lowest training cycle loss (a + b), epoch {cycle[0]}", f"{cycle[1]:.4g}"))
    for ev in run.evals[:1]:
        doc = ev.doc
        if ev.kind == "paired":
            dr, label = data_range_of(doc), ev.split or ev.path.name
            mean, std = doc.get("mean") or {}, doc.get("std") or {}
            columns = paired_columns(doc)
            for key in ("mae", "psnr", "ssim"):
                if key in mean:
                    items.append((f"{label} {columns[key]}, mean ± std",
                                  format_mean_std(key, mean[key], std.get(key), dr)))
            base = (doc.get("baseline") or {}).get("mean") or {}
            if "mae" in base:
                items.append((f"lookup-table baseline {columns['mae']}", format_metric("mae", base["mae"], dr)))
        else:
            for key in ("class_consistency", "frechet_distance", "diversity_ratio"):
                if key in doc["metrics"]:
                    items.append((GAN_LABELS.get(key, key), format_gan_metric(key, doc["metrics"][key])))
    return items


def _translation_rows(run: RunFiles) -> list[tuple[str, str]]:
    """The overview of an image-to-image run: its direction(s), data, slices, networks and losses."""
    data, model, train = run.section("data"), run.section("model"), run.section("train")
    src, dst, mask = sources_text(data), data.get("dst"), f"(mask: {data.get('mask') or 'none'})"
    planes = ", ".join(data.get("planes") or []) or f"array axis {data.get('slice_axis')}"
    disc = f"{model.get('discriminator')} discriminator"
    if run.mode == "unpaired":
        translation = f"G_ab: {src} → {dst}, G_ba: {dst} → {src} {mask}"
        networks = (f"2 × {model.get('generator')} generator (G_ab, G_ba; {model.get('base_filters')} filters, "
                    f"{model.get('norm')} norm), 2 × {disc} (D_a, D_b; {model.get('disc_layers')} layers, "
                    f"{model.get('disc_filters')} filters)")  # fmt: skip
        losses = (f"GAN loss {train.get('gan_loss')}, λ cycle {train.get('lambda_cycle')} each way, "
                  f"{_identity(train.get('lambda_identity'), data.get('context'))}, history pool {train.get('pool_size')} per discriminator")
    else:
        translation = f"{src} → {dst} {mask}"
        networks = (f"{model.get('generator')} generator (depth {model.get('depth')}, {model.get('base_filters')} "
                    f"filters), {disc} ({model.get('disc_layers')} layers, {model.get('disc_filters')} filters)")
        losses = f"GAN loss {train.get('gan_loss')}, λ L1 {train.get('lambda_l1')}"
        if train.get("mask_weight") is not None:
            losses += f" (mask weight {train.get('mask_weight')})"
        if train.get("lambda_ssim"):
            losses += f", λ SSIM {train.get('lambda_ssim')}"
    if is_image_run_config(run.config):  # two image folders: images instead of subjects and slices
        return image_run_rows(run.config, networks, losses)
    return [("translation", translation), ("data", str(data.get("root"))),
            ("slices", f"planes: {planes}; context: {data.get('context')} slice(s) on each side"),
            *source_rows(data, model), ("networks", networks), ("losses", losses)]  # fmt: skip


def _overview(run: RunFiles) -> str:
    data, train = run.section("data"), run.section("train")
    rows: list[tuple[str, str]] = [("run folder", str(run.root.resolve())), ("mode", _MODES.get(run.mode, run.mode))]
    if run.mode in ("paired", "unpaired"):
        rows += _translation_rows(run)
    else:
        gan = run.section("gan")
        rows.append(("data", str(data.get("root"))))
        classes = f", {gan.get('num_classes')} classes" if run.mode == "class" else ""
        rows.append(("networks", f"{gan.get('generator')} generator, {gan.get('discriminator')} discriminator; "
                                 f"latent {gan.get('latent_dim')}, images {gan.get('channels')} × "
                                 f"{gan.get('image_size')}²{classes}"))  # fmt: skip
    last_step = run.epochs[-1].get("step") if run.epochs else None
    rows.append(("training", f"{len(run.epochs)} of {_planned(train)} epochs ({last_step or 0} steps), batch "
                             f"{train.get('batch_size')}, lr {train.get('lr')}, device {train.get('device')}, "
                             f"precision {train.get('precision')}{_warmup(train)}"))  # fmt: skip
    if run.split is not None:
        rows.append(("subjects", " · ".join(f"{len(ids)} {name}" for name, ids in run.split.items())))
    rows.append(("started", _when(run.started)))
    rows.append(("last written", _when(run.last_written)))
    links = []
    for link in (run.layout.latest, run.layout.best):
        name = run.checkpoint_name(link)
        if name is not None:
            links.append(f"{link.name} = {name}" if name != link.name else link.name)
    rows.append(("checkpoints", ", ".join(links) or "none yet"))
    if run.evals:
        rows.append(("evaluated", "; ".join(f"{run.rel(e.path)} ({_when(run.mtime(e.path))})" for e in run.evals)))
    notes = "".join(f'<p class="warn">{esc(n)}</p>' for n in run.notes)
    return _stats(_headline(run)) + table(None, [[cell(k, head=True), v] for k, v in rows], cls="glance") + notes


# --- evaluation -----------------------------------------------------------------------------------------------------


def _evaluation(run: RunFiles) -> str:
    if not run.evals:
        empty = NO_EVAL if is_image_run_config(run.config) else "not evaluated yet: pix2gan eval --run {run}"
        empty = empty.format(run=run.root)
        parts = [f'<p class="empty">{esc(empty)}</p>']
        loose = sorted(run.root.glob("eval/*/*.png")) + sorted(run.root.glob("eval/*.png"))
        if loose:
            parts.append('<p class="note">Images an earlier evaluation left (its figures were not kept):</p>')
            parts.append(figures([(p, run.rel(p)) for p in loose]))
        return "\n".join(parts)
    latest = run.mtime(run.layout.latest)
    parts = []
    for ev in run.evals:
        written = run.mtime(ev.path)
        parts.append(f"<h3>{esc(_eval_title(ev))}</h3>")
        parts.append(f'<p class="note">{esc(run.rel(ev.path))}, written {esc(_when(written))}</p>')
        if latest is not None and written is not None and latest > written + 1:
            parts.append(f'<p class="warn">The run has trained since this evaluation (latest checkpoint '
                         f"{esc(_when(latest))}): pix2gan eval --run {esc(run.root)} scores it again.</p>")  # fmt: skip
        parts.append(paired_eval(run, ev) if ev.kind == "paired" else _gan_eval(run, ev))
    return "\n".join(parts)


def _gan_eval(run: RunFiles, ev: EvalFile) -> str:
    doc = ev.doc
    rows = [[cell(GAN_LABELS.get(k, k), head=True, key=k), cell(format_gan_metric(k, v), num=True)]
            for k, v in doc["metrics"].items()]  # fmt: skip
    tables = [table([cell("figure"), cell("value", num=True)], rows, id="eval-gan", cls="eval")]
    per_class = doc.get("per_class") or {}
    if per_class:
        rows = [[cell(name, head=True, key=name), cell(format_gan_metric("class_consistency", v), num=True)]
                for name, v in per_class.items()]  # fmt: skip
        tables.append(table([cell("class"), cell("consistency", num=True)], rows, id="eval-per-class", cls="eval"))
    for name in doc.get("grids") or []:
        path = Path(str(name))
        path = path if path.is_file() else run.root / "eval" / path.name  # the run folder may have moved
        tables.append(figure(path, f"samples the evaluation drew ({run.rel(path)})"))
    parts = ['<div class="side">' + "".join(f"<div>{t}</div>" for t in tables if t) + "</div>"]
    parts += [f'<p class="note">{esc(note)}</p>' for note in doc.get("notes") or []]
    return "\n".join(parts)


# --- training -------------------------------------------------------------------------------------------------------


def _loss_curve(run: RunFiles) -> bytes | None:
    """``loss_curve.png``, drawn again from the CSV logs when it is missing or older than them."""
    layout = run.layout
    newest_log = max((t for t in (run.mtime(layout.log), run.mtime(layout.epochs)) if t is not None), default=None)
    curve_time = run.mtime(layout.loss_curve)
    if curve_time is not None and (newest_log is None or curve_time >= newest_log):
        return layout.loss_curve.read_bytes()
    if newest_log is not None and run.log_rows:
        from pix2gan.reporting.curves import save_loss_curve

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "loss_curve.png"
            try:
                save_loss_curve(layout.log, path, epochs_csv=layout.epochs)
                if path.is_file():
                    return path.read_bytes()
            except Exception as exc:  # noqa: BLE001  (a plot that cannot be drawn must not cost the report)
                run.notes.append(f"loss curve not drawn again from the logs ({type(exc).__name__}: {exc})")
    return layout.loss_curve.read_bytes() if curve_time is not None else None


def _epoch_value(key: str, value: str) -> str:
    number = _number(value)
    if number is None or key in ("epoch", "step"):
        return value
    return f"{number:.1f}" if key == "seconds" else f"{number:.4g}"


def _training(run: RunFiles) -> str:
    parts = []
    curve = _loss_curve(run)
    if curve is not None:
        what = "and validation MAE per epoch " if any(r.get("val_mae") for r in run.epochs) else ""
        what += "(G: adversarial, cycle and identity terms of both directions) " if run.mode == "unpaired" else ""
        parts.append('<div class="wide">' + figure(curve, f"generator and discriminator losses per step (moving "
                                                          f"average) {what}(loss_curve.png)") + "</div>")  # fmt: skip
    else:
        parts.append('<p class="empty">no training steps logged yet</p>')
    panels = run.epoch_panels()
    if panels:
        last = panels[-1]
        epoch = last.stem.removeprefix("epoch_").lstrip("0") or "0"
        if run.mode == "paired":
            items: list[tuple[Path | bytes, str]] = [(last, f"validation panel after epoch {epoch}: source | "
                                                            f"prediction | target | |error| ({run.rel(last)})")]  # fmt: skip
        elif run.mode == "unpaired":
            items = [(p, f"a → b → a and b → a → b after epoch {p.stem.removeprefix('epoch_').lstrip('0') or '0'}: "
                         f"input | translated | back again ({run.rel(p)})") for p in dict.fromkeys([panels[0], last])]  # fmt: skip
        else:
            items = [(p, f"samples after epoch {p.stem.removeprefix('epoch_').lstrip('0') or '0'}, fixed latent "
                         f"vectors ({run.rel(p)})") for p in dict.fromkeys([panels[0], last])]  # fmt: skip
        parts.append(figures(items))
    if run.epochs:
        keys = list(run.epochs[0])
        rows = [[cell(_epoch_value(k, row.get(k) or ""), num=True) for k in keys] for row in run.epochs]
        open_ = " open" if len(rows) <= 12 else ""
        parts.append(f"<details{open_}><summary>figures per epoch ({len(rows)} epochs, epochs.csv)</summary>")
        parts.append(table([cell(k, num=True, key=k) for k in keys], rows, id="epochs"))
        parts.append("</details>")
    return "\n".join(parts)


def _samples(run: RunFiles) -> str:
    folder = run.root / "samples"
    files = sorted(folder.glob("*.png")) if folder.is_dir() else []
    if not files:
        return ""
    return ('<p class="note">Drawn with pix2gan sample.</p>'
            + figures([(p, run.rel(p)) for p in files]))  # fmt: skip


# --- configuration --------------------------------------------------------------------------------------------------


def config_value(value: Any) -> str:
    """A configuration value as the report shows it: strings as they are, anything else as JSON.

    Example:
        >>> config_value("t1"), config_value([0.5, 99.5]), config_value(None), config_value(True)
        ('t1', '[0.5, 99.5]', 'null', 'true')
    """
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _configuration(run: RunFiles) -> str:
    parts = []
    if run.split is not None:
        parts.append("<h3>subject split (split.json)</h3>")
        rows = [[cell(f"{name} ({len(ids)})", head=True, key=name), cell(", ".join(ids) or "–")]
                for name, ids in run.split.items()]  # fmt: skip
        parts.append(table(None, rows, id="split", cls="subjects"))
    elif run.mode in ("noise", "class"):
        parts.append('<p class="note">Noise and class runs train on every image: no subject split.</p>')
    elif is_image_run_config(run.config):
        parts.append(f'<p class="note">Two image folders, every image trained on: {esc(NO_SPLIT)}.</p>')
    parts.append("<h3>config.json</h3>")
    unused = _UNUSED.get(run.mode)
    used, rest = [], []
    loose = {k: v for k, v in run.config.items() if not isinstance(v, dict)}
    sections = {k: v for k, v in run.config.items() if isinstance(v, dict)} | ({"other": loose} if loose else {})
    for name, values in sections.items():
        block = (f"<div><h3>{esc(name)}</h3>"
                 + table(None, [[cell(k, head=True, key=k), config_value(v)] for k, v in values.items()],
                         id=f"config-{name}", cls="config-table") + "</div>")  # fmt: skip
        (rest if name == unused else used).append(block)
    parts.append('<div class="config">' + "".join(used) + "</div>")
    if rest:
        parts.append(f"<details><summary>{esc(unused)}: not used by {esc(run.mode)} runs</summary>"
                     f'<div class="config">{"".join(rest)}</div></details>')  # fmt: skip
    return "\n".join(parts)
