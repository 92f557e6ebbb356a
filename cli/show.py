"""Evaluation reports as tables on the terminal.

Example:
    >>> fmt("ssim", 0.91234), fmt("mae", 78.6123)
    ('0.9123', '78.61')
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from pix2gan.evaluation import EvalReport, GanEvalReport, summarise

__all__ = ["print_gan_report", "print_paired_report", "fmt"]


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


def fmt(metric: str, value: float) -> str:
    return f"{value:.4f}" if metric == "ssim" else f"{value:.2f}"


def print_paired_report(console: Console, report: EvalReport, title: str) -> None:
    """Per-subject metrics, mean ± std and the lookup-table baseline as a table."""
    units = {"mae": f"MAE ({report.unit})" if report.unit else "MAE", "psnr": "PSNR (dB)", "ssim": "SSIM"}
    table = Table(title=title, title_justify="left")
    table.add_column("subject")
    for m in report.metrics:
        table.add_column(units[m], justify="right")
    for sid, row in report.per_subject.items():
        table.add_row(sid, *(fmt(m, row[m]) for m in report.metrics))
    mean, std = report.mean, report.std
    table.add_section()
    table.add_row("[bold]mean ± std", *(f"[bold]{fmt(m, mean[m])} ± {fmt(m, std[m])}" for m in report.metrics))
    if report.baseline_per_subject:
        bmean, bstd = summarise(report.baseline_per_subject)
        table.add_row(
            "[dim]lookup-table baseline", *(f"[dim]{fmt(m, bmean[m])} ± {fmt(m, bstd[m])}" for m in report.metrics)
        )
    console.print(table)
