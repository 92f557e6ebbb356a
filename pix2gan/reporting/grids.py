"""Sample grids as PNG: generated images (noise/class runs) side by side, composed directly as pixels with Pillow.

Pillow is imported inside the functions; the PNG is written atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pix2gan.io import atomic_path

__all__ = ["compose_grid", "save_grid"]


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
