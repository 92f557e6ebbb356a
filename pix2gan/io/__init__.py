"""Volume files in and out with their geometry kept, atomic writes, and the checks every input goes through.

One place a new format plugs in: a reader returning a :class:`Volume` and a writer taking a template volume.
Today: NIfTI (``.nii``, ``.nii.gz``) through nibabel.
"""

from pix2gan.io.atomic import (
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    check_new_file,
    check_output_folder,
    fsync_folder,
)
from pix2gan.io.nifti import (
    GEOMETRY_FIELDS,
    NIFTI_SUFFIXES,
    Volume,
    check_same_grid,
    is_nifti,
    load_volume,
    save_like,
    save_nifti,
)

__all__ = [
    "Volume",
    "NIFTI_SUFFIXES",
    "GEOMETRY_FIELDS",
    "is_nifti",
    "load_volume",
    "check_same_grid",
    "save_nifti",
    "save_like",
    "atomic_path",
    "atomic_write_json",
    "atomic_write_text",
    "check_new_file",
    "check_output_folder",
    "fsync_folder",
]
