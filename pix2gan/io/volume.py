"""A volume in any supported format: the :class:`Volume` every reader returns, and the formats' names.

Every format reads into the same :class:`Volume`: float32 voxels in physical units, indexed ``[i, j, k]`` in the
file's own index order (NIfTI's i, j, k; ITK's x, y, z; a DICOM series' column, row, slice), and the affine that maps
an index to RAS+ millimetres (nibabel's convention). The reader also keeps its own record of the file (``header``:
the NIfTI image, the ITK geometry as stored, the DICOM series' headers), which its writer uses to put a result back
on exactly the input's grid. Writing to another format converts the geometry through the affine.

========== ============================== ======================= =========================
format     names                          read / written with     geometry kept
========== ============================== ======================= =========================
nifti      ``.nii.gz``, ``.nii``          nibabel                 header fields bit for bit
metaimage  ``.mha``, ``.mhd`` (+ raw)     SimpleITK               origin, spacing, direction
nrrd       ``.nrrd``, ``.nhdr`` (+ raw)   SimpleITK               origin, spacing, direction
dicom      a folder of one series' files  pydicom + SimpleITK     per-slice positions, IOP
========== ============================== ======================= =========================

This module is the leaf the format modules build on (it imports none of them); the readers and writers, and
``load_volume`` / ``save_like`` that pick one by name, are :mod:`pix2gan.io.codecs`.

Example:
    >>> volume_name(Path("scan.nii.gz")), volume_name(Path("ct.mha")), format_of(Path("a.nhdr")).name
    ('scan', 'ct', 'nrrd')
    >>> format_of(Path("notes.txt")) is None
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pix2gan.errors import InputError

__all__ = [
    "Volume", "Format", "FORMATS", "VOLUME_SUFFIXES", "format_of", "output_format", "volume_name", "is_volume_file",
    "is_dicom_file", "is_dicom_folder", "check_shape", "check_voxels", "check_same_grid", "check_writable_as",
]  # fmt: skip


@dataclass
class Volume:
    """A 3-D volume in physical units (float32), its RAS+ affine, and the reader's record of the file."""

    data: np.ndarray  # (I, J, K) float32
    affine: np.ndarray  # 4 x 4, voxel index -> RAS+ mm
    path: Path
    format: str = "nifti"
    header: Any = None  # the format's own record (nibabel image, ItkGeometry, DicomSeries), for its writer

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def image(self) -> Any:
        """The nibabel image of a NIfTI volume (its header and affine)."""
        if self.format != "nifti":
            raise AttributeError(f"{self.path}: a {self.format} volume has no NIfTI image")
        return self.header


@dataclass(frozen=True)
class Format:
    """A volume format: its name and file names (its reader and writer: :data:`pix2gan.io.codecs.CODECS`)."""

    name: str
    suffixes: tuple[str, ...]  # empty for a folder format


FORMATS = (
    Format("nifti", (".nii.gz", ".nii")),
    Format("metaimage", (".mha", ".mhd")),
    Format("nrrd", (".nrrd", ".nhdr")),
    Format("dicom", ()),
)
VOLUME_SUFFIXES = tuple(s for f in FORMATS for s in f.suffixes)
_DICOM = FORMATS[-1]


def format_of(path: Path) -> Format | None:
    """The format a file name says, or None (a DICOM series is a folder: see :func:`is_dicom_folder`)."""
    name = path.name.lower()
    for fmt in FORMATS:
        if name.endswith(fmt.suffixes) and fmt.suffixes:
            return fmt
    return None


def output_format(path: Path) -> Format:
    """The format an output path asks for: its suffix, or a DICOM series (a folder) when it has none we know."""
    return format_of(path) or _DICOM


def volume_name(path: Path) -> str:
    """A volume's name without its format suffix (a folder's name as it is)."""
    fmt = format_of(path)
    name = path.name
    if fmt is not None:
        for suffix in fmt.suffixes:
            if name.lower().endswith(suffix):
                return name[: -len(suffix)]
    return name


def is_volume_file(path: Path) -> bool:
    """A file whose name is one of the supported volume formats."""
    return format_of(path) is not None and path.is_file()


def is_dicom_file(path: Path) -> bool:
    """A DICOM file: named ``.dcm``, or with the ``DICM`` magic after its 128-byte preamble. Never raises."""
    if path.suffix.lower() == ".dcm":
        return True
    if format_of(path) is not None:
        return False
    try:
        with open(path, "rb") as fh:
            return fh.read(132)[128:] == b"DICM"
    except OSError:
        return False


def is_dicom_folder(folder: Path) -> bool:
    """A folder holding DICOM files (``.dcm``, or the ``DICM`` magic in files with another name)."""
    if not folder.is_dir():
        return False
    return any(is_dicom_file(p) for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _names() -> str:
    return ", ".join(VOLUME_SUFFIXES)


def check_voxels(volume: Volume, allow_constant: bool = True) -> None:
    """Refuse a read volume that is not 3-D, has a zero-size axis, NaN / Inf voxels or a singular affine (and a
    constant one unless ``allow_constant``).

    Raises:
        InputError: one line naming the file and the problem.
    """
    data, path = volume.data, volume.path
    if data.ndim != 3:
        raise InputError(f"{path}: volume is {data.ndim}-D with shape {data.shape}; a 3-D volume is needed")
    if 0 in data.shape:
        raise InputError(f"{path}: volume has a zero-size axis, shape {data.shape}")
    bad = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
    if bad:
        raise InputError(f"{path}: {bad} voxel(s) are NaN or Inf")
    affine = volume.affine
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise InputError(f"{path}: the affine is singular or not finite")
    if not allow_constant and float(data.max()) == float(data.min()):
        raise InputError(f"{path}: volume is constant (every voxel is {float(data.min()):g})")


def check_writable_as(output: Path, source: Path) -> None:
    """Refuse, before any work, an output format that cannot be made from the source (DICOM needs a DICOM source).

    Raises:
        InputError: naming the output.
    """
    if output_format(output).name == "dicom" and format_of(source) is not None:
        raise InputError(
            f"{output}: a DICOM series is written only from a DICOM series input; give the output a volume file name"
            f" ({_names()})"
        )


def check_shape(data: np.ndarray, template: Volume) -> None:
    """The one check that data to be written on ``template``'s grid has its shape (:func:`~pix2gan.io.codecs.save_like`).

    Raises:
        ValueError: the shapes differ (a caller's mistake, not the user's).
    """
    if tuple(data.shape) != template.shape:
        raise ValueError(f"save_like: data shape {tuple(data.shape)} differs from template {template.shape}")


def check_same_grid(reference: Volume, other: Volume, atol_mm: float = 1e-3) -> None:
    """Refuse two volumes of one subject that do not share the voxel grid (shape and affine).

    Raises:
        InputError: naming ``other`` and what differs.
    """
    if reference.shape != other.shape:
        raise InputError(f"{other.path}: shape {other.shape} differs from {reference.path.name} {reference.shape}")
    diff = float(np.abs(reference.affine - other.affine).max())
    if diff > atol_mm:
        raise InputError(
            f"{other.path}: affine differs from {reference.path.name} by up to {diff:.4g} mm; resample it onto the same grid"
        )
