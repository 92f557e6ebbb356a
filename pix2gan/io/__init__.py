"""Volume files in and out with their geometry kept, atomic writes, and the checks every input goes through.

A format plugs in as a row in :data:`pix2gan.io.volume.FORMATS` (its name and file names) and one in
:data:`pix2gan.io.codecs.CODECS` (its reader ``read(path, series=None) -> Volume`` and writer ``write(path, data,
template, ...)``: :mod:`~pix2gan.io.nifti`, :mod:`~pix2gan.io.itk`, :mod:`~pix2gan.io.dicom` and
:mod:`~pix2gan.io.dicom_write`).
"""

from pix2gan.io.atomic import (
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    check_new_file,
    check_output_folder,
    fsync_folder,
    refuse_existing,
)
from pix2gan.io.codecs import load_volume, save_like
from pix2gan.io.nifti import GEOMETRY_FIELDS, NIFTI_SUFFIXES, is_nifti, save_nifti
from pix2gan.io.volume import (
    FORMATS,
    VOLUME_SUFFIXES,
    Format,
    Volume,
    check_same_grid,
    check_writable_as,
    format_of,
    is_dicom_folder,
    is_volume_file,
    output_format,
    volume_name,
)

__all__ = [
    "Volume",
    "Format",
    "FORMATS",
    "VOLUME_SUFFIXES",
    "NIFTI_SUFFIXES",
    "GEOMETRY_FIELDS",
    "format_of",
    "output_format",
    "volume_name",
    "is_volume_file",
    "is_dicom_folder",
    "is_nifti",
    "load_volume",
    "check_same_grid",
    "check_writable_as",
    "save_nifti",
    "save_like",
    "atomic_path",
    "atomic_write_json",
    "atomic_write_text",
    "check_new_file",
    "check_output_folder",
    "fsync_folder",
    "refuse_existing",
]
