"""Evaluation reports as tables on the terminal.

Example:
    >>> fmt("ssim", 0.91234), fmt("mae", 78.6123), fmt("std_error_spearman", 0.41234), fmt("mae_bone", float("nan"))
    ('0.9123', '78.61', '0.412', '–')
    >>> fmt("nps_ratio", 0.81234), fmt("nps_lsd", 4.567), fmt("sharpness_bone", 0.7), fmt("hu_w1", 31.416)
    ('0.812', '4.57', '0.700', '31.42')
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from pix2gan.evaluation import DialReport, EvalReport, GanEvalReport, check_rules, summarise
from pix2gan.evaluation.metrics import TISSUES
from pix2gan.evaluation.realism import FIGURES
from pix2gan.reporting import numbers
from pix2gan.reporting.numbers import GAN_LABELS, REALISM_LABELS, format_gan_metric, format_mean_std
from pix2gan.reporting.numbers import format_metric as fmt

NAN = float("nan")

__all__ = ["print_gan_report", "print_paired_report", "print_dial", "fmt", "rules_line"]


def print_gan_report(console: Console, err: Console, report: GanEvalReport, title: str) -> None:
    """The figures of a noise/class run as a table; notes and sample grids on stderr."""
    table = Table(title=title, title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in report.metrics.items():
        table.add_row(GAN_LABELS.get(key, key), format_gan_metric(key, value))
    if report.per_class:
        table.add_section()
        for name, value in report.per_class.items():
            table.add_row(f"  consistency, class {name}", format_gan_metric("class_consistency", value))
    console.print(table)
    for note in report.notes:
        err.print(note, highlight=False, soft_wrap=True)
    for grid in report.grids:
        err.print(f"samples: {grid}", highlight=False, soft_wrap=True)


def _columns(report: EvalReport) -> dict[str, str]:
    """Metric key -> column header: the metrics asked for (a realism metric: its figures), the tissue MAEs after MAE
    (CT targets) and the uncertainty ranking, each only when the report has it."""
    unit = f" ({report.unit})" if report.unit else ""
    present = {key for row in report.per_subject.values() for key in row}
    columns: dict[str, str] = {}
    for m in report.metrics:
        if m in FIGURES:
            columns.update({k: REALISM_LABELS[k] for k in FIGURES[m] if k in present})
            continue
        columns[m] = {"mae": f"MAE{unit}", "psnr": "PSNR (dB)", "ssim": check_rules(report.rules).structural_name}[m]
        if m == "mae":
            columns.update({f"mae_{t}": f"MAE {t}{unit}" for t in TISSUES if f"mae_{t}" in present})
    if "std_error_spearman" in present:
        columns["std_error_spearman"] = "std~|err| ρ"
    return columns


def rules_line(report: EvalReport) -> str:
    """How the figures were computed: rules, data range, the intensity space, the structural similarity.

    Example:
        >>> rules_line(EvalReport(["mae"], {}, "HU", rules="synthrad2025", space="HU clipped to [-1024, 3071]",
        ...                       data_range=4095.0))
        'rules synthrad2025, data range 4095: HU clipped to [-1024, 3071]; SSIM column: masked MS-SSIM'
    """
    return numbers.rules_line({"rules": report.rules_block()})


def _paired_table(report: EvalReport, title: str, columns: dict[str, str]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("subject")
    for header in columns.values():
        table.add_column(header, justify="right")
    for sid, row in report.per_subject.items():
        table.add_row(sid, *(fmt(m, row.get(m, NAN), report.data_range) for m in columns))
    mean, std, dr = report.mean, report.std, report.data_range
    table.add_section()
    table.add_row("[bold]mean ± std",
                  *(f"[bold]{format_mean_std(m, mean.get(m, NAN), std.get(m, NAN), dr)}" for m in columns))
    if report.baseline_per_subject:
        bmean, bstd = summarise(report.baseline_per_subject)
        table.add_row(
            "[dim]lookup-table baseline",
            *(f"[dim]{format_mean_std(m, bmean.get(m, NAN), bstd.get(m, NAN), dr)}" for m in columns),
        )
    return table


def print_paired_report(console: Console, report: EvalReport, title: str) -> None:
    """Per-subject metrics, mean ± std and the lookup-table baseline as a table; "–" where a figure has no value;
    below it, the rules, data range and intensity space the figures were computed with (:func:`rules_line`).

    The tissue MAEs follow MAE and the uncertainty ranking comes last; when that table is wider than the terminal,
    the distortion metrics asked for keep their usual table, the added figures (tissue MAEs, uncertainty) go to a
    second one below it and the realism figures to a third.
    """
    columns = _columns(report)
    table = _paired_table(report, title, columns)
    realism = {k: h for k, h in columns.items() if k in REALISM_LABELS}
    asked = {m: columns[m] for m in report.metrics if m in columns and m not in realism}  # sharpness, hu_w1: figures
    added = {m: h for m, h in columns.items() if m not in asked and m not in realism}
    natural = console.measure(table, options=console.options.update_width(10_000)).maximum  # without wrapping
    if natural <= console.width or len([part for part in (asked, added, realism) if part]) < 2:
        console.print(table)
    else:
        for part, suffix in ((asked, ""), (added, " (continued)"), (realism, " (realism)")):
            if part:
                console.print(_paired_table(report, f"{title}{suffix}", part))
    console.print(rules_line(report), style="dim", markup=False, highlight=False, soft_wrap=True)


_DIAL_COLUMNS = ("mae", "psnr", "ssim", "nps_ratio", "sharpness", "hu_w1")


def print_dial(console: Console, dial: DialReport) -> None:
    """The realism dial after the main table: one line per realism A (the run's default marked), the means over the
    split of MAE, PSNR, SSIM, NPS ratio, sharpness and W1, where scored."""
    first = next(iter(dial.reports.values()))
    columns = {k: h for k, h in _columns(first).items() if k in _DIAL_COLUMNS}
    table = Table(title=f"realism dial - {dial.split} subjects, means", title_justify="left")
    table.add_column("A")
    for header in columns.values():
        table.add_column(header, justify="right")
    for a, report in dial.reports.items():
        mean = report.mean
        table.add_row(f"{a:g}{' (default)' if a == dial.default else ''}",
                      *(fmt(m, mean.get(m, NAN), report.data_range) for m in columns))  # fmt: skip
    console.print(table)
