"""Pictures people would rather look at than read: loss curves and source | prediction | target | error panels.

matplotlib is imported lazily (inside the functions) with the non-interactive Agg backend, so importing pix2gan stays
light and no display is needed. Every PNG is written atomically.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pix2gan.volumes import atomic_path

__all__ = ["save_panel", "save_loss_curve"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:  # noqa: ANN001
    plt = _pyplot()
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def save_panel(
    path: str | Path,
    rows: Sequence[dict[str, np.ndarray]],
    *,
    titles: Sequence[str] = ("source", "prediction", "target", "|error|"),
    windows: dict[str, tuple[float, float]] | None = None,
    row_labels: Sequence[str] | None = None,
) -> None:
    """Write a grid of 2-D images: one row per slice, one column per entry of ``titles``.

    Args:
        path: PNG file.
        rows: per row, ``{title: image (H, W)}``; missing titles leave the cell empty.
        titles: column titles (and keys into each row).
        windows: display range per title (e.g. ``{"target": (-1000, 2000)}``); default the image's 1-99 percentile.
        row_labels: text at the left of each row.
    """
    plt = _pyplot()
    windows = windows or {}
    n_rows, n_cols = len(rows), len(titles)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.6 * n_cols, 2.6 * n_rows), squeeze=False)
    for r, row in enumerate(rows):
        for c, title in enumerate(titles):
            ax = axes[r][c]
            ax.set_axis_off()
            image = row.get(title)
            if image is None:
                continue
            vmin, vmax = windows.get(title, tuple(np.percentile(image, [1, 99])))
            cmap = "magma" if "error" in title else "gray"
            # (H, W) with H the first in-plane axis: show it transposed so it runs left-right
            ax.imshow(np.asarray(image).T, cmap=cmap, vmin=vmin, vmax=vmax, origin="lower", interpolation="nearest")
            if r == 0:
                ax.set_title(title, fontsize=10)
        if row_labels is not None:
            axes[r][0].text(-0.05, 0.5, row_labels[r], transform=axes[r][0].transAxes, rotation=90,
                            ha="right", va="center", fontsize=8)  # fmt: skip
    fig.tight_layout()
    _save(fig, Path(path))


def save_loss_curve(log_csv: str | Path, path: str | Path, *, epochs_csv: str | Path | None = None) -> None:
    """Plot the per-step losses of ``log.csv`` (smoothed) and, if given, validation figures per epoch."""
    plt = _pyplot()
    with open(log_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return
    steps = np.array([int(r["step"]) for r in rows])
    keys = [k for k in rows[0] if k.startswith("loss_")]
    val_rows: list[dict[str, str]] = []
    if epochs_csv is not None and Path(epochs_csv).is_file():
        with open(epochs_csv, newline="") as fh:
            val_rows = list(csv.DictReader(fh))
    n_panels = 3 if val_rows else 2
    fig, axes = plt.subplots(1, n_panels, figsize=(5 * n_panels, 3.6))
    groups = [[k for k in keys if k.startswith("loss_g")], [k for k in keys if k.startswith("loss_d")]]
    for ax, group, title in zip(axes, groups, ("generator", "discriminator")):
        for key in group:
            values = np.array([float(r[key]) for r in rows])
            k = max(1, len(values) // 50)  # moving average over ~2 % of the run
            smooth = np.convolve(values, np.ones(k) / k, mode="valid")
            ax.plot(steps[k - 1 :], smooth, label=key.removeprefix("loss_"))
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
        if "loss_g_l1" in group:
            ax.set_yscale("log")
    if val_rows:
        ax = axes[2]
        metric = "val_mae" if "val_mae" in val_rows[0] else "val_l1"
        ax.plot([int(r["epoch"]) for r in val_rows], [float(r[metric]) for r in val_rows], marker="o")
        ax.set_title(f"validation {metric.removeprefix('val_')}")
        ax.set_xlabel("epoch")
    fig.tight_layout()
    _save(fig, Path(path))
