"""NIfTI volumes in and out (nibabel) with their geometry intact: the header fields that place voxels in space are
copied bit for bit from the input to every output.

Every problem with an input is raised as :class:`~pix2gan.errors.InputError`, whose message is one line naming the
file and the problem. Files are written atomically (:mod:`pix2gan.io.atomic`), ``.nii.gz`` with gzip mtime 0.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np

from pix2gan.errors import InputError
from pix2gan.io.atomic import atomic_path
from pix2gan.io.volume import Volume

__all__ = ["NIFTI_SUFFIXES", "GEOMETRY_FIELDS", "is_nifti", "read", "write", "save_nifti", "reason", "cast"]

NIFTI_SUFFIXES = (".nii.gz", ".nii")
# Header fields that fix where voxels are in space; copied bit for bit from the input to every output.
GEOMETRY_FIELDS = (
    "pixdim", "qform_code", "sform_code", "quatern_b", "quatern_c", "quatern_d",
    "qoffset_x", "qoffset_y", "qoffset_z", "srow_x", "srow_y", "srow_z", "xyzt_units", "dim_info",
)  # fmt: skip


def is_nifti(path: Path) -> bool:
    return path.name.endswith(NIFTI_SUFFIXES)


def read(path: Path, series: str | None = None) -> Volume:
    """Read a NIfTI volume and decode it once into float32 (scaled by scl_slope / scl_inter).

    Trailing singleton dimensions (a 4-D file with one frame) are dropped; anything else that is not 3-D is refused.
    The image keeps no cached copy of the voxels: :attr:`Volume.data` is the only one (translate writes over it).

    Raises:
        InputError: unreadable, truncated or non-NIfTI file; not 3-D.
    """
    try:
        image = nib.load(path)
    except Exception as exc:  # nibabel raises many types for garbage: ImageFileError, HeaderDataError, EOFError...
        raise InputError(f"{path}: not a readable NIfTI file ({reason(exc)})") from None
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
        raise InputError(f"{path}: cannot read the voxel data, the file is truncated or corrupt ({reason(exc)})") from None
    image.uncache()  # `data` is the only copy of the voxels
    return Volume(data=data, affine=image.affine, path=Path(path), format="nifti", header=image)


def reason(exc: BaseException) -> str:
    """An exception as a short one-line reason."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _write_image(path: Path, image: nib.Nifti1Image, overwrite: bool) -> None:
    """Stream the image into a temporary file, gzipped for ``.nii.gz`` with mtime 0 (identical bytes every run)."""
    with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "wb") as raw:
        if path.name.endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
                image.to_file_map({"image": nib.FileHolder(fileobj=gz)})
        else:
            image.to_file_map({"image": nib.FileHolder(fileobj=raw)})


def save_nifti(
    path: str | Path, data: np.ndarray, affine: np.ndarray, *, overwrite: bool = False, code: int = 1,
    describe: str = "",
) -> None:  # fmt: skip
    """Write a new NIfTI volume with the given affine as both qform and sform (``code`` 1 = scanner)."""
    image = nib.Nifti1Image(np.asarray(data), affine)
    if describe:
        image.header["descrip"] = describe.encode()[:79]
    image.header.set_qform(affine, code=code)
    image.header.set_sform(affine, code=code)
    image.header.set_xyzt_units("mm", "sec")
    _write_image(Path(path), image, overwrite)


def write(
    path: str | Path,
    data: np.ndarray,
    template: Volume,
    *,
    dtype: type | np.dtype = np.float32,
    overwrite: bool = False,
    describe: str = "",
    modality: str = "",
) -> None:
    """Write ``data`` on the grid of ``template``: same shape, affine, qform/sform codes and pixdim, bit for bit.

    The header is the template's, with the data type changed to ``dtype`` and the scaling reset (slope 1, inter 0).
    A template of another format gives a new header with its affine as qform and sform (code 1, scanner).
    ``data`` has the template's shape (:func:`~pix2gan.io.codecs.save_like` checks it).
    """
    if template.format != "nifti":
        save_nifti(path, cast(data, dtype), template.affine, overwrite=overwrite, describe=describe)
        return
    src = template.header.header
    header = src.copy()
    header.set_data_dtype(dtype)
    header.set_slope_inter(1.0, 0.0)
    if describe:
        header["descrip"] = describe.encode()[:79]
    arr = cast(data, dtype)
    image = nib.Nifti1Image(arr, template.affine, header=header)
    for key in GEOMETRY_FIELDS:  # nibabel may re-derive the q/s forms; keep the input's exactly
        image.header[key] = src[key]
    image.header.set_data_shape(arr.shape)
    _write_image(Path(path), image, overwrite)



def cast(data: np.ndarray, dtype: type | np.dtype) -> np.ndarray:
    """``data`` as ``dtype``: as it is when it already has the type (no copy); integers rounded and clipped to the
    type's range a slice at a time (no float copy of the whole volume).

    Example:
        >>> cast(np.array([[[1.6, -40000.0]]], dtype=np.float32), np.int16).tolist()
        [[[2, -32768]]]
    """
    arr = np.asarray(data)
    if arr.dtype == np.dtype(dtype):
        return arr
    if not np.issubdtype(np.dtype(dtype), np.integer):
        return arr.astype(dtype)
    info = np.iinfo(dtype)
    rounded = np.empty(arr.shape, dtype=dtype, order="F" if arr.flags.f_contiguous else "C")
    for k in range(arr.shape[-1]):
        rounded[..., k] = np.clip(np.rint(arr[..., k]), info.min, info.max)
    return rounded
