"""Image panels as PNG: one row per slice, one column per image (source | prediction | target | |error|).

Panels are composed directly as pixels with Pillow (imported inside the functions), which takes milliseconds per
panel and so can run every epoch. The |error| column has one colour scale for the whole figure, shown by a colour
bar under it in the target's units: 0 to 500 HU for CT targets (:data:`HU_ERROR`), 0 to 0.5 in the normalised
space [-1, 1] otherwise (:data:`NORMALISED_ERROR`), so panels of two runs, or of two subjects, compare by eye.
Every PNG is written atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pix2gan.io import atomic_path

__all__ = ["compose_panel", "save_panel", "panel_rows", "ErrorScale", "HU_ERROR", "NORMALISED_ERROR", "HU_WINDOW",
           "panel_style", "body_slices"]  # fmt: skip

_TILE = 192  # target tile side in pixels; images are scaled up by an integer factor (nearest neighbour)
_HEADER, _MARGIN, _GAP = 22, 130, 4
_BAR, _TICKS = 12, 16  # colour bar height, room for its tick labels under it (pixels)

Window = tuple[float, float]

HU_WINDOW: Window = (-1000.0, 2000.0)
"""Display window of CT images (prediction, target) in panels, HU."""


@dataclass(frozen=True)
class ErrorScale:
    """The colour scale of a panel's |error| column: 0 (black) to ``vmax`` (white; larger errors saturate), in ``unit``.

    Example:
        >>> HU_ERROR.label
        '|error| in HU, the same scale in every row'
    """

    vmax: float
    unit: str = ""

    @property
    def label(self) -> str:
        """The colour bar's caption."""
        return f"|error|{f' in {self.unit}' if self.unit else ''}, the same scale in every row"


HU_ERROR = ErrorScale(500.0, "HU")
"""|error| scale of CT targets: 0 to 500 HU."""
NORMALISED_ERROR = ErrorScale(0.5, "normalised units")
"""|error| scale of the other targets (MR), in the generator's space [-1, 1] where they are scored: 0 to 0.5."""


def panel_style(hu: bool) -> tuple[dict[str, Window] | None, ErrorScale]:
    """Display windows and |error| scale of a panel whose target is CT (``hu``) or not.

    CT images are shown in :data:`HU_WINDOW`; other images each in their own 1st-99th percentiles (None).
    """
    return ({"prediction": HU_WINDOW, "target": HU_WINDOW}, HU_ERROR) if hu else (None, NORMALISED_ERROR)


def _heat(x: np.ndarray) -> np.ndarray:
    """Black -> red -> yellow -> white colour map for values in [0, 1]; returns (..., 3) uint8."""
    r = np.clip(3 * x, 0, 1)
    g = np.clip(3 * x - 1, 0, 1)
    b = np.clip(3 * x - 2, 0, 1)
    return (np.stack([r, g, b], -1) * 255).astype(np.uint8)


def _to_rgb(image: np.ndarray, window: Window, heat: bool) -> np.ndarray:
    lo, hi = window
    x = np.clip((np.asarray(image, dtype=np.float64) - lo) / max(hi - lo, 1e-12), 0, 1)
    x = np.flipud(x.T)  # (H, W) with H the first array axis: show it left-right, second axis bottom-up
    if heat:
        return _heat(x)
    g = (x * 255).astype(np.uint8)
    return np.stack([g, g, g], -1)


def _figure_scale(rows: Sequence[dict[str, np.ndarray]], titles: Sequence[str]) -> ErrorScale:
    """Without a given scale: one for the whole figure, 0 to the largest 99th percentile of its |error| images."""
    tops = [float(np.percentile(row[t], 99)) for row in rows for t in titles if "error" in t and t in row]
    return ErrorScale(max([*tops, 0.0]) or 1.0)


def _draw_colour_bar(canvas, draw, x: int, y: int, width: int, scale: ErrorScale) -> None:  # noqa: ANN001
    """A horizontal bar of the heat map from 0 to ``scale.vmax`` at (x, y), ticks at 0, half and full, its caption
    right-aligned to its left."""
    from PIL import Image

    ramp = _heat(np.linspace(0.0, 1.0, width))  # (width, 3)
    canvas.paste(Image.fromarray(np.repeat(ramp[None], _BAR, axis=0)), (x, y))
    draw.rectangle((x - 1, y - 1, x + width, y + _BAR), outline="black")
    for q, text in ((0.0, "0"), (0.5, f"{scale.vmax / 2:g}"), (1.0, f"{scale.vmax:g}+")):
        tx = x + round(q * (width - 1))
        draw.line((tx, y + _BAR, tx, y + _BAR + 3), fill="black")
        w = draw.textlength(text)
        draw.text((min(max(tx - w / 2, x - 1), x + width - w), y + _BAR + 4), text, fill="black")
    w = draw.textlength(scale.label)
    draw.text((max(4, x - 8 - w), y), scale.label, fill="black")


