"""Pictures people would rather look at than read: image panels and loss curves, written as PNG.

Panels (source | prediction | target | |error|) are composed directly as pixels with Pillow, which takes milliseconds
per panel and so can run every epoch. Loss curves use matplotlib, imported lazily with the Agg backend so importing
pix2gan stays light and no display is needed. Every PNG is written atomically.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pix2gan.io import atomic_path

__all__ = ["compose_panel", "save_panel", "panel_rows", "save_loss_curve", "compose_grid", "save_grid"]

_TILE = 192  # target tile side in pixels; images are scaled up by an integer factor (nearest neighbour)
_HEADER, _MARGIN, _GAP = 22, 130, 4


def _heat(x: np.ndarray) -> np.ndarray:
    """Black -> red -> yellow -> white colour map for values in [0, 1]; returns (..., 3) uint8."""
    r = np.clip(3 * x, 0, 1)
    g = np.clip(3 * x - 1, 0, 1)
    b = np.clip(3 * x - 2, 0, 1)
    return (np.stack([r, g, b], -1) * 255).astype(np.uint8)


def _to_rgb(image: np.ndarray, window: tuple[float, float], heat: bool) -> np.ndarray:
    lo, hi = window
    x = np.clip((np.asarray(image, dtype=np.float64) - lo) / max(hi - lo, 1e-12), 0, 1)
    x = np.flipud(x.T)  # (H, W) with H the first array axis: show it left-right, second axis bottom-up
    if heat:
        return _heat(x)
    g = (x * 255).astype(np.uint8)
    return np.stack([g, g, g], -1)


def compose_panel(
    rows: Sequence[dict[str, np.ndarray]],
    *,
    titles: Sequence[str] = ("source", "prediction", "target", "|error|"),
    windows: dict[str, tuple[float, float]] | None = None,
    row_labels: Sequence[str] | None = None,
):  # noqa: ANN201  (PIL.Image.Image; Pillow is imported lazily)
    """A grid image: one row per slice, one column per title; returns a ``PIL.Image``.

    Args:
        rows: per row, ``{title: image (H, W)}``; a missing title leaves its cell empty.
        titles: column titles (and keys into each row); titles containing ``error`` use a heat colour map.
        windows: display range per title; default the 1st-99th percentile of each image.
        row_labels: text at the left of each row.
    """
    from PIL import Image, ImageDraw

    windows = windows or {}
    shapes = [np.shape(img) for row in rows for img in row.values()]
    h = max(s[1] for s in shapes)  # displayed height = second array axis (transposed)
    w = max(s[0] for s in shapes)
    scale = max(1, _TILE // max(h, w))
    th, tw = h * scale, w * scale
    margin = _MARGIN if row_labels else _GAP
    width = margin + len(titles) * (tw + _GAP)
    height = _HEADER + len(rows) * (th + _GAP)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for c, title in enumerate(titles):
        draw.text((margin + c * (tw + _GAP) + 4, 5), title, fill="black")
    for r, row in enumerate(rows):
        y = _HEADER + r * (th + _GAP)
        if row_labels:
            draw.text((4, y + th // 2 - 6), row_labels[r], fill="black")
        for c, title in enumerate(titles):
            image = row.get(title)
            if image is None:
                continue
            window = windows.get(title) or tuple(np.percentile(image, [1, 99]))
            rgb = _to_rgb(image, window, heat="error" in title)
            rgb = rgb.repeat(scale, 0).repeat(scale, 1)
            canvas.paste(Image.fromarray(rgb), (margin + c * (tw + _GAP), y))
    return canvas


def save_panel(path: str | Path, rows: Sequence[dict[str, np.ndarray]], **kwargs) -> None:  # noqa: ANN003
    """Write :func:`compose_panel` as a PNG file (atomically)."""
    image = compose_panel(rows, **kwargs)
    with atomic_path(path, overwrite=True) as tmp:
        image.save(tmp, format="PNG")


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


def compose_grid(images: np.ndarray, nrow: int, *, row_labels: Sequence[str] | None = None, pad: int = 2):  # noqa: ANN201
    """A grid image of generated samples; returns a ``PIL.Image``.

    Args:
        images: (N, C, S, S) in [-1, 1] with C = 1 (grayscale) or 3 (RGB), filled row by row.
        nrow: images per row.
        row_labels: text at the left of each row (e.g. class names).
    """
    from PIL import Image, ImageDraw

    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"compose_grid needs (N, 1 or 3, S, S) images, got shape {images.shape}")
    n, c, h, w = images.shape
    scale = max(1, 64 // max(h, w))  # small images (28-32 px) are shown at 2x
    th, tw = h * scale, w * scale
    rows = -(-n // nrow)
    margin = 90 if row_labels else pad
    canvas = Image.new("RGB", (margin + nrow * (tw + pad), pad + rows * (th + pad)), "white")
    draw = ImageDraw.Draw(canvas)
    pixels = (np.clip((images + 1) / 2, 0, 1) * 255).round().astype(np.uint8)  # (N, C, S, S)
    for i in range(n):
        tile = pixels[i].transpose(1, 2, 0)  # (S, S, C): images are stored row-major, no transpose for display
        tile = np.repeat(tile, 3, axis=2) if c == 1 else tile
        tile = tile.repeat(scale, 0).repeat(scale, 1)
        r, col = divmod(i, nrow)
        canvas.paste(Image.fromarray(tile), (margin + col * (tw + pad), pad + r * (th + pad)))
    for r, label in enumerate(row_labels or []):
        draw.text((4, pad + r * (th + pad) + th // 2 - 6), str(label)[:14], fill="black")
    return canvas


def save_grid(path: str | Path, images: np.ndarray, nrow: int, *, row_labels: Sequence[str] | None = None) -> None:
    """Write :func:`compose_grid` as a PNG file (atomically)."""
    image = compose_grid(images, nrow, row_labels=row_labels)
    with atomic_path(path, overwrite=True) as tmp:
        image.save(tmp, format="PNG")


def panel_rows(
    source: np.ndarray | None, pred: np.ndarray, target: np.ndarray | None, axis: int, mask: np.ndarray | None
) -> tuple[list[dict[str, np.ndarray]], list[str]]:
    """Three slices through the body (25 %, 50 %, 75 % of the masked extent) along ``axis``.

    Each row holds ``prediction``, and ``source`` / ``target`` and ``|error|`` when those volumes are given.
    """
    fg = (mask if mask is not None else np.ones(pred.shape, dtype=bool)).astype(bool)
    per_slice = np.moveaxis(fg, axis, 0).reshape(fg.shape[axis], -1).sum(1)
    filled = np.flatnonzero(per_slice > 0) if per_slice.any() else np.arange(fg.shape[axis])
    picks = sorted({int(filled[int(round(q * (len(filled) - 1)))]) for q in (0.25, 0.5, 0.75)})
    rows = []
    for k in picks:
        p = np.take(pred, k, axis=axis)
        row = {"prediction": p}
        if target is not None:
            t = np.take(target, k, axis=axis)
            row.update({"target": t, "|error|": np.abs(p - t)})
        if source is not None:
            row["source"] = np.take(source, k, axis=axis)
        rows.append(row)
    return rows, [f"slice {k}" for k in picks]
