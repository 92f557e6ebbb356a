"""NIfTI volumes in and out with their geometry intact, and every check on what users hand us.

Every problem with an input is raised as :class:`~pix2gan.errors.InputError`, whose message is one line naming the
file and the problem; the CLI prints it and exits with code 2. Files are written atomically (:mod:`pix2gan.io.atomic`).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from pix2gan.errors import InputError
from pix2gan.io.atomic import atomic_path

__all__ = ["Volume", "NIFTI_SUFFIXES", "GEOMETRY_FIELDS", "is_nifti", "load_volume", "check_same_grid", "save_nifti",
           "save_like"]  # fmt: skip

NIFTI_SUFFIXES = (".nii.gz", ".nii")
# Header fields that fix where voxels are in space; copied bit for bit from the input to every output.
GEOMETRY_FIELDS = (
    "pixdim", "qform_code", "sform_code", "quatern_b", "quatern_c", "quatern_d",
    "qoffset_x", "qoffset_y", "qoffset_z", "srow_x", "srow_y", "srow_z", "xyzt_units", "dim_info",
)  # fmt: skip


@dataclass
class Volume:
    """A 3-D volume in physical units (float32) with the image it was read from (for its header and affine)."""

    data: np.ndarray  # (X, Y, Z) float32, scaled by scl_slope / scl_inter
    image: nib.Nifti1Image
    path: Path

    @property
    def affine(self) -> np.ndarray:
        return self.image.affine

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)


def is_nifti(path: Path) -> bool:
    return path.name.endswith(NIFTI_SUFFIXES)


def load_volume(path: str | Path, *, allow_constant: bool = True) -> Volume:
    """Read a 3-D NIfTI volume, check it, and decode it once into float32.

    Trailing singleton dimensions (a 4-D file with one frame) are dropped; anything else that is not 3-D is refused.

    Raises:
        InputError: missing, unreadable, truncated or non-NIfTI file; not 3-D; a zero-size axis; NaN or Inf voxels;
            a singular affine; a constant volume when ``allow_constant`` is false.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a .nii or .nii.gz file")
    if not is_nifti(path):
        raise InputError(f"{path}: not a NIfTI file name (expected .nii or .nii.gz)")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    try:
        image = nib.load(path)
    except Exception as exc:  # nibabel raises many types for garbage: ImageFileError, HeaderDataError, EOFError...
        raise InputError(f"{path}: not a readable NIfTI file ({_reason(exc)})") from None
    if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputError(f"{path}: not a NIfTI image (read as {type(image).__name__})")
    shape = tuple(int(s) for s in image.shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3:
        raise InputError(f"{path}: volume is {len(shape)}-D with shape {tuple(image.shape)}; a 3-D volume is needed")
    if 0 in shape:
        raise InputError(f"{path}: volume has a zero-size axis, shape {shape}")
    try:
        data = np.asarray(image.get_fdata(dtype=np.float32)).reshape(shape)
    except Exception as exc:  # truncated gzip streams raise EOFError, zlib.error, OSError or ValueError
        raise InputError(f"{path}: cannot read the voxel data, the file is truncated or corrupt ({_reason(exc)})") from None
    bad = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
    if bad:
        raise InputError(f"{path}: {bad} voxel(s) are NaN or Inf")
    if not np.isfinite(image.affine).all() or abs(np.linalg.det(image.affine[:3, :3])) < 1e-12:
        raise InputError(f"{path}: the affine is singular or not finite")
    if not allow_constant and float(data.max()) == float(data.min()):
        raise InputError(f"{path}: volume is constant (every voxel is {float(data.min()):g})")
    return Volume(data=data, image=image, path=path)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


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


def _write_image(path: Path, image: nib.Nifti1Image, overwrite: bool) -> None:
    """Stream the image into a temporary file, gzipped for ``.nii.gz`` with mtime 0 (identical bytes every run)."""
    with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "wb") as raw:
        if path.name.endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
                image.to_file_map({"image": nib.FileHolder(fileobj=gz)})
        else:
            image.to_file_map({"image": nib.FileHolder(fileobj=raw)})


def save_nifti(
    path: str | Path, data: np.ndarray, affine: np.ndarray, *, overwrite: bool = False, code: int = 1
) -> None:
    """Write a new NIfTI volume with the given affine as both qform and sform (``code`` 1 = scanner)."""
    image = nib.Nifti1Image(np.asarray(data), affine)
    image.header.set_qform(affine, code=code)
    image.header.set_sform(affine, code=code)
    image.header.set_xyzt_units("mm", "sec")
    _write_image(Path(path), image, overwrite)


def save_like(
    path: str | Path,
    data: np.ndarray,
    template: Volume,
    *,
    dtype: type | np.dtype = np.float32,
    overwrite: bool = False,
    describe: str = "",
) -> None:
    """Write ``data`` on the grid of ``template``: same shape, affine, qform/sform codes and pixdim, bit for bit.

    The header is the template's, with the data type changed to ``dtype`` and the scaling reset (slope 1, inter 0).
    """
    if tuple(data.shape) != template.shape:
        raise ValueError(f"save_like: data shape {tuple(data.shape)} differs from template {template.shape}")
    src = template.image.header
    header = src.copy()
    header.set_data_dtype(dtype)
    header.set_slope_inter(1.0, 0.0)
    if describe:
        header["descrip"] = describe.encode()[:79]
    arr = np.asarray(data)
    if arr.dtype != np.dtype(dtype):  # data already of the type is written as it is: no volume-sized copy
        if np.issubdtype(np.dtype(dtype), np.integer):
            info = np.iinfo(dtype)
            rounded = np.empty(arr.shape, dtype=dtype, order="F" if arr.flags.f_contiguous else "C")
            for k in range(arr.shape[-1]):  # a slice at a time, so no float copy of the whole volume
                rounded[..., k] = np.clip(np.rint(arr[..., k]), info.min, info.max)
            arr = rounded
        else:
            arr = arr.astype(dtype)
    image = nib.Nifti1Image(arr, template.affine, header=header)
    for key in GEOMETRY_FIELDS:  # nibabel may re-derive the q/s forms; keep the input's exactly
        image.header[key] = src[key]
    image.header.set_data_shape(arr.shape)
    _write_image(Path(path), image, overwrite)

