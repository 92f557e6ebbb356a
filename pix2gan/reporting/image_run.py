"""The report's overview of an unpaired run trained on two image folders (``--data A/ --data-b B/``): A <-> B with
the folders, their images and channels, instead of subjects, slices and a subject split.

Read from the run's ``config.json`` (the folders, the channels the generators took from the images, the image size)
and the folders themselves (their images counted as training lists them: the report reads no checkpoint). There is
no validation: ``best.pt`` follows the training cycle loss (:data:`NO_SPLIT`).

Example:
    >>> config = {"data": {"root": "/d/horse", "data_b": "/d/zebra", "src": "horse", "dst": "zebra"},
    ...           "model": {"in_channels": 3, "out_channels": 1}, "train": {"image_size": 64, "flip": True}}
    >>> rows = dict(image_run_rows(config, "2 × resnet9 generator", "GAN loss lsgan, identity 0.5 × λ cycle"))
    >>> rows["translation"]
    'G_ab: horse → zebra, G_ba: zebra → horse (2-D images, 64 × 64)'
    >>> rows["losses"]
    'GAN loss lsgan, identity off (3 vs 1 channels)'
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = ["NO_SPLIT", "NO_EVAL", "is_image_run_config", "image_run_rows", "lowest_cycle"]

NO_SPLIT = "no held-out subjects: best.pt follows the training cycle loss"
NO_EVAL = ("two image folders hold no held-out subjects to score against, so eval does not apply; pix2gan sample "
           "--run {run} draws a → b → a and b → a → b panels of a few images of each folder")  # fmt: skip


def is_image_run_config(config: dict[str, Any]) -> bool:
    """Whether a run's ``config.json`` (as a dict) is of a run trained on two image folders."""
    data = config.get("data")
    return isinstance(data, dict) and data.get("data_b") is not None


def _kind(channels: Any) -> str:
    return {1: "grayscale", 3: "RGB"}.get(channels, f"{channels}-channel")


def _folder(side: str, name: Any, path: Any, channels: Any) -> str:
    """``A (horse): /d/horse, 120 RGB images``, the images counted now as training lists them."""
    from pix2gan.data.images import _image_files

    folder = Path(str(path))
    count = f"{len(_image_files(folder))} {_kind(channels)} images" if folder.is_dir() else "folder not found now"
    return f"{side} ({name}): {folder}, {count}"


def image_run_rows(config: dict[str, Any], networks: str, losses: str) -> list[tuple[str, str]]:
    """The overview rows of an image-folder run: translation, data (both folders), images, networks (the volume
    unpaired run's ``networks`` text with the channels) and ``losses`` (the identity term shown off where the
    channels differ, as training turned it off)."""
    data, model, train = (config.get(k) if isinstance(config.get(k), dict) else {} for k in ("data", "model", "train"))
    src, dst, size = data.get("src"), data.get("dst"), train.get("image_size")
    ca, cb = model.get("in_channels"), model.get("out_channels")
    if ca != cb:
        losses = re.sub(r"identity [^,]*", f"identity off ({ca} vs {cb} channels)", losses)
    flips = "flipped left-right at random" if train.get("flip", True) else "never flipped"
    return [("translation", f"G_ab: {src} → {dst}, G_ba: {dst} → {src} (2-D images, {size} × {size})"),
            ("data", f"{_folder('A', src, data.get('root'), ca)} · {_folder('B', dst, data.get('data_b'), cb)}"),
            ("images", f"each centre-cropped to a square and resized to {size} × {size}, {flips}"),
            ("networks", f"{networks}; G_ab {ca} → {cb} channels, G_ba {cb} → {ca}"), ("losses", losses),
            ("subjects", NO_SPLIT)]  # fmt: skip


def lowest_cycle(epochs: list[dict[str, str]]) -> tuple[str, float] | None:
    """The epoch of ``epochs.csv`` (its rows) with the lowest training cycle loss of both directions, and that loss:
    ``best.pt``'s score in an unpaired run without validation subjects (image folders among them). None without
    cycle columns.

    Example:
        >>> lowest_cycle([{"epoch": "1", "loss_g_cycle_a": "0.5", "loss_g_cycle_b": "0.25"},
        ...               {"epoch": "2", "loss_g_cycle_a": "0.5", "loss_g_cycle_b": "0.5"}])
        ('1', 0.75)
    """

    def number(value: str | None) -> float | None:
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None

    sums = [(row.get("epoch", "?"), number(row.get("loss_g_cycle_a")), number(row.get("loss_g_cycle_b")))
            for row in epochs]  # fmt: skip
    scored = [(epoch, a + b) for epoch, a, b in sums if a is not None and b is not None]
    return min(scored, key=lambda item: item[1]) if scored else None
