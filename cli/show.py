"""Evaluation reports as tables on the terminal.

Example:
    >>> fmt("ssim", 0.91234), fmt("mae", 78.6123), fmt("std_error_spearman", 0.41234), fmt("mae_bone", float("nan"))
    ('0.9123', '78.61', '0.412', '–')
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from pix2gan.evaluation import EvalReport, GanEvalReport, check_rules, summarise
from pix2gan.evaluation.metrics import TISSUES

NAN = float("nan")

__all__ = ["print_gan_report", "print_paired_report", "fmt", "rules_line"]


def print_gan_report(console: Console, err: Console, report: GanEvalReport, title: str) -> None:
    """The figures of a noise/class run as a table; notes and sample grids on stderr."""
    labels = {
        "classifier_accuracy": "real-image classifier accuracy (held out)",
        "class_consistency": "class consistency of generated images",
        "frechet_distance": "Fréchet distance (learned features)",
        "kid": "KID (learned features)",
        "diversity_generated": "diversity, generated",
        "diversity_real": "diversity, real",
        "diversity_ratio": "diversity ratio generated / real",
        "fid": "FID (InceptionV3)",
        "kid_inception": "KID (InceptionV3)",
    }
    table = Table(title=title, title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in report.metrics.items():
        pct = key in ("classifier_accuracy", "class_consistency")
        table.add_row(labels.get(key, key), f"{100 * value:.1f} %" if pct else f"{value:.4g}")
    if report.per_class:
        table.add_section()
        for name, value in report.per_class.items():
            table.add_row(f"  consistency, class {name}", f"{100 * value:.1f} %")
    console.print(table)
    for note in report.notes:
        err.print(note, highlight=False, soft_wrap=True)
    for grid in report.grids:
        err.print(f"samples: {grid}", highlight=False, soft_wrap=True)


def fmt(metric: str, value: float, data_range: float | None = None) -> str:
    """A figure as the table shows it; MAEs of a small data range (MR targets in [-1, 1]) with 4 decimals.

    Example:
        >>> fmt("mae", 48.0912), fmt("mae", 0.08153, data_range=2.0), fmt("ssim", 0.97904), fmt("mae_bone", float("nan"))
        ('48.09', '0.0815', '0.9790', '–')
    """
    if value != value:  # nan: a tissue class absent from a subject, a constant uncertainty map
        return "–"
    if metric == "ssim" or (metric.startswith("mae") and data_range is not None and data_range <= 10):
        return f"{value:.4f}"
    return f"{value:.3f}" if metric == "std_error_spearman" else f"{value:.2f}"


def _columns(report: EvalReport) -> dict[str, str]:
    """Metric key -> column header: the metrics asked for, the tissue MAEs after MAE (CT targets) and the
    uncertainty ranking, each only when the report has it."""
    unit = f" ({report.unit})" if report.unit else ""
    present = {key for row in report.per_subject.values() for key in row}
    columns: dict[str, str] = {}
    for m in report.metrics:
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
    rules = check_rules(report.rules)
    line = f"rules {rules.name}"
    if report.data_range is not None:
        line += f", data range {report.data_range:g}"
    if report.space:
        line += f": {report.space}"
    return f"{line}; SSIM column: masked {rules.structural_name}"


def _mean_std(metric: str, mean: float, std: float, data_range: float | None = None) -> str:
    if mean != mean:
        return fmt(metric, mean)
    return f"{fmt(metric, mean, data_range)} ± {fmt(metric, std, data_range)}"


def _paired_table(report: EvalReport, title: str, columns: dict[str, str]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("subject")
    for header in columns.values():
        table.add_column(header, justify="right")
    for sid, row in report.per_subject.items():
        table.add_row(sid, *(fmt(m, row.get(m, NAN), report.data_range) for m in columns))
    mean, std, dr = report.mean, report.std, report.data_range
    table.add_section()
    table.add_row("[bold]mean ± std", *(f"[bold]{_mean_std(m, mean.get(m, NAN), std.get(m, NAN), dr)}" for m in columns))
    if report.baseline_per_subject:
        bmean, bstd = summarise(report.baseline_per_subject)
        table.add_row(
            "[dim]lookup-table baseline",
            *(f"[dim]{_mean_std(m, bmean.get(m, NAN), bstd.get(m, NAN), dr)}" for m in columns),
        )
    return table


def print_paired_report(console: Console, report: EvalReport, title: str) -> None:
    """Per-subject metrics, mean ± std and the lookup-table baseline as a table; "–" where a figure has no value;
    below it, the rules, data range and intensity space the figures were computed with (:func:`rules_line`).

    The tissue MAEs follow MAE and the uncertainty ranking comes last; when that table is wider than the terminal,
    the metrics asked for keep their usual table and the added figures go to a second one below it.
    """
    columns = _columns(report)
    table = _paired_table(report, title, columns)
    asked = {m: columns[m] for m in report.metrics}
    natural = console.measure(table, options=console.options.update_width(10_000)).maximum  # without wrapping
    if len(asked) == len(columns) or natural <= console.width:
        console.print(table)
    else:
        console.print(_paired_table(report, title, asked))
        added = {m: h for m, h in columns.items() if m not in asked}
        console.print(_paired_table(report, f"{title} (continued)", added))
    console.print(rules_line(report), style="dim", markup=False, highlight=False, soft_wrap=True)