def compose_panel(
    rows: Sequence[dict[str, np.ndarray]],
    *,
    titles: Sequence[str] = ("source", "prediction", "target", "|error|"),
    windows: dict[str, Window] | None = None,
    row_labels: Sequence[str] | None = None,
    error_scale: ErrorScale | None = None,
):  # noqa: ANN201  (PIL.Image.Image; Pillow is imported lazily)
    """A grid image: one row per slice, one column per title; returns a ``PIL.Image``.

    Args:
        rows: per row, ``{title: image (H, W)}``; a missing title leaves its cell empty.
        titles: column titles (and keys into each row); titles containing ``error`` use a heat colour map; a title
            may hold several lines (``\\n``), the header grows to fit them.
        windows: display range per title of the other columns; default the 1st-99th percentile of each image.
        row_labels: text at the left of each row.
        error_scale: the heat columns' scale, the same in every row, drawn as a colour bar under each; default 0 to
            the largest 99th percentile of the figure's |error| images (no unit).
    """
    from PIL import Image, ImageDraw

    windows = windows or {}
    heat_columns = [c for c, title in enumerate(titles) if "error" in title]
    scale = error_scale or _figure_scale(rows, titles)
    shapes = [np.shape(img) for row in rows for img in row.values()]
    h = max(s[1] for s in shapes)  # displayed height = second array axis (transposed)
    w = max(s[0] for s in shapes)
    factor = max(1, _TILE // max(h, w))
    th, tw = h * factor, w * factor
    margin = _MARGIN if row_labels else _GAP
    width = margin + len(titles) * (tw + _GAP)
    header = _header_height(titles)
    grid_bottom = header + len(rows) * (th + _GAP)
    height = grid_bottom + (_GAP + _BAR + _TICKS if heat_columns else 0)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for c, title in enumerate(titles):
        draw.text((margin + c * (tw + _GAP) + 4, 5), title, fill="black")
    for r, row in enumerate(rows):
        y = header + r * (th + _GAP)
        if row_labels:
            draw.text((4, y + th // 2 - 6), row_labels[r], fill="black")
        for c, title in enumerate(titles):
            image = row.get(title)
            if image is None:
                continue
            heat = c in heat_columns
            window = (0.0, scale.vmax) if heat else windows.get(title) or tuple(np.percentile(image, [1, 99]))
            rgb = _to_rgb(image, window, heat=heat)
            rgb = rgb.repeat(factor, 0).repeat(factor, 1)
            x = margin + c * (tw + _GAP)
            canvas.paste(Image.fromarray(rgb), (x, y))
            if heat:  # a frame: the scale's top is white, as the page is
                draw.rectangle((x - 1, y - 1, x + tw, y + th), outline=(128, 128, 128))
    for c in heat_columns:
        _draw_colour_bar(canvas, draw, margin + c * (tw + _GAP), grid_bottom + _GAP, tw, scale)
    return canvas


def _header_height(titles: Sequence[str]) -> int:
    """The titles' band: :data:`_HEADER` pixels for one-line titles, more for titles of several lines."""
    if not any("\n" in t for t in titles):
        return _HEADER
    from PIL import Image, ImageDraw

    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    return max(_HEADER, *(draw.multiline_textbbox((0, 0), t)[3] + 10 for t in titles))


def save_panel(path: str | Path, rows: Sequence[dict[str, np.ndarray]], **kwargs) -> None:  # noqa: ANN003
    """Write :func:`compose_panel` as a PNG file (atomically)."""
    image = compose_panel(rows, **kwargs)
    with atomic_path(path, overwrite=True) as tmp:
        image.save(tmp, format="PNG")


def body_slices(mask: np.ndarray, axis: int, quantiles: Sequence[float] = (0.25, 0.5, 0.75)) -> list[int]:
    """Indices along ``axis`` at ``quantiles`` of the extent of the slices ``mask`` touches (all slices when it is
    empty), sorted, without repeats: the slices the panels show.

    Example:
        >>> m = np.zeros((4, 4, 9), dtype=bool); m[..., 2:7] = True
        >>> body_slices(m, 2), body_slices(m, 2, (0.5,))
        ([3, 4, 5], [4])
    """
    fg = np.asarray(mask).astype(bool)
    per_slice = np.moveaxis(fg, axis, 0).reshape(fg.shape[axis], -1).sum(1)
    filled = np.flatnonzero(per_slice > 0) if per_slice.any() else np.arange(fg.shape[axis])
    return sorted({int(filled[int(round(q * (len(filled) - 1)))]) for q in quantiles})


def panel_rows(
    source: np.ndarray | None,
    pred: np.ndarray,
    target: np.ndarray | None,
    axis: int,
    mask: np.ndarray | None,
    *,
    error: np.ndarray | None = None,
) -> tuple[list[dict[str, np.ndarray]], list[str]]:
    """Three slices through the body (25 %, 50 %, 75 % of the masked extent) along ``axis``.

    Each row holds ``prediction``, and ``source`` / ``target`` and ``|error|`` when those volumes are given;
    ``error`` is the |error| volume to show (default ``|pred - target|``; MR targets: the error in the normalised
    space where they are scored).
    """
    picks = body_slices(mask if mask is not None else np.ones(pred.shape, dtype=bool), axis)
    rows = []
    for k in picks:
        p = np.take(pred, k, axis=axis)
        row = {"prediction": p}
        if target is not None:
            t = np.take(target, k, axis=axis)
            e = np.abs(p - t) if error is None else np.take(error, k, axis=axis)
            row.update({"target": t, "|error|": e})
        if source is not None:
            row["source"] = np.take(source, k, axis=axis)
        rows.append(row)
    return rows, [f"slice {k}" for k in picks]
