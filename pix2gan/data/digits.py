"""Deterministic synthetic "digit-like" images: an MNIST stand-in that needs no download.

Each digit 0-9 is drawn once with Pillow's built-in font, large and 4x supersampled, then every sample gets its own
random affine warp (rotation, scale, shear, translation), stroke thickness, blur and noise, and is box-downsampled to
``size x size``. White digit on black, like MNIST. Sample ``n`` of digit ``d`` depends only on ``(seed, d, n)``, so
any subset can be regenerated, and samples with other ``n`` are fresh held-out draws.

Example:
    >>> images, labels = render_digits(2, size=32, seed=0)
    >>> images.shape, images.dtype.name, labels.tolist()[:4]
    ((20, 32, 32), 'uint8', [0, 0, 1, 1])
    >>> bool((render_digits(2, size=32, seed=0)[0] == images).all())
    True
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["render_digits", "write_digit_folder"]

_SUPER = 4  # supersampling factor: warps and stroke filters run at 4x, then a 4x4 box average
_GLYPH_HEIGHT = 0.68  # glyph height as a fraction of the image height, before the per-sample scale


def _font(pixels: int) -> tuple[Any, bool]:
    """Pillow's default font at about ``pixels`` glyph height; ``(font, scalable)``.

    Pillow >= 10.1 with FreeType embeds a scalable font (Aileron); older builds only have a small bitmap font,
    which :func:`_glyph` then upsamples.
    """
    from PIL import ImageFont

    try:
        probe = ImageFont.load_default(size=100)
    except (TypeError, AttributeError, OSError, ImportError):  # old Pillow, or Pillow without FreeType
        return ImageFont.load_default(), False
    if not hasattr(probe, "getbbox"):
        return ImageFont.load_default(), False
    top, bottom = probe.getbbox("0123456789")[1::2]
    return ImageFont.load_default(size=max(8, round(100 * pixels / max(1, bottom - top)))), True


@functools.lru_cache(maxsize=64)
def _glyph(digit: int, size: int) -> np.ndarray:
    """The clean digit at ``_SUPER * size`` resolution, its box centred on the canvas: (S, S) uint8."""
    from PIL import Image, ImageDraw

    canvas = _SUPER * size
    height = round(_GLYPH_HEIGHT * canvas)
    font, scalable = _font(height)
    text = str(digit)
    pad = canvas  # draw on a generous canvas so nothing is clipped before cropping to the ink
    img = Image.new("L", (3 * pad, 3 * pad), 0)
    # a stroke of ~3 % of the height gives a pen closer to MNIST's than the font's regular weight
    stroke = max(1, round(0.03 * height)) if scalable else 0
    ImageDraw.Draw(img).text((pad, pad), text, fill=255, font=font, stroke_width=stroke, stroke_fill=255)
    ink = img.crop(img.getbbox())
    if not scalable or abs(ink.height - height) > 0.1 * height:  # bitmap font: scale the glyph to the target
        width = max(1, round(ink.width * height / ink.height))
        ink = ink.resize((width, height), Image.Resampling.LANCZOS if not scalable else Image.Resampling.BICUBIC)
        if not scalable:  # thicken the thin bitmap strokes to a comparable pen
            from PIL import ImageFilter

            ink = ink.filter(ImageFilter.MaxFilter(2 * max(1, round(0.03 * height)) + 1))
    out = Image.new("L", (canvas, canvas), 0)
    out.paste(ink, ((canvas - ink.width) // 2, (canvas - ink.height) // 2))
    return np.asarray(out)


def _sample(digit: int, n: int, size: int, seed: int) -> np.ndarray:
    """Sample ``n`` of ``digit``: (size, size) uint8, a function of ``(seed, digit, n)`` only."""
    from PIL import Image, ImageFilter

    rng = np.random.default_rng([seed, digit, n])
    angle = np.deg2rad(rng.uniform(-15.0, 15.0))
    scale = rng.uniform(0.8, 1.15)
    shear = rng.uniform(-0.2, 0.2)
    shift = rng.uniform(-2.0, 2.0, size=2) * _SUPER  # pixels of the final image
    thickness = rng.uniform(-0.5, 1.0)  # pixels of the final image: < 0 thins (min filter), > 0 thickens (max)
    blur = rng.uniform(0.0, 0.6)
    noise = rng.uniform(0.0, 10.0)  # standard deviation in grey levels

    canvas = _SUPER * size
    c = (canvas - 1) / 2.0
    cos, sin = np.cos(angle), np.sin(angle)
    # forward map about the centre: x_out = R @ Shear @ (scale * (x_in - c)) + c + shift
    forward = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, shear], [0.0, 1.0]]) * scale
    inverse = np.linalg.inv(forward)
    offset = np.array([c, c]) - inverse @ (np.array([c, c]) + shift)  # PIL wants output -> input
    coeffs = (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])
    img = Image.fromarray(_glyph(digit, size)).transform(
        (canvas, canvas), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR, fillcolor=0
    )
    radius = round(abs(thickness) * _SUPER)
    if radius:  # grey dilation / erosion with a square pen; scipy's filters are separable, Pillow's rank filter is not
        from scipy import ndimage

        morph = ndimage.maximum_filter if thickness > 0 else ndimage.minimum_filter
        img = Image.fromarray(morph(np.asarray(img), size=2 * radius + 1, mode="constant", cval=0))
    img = img.reduce(_SUPER)  # box average: area-correct antialiasing down to (size, size)
    if blur > 0.05:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    out = np.asarray(img, dtype=np.float32) + rng.normal(0.0, noise, (size, size)).astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def render_digits(
    per_class: int = 100, *, size: int = 32, seed: int = 0, start: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Render ``per_class`` samples of each digit 0-9, digit by digit, without touching the disk.

    Args:
        per_class: samples per digit.
        size: side of the square images in pixels (>= 8).
        seed: family seed; sample ``n`` of digit ``d`` is seeded with ``[seed, d, n]``.
        start: number of the first sample per digit: ``start=per_class`` gives a disjoint, held-out draw.

    Returns:
        ``(images, labels)``: (N, size, size) uint8 white-on-black images and (N,) int64 digits, N = 10 * per_class,
        ordered digit-major (all zeros first).

    Example:
        >>> x, y = render_digits(1, size=28)
        >>> x.shape, y.tolist()
        ((10, 28, 28), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        >>> bool(x.max() > 200 and np.median(x) < 20)  # white strokes on a black background
        True
    """
    if per_class < 1:
        raise ValueError(f"render_digits: per_class must be >= 1, got {per_class}")
    if size < 8:
        raise ValueError(f"render_digits: size must be >= 8, got {size}")
    if start < 0:
        raise ValueError(f"render_digits: start must be >= 0, got {start}")
    images = np.empty((10 * per_class, size, size), dtype=np.uint8)  # (N, H, W)
    for digit in range(10):
        for k in range(per_class):
            images[digit * per_class + k] = _sample(digit, start + k, size, seed)
    labels = np.repeat(np.arange(10, dtype=np.int64), per_class)
    return images, labels


