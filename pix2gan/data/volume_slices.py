"""2-D slices of volumes in the subject layout (any format :mod:`pix2gan.io` reads: NIfTI, MetaImage, NRRD, DICOM
series) as images for the noise and class modes, optionally labelled by anatomical level or by a per-subject CSV.

The :class:`ImageSet`'s ``source`` reads ``volumes:<root>:<modality>``; checkpoints of runs trained before this module
was renamed from ``nifti_slices`` carry ``nifti:<root>:<modality>`` in their ``data_info``, which is only a
description (nothing parses it), so they load and sample as before."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pix2gan.data.imageset import LEVEL_CLASSES, ImageSet, _check_size, _reason, _sort_key
from pix2gan.errors import InputError

__all__ = ["load_volume_slices"]


def _read_label_csv(path: Path) -> dict[str, str]:
    """``subject,label`` rows -> {subject: label}."""
    if not path.is_file():
        raise InputError(f"{path}: labels file not found (expected 'level' or a CSV with header subject,label)")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read the labels CSV ({_reason(exc)})") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if header[:2] != ["subject", "label"]:
        raise InputError(f"{path}: expected the header 'subject,label', found {','.join(header) or 'an empty file'!r}")
    table: dict[str, str] = {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise InputError(f"{path}: line {line} needs a subject and a label, got {','.join(row)!r}")
        subject, label = row[0].strip(), row[1].strip()
        if table.get(subject, label) != label:
            raise InputError(f"{path}: subject {subject!r} has two labels, {table[subject]!r} and {label!r}")
        table[subject] = label
    return table


def _slice_direction(affine: np.ndarray, axis: int) -> int:
    """+1 when increasing index along ``axis`` moves superior (RAS z grows), -1 when it moves inferior."""
    return -1 if float(affine[2, axis]) < 0 else 1


def _resize_slices(slices: np.ndarray, spacing: tuple[float, float], image_size: int) -> torch.Tensor:
    """(N, H, W) in [-1, 1] -> (N, 1, S, S): keep the physical aspect ratio, pad with background (-1) to a square."""
    h, w = slices.shape[1:]
    extent_h, extent_w = h * spacing[0], w * spacing[1]
    longest = max(extent_h, extent_w)
    out_h = max(1, round(image_size * extent_h / longest))
    out_w = max(1, round(image_size * extent_w / longest))
    x = torch.from_numpy(np.ascontiguousarray(slices, dtype=np.float32)).unsqueeze(1)  # (N, 1, H, W)
    if (out_h, out_w) != (h, w):
        x = F.interpolate(x, size=(out_h, out_w), mode="bilinear", antialias=True, align_corners=False)
    ph, pw = image_size - out_h, image_size - out_w
    if ph or pw:
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=-1.0)
    return x.clamp_(-1.0, 1.0)


def load_volume_slices(
    root: str | Path,
    modality: str,
    *,
    image_size: int,
    slice_axis: int = 2,
    min_foreground: float = 0.05,
    labels: str | None = None,
) -> ImageSet:
    """2-D slices of one modality of every subject, normalised per modality and resized to ``image_size``.

    Each volume is decoded once and normalised to [-1, 1] like the paired mode (HU window for CT, per-volume
    percentiles for MR). Slices whose fraction of voxels above -0.9 is below ``min_foreground`` (air, the empty ends
    of the stack) are skipped. Each slice is resized with antialiased bilinear interpolation keeping its physical
    aspect ratio (voxel spacing from the affine) and padded with background to a square.

    Args:
        root: data folder in the subject layout ``root/<subject>/<modality>.<ext>`` (any volume format).
        modality: which file of each subject, e.g. ``t1`` or ``ct``.
        image_size: side of the output images in pixels.
        slice_axis: array axis to slice along (2 = axial for RAS-ordered volumes).
        min_foreground: smallest fraction of foreground voxels for a slice to be used, in [0, 1].
        labels: ``None`` (unlabelled); ``"level"``: the slice's anatomical level within the volume's used slices,
            ``lower`` / ``middle`` / ``upper`` thirds from inferior to superior (by the affine; index order when the
            slice axis has no superior component); or a CSV file with header ``subject,label`` giving each
            subject's class (class names sorted, integer names numerically).

    Returns:
        An :class:`ImageSet` of (N, 1, S, S) slices with ``source`` ``volumes:<root>:<modality>``.

    Raises:
        InputError: no subjects, unknown modality, unreadable or constant volumes, no slice with enough foreground,
            a bad labels CSV or a subject missing from it, fewer than 2 classes.
    """
    from pix2gan.config import DataConfig
    from pix2gan.data.intensity import IntensityMap
    from pix2gan.data.subjects import find_subjects
    from pix2gan.io import load_volume

    root = Path(root)
    image_size = _check_size(image_size)
    if slice_axis not in (0, 1, 2):
        raise ValueError(f"slice_axis must be 0, 1 or 2, got {slice_axis!r}")
    if not 0.0 <= min_foreground <= 1.0:
        raise ValueError(f"min_foreground must be in [0, 1], got {min_foreground!r}")
    table: dict[str, str] | None = None
    if labels is not None and labels != "level":
        table = _read_label_csv(Path(labels))
    subjects = find_subjects(root, [modality])
    if table is not None:
        for s in subjects:
            if s.id not in table:
                raise InputError(f"{labels}: no label for subject {s.id!r} of {root}")
        class_names = sorted({table[s.id] for s in subjects}, key=_sort_key)
        if len(class_names) < 2:
            raise InputError(f"{labels}: needs at least 2 classes among the subjects of {root}, found {class_names}")
    else:
        class_names = list(LEVEL_CLASSES) if labels == "level" else []

    imap = IntensityMap(DataConfig.default_intensity(modality))
    chunks: list[torch.Tensor] = []
    label_chunks: list[np.ndarray] = []
    for subject in subjects:
        volume = load_volume(subject.files[modality])
        try:
            scale = imap.scale_of(volume.data)
        except ValueError as exc:
            raise InputError(f"{volume.path}: cannot normalise ({_reason(exc)})") from None
        norm = np.moveaxis(imap.forward(volume.data, scale), slice_axis, 0)  # (N, H, W) in [-1, 1]
        foreground = (norm > -0.9).mean(axis=(1, 2))
        keep = np.flatnonzero(foreground >= min_foreground)
        if keep.size == 0:
            continue
        spacing = np.linalg.norm(volume.affine[:3, :3], axis=0)  # mm per voxel along each array axis
        in_plane = tuple(float(s) for i, s in enumerate(spacing) if i != slice_axis)
        chunks.append(_resize_slices(norm[keep], in_plane, image_size))  # type: ignore[arg-type]
        if labels == "level":
            first, last = int(keep[0]), int(keep[-1])
            position = (keep - first + 0.5) / (last - first + 1)  # slice centre in (0, 1) along the index
            if _slice_direction(volume.affine, slice_axis) < 0:
                position = 1.0 - position
            label_chunks.append(np.minimum((position * 3).astype(np.int64), 2))
        elif table is not None:
            label_chunks.append(np.full(keep.size, class_names.index(table[subject.id]), dtype=np.int64))
    if not chunks:
        raise InputError(f"{root}: no {modality} slice has at least {min_foreground:.0%} foreground (values above -0.9)")
    images = torch.cat(chunks)
    label_tensor = torch.from_numpy(np.concatenate(label_chunks)) if labels is not None else None
    return ImageSet(images, label_tensor, class_names, f"volumes:{root}:{modality}")
