"""Each format's reader and writer, in one explicit table, and the two functions that pick from it by name:
:func:`load_volume` (any input) and :func:`save_like` (a result on an input's grid).

A format is a row in :data:`pix2gan.io.volume.FORMATS` (its name and file names) and one in :data:`CODECS` (its
reader and writer). A reader is ``read(path, series=None) -> Volume``; a writer is ``write(path, data, template, *,
dtype, overwrite, describe, modality)`` and may take ``data`` to have ``template``'s shape (:func:`save_like`
checks it, once for every format).

Imports: the format modules import :mod:`pix2gan.io.volume`, never this module, so there is no import circle. The
slow import, SimpleITK (~0.5 s), happens inside the ITK and DICOM functions that need it; pydicom is already loaded
by nibabel.

Example:
    >>> sorted(CODECS) == sorted(f.name for f in FORMATS)
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from pix2gan.errors import InputError
from pix2gan.io import dicom, dicom_write, itk, nifti
from pix2gan.io.volume import (
    FORMATS,
    VOLUME_SUFFIXES,
    Volume,
    check_shape,
    check_voxels,
    format_of,
    is_dicom_folder,
    output_format,
)

__all__ = ["Codec", "CODECS", "load_volume", "save_like"]


class Reader(Protocol):
    def __call__(self, path: Path, series: str | None = None) -> Volume: ...


class Writer(Protocol):
    def __call__(
        self, path: Path, data: np.ndarray, template: Volume, *, dtype: type | np.dtype = ..., overwrite: bool = ...,
        describe: str = ..., modality: str = ...,
    ) -> None: ...  # fmt: skip


@dataclass(frozen=True)
class Codec:
    """A format's reader and writer."""

    read: Reader
    write: Writer


CODECS: dict[str, Codec] = {
    "nifti": Codec(nifti.read, nifti.write),
    "metaimage": Codec(itk.read, itk.write),
    "nrrd": Codec(itk.read, itk.write),
    "dicom": Codec(dicom.read, dicom_write.write),
}


def load_volume(path: str | Path, *, allow_constant: bool = True, series: str | None = None) -> Volume:
    """Read a 3-D volume of any supported format (a DICOM series from its folder), check it, decode it to float32.

    ``series`` picks the SeriesInstanceUID of a DICOM folder holding several series.

    Raises:
        InputError: one line naming the file and the problem: missing, unreadable, truncated, not 3-D, vector
            pixels, NaN or Inf voxels, a singular affine, an unsupported name, a DICOM folder with several series and
            no ``series``; a constant volume when ``allow_constant`` is false.
    """
    path = Path(path)
    names = ", ".join(VOLUME_SUFFIXES)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        if not is_dicom_folder(path):
            raise InputError(f"{path}: is a folder without DICOM files; expected a volume file ({names}) or a DICOM series folder")
        volume = CODECS["dicom"].read(path, series=series)
    else:
        fmt = format_of(path)
        if fmt is None:
            raise InputError(f"{path}: not a supported volume file name (expected {names} or a DICOM series folder)")
        if path.stat().st_size == 0:
            raise InputError(f"{path}: empty file (0 bytes)")
        volume = CODECS[fmt.name].read(path)
    check_voxels(volume, allow_constant)
    return volume


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
    names the target (e.g. ``ct``; ``ct std`` for its standard-deviation map) for formats that record it. Atomic:
    nothing is left half written.

    Raises:
        ValueError: ``data`` has another shape than ``template``.
        InputError: the writer's refusals (an existing output without ``overwrite``, a DICOM series from a
            non-DICOM input, ...).
    """
    path = Path(path)
    check_shape(data, template)
    write = CODECS[output_format(path).name].write
    write(path, data, template, dtype=dtype, overwrite=overwrite, describe=describe, modality=modality)