def write_digit_folder(
    out_dir: str | Path, *, per_class: int = 600, size: int = 32, seed: int = 0, overwrite: bool = False
) -> list[Path]:
    """Write the digits as a class-per-folder image set: ``out_dir/<digit>/<n>.png`` plus ``digits.json``.

    The folder is read back by :func:`pix2gan.data.images.load_image_folder` with ``labelled=True`` (classes
    ``0`` ... ``9``). The same arguments always write the same bytes.

    Args:
        out_dir: folder to write into (created if needed).
        per_class: images per digit.
        size: side of the square images in pixels.
        seed: family seed.
        overwrite: replace existing class folders (their previously generated PNGs are removed first).

    Returns:
        The 10 class folders, in digit order.

    Raises:
        FileExistsError: a class folder exists and ``overwrite`` is false.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     folders = write_digit_folder(tmp, per_class=2, size=28)
        ...     [f.name for f in folders][:3], sorted(p.name for p in folders[7].iterdir())
        (['0', '1', '2'], ['0000.png', '0001.png'])
    """
    from PIL import Image

    from pix2gan.io import atomic_path, atomic_write_json, refuse_existing  # local: volumes imports nibabel

    out = Path(out_dir)
    folders = [out / str(d) for d in range(10)]
    refuse_existing(folders, overwrite, error=FileExistsError)
    if per_class < 1:
        raise ValueError(f"--per-class must be >= 1, got {per_class}")
    width = max(4, len(str(per_class - 1)))
    ours = re.compile(r"^\d+\.png$")
    images, _ = render_digits(per_class, size=size, seed=seed)  # (10 * per_class, size, size), digit-major
    for digit, folder in enumerate(folders):
        if folder.exists() and not folder.is_dir():
            raise FileExistsError(f"{folder}: exists and is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.iterdir():  # only after overwrite: drop PNGs of an earlier, larger draw
            if stale.is_file() and ours.match(stale.name):
                stale.unlink()
        for n in range(per_class):
            with atomic_path(folder / f"{n:0{width}d}.png", overwrite=True) as tmp:
                Image.fromarray(images[digit * per_class + n]).save(tmp, format="PNG", optimize=False)
    atomic_write_json(
        out / "digits.json",
        {"generator": "pix2gan.data.digits", "seed": seed, "size": size, "per_class": per_class},
    )
    return folders
