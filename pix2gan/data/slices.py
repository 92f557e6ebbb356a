"""Decode each volume once into an in-memory slice cache, and Dataset views over it.

Reading a ``.nii.gz`` decompresses the whole volume, so doing it per fetched slice costs a full volume decode per
sample. :class:`SliceCache` instead reads every subject once, checks and normalises it, and keeps its slices as
float32 tensors ``(N, H, W)``; datasets then only crop and flip views of memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from pix2gan.config import DataConfig
from pix2gan.data.batches import item_generator
from pix2gan.data.intensity import IntensityMap, Scale
from pix2gan.data.subjects import Subject, load_subject
from pix2gan.errors import InputError

__all__ = ["SubjectSlices", "SliceCache", "PairedSlices", "to_slices", "from_slices", "pad_to"]


def to_slices(volume: np.ndarray, axis: int) -> np.ndarray:
    """(X, Y, Z) -> (N, H, W) with the slice axis first (contiguous copy)."""
    return np.ascontiguousarray(np.moveaxis(volume, axis, 0))


def from_slices(slices: np.ndarray, axis: int) -> np.ndarray:
    """Inverse of :func:`to_slices`."""
    return np.moveaxis(slices, 0, axis)


def pad_to(x: torch.Tensor, height: int, width: int, value: float) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Pad the last two dims symmetrically up to at least (height, width); returns the padding (left, right, top, bottom)."""
    h, w = x.shape[-2:]
    ph, pw = max(0, height - h), max(0, width - w)
    pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
    if ph or pw:
        x = torch.nn.functional.pad(x, pad, value=value)
    return x, pad


@dataclass
class SubjectSlices:
    """One subject's normalised slices: source, target (optional) and mask, each (N, H, W)."""

    id: str
    src: torch.Tensor
    dst: torch.Tensor | None
    mask: torch.Tensor  # bool; all True when the subject has no mask
    src_scale: Scale
    dst_scale: Scale | None
    path: str = ""  # the source file, to name in messages


class SliceCache:
    """Every subject of a split decoded, checked and normalised once.

    Args:
        subjects: subjects to read.
        cfg: modality names, slice axis and normalisation.
        src_map / dst_map: intensity maps of source and target.
        with_target: read the target modality too (False for translation-only use).
    """

    def __init__(
        self,
        subjects: list[Subject],
        cfg: DataConfig,
        src_map: IntensityMap,
        dst_map: IntensityMap,
        *,
        with_target: bool = True,
    ) -> None:
        self.cfg = cfg
        self.subjects: list[SubjectSlices] = []
        for subject in subjects:
            names = [cfg.src] + ([cfg.dst] if with_target else []) + ([cfg.mask] if cfg.mask else [])
            vols = load_subject(subject, names)
            src_vol = vols[cfg.src]
            try:
                src_scale = src_map.scale_of(src_vol.data)
            except ValueError as exc:
                raise InputError(f"{src_vol.path}: {exc}") from None
            src = to_slices(src_map.forward(src_vol.data, src_scale), cfg.slice_axis)
            dst = dst_scale = None
            if with_target:
                dst_vol = vols[cfg.dst]
                try:
                    dst_scale = dst_map.scale_of(dst_vol.data)
                except ValueError as exc:
                    raise InputError(f"{dst_vol.path}: {exc}") from None
                dst = torch.from_numpy(to_slices(dst_map.forward(dst_vol.data, dst_scale), cfg.slice_axis))
            if cfg.mask and cfg.mask in vols:
                mask = torch.from_numpy(to_slices(vols[cfg.mask].data > 0, cfg.slice_axis))
            else:
                mask = torch.ones(src.shape, dtype=torch.bool)
            self.subjects.append(
                SubjectSlices(subject.id, torch.from_numpy(src), dst, mask, src_scale, dst_scale, str(src_vol.path))
            )

    def __len__(self) -> int:
        return sum(s.src.shape[0] for s in self.subjects)

    def index(self, min_foreground: float = 0.0) -> list[tuple[int, int]]:
        """(subject, slice) pairs whose mask covers at least ``min_foreground`` of the slice."""
        pairs = []
        for i, s in enumerate(self.subjects):
            fg = s.mask.flatten(1).float().mean(1)
            pairs += [(i, int(k)) for k in torch.nonzero(fg >= min_foreground).flatten()]
        return pairs

    def reference_scale(self, which: str = "dst") -> Scale | None:
        """Median scale over the cached volumes (to map generated ``percentile`` images back to units)."""
        scales = [getattr(s, f"{which}_scale") for s in self.subjects]
        scales = [s for s in scales if s is not None]
        if not scales:
            return None
        arr = np.median(np.array(scales, dtype=np.float64), axis=0)
        return (float(arr[0]), float(arr[1]))


