"""Loss curves as PNG: the per-step losses of ``log.csv`` (smoothed) and the validation MAE per epoch.

matplotlib is imported inside :func:`save_loss_curve`, with the Agg backend, so importing pix2gan stays light and no
display is needed. The PNG is written atomically.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from pix2gan.io import atomic_path

__all__ = ["save_loss_curve"]


def save_loss_curve(log_csv: str | Path, path: str | Path, *, epochs_csv: str | Path | None = None) -> None:
    """Plot the per-step losses of ``log.csv`` (smoothed) and, if given, validation figures per epoch."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    with open(log_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return
    steps = np.array([int(r["step"]) for r in rows])
    keys = [k for k in rows[0] if k.startswith("loss_")]
    val_rows: list[dict[str, str]] = []
    if epochs_csv is not None and Path(epochs_csv).is_file():
        with open(epochs_csv, newline="") as fh:
            val_rows = [r for r in csv.DictReader(fh) if r.get("val_mae")]
    n_panels = 3 if val_rows else 2
    fig, axes = plt.subplots(1, n_panels, figsize=(5 * n_panels, 3.6))
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.15, top=0.9, wspace=0.25)
    groups = [[k for k in keys if k.startswith("loss_g")], [k for k in keys if k.startswith("loss_d")]]
    for ax, group, title in zip(axes[:2], groups, ("generator", "discriminator"), strict=True):
        for key in group:
            values = np.array([float(r[key]) for r in rows])
            k = max(1, len(values) // 50)  # moving average over ~2 % of the run
            smooth = np.convolve(values, np.ones(k) / k, mode="valid")
            ax.plot(steps[k - 1 :], smooth, label=key.removeprefix("loss_"), lw=1)
        ax.set_title(title)
        ax.set_xlabel("step")
        if not group:  # --gan-loss none: no discriminator was trained
            ax.text(0.5, 0.5, "not trained (no GAN term)", ha="center", va="center", transform=ax.transAxes)
            continue
        if all(float(r[k]) > 0 for k in group for r in rows):  # hinge losses can be negative: stay linear then
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    if val_rows:
        ax = axes[2]
        ax.plot([int(r["epoch"]) for r in val_rows], [float(r["val_mae"]) for r in val_rows], marker="o", ms=3)
        ax.set_title("validation MAE (physical units, in mask)")
        ax.set_xlabel("epoch")
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
