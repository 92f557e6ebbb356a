"""What every image source of the noise and class modes returns: an :class:`ImageSet` in memory, and the checks and
conversions they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from pix2gan.config import TORCHVISION_SETS
from pix2gan.errors import InputError

__all__ = ["ImageSet", "TORCHVISION_SETS", "LEVEL_CLASSES"]

LEVEL_CLASSES = ["lower", "middle", "upper"]
_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as Pillow's RGB -> L


@dataclass
class ImageSet:
    """Images decoded into memory, with optional integer class labels.

    Args:
        images: (N, C, S, S) float32 in [-1, 1], C = 1 (grayscale) or 3 (RGB).
        labels: (N,) int64 class indices into ``class_names``, or ``None`` when unlabelled.
        class_names: name of each class (empty when unlabelled).
        source: where the images came from (a folder, ``volumes:<root>:<modality>`` or ``torchvision:<name>``).

    Example:
        >>> s = ImageSet(torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 1, 0]), ["a", "b"], "demo")
        >>> len(s), s.num_classes, s.channels, s.image_size
        (4, 2, 1, 8)
        >>> ImageSet(torch.zeros(2, 3, 8, 8), None, [], "demo").num_classes
        0
    """

    images: torch.Tensor  # (N, C, S, S) float32 in [-1, 1]
    labels: torch.Tensor | None  # (N,) int64
    class_names: list[str] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        """Number of classes; 0 when unlabelled."""
        return 0 if self.labels is None else len(self.class_names)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])


# --- shared helpers --------------------------------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _check_size(image_size: int) -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
    return int(image_size)


def _check_channels(channels: int | None, where: object) -> None:
    if channels not in (None, 1, 3):
        raise InputError(f"{where}: channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")


def _convert_channels(images: torch.Tensor, channels: int | None) -> torch.Tensor:
    """(N, C, H, W) with C in {1, 3} -> ``channels`` (luminance for RGB -> gray, replication for gray -> RGB)."""
    if channels is None or images.shape[1] == channels:
        return images
    if channels == 1:
        weights = torch.tensor(_LUMA, dtype=images.dtype).view(1, 3, 1, 1)
        return (images * weights).sum(1, keepdim=True)
    return images.expand(-1, 3, -1, -1).contiguous()


def _sort_key(name: str) -> tuple[int, Any]:
    """Integer names numerically (2 before 10), then everything else alphabetically."""
    return (0, int(name)) if name.lstrip("-").isdigit() else (1, name)
