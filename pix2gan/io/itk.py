"""MetaImage (``.mha``, ``.mhd`` + raw) and NRRD (``.nrrd``, ``.nhdr`` + raw) volumes through SimpleITK.

ITK stores a grid as origin, spacing and a direction matrix in LPS+ millimetres; pix2gan works with the affine that
maps a voxel index to RAS+ millimetres (nibabel's convention). The two are related exactly by a sign flip of x and y:

    affine[:3, :3] = F · D · diag(spacing),   affine[:3, 3] = F · origin,   F = diag(-1, -1, 1)

The reader keeps the geometry exactly as stored (:class:`ItkGeometry`), so an output in the input's format copies it
unchanged; an output from another format's volume derives it from the affine (:func:`geometry_from_affine`).

Voxel order: SimpleITK's arrays are ``[z, y, x]``; :attr:`Volume.data` is the transposed view ``[x, y, z]``, so index
``(i, j, k)`` is ITK's index, the same as NIfTI's.

Example:
    >>> g = ItkGeometry(origin=(10.0, -5.0, 2.0), spacing=(0.5, 0.5, 3.0), direction=tuple(np.eye(3).ravel()))
    >>> a = g.affine()
    >>> a[:3, 3].tolist(), np.diag(a)[:3].tolist()
    ([-10.0, 5.0, 2.0], [-0.5, -0.5, 3.0])
    >>> back = geometry_from_affine(a)
    >>> np.allclose(back.origin, g.origin) and np.allclose(back.spacing, g.spacing)
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pix2gan.errors import InputError
from pix2gan.io.atomic import refuse_existing, staged
from pix2gan.io.nifti import cast, reason
from pix2gan.io.volume import Volume, format_of, volume_name

__all__ = ["ItkGeometry", "data_file", "geometry_from_affine", "read", "write"]

_LPS = np.diag([-1.0, -1.0, 1.0])
_IMAGE_IO = {"metaimage": "MetaImageIO", "nrrd": "NrrdImageIO"}  # format -> the ITK reader of its files
_DETACHED = {".mhd": ".zraw", ".nhdr": ".raw.gz"}  # a header naming a separate data file: the one write() makes


@dataclass(frozen=True)
class ItkGeometry:
    """An ITK image's grid as stored: origin and spacing (3), direction (9, row-major), all LPS+."""

    origin: tuple[float, ...]
    spacing: tuple[float, ...]
    direction: tuple[float, ...]

    def affine(self) -> np.ndarray:
        """The voxel index -> RAS+ mm affine."""
        direction = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)
        affine = np.eye(4)
        affine[:3, :3] = _LPS @ direction @ np.diag(np.asarray(self.spacing, dtype=np.float64))
        affine[:3, 3] = _LPS @ np.asarray(self.origin, dtype=np.float64)
        return affine


def geometry_from_affine(affine: np.ndarray) -> ItkGeometry:
    """The ITK geometry of a RAS+ affine (spacing = column norms, direction = the normalised columns)."""
    lps = _LPS @ np.asarray(affine, dtype=np.float64)[:3, :4]
    spacing = np.linalg.norm(lps[:, :3], axis=0)
    direction = lps[:, :3] / spacing
    return ItkGeometry(tuple(map(float, lps[:, 3])), tuple(map(float, spacing)), tuple(map(float, direction.ravel())))


def _sitk():  # noqa: ANN202
    import SimpleITK as sitk

    return sitk


def read(path: Path, series: str | None = None) -> Volume:
    """Read a 3-D scalar MetaImage or NRRD volume into float32 ``[x, y, z]`` with its RAS+ affine.

    A 4-D image with one frame is read as 3-D. Raises :class:`InputError` (one line, naming the file) for 2-D, 4-D
    and vector-pixel images, a detached header whose data file is missing or short, and anything SimpleITK cannot
    read.
    """
    sitk = _sitk()
    image_io = _IMAGE_IO[format_of(path).name]  # named: ITK does not recognise upper-case suffixes (CT.MHA) itself
    info = sitk.ImageFileReader()
    info.SetFileName(str(path))
    info.SetImageIO(image_io)
    _check_data_file(path)
    try:
        info.ReadImageInformation()
    except RuntimeError as exc:
        raise InputError(f"{path}: not a readable {format_of(path).name} file ({_itk_reason(exc)})") from None
    size = tuple(int(s) for s in info.GetSize())
    if info.GetNumberOfComponents() != 1:
        raise InputError(f"{path}: vector pixels ({info.GetNumberOfComponents()} components per voxel); a scalar 3-D volume is needed")
    if len(size) == 4 and size[3] == 1:
        size = size[:3]
    if len(size) != 3:
        raise InputError(f"{path}: volume is {len(info.GetSize())}-D with size {tuple(info.GetSize())}; a 3-D volume is needed")
    try:
        image = sitk.ReadImage(str(path), imageIO=image_io)
    except RuntimeError as exc:
        raise InputError(f"{path}: cannot read the voxel data, the file is truncated or corrupt ({_itk_reason(exc)})") from None
    if image.GetDimension() == 4:
        image = image[:, :, :, 0]
    geometry = ItkGeometry(tuple(image.GetOrigin()), tuple(image.GetSpacing()), tuple(image.GetDirection()))
    data = sitk.GetArrayViewFromImage(image).astype(np.float32).T  # [z, y, x] -> [x, y, z], one copy
    return Volume(data=data, affine=geometry.affine(), path=Path(path), format=format_of(path).name, header=geometry)


