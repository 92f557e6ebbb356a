"""A volume in any supported format, and the one place that picks the reader or writer for a path.

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

Example:
    >>> volume_name(Path("scan.nii.gz")), volume_name(Path("ct.mha")), format_of(Path("a.nhdr")).name
    ('scan', 'ct', 'nrrd')
    >>> format_of(Path("notes.txt")) is None
    True
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pix2gan.errors import InputError

__all__ = [
    "Volume", "Format", "FORMATS", "VOLUME_SUFFIXES", "format_of", "output_format", "volume_name", "is_volume_file",
    "is_dicom_file", "is_dicom_folder", "load_volume", "save_like", "check_same_grid", "check_writable_as",
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
    """A volume format: its file names, and where its reader and writer live (imported on first use)."""

    name: str
    suffixes: tuple[str, ...]  # empty for a folder format
    module: str  # pix2gan.io.<module> defines read(path, series=None) -> Volume and write(path, data, template, ...)

    def reader(self) -> Any:
        return importlib.import_module(f"pix2gan.io.{self.module}").read

    def writer(self) -> Any:
        return importlib.import_module(f"pix2gan.io.{self.module}").write


FORMATS = (
    Format("nifti", (".nii.gz", ".nii"), "nifti"),
    Format("metaimage", (".mha", ".mhd"), "itk"),
    Format("nrrd", (".nrrd", ".nhdr"), "itk"),
    Format("dicom", (), "dicom"),
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


def load_volume(path: str | Path, *, allow_constant: bool = True, series: str | None = None) -> Volume:
    """Read a 3-D volume of any supported format (a DICOM series from its folder), check it, decode it to float32.

    ``series`` picks the SeriesInstanceUID of a DICOM folder holding several series.

    Raises:
        InputError: one line naming the file and the problem: missing, unreadable, truncated, not 3-D, vector
            pixels, NaN or Inf voxels, a singular affine, an unsupported name, a DICOM folder with several series and
            no ``series``; a constant volume when ``allow_constant`` is false.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        if not is_dicom_folder(path):
            raise InputError(f"{path}: is a folder without DICOM files; expected a volume file ({_names()}) or a DICOM series folder")
        volume = _DICOM.reader()(path, series=series)
    else:
        fmt = format_of(path)
        if fmt is None:
            raise InputError(f"{path}: not a supported volume file name (expected {_names()} or a DICOM series folder)")
        if path.stat().st_size == 0:
            raise InputError(f"{path}: empty file (0 bytes)")
        volume = fmt.reader()(path)
    _check_voxels(volume, allow_constant)
    return volume


def _names() -> str:
    return ", ".join(VOLUME_SUFFIXES)


def _check_voxels(volume: Volume, allow_constant: bool) -> None:
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


def save_like(
    path: str | Path,
    data: np.ndarray,
    template: Volume,
    *,
    dtype: type | np.dtype = np.float32,
    overwrite: bool = False,
    describe: str = "",
    modality: str = "",
) -> None:
    """Write ``data`` on the grid of ``template``, in the format ``path`` names (a DICOM series for a folder path).

    Same format as the template: its geometry is copied exactly (NIfTI header fields bit for bit; ITK origin, spacing
    and direction; DICOM per-slice positions). Another format: converted through the template's affine. ``dtype``
    (float32 or int16) applies to the voxel formats; a DICOM series always stores int16 with a rescale. ``modality``
    names the target (e.g. ``ct``) for formats that record it. Atomic: nothing is left half written.
    """
    path = Path(path)
    if tuple(data.shape) != template.shape:
        raise ValueError(f"save_like: data shape {tuple(data.shape)} differs from template {template.shape}")
    fmt = output_format(path)
    if fmt is _DICOM and template.format != "dicom":
        raise InputError(f"{path}: a DICOM series is written only on a DICOM series' grid (the input is {template.format})")
    fmt.writer()(path, data, template, dtype=dtype, overwrite=overwrite, describe=describe, modality=modality)


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
