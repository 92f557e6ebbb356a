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
from pix2gan.data.intensity import IntensityMap, Scale, source_maps
from pix2gan.data.planes import context_stack, in_plane_axes, lr_axis, slice_axes
from pix2gan.data.sources import SourceLayout, draw_present
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
    """One subject's normalised volumes, sliced along the run's planes without copying.

    ``src``, ``dst`` and ``mask`` are (N, H, W) views along the first slice axis; :meth:`along` gives the views
    along any axis. The volumes are kept once, in the layout they were read in. ``src`` is the first source; a
    many-to-one run's other sources are in ``others`` (:meth:`source_stacks` stacks them all).
    """

    id: str
    src: torch.Tensor
    dst: torch.Tensor | None
    mask: torch.Tensor  # bool; all True when the subject has no mask
    src_scale: Scale
    dst_scale: Scale | None
    path: str = ""  # the source file, to name in messages
    axes: tuple[int, ...] = (2,)  # the slice axes, first = the primary one (validation, panels)
    flips: tuple[bool, ...] = (True,)  # per axis: a flip of the slice's rows mirrors left and right
    volumes: tuple[torch.Tensor, torch.Tensor | None, torch.Tensor] | None = None  # (src, dst, mask) as (X, Y, Z)
    others: tuple[torch.Tensor, ...] = ()  # the sources after the first, (X, Y, Z), normalised

    def along(self, axis: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """(src, dst, mask) as (N, H, W) views of slices along ``axis`` (the primary axis: the attributes)."""
        if axis == self.axes[0] or self.volumes is None:
            return self.src, self.dst, self.mask
        src, dst, mask = self.volumes
        return src.movedim(axis, 0), None if dst is None else dst.movedim(axis, 0), mask.movedim(axis, 0)

    def source_stacks(self, axis: int, index: torch.Tensor | list[int] | int, context: int) -> torch.Tensor:
        """Every source's 2.5-D stack of slices ``index`` along ``axis``, one after the other in the sources' order
        (:class:`~pix2gan.data.sources.SourceLayout`): (B, S (2K + 1), H, W), or (S (2K + 1), H, W) for an int."""
        stacks = [context_stack(self.along(axis)[0], index, context)]
        stacks += [context_stack(v.movedim(axis, 0), index, context) for v in self.others]
        return stacks[0] if not self.others else torch.cat(stacks, 0 if isinstance(index, int) else 1)


class SliceCache:
    """Every subject of a split decoded, checked and normalised once.

    Each subject's volumes are kept once; slices along every plane of the run are views of them, and 2.5-D stacks
    gather only their own slices (:func:`~pix2gan.data.planes.context_stack`).

    Args:
        subjects: subjects to read.
        cfg: modality names, slice axis or planes, and normalisation.
        src_map / dst_map: intensity maps of source and target.
        with_target: read the target modality too (False for translation-only use).
        modality: the modality read as the cache's source, with ``src_map`` (default: every source of ``cfg``, the
            first with ``src_map``, the others with their own maps, :func:`~pix2gan.data.intensity.source_maps`): a
            cache of one modality of an unpaired run, e.g. ``modality=cfg.dst, with_target=False`` for its targets
            (:func:`pix2gan.data.unpaired.modality_cache`).

    Raises:
        InputError: a subject's volumes not on one grid (naming both files), a constant volume, a bad slice axis.
    """

    def __init__(
        self,
        subjects: list[Subject],
        cfg: DataConfig,
        src_map: IntensityMap,
        dst_map: IntensityMap,
        *,
        with_target: bool = True,
        modality: str | None = None,
    ) -> None:
        self.cfg = cfg
        self.modality = cfg.sources[0] if modality is None else modality
        # a many-to-one run's further sources, each with its own map (a cache of one modality reads that one only)
        self.others = {n: m for n, m in source_maps(cfg).items() if n != self.modality} if modality is None else {}
        self.subjects: list[SubjectSlices] = [self._read(s, src_map, dst_map, with_target) for s in subjects]

    def _read(self, subject: Subject, src_map: IntensityMap, dst_map: IntensityMap, with_target: bool) -> SubjectSlices:
        cfg = self.cfg
        names = [self.modality, *self.others] + ([cfg.dst] if with_target else []) + ([cfg.mask] if cfg.mask else [])
        vols = load_subject(subject, names)
        src_vol = vols[self.modality]
        try:
            src_scale = src_map.scale_of(src_vol.data)
            axes = slice_axes(cfg, src_vol.affine)
            left_right = lr_axis(src_vol.affine) if cfg.planes else None
        except ValueError as exc:
            raise InputError(f"{src_vol.path}: {exc}") from None
        src = torch.from_numpy(src_map.forward(src_vol.data, src_scale))
        others = []
        for name, imap in self.others.items():
            try:
                scale = imap.scale_of(vols[name].data)
            except ValueError as exc:
                raise InputError(f"{vols[name].path}: {exc}") from None
            others.append(torch.from_numpy(imap.forward(vols[name].data, scale)))
        dst = dst_scale = None
        if with_target:
            dst_vol = vols[cfg.dst]
            try:
                dst_scale = dst_map.scale_of(dst_vol.data)
            except ValueError as exc:
                raise InputError(f"{dst_vol.path}: {exc}") from None
            dst = torch.from_numpy(dst_map.forward(dst_vol.data, dst_scale))
        if cfg.mask and cfg.mask in vols:
            mask = torch.from_numpy(vols[cfg.mask].data > 0)
        else:
            mask = torch.ones(src.shape, dtype=torch.bool)
        # one array axis (the pix2pix case): rows are flipped as always; planes: only where that mirrors the anatomy
        flips = tuple(left_right is None or in_plane_axes(a)[0] == left_right for a in axes)
        first = axes[0]
        return SubjectSlices(subject.id, src.movedim(first, 0), None if dst is None else dst.movedim(first, 0),
                             mask.movedim(first, 0), src_scale, dst_scale, str(src_vol.path), axes, flips,
                             (src, dst, mask), tuple(others))  # fmt: skip

    def __len__(self) -> int:
        return sum(s.src.shape[0] for s in self.subjects)

    def index(self, min_foreground: float = 0.0) -> list[tuple[int, int, int]]:
        """(subject, plane, slice) triples whose mask covers at least ``min_foreground`` of the slice; ``plane``
        indexes the subject's ``axes``."""
        triples = []
        for i, s in enumerate(self.subjects):
            for p, axis in enumerate(s.axes):
                fg = s.along(axis)[2].flatten(1).float().mean(1)
                triples += [(i, p, int(k)) for k in torch.nonzero(fg >= min_foreground).flatten()]
        return triples

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

    Items are the slices of every plane of the cache. The source is the slice with ``context`` neighbours on each
    side as channels (2.5-D; 0: the slice alone), for each source of the cache in turn (``layout``). With
    ``input_dropout`` (training only) each item's sources are dropped as :func:`~pix2gan.data.sources.draw_present`
    draws them from the item's seed, after the crop's draws, and the source is then
    :meth:`SourceLayout.assemble <pix2gan.data.sources.SourceLayout.assemble>`'s input: dropped stacks zero-filled,
    availability planes appended. Slices smaller than the crop are padded with -1 (air after
    normalisation). Training crops are random and optionally flipped along the slice's rows (left-right for axial
    and coronal slices; sagittal slices, whose rows run front to back, are not flipped); evaluation crops are centred.

    With ``crop_on_device=True`` (training only; ignored for evaluation) an item is instead the whole slice on a
    canvas common to the cache, with the crop offsets and flip drawn exactly as the crop would draw them: the crop
    itself is left to :func:`pix2gan.data.device_crop.crop_batch`, which runs on the batch's device and returns
    exactly the items of the default mode.

    Shape:
        Each item is a dict with ``src`` (C, S, S) with C = ``layout.channels`` (2 * context + 1 for one source) and ``dst`` (1, S, S) float32 (and
        ``mask`` (1, S, S) bool). With ``crop_on_device``: ``src``, ``dst`` (C or 1, Hc, Wc) float32 (and ``mask``
        (1, Hc, Wc) bool), where (Hc, Wc) = (max(S, largest slice height), max(S, largest slice width)) over the
        cache's planes, plus ``top`` and ``left`` (int64 scalars: the crop's corner on that canvas) and ``flip``
        (bool scalar: flip the crop along dim -2).
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
        context: int = 0,
        layout: SourceLayout | None = None,
        input_dropout: float = 0.0,
    ) -> None:
        if any(s.dst is None for s in cache.subjects):
            raise ValueError("PairedSlices needs a SliceCache built with the target modality")
        self.cache = cache
        self.size = image_size
        self.train = train
        self.flip = flip and train
        self.crop_on_device = crop_on_device and train
        self.with_mask = with_mask
        self.layout = layout or SourceLayout((cache.modality, *cache.others), context)
        self.context = self.layout.context
        self.input_dropout = input_dropout if train else 0.0
        if self.input_dropout and not self.layout.optional:
            raise ValueError("input dropout needs a layout with availability channels (SourceLayout.optional)")
        # one canvas for every item of the cache, so that uncropped items batch together
        shapes = [s.along(a)[0].shape[-2:] for s in cache.subjects for a in s.axes]
        self.canvas = (max([image_size] + [h for h, _ in shapes]), max([image_size] + [w for _, w in shapes]))
        self.pairs = cache.index(min_foreground)
        if not self.pairs:
            raise InputError(f"{cache.cfg.root}: no slices with enough foreground to train on")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        """Item ``key``: an index, or ``(index, seed)`` to draw the crop and flip from that seed (see ``data.batches``)."""
        i, rng = item_generator(key)
        s_idx, p, k = self.pairs[i]
        s = self.cache.subjects[s_idx]
        try:
            _, dst, mask = s.along(s.axes[p])
            images = torch.cat([s.source_stacks(s.axes[p], k, self.context), dst[k : k + 1]])  # type: ignore[index]
            flip = self.flip and s.flips[p]
            item = (self._place if self.crop_on_device else self._crop)(images, mask[k], rng, flip)
            if self.layout.optional:  # after the crop's draws: a run without dropout draws what it always drew
                present = draw_present(len(self.layout.names), self.input_dropout, rng)
                item["src"] = self.layout.assemble(item["src"][None], present)[0]
            return item
        except Exception as exc:  # a damaged cache entry: name the subject's file, not a tensor error
            raise InputError(f"{s.path}: slice {k} could not be prepared ({type(exc).__name__}: {exc})") from None

    def _split(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        c = self.layout.stacks
        return {"src": images[:c], "dst": images[c : c + 1]}

    def _place(self, images: torch.Tensor, mask: torch.Tensor, rng: torch.Generator | None, flip: bool) -> dict[str, torch.Tensor]:
        """The slice on the common canvas, with the offsets and flip that :meth:`_crop` would draw from ``rng``.

        The canvas holds the slice padded as :meth:`_crop` pads it (symmetrically, to at least ``size``) at its
        top-left corner, so the offsets drawn in that padded frame are canvas offsets as they are, and the rest
        of the canvas is background that no crop reaches.
        """
        h, w = images.shape[-2:]
        hp, wp = max(h, self.size), max(w, self.size)  # the padded frame of _crop
        pt, pl = (hp - h) // 2, (wp - w) // 2  # where pad_to puts the slice in it
        # training only (crop_on_device implies train): the draws of _crop, in its order
        top = torch.randint(0, hp - self.size + 1, (), generator=rng)
        left = torch.randint(0, wp - self.size + 1, (), generator=rng)
        flipped = bool(torch.rand((), generator=rng) < 0.5) and flip if self.flip else False
        hc, wc = self.canvas
        canvas = torch.full((images.shape[0], hc, wc), -1.0)
        region = (slice(None), slice(pt, pt + h), slice(pl, pl + w))
        # (x + 1) - 1 as in _crop, which shifts before padding: float32 rounding makes it differ from x near 0
        canvas[region] = images + 1.0 - 1.0
        item = self._split(canvas)
        if self.with_mask:
            item["mask"] = torch.zeros((1, hc, wc), dtype=torch.bool)
            item["mask"][region] = mask
        return {**item, "top": top.to(torch.int64), "left": left.to(torch.int64), "flip": torch.tensor(flipped)}

    def _crop(self, images: torch.Tensor, mask: torch.Tensor, rng: torch.Generator | None, flip: bool) -> dict[str, torch.Tensor]:
        stack = torch.cat([images, mask[None].float()]) if self.with_mask else images  # (C + 1 [+ 1], H, W)
        # pad with the background of each channel: -1 (air) for images, 0 for the mask
        shift = torch.ones(stack.shape[0])
        if self.with_mask:
            shift[-1] = 0.0
        stack, _ = pad_to(stack + shift[:, None, None], self.size, self.size, 0.0)
        stack = stack - shift[:, None, None]
        h, w = stack.shape[-2:]
        if self.train:
            top = int(torch.randint(0, h - self.size + 1, (), generator=rng))
            left = int(torch.randint(0, w - self.size + 1, (), generator=rng))
        else:
            top, left = (h - self.size) // 2, (w - self.size) // 2
        crop = stack[:, top : top + self.size, left : left + self.size]
        if self.flip and bool(torch.rand((), generator=rng) < 0.5) and flip:
            crop = crop.flip(-2)  # the slice's rows: left-right for axial slices of an RAS-ordered volume
        item = {k: v.contiguous() for k, v in self._split(crop).items()}
        if self.with_mask:
            item["mask"] = crop[-1:] > 0.5
        return item