def data_file(path: Path) -> Path | None:
    """The data file :func:`write` puts beside a detached header (``x.mhd`` -> ``x.zraw``, ``x.nhdr`` ->
    ``x.raw.gz``), or None for a single-file format.

    Example:
        >>> data_file(Path("out/ct.mhd")).as_posix(), data_file(Path("ct.nhdr")).name, data_file(Path("ct.mha"))
        ('out/ct.zraw', 'ct.raw.gz', None)
    """
    suffix = next((s for s in _DETACHED if path.name.lower().endswith(s)), None)
    return None if suffix is None else path.with_name(path.name[: -len(suffix)] + _DETACHED[suffix])


def _check_data_file(path: Path) -> None:
    """A detached header (``.mhd``, ``.nhdr``) whose data file is missing or shorter than the header says."""
    if data_file(path) is None:
        return
    try:
        text = path.read_bytes()[:65536].decode("latin-1")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=" if path.suffix.lower() == ".mhd" else ":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    name = fields.get("elementdatafile" if path.suffix.lower() == ".mhd" else "data file", "")
    if not name or name.upper() == "LOCAL" or name.upper().startswith("LIST") or "%" in name:
        return  # data inside the header, or a file list ITK resolves itself
    stored = (path.parent / name).resolve()
    if not stored.is_file():
        raise InputError(f"{path}: its data file {name} is missing")
    compressed = fields.get("compresseddata", "false").lower() == "true" or fields.get("encoding", "raw") not in ("raw",)
    if path.suffix.lower() == ".mhd" and not compressed:
        expected = _mhd_bytes(fields)
        actual = stored.stat().st_size
        if expected is not None and actual < expected:
            raise InputError(f"{path}: its data file {name} is short ({actual} bytes, {expected} expected)")


# bytes per element of each pixel type, as MetaIO's MET_ValueTypeSize has them (metaTypes.h): MET_LONG and MET_ULONG
# are 32-bit there (ITK writes 64-bit integers as MET_LONG_LONG / MET_ULONG_LONG)
_MET_BYTES = {"MET_ASCII_CHAR": 1, "MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4,
              "MET_UINT": 4, "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4,
              "MET_DOUBLE": 8}  # fmt: skip


def _mhd_bytes(fields: dict[str, str]) -> int | None:
    try:
        dims = [int(v) for v in fields["dimsize"].split()]
        per_voxel = _MET_BYTES[fields["elementtype"]] * int(fields.get("elementnumberofchannels", "1"))
    except (KeyError, ValueError):
        return None
    return int(np.prod(dims)) * per_voxel


def _itk_reason(exc: BaseException) -> str:
    """ITK's exception text without its source-file preamble."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("Exception thrown", "sitk::ERROR", "/"))]
    return reason(RuntimeError(" ".join(useful or lines)))


def write(
    path: Path,
    data: np.ndarray,
    template: Volume,
    *,
    dtype: type | np.dtype = np.float32,
    overwrite: bool = False,
    describe: str = "",
    modality: str = "",
) -> None:
    """Write ``data`` (``[x, y, z]``) as a compressed MetaImage or NRRD on the template's grid, atomically.

    A template of the same family (ITK-read) gives its geometry exactly as stored; any other template gives the
    geometry of its affine. A detached header and its data file (:func:`data_file`) are written in a staging folder
    beside ``path`` and move into place together (:func:`~pix2gan.io.atomic.staged`): data file first, header last;
    neither may exist without ``overwrite``.
    """
    sitk = _sitk()
    path = Path(path)
    detached = data_file(path)
    refuse_existing([path] if detached is None else [path, detached], overwrite)
    geometry = template.header if isinstance(template.header, ItkGeometry) else geometry_from_affine(template.affine)
    image = sitk.GetImageFromArray(np.ascontiguousarray(cast(data, dtype).T))  # [x, y, z] -> [z, y, x]
    image.SetOrigin(geometry.origin)
    image.SetSpacing(geometry.spacing)
    image.SetDirection(geometry.direction)
    if describe:
        image.SetMetaData("pix2gan", describe)
    with staged([path], overwrite=overwrite) as stage:
        target = stage.path(path)
        stem = volume_name(path)
        lower = target.with_name(stem + path.name[len(stem) :].lower())  # ITK reads ".MHA" as a detached ".mhd"
        try:
            sitk.WriteImage(image, str(lower), True)
        except RuntimeError as exc:
            raise InputError(f"{path}: cannot write ({_itk_reason(exc)})") from None
        if lower != target:
            lower.rename(target)
