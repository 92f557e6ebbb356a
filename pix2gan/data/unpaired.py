"""The data of an unpaired run (CycleGAN): subjects holding the source, the target or both, sampled independently.

A subject folder may hold only ``<src>``, only ``<dst>`` or both (any format of :mod:`pix2gan.data.subjects`).
Training draws a source slice and a target slice *independently*: nothing ties one to the other, so scans that
were never registered (or come from different patients) train as they are. Subjects holding both modalities are
the only ones that can be held out, since validation and test score a prediction against the subject's own target.

How a task puts it together::

    subjects = find_unpaired_subjects(dc.root, dc.src, dc.dst, [dc.mask] if dc.mask else [])
    split = split_unpaired(subjects, dc.src, dc.dst, dc.val_fraction, dc.test_fraction, dc.split_seed)
    train = [s for s in subjects if s.id in split["train"]]
    src_map, dst_map = intensity_maps(dc)                      # each side normalised by its own map
    data = UnpairedSlices(modality_cache(train, dc, dc.src, src_map), modality_cache(train, dc, dc.dst, dst_map),
                          tc.image_size, flip=tc.flip, min_foreground=dc.min_foreground, context=dc.context)
    val_cache = SliceCache([s for s in subjects if s.id in split["val"]], dc, src_map, dst_map)  # paired: both

and, for two folders of 2-D images (horse <-> zebra), :class:`ImageFolderPair`. Both datasets take the keys of
:class:`~pix2gan.data.batches.EpochBatchSampler` (``(index, seed)``: every draw from that seed) and give items
``{"src", "dst"}`` as :class:`~pix2gan.data.slices.PairedSlices` does, so the loader and the step need no change.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch.utils.data import Dataset

from pix2gan.config import DataConfig
from pix2gan.data.batches import item_generator
from pix2gan.data.images import load_image_folder
from pix2gan.data.intensity import IntensityMap, Scale
from pix2gan.data.planes import context_stack
from pix2gan.data.slices import SliceCache, pad_to
from pix2gan.data.subjects import Subject, _pick, split_subjects, subject_volumes
from pix2gan.errors import InputError

__all__ = ["find_unpaired_subjects", "split_unpaired", "modality_cache", "UnpairedSlices", "ImageFolderPair"]

log = logging.getLogger("pix2gan")


def find_unpaired_subjects(root: str | Path, src: str, dst: str, optional: list[str] | None = None) -> list[Subject]:
    """Every subject folder under ``root`` holding ``src``, ``dst`` or both (and any ``optional`` modality found).

    A folder holding neither is skipped, with one warning naming every such folder.

    Raises:
        InputError: ``root`` missing, not a folder, or without subject folders; ``src`` equal to ``dst``; no
            subject holding ``src``, or none holding ``dst``; a modality there in two formats.
    """
    root = Path(root)
    if src == dst:
        raise InputError(f"--src and --dst are both {src!r}; unpaired mode translates between two modalities")
    volumes = subject_volumes(root)
    available = set().union(*volumes.values())
    for modality in (src, dst):
        if modality not in available:
            raise InputError(f"{root}: no subject has a {modality!r} volume ({modality}.nii.gz, .mha, .nrrd or a "
                             f"DICOM folder); the subjects hold {', '.join(sorted(available))}")  # fmt: skip
    subjects, skipped = [], []
    for folder, found in volumes.items():
        files = {m: path for m in (src, dst, *(optional or [])) if (path := _pick(folder, found, m)) is not None}
        if src in files or dst in files:
            subjects.append(Subject(id=folder.name, folder=folder, files=files))
        else:
            skipped.append(folder.name)
    if skipped:
        log.warning("%s: skipped %d subject folder%s holding neither %s nor %s: %s", root, len(skipped),
                    "s" * (len(skipped) != 1), src, dst, ", ".join(skipped))  # fmt: skip
    return subjects


def split_unpaired(
    subjects: list[Subject], src: str, dst: str, val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0
) -> dict[str, list[str]]:
    """Deterministic train/val/test split of an unpaired data set by subject.

    Only subjects holding both modalities can be held out: they are split by :func:`split_subjects` (the fractions
    of their number, drawn by ``seed``; at least one of them trains). Every other subject trains with what it has.
    Without any subject holding both, validation and test are empty.

    Example:
        >>> both = [Subject(f"b{i}", Path("."), {"t1": Path("t1"), "ct": Path("ct")}) for i in range(5)]
        >>> halves = [Subject(f"h{i}", Path("."), {("t1", "ct")[i % 2]: Path("x")}) for i in range(4)]
        >>> s = split_unpaired(both + halves, "t1", "ct", 0.1, 0.2, seed=0)
        >>> [len(s[k]) for k in ("train", "val", "test")], set(s["val"] + s["test"]) <= {b.id for b in both}
        ([7, 1, 1], True)
        >>> split_unpaired(halves, "t1", "ct")
        {'train': ['h0', 'h1', 'h2', 'h3'], 'val': [], 'test': []}
    """
    both = [s.id for s in subjects if src in s.files and dst in s.files]
    others = [s.id for s in subjects if not (src in s.files and dst in s.files)]
    held = split_subjects(both, val_fraction, test_fraction, seed) if both else {"train": [], "val": [], "test": []}
    return {"train": sorted(held["train"] + others), "val": held["val"], "test": held["test"]}


def modality_cache(subjects: list[Subject], cfg: DataConfig, modality: str, intensity: IntensityMap) -> SliceCache:
    """A slice cache of one modality: the subjects among ``subjects`` holding ``modality``, each read once (that
    volume and the mask, nothing else), normalised by ``intensity``.

    The volumes are the cache's ``src`` views (:class:`~pix2gan.data.slices.SubjectSlices`), whichever side of
    the run they are; ``dst`` is None.
    """
    held = [s for s in subjects if modality in s.files]
    return SliceCache(held, cfg, intensity, intensity, with_target=False, modality=modality)


def _crop(image: torch.Tensor, size: int, rng: torch.Generator | None, flip: bool) -> torch.Tensor:
    """A random ``size`` crop of ``image`` (C, H, W), padded with -1 (air) where smaller, its rows flipped with
    probability one half when ``flip`` (three draws from ``rng``, flip or not: top, left, flip)."""
    padded, _ = pad_to(image, size, size, -1.0)
    h, w = padded.shape[-2:]
    top = int(torch.randint(0, h - size + 1, (), generator=rng))
    left = int(torch.randint(0, w - size + 1, (), generator=rng))
    flipped = bool(torch.rand((), generator=rng) < 0.5)
    crop = padded[:, top : top + size, left : left + size]
    return (crop.flip(-2) if flip and flipped else crop).contiguous()


class UnpairedSlices(Dataset):
    """Training items of an unpaired run: a random crop of a source slice and one of an independent target slice.

    Item ``i`` takes source slice ``i % n_src`` and a target slice drawn uniformly from the item's generator (as
    CycleGAN's unaligned data set: one side in order, the other at random), so ``len`` is ``max(n_src, n_dst)``.
    Each side has its own crop offsets and flip (along the slice's rows, where that mirrors the anatomy, as in
    :class:`~pix2gan.data.slices.PairedSlices`), and keeps the slices of every plane of its cache whose mask (the
    subject's own) covers at least ``min_foreground``. Slices smaller than the crop are padded with -1.

    Args:
        src_cache / dst_cache: one-modality caches (:func:`modality_cache`) of the source and the target; each
            cache's ``src`` views are read.
        image_size: side ``S`` of the crops.
        flip: random flips.
        min_foreground: per side, slices whose mask covers less than this fraction are skipped.
        context: neighbouring source slices on each side as channels (2.5-D); the target is one slice.

    Shape:
        Items are dicts with ``src`` (2 * context + 1, S, S) and ``dst`` (1, S, S), float32 in [-1, 1].

    Raises:
        InputError: a side without a slice to train on; a damaged cache entry (naming the subject's file).
    """

    def __init__(
        self,
        src_cache: SliceCache,
        dst_cache: SliceCache,
        image_size: int,
        *,
        flip: bool = True,
        min_foreground: float = 0.0,
        context: int = 0,
    ) -> None:
        self.caches = (src_cache, dst_cache)
        self.size = image_size
        self.flip = flip
        self.context = context
        # (subject, plane, slice) triples of each side
        self.src_items, self.dst_items = (cache.index(min_foreground) for cache in self.caches)
        for cache, items in zip(self.caches, (self.src_items, self.dst_items), strict=True):
            if not items:
                raise InputError(f"{cache.cfg.root}: no {cache.modality} slices with enough foreground to train on")

    def __len__(self) -> int:
        return max(len(self.src_items), len(self.dst_items))

    def reference_scale(self, side: str) -> Scale | None:
        """Median scale of the training volumes of ``side`` (``src`` or ``dst``): maps a generated percentile image
        of that modality back to its units."""
        return self.caches[("src", "dst").index(side)].reference_scale("src")

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        """Item ``key``: an index, or ``(index, seed)`` to draw the target slice, crops and flips from that seed."""
        i, rng = item_generator(key)
        src = self._side(0, self.src_items[i % len(self.src_items)], self.context, rng)
        j = int(torch.randint(0, len(self.dst_items), (), generator=rng))  # independent of the source slice
        return {"src": src, "dst": self._side(1, self.dst_items[j], 0, rng)}

    def _side(self, side: int, item: tuple[int, int, int], context: int, rng: torch.Generator | None) -> torch.Tensor:
        s_idx, p, k = item
        s = self.caches[side].subjects[s_idx]
        try:
            stack = context_stack(s.along(s.axes[p])[0], k, context)  # (2K + 1, H, W)
            return _crop(stack, self.size, rng, self.flip and s.flips[p])
        except Exception as exc:  # a damaged cache entry: name the subject's file, not a tensor error
            raise InputError(f"{s.path}: slice {k} could not be prepared ({type(exc).__name__}: {exc})") from None


class ImageFolderPair(Dataset):
    """Two folders of 2-D images (PNG, JPEG, BMP; e.g. horses and zebras), sampled independently.

    Each folder is decoded once (:func:`~pix2gan.data.images.load_image_folder`: centre-cropped to a square and
    resized to ``image_size``). Item ``i`` takes image ``i % n_a`` of ``a_dir`` and an image of ``b_dir`` drawn
    from the item's generator; ``len`` is ``max(n_a, n_b)``. Each image is flipped left-right (its columns) with
    probability one half when ``flip``.

    Args:
        a_dir / b_dir: the source and target folders (images at any depth).
        image_size: side ``S`` of the images.
        channels: 1 or 3 to convert both folders to grayscale or RGB; ``None``: each folder keeps its own (gray
            when all its files are).
        flip: random left-right flips.

    Shape:
        Items are dicts with ``src`` (C_a, S, S) and ``dst`` (C_b, S, S), float32 in [-1, 1].

    Raises:
        InputError: a missing folder, one without images, a file that cannot be decoded (naming it).
    """

    def __init__(
        self, a_dir: str | Path, b_dir: str | Path, image_size: int, channels: int | None = None, *, flip: bool = True
    ) -> None:
        self.a = load_image_folder(a_dir, image_size=image_size, channels=channels, labelled=False).images
        self.b = load_image_folder(b_dir, image_size=image_size, channels=channels, labelled=False).images
        self.flip = flip

    @property
    def channels(self) -> tuple[int, int]:
        """Channels of the source and target images."""
        return int(self.a.shape[1]), int(self.b.shape[1])

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        """Item ``key``: an index, or ``(index, seed)`` to draw the target image and the flips from that seed."""
        i, rng = item_generator(key)
        a = self.a[i % len(self.a)]
        flip_a = bool(torch.rand((), generator=rng) < 0.5)
        b = self.b[int(torch.randint(0, len(self.b), (), generator=rng))]
        flip_b = bool(torch.rand((), generator=rng) < 0.5)
        return {"src": (a.flip(-1) if self.flip and flip_a else a).clone(),
                "dst": (b.flip(-1) if self.flip and flip_b else b).clone()}  # fmt: skip
