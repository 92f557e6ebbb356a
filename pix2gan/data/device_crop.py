"""Random crops and flips of a whole batch on its own device (the GPU), exactly as the data set would cut them.

With ``PairedSlices(..., crop_on_device=True)`` the loader ships whole slices on a common canvas together with each
item's crop corner ``(top, left)`` and ``flip``, drawn from the item's seed exactly as the CPU crop draws them.
:func:`crop_batch` then cuts and flips the batch where it lies: the result is bit-identical to the batch of default
(CPU-cropped) items, so seeds, resumption and reproducibility are unaffected.

The crop is :func:`kornia.geometry.transform.crop_by_indices`, which for boxes of exactly the output size slices the
tensor (no resampling, so it is exact); the flip is :func:`kornia.geometry.transform.vflip` (``flip(-2)``).

Example:
    >>> import torch
    >>> canvas = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> batch = {"src": canvas, "dst": canvas, "mask": canvas > 4,
    ...          "top": torch.tensor([1]), "left": torch.tensor([2]), "flip": torch.tensor([True])}
    >>> crop_batch(batch, 2)["src"][0, 0]
    tensor([[10., 11.],
            [ 6.,  7.]])
"""

from __future__ import annotations

import torch

__all__ = ["crop_batch"]


@torch.compiler.disable  # kornia's compiled crop resamples ("up to float rounding"); the eager one slices exactly
def crop_batch(batch: dict[str, torch.Tensor], size: int) -> dict[str, torch.Tensor]:
    """Crop every item of a collated ``crop_on_device`` batch at its ``(top, left)`` and flip those with ``flip``.

    Args:
        batch: ``src``, ``dst`` (B, 1, Hc, Wc) float, optionally ``mask`` (B, 1, Hc, Wc) bool, and ``top``, ``left`` (B,)
            integers and ``flip`` (B,) bool, as collated from ``PairedSlices(..., crop_on_device=True)`` items.
            The images may be on any device; ``top`` and ``left`` are best left on the CPU (reading them back from
            the GPU costs one synchronisation per batch).
        size: crop size S, the data set's ``image_size``.

    Returns:
        ``src``, ``dst`` (B, 1, S, S) contiguous (and ``mask`` (B, 1, S, S) bool), on the images' device.

    Raises:
        ValueError: a crop reaching outside the canvas.
    """
    from kornia.geometry.transform import crop_by_indices, vflip

    src = batch["src"]
    hc, wc = src.shape[-2:]
    top = batch["top"].to("cpu", torch.int64).reshape(-1)
    left = batch["left"].to("cpu", torch.int64).reshape(-1)
    if top.numel() and (top.min() < 0 or left.min() < 0 or top.max() + size > hc or left.max() + size > wc):
        raise ValueError(f"crops of {size} x {size} at the given corners reach outside the {hc} x {wc} canvas")
    # corners (x, y) clockwise from the top-left, inclusive: kornia slices [top, top + size) x [left, left + size)
    x0, y0, x1, y1 = left, top, left + size - 1, top + size - 1
    boxes = torch.stack([x0, y0, x1, y0, x1, y1, x0, y1], -1).reshape(-1, 4, 2)  # (B, 4, 2) on the CPU
    flip = batch["flip"].to(src.device, torch.bool, non_blocking=True).reshape(-1, 1, 1, 1)
    out = {}
    for key in (k for k in ("src", "dst", "mask") if k in batch):
        crop = crop_by_indices(batch[key], boxes, (size, size), interpolation="nearest")
        out[key] = torch.where(flip, vflip(crop), crop).contiguous()
    return out