class PairedSlices(Dataset):
    """Paired (source, target) crops of size ``image_size`` from a :class:`SliceCache`, and the body mask's crop
    when ``with_mask`` (a loss that weights by the mask asks for it; otherwise it is not shipped).

    Slices smaller than the crop are padded with -1 (air after normalisation). Training crops are random and
    optionally flipped left-right; evaluation crops are centred.

    With ``crop_on_device=True`` (training only; ignored for evaluation) an item is instead the whole slice on a
    canvas common to the cache, with the crop offsets and flip drawn exactly as the crop would draw them: the crop
    itself is left to :func:`pix2gan.data.device_crop.crop_batch`, which runs on the batch's device and returns
    exactly the items of the default mode.

    Shape:
        Each item is a dict with ``src`` and ``dst`` of shape (1, S, S) float32 (and ``mask`` (1, S, S) bool).
        With ``crop_on_device``: ``src``, ``dst`` (1, Hc, Wc) float32 (and ``mask`` (1, Hc, Wc) bool), where
        (Hc, Wc) = (max(S, largest slice height), max(S, largest slice width)) over the cache, plus ``top`` and
        ``left`` (int64 scalars: the crop's corner on that canvas) and ``flip`` (bool scalar: flip the crop along
        dim -2).
    """

    def __init__(
        self,
        cache: SliceCache,
        image_size: int,
        *,
        train: bool,
        flip: bool = True,
        min_foreground: float = 0.0,
        crop_on_device: bool = False,
        with_mask: bool = False,
    ) -> None:
        if any(s.dst is None for s in cache.subjects):
            raise ValueError("PairedSlices needs a SliceCache built with the target modality")
        self.cache = cache
        self.size = image_size
        self.train = train
        self.flip = flip and train
        self.crop_on_device = crop_on_device and train
        self.with_mask = with_mask
        # one canvas for every item of the cache, so that uncropped items batch together
        self.canvas = (
            max([image_size] + [s.src.shape[-2] for s in cache.subjects]),
            max([image_size] + [s.src.shape[-1] for s in cache.subjects]),
        )
        self.pairs = cache.index(min_foreground)
        if not self.pairs:
            raise InputError(f"{cache.cfg.root}: no slices with enough foreground to train on")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        """Item ``key``: an index, or ``(index, seed)`` to draw the crop and flip from that seed (see ``data.batches``)."""
        i, rng = item_generator(key)
        s_idx, k = self.pairs[i]
        s = self.cache.subjects[s_idx]
        try:
            return self._place(s, k, rng) if self.crop_on_device else self._crop(s, k, rng)
        except Exception as exc:  # a damaged cache entry: name the subject's file, not a tensor error
            raise InputError(f"{s.path}: slice {k} could not be prepared ({type(exc).__name__}: {exc})") from None

    def _place(self, s: SubjectSlices, k: int, rng: torch.Generator | None) -> dict[str, torch.Tensor]:
        """The slice on the common canvas, with the offsets and flip that :meth:`_crop` would draw from ``rng``.

        The canvas holds the slice padded as :meth:`_crop` pads it (symmetrically, to at least ``size``) at its
        top-left corner, so the offsets drawn in that padded frame are canvas offsets as they are, and the rest
        of the canvas is background that no crop reaches.
        """
        src, dst, mask = s.src[k], s.dst[k], s.mask[k]  # type: ignore[index]
        h, w = src.shape
        hp, wp = max(h, self.size), max(w, self.size)  # the padded frame of _crop
        pt, pl = (hp - h) // 2, (wp - w) // 2  # where pad_to puts the slice in it
        # training only (crop_on_device implies train): the draws of _crop, in its order
        top = torch.randint(0, hp - self.size + 1, (), generator=rng)
        left = torch.randint(0, wp - self.size + 1, (), generator=rng)
        flip = bool(torch.rand((), generator=rng) < 0.5) if self.flip else False
        hc, wc = self.canvas
        images = torch.full((2, hc, wc), -1.0)
        region = (slice(None), slice(pt, pt + h), slice(pl, pl + w))
        # (x + 1) - 1 as in _crop, which shifts before padding: float32 rounding makes it differ from x near 0
        images[region] = torch.stack([src, dst]) + 1.0 - 1.0
        item = {"src": images[0:1], "dst": images[1:2]}
        if self.with_mask:
            item["mask"] = torch.zeros((1, hc, wc), dtype=torch.bool)
            item["mask"][region] = mask
        return {**item, "top": top.to(torch.int64), "left": left.to(torch.int64), "flip": torch.tensor(flip)}

    def _crop(self, s: SubjectSlices, k: int, rng: torch.Generator | None) -> dict[str, torch.Tensor]:
        channels = [s.src[k], s.dst[k], *([s.mask[k].float()] if self.with_mask else [])]  # type: ignore[index]
        stack = torch.stack(channels)  # (2 or 3, H, W)
        # pad with the background of each channel: -1 (air) for images, 0 for the mask
        shift = torch.tensor([1.0, 1.0, 0.0][: len(channels)])[:, None, None]
        stack, _ = pad_to(stack + shift, self.size, self.size, 0.0)
        stack = stack - shift
        h, w = stack.shape[-2:]
        if self.train:
            top = int(torch.randint(0, h - self.size + 1, (), generator=rng))
            left = int(torch.randint(0, w - self.size + 1, (), generator=rng))
        else:
            top, left = (h - self.size) // 2, (w - self.size) // 2
        crop = stack[:, top : top + self.size, left : left + self.size]
        if self.flip and bool(torch.rand((), generator=rng) < 0.5):
            crop = crop.flip(-2)  # first in-plane axis: left-right for axial slices of an RAS-ordered volume
        item = {"src": crop[0:1].contiguous(), "dst": crop[1:2].contiguous()}
        if self.with_mask:
            item["mask"] = crop[2:3] > 0.5
        return item
