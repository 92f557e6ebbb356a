"""Anatomical planes of a volume, from its affine, and the 2.5-D stacks of neighbouring slices.

A plane is named anatomically (``axial``, ``coronal``, ``sagittal``) and found in each volume as the array axis
whose voxel direction is closest to the plane's normal (superior, anterior, right), so volumes stored in any axis
order are sliced the same way. The left-right axis is also where test-time flips mirror the anatomy.

Example:
    >>> import numpy as np
    >>> ras = np.diag([1.0, 1.0, 4.0, 1.0])
    >>> plane_axes(ras, ("axial", "coronal", "sagittal")), lr_axis(ras)
    ((2, 1, 0), 0)
    >>> plane_axes(np.array([[0, 0, -1, 0], [1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1.0]]), ("axial",))
    (1,)
"""

from __future__ import annotations

import numpy as np
import torch
from nibabel.orientations import aff2axcodes

from pix2gan.config import DataConfig

__all__ = ["plane_axes", "slice_axes", "lr_axis", "context_stack", "in_plane_axes"]

_NORMALS = {"axial": "SI", "coronal": "AP", "sagittal": "RL"}


def _axis_of(affine: np.ndarray, letters: str) -> int:
    codes = aff2axcodes(affine)
    for axis, code in enumerate(codes):
        if code in letters:
            return axis
    raise ValueError(f"no array axis runs along {letters[0]}/{letters[1]} in an affine with axis codes {codes}")


def plane_axes(affine: np.ndarray, planes: tuple[str, ...]) -> tuple[int, ...]:
    """The array axis each named plane slices along, in this volume (its normal's axis)."""
    return tuple(_axis_of(affine, _NORMALS[p]) for p in planes)


def slice_axes(cfg: DataConfig, affine: np.ndarray) -> tuple[int, ...]:
    """The axes a run slices this volume along: its ``planes``, or the one array axis ``slice_axis``."""
    return plane_axes(affine, cfg.planes) if cfg.planes else (cfg.slice_axis,)


def lr_axis(affine: np.ndarray) -> int:
    """The array axis running left-right (where a mirror image of the anatomy is a flip)."""
    return _axis_of(affine, "RL")


def in_plane_axes(axis: int) -> tuple[int, int]:
    """The array axes of the rows and columns of a slice along ``axis`` (slices keep the array's axis order).

    Example:
        >>> in_plane_axes(2), in_plane_axes(0)
        ((0, 1), (1, 2))
    """
    rows, cols = (a for a in range(3) if a != axis)
    return rows, cols


def context_stack(slices: torch.Tensor, index: torch.Tensor | list[int] | int, context: int) -> torch.Tensor:
    """Each indexed slice with its ``context`` neighbours on each side, as channels (ends repeated).

    Only the ``2 * context + 1`` slices of each stack are gathered; the volume is never copied.

    Shape:
        ``slices`` (N, H, W), ``index`` (B,) -> (B, 2 * context + 1, H, W); an int index gives (2 * context + 1, H, W).

    Example:
        >>> vol = torch.arange(4.0)[:, None, None].expand(4, 1, 1)
        >>> context_stack(vol, [0, 3], 1)[..., 0, 0]
        tensor([[0., 0., 1.],
                [2., 3., 3.]])
    """
    n = slices.shape[0]
    single = isinstance(index, int)
    idx = torch.as_tensor([index] if single else index, dtype=torch.int64)
    offsets = torch.arange(-context, context + 1)
    stack = slices[(idx[:, None] + offsets).clamp_(0, n - 1)]  # (B, 2K + 1, H, W)
    return stack[0] if single else stack
