"""DICOM series in: a folder of one series' slice files read into a :class:`Volume`, checked slice by slice. The
derived series written back on exactly the source's slices is :mod:`pix2gan.io.dicom_write` (which imports this
module; this one does not import it).

Headers are read with pydicom, voxels with SimpleITK's GDCM (``ImageSeriesReader`` over our own sorted file list),
which applies each file's RescaleSlope / RescaleIntercept, so CT comes out in HU.

Geometry (LPS+ in the files, RAS+ in the affine, ``F = diag(-1, -1, 1)``): with ``r = IOP[0:3]`` (the direction of
increasing column index), ``c = IOP[3:6]`` (increasing row index) and the slice normal ``n = r x c``, slices are
sorted by ``n · IPP`` ascending and ``data[i, j, k]`` is column i, row j of sorted slice k (ITK's x, y, z)::

    affine[:3, 0] = F r PixelSpacing[1]    affine[:3, 1] = F c PixelSpacing[0]
    affine[:3, 2] = F (IPP[-1] - IPP[0]) / (K - 1)    affine[:3, 3] = F IPP[0]

(one slice: the step is ``n`` times SpacingBetweenSlices, SliceThickness or 1 mm). A gantry tilt gives a sheared
affine, as it should.

Transfer syntaxes decoded (:data:`DECODABLE`, checked on pydicom's test files with this SimpleITK build): implicit /
explicit little endian, big endian, deflated, RLE, JPEG baseline, extended (12 bit), lossless (14, SV1), JPEG-LS, JPEG
2000. Others (HTJ2K, JPEG 2000 part 2, JPEG XL, MPEG / HEVC video, JPIP...) are refused with their names.

Example:
    >>> is_dicom_file(Path("IM0001.DCM")), is_dicom_file(Path("/no/such/file"))
    (True, False)
"""

from __future__ import annotations

import os
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.uid import UID

from pix2gan.errors import InputError
from pix2gan.io.nifti import reason
from pix2gan.io.volume import Volume, is_dicom_file

__all__ = ["DicomSeries", "DECODABLE", "is_dicom_file", "read"]

_F = np.array([-1.0, -1.0, 1.0])  # LPS <-> RAS
DECODABLE = frozenset(
    "1.2.840.10008.1.2" + s
    for s in ("", ".1", ".1.99", ".2", ".5", ".4.50", ".4.51", ".4.57", ".4.70", ".4.80", ".4.81", ".4.90", ".4.91")
)  # transfer syntaxes this environment's GDCM decodes
@dataclass(eq=False)
class DicomSeries:
    """A read series: its folder and UID, the files sorted along the slice normal and their headers (no pixels)."""

    folder: Path
    uid: str
    files: tuple[Path, ...]
    datasets: tuple[Dataset, ...] = field(repr=False)

    @property
    def modality(self) -> str:
        return str(self.datasets[0].get("Modality", "") or "")


def read(path: Path, series: str | None = None) -> Volume:
    """Read one series of the DICOM folder ``path`` into float32 ``[column, row, slice]`` (rescaled: CT in HU).

    ``series`` picks a SeriesInstanceUID when the folder holds several. Hidden files and sub-folders are skipped, as
    is a DICOMDIR.

    Raises:
        InputError: one line naming the folder (and file): several series and no ``series``, an unknown one, a file
            not DICOM or truncated, a transfer syntax not decodable here, mixed orientations (a localiser), a
            duplicated slice, uneven spacing (a missing slice), other Rows / Columns / PixelSpacing, multi-frame or
            colour files, missing geometry.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder; a DICOM series is read from the folder holding its files")
    groups: dict[str, list[tuple[Path, Dataset]]] = {}
    problems: dict[Path, str] = {}  # files whose pixel data are missing or short: refused if in the chosen series
    for file in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        ds = _header(folder, file, problems)
        if ds is not None:
            groups.setdefault(str(ds.SeriesInstanceUID), []).append((file, ds))
    if not groups:
        raise InputError(f"{folder}: holds no DICOM image files")
    uid = _choose(folder, groups, series)
    for file in (f for f, _ in groups[uid] if f in problems):
        raise InputError(f"{folder}: file {file.name} {problems[file]}")
    files, datasets, affine = _geometry(folder, groups[uid])
    data = _pixels(folder, files, datasets)
    header = DicomSeries(folder=folder, uid=uid, files=tuple(files), datasets=tuple(datasets))
    return Volume(data=data, affine=affine, path=folder, format="dicom", header=header)


def _header(folder: Path, file: Path, problems: dict[Path, str]) -> Dataset | None:
    """One file's header (None for a DICOMDIR); a missing or short native pixel data element goes into ``problems``."""
    try:
        with open(file, "rb") as fh:
            ds = pydicom.dcmread(fh, stop_before_pixels=True)  # leaves fh at the pixel data element
            short = _missing_bytes(fh, ds)
    except InvalidDicomError:
        raise InputError(f"{folder}: file {file.name} is not a DICOM file (no DICM preamble)") from None
    except Exception as exc:  # truncated headers raise EOFError, struct.error, ValueError, ...
        raise InputError(f"{folder}: file {file.name} is truncated or corrupt ({reason(exc)})") from None
    meta = getattr(ds, "file_meta", None) or Dataset()
    if meta.get("MediaStorageSOPClassUID") == "1.2.840.10008.1.3.10" or file.name.upper() == "DICOMDIR":
        return None
    if "SeriesInstanceUID" not in ds:
        more = " and no pixel data (truncated, or not an image)" if short is None else ""
        raise InputError(f"{folder}: file {file.name} has no SeriesInstanceUID{more}")
    if short is None:
        problems[file] = "has no pixel data (truncated, or not an image)"
    elif short:
        problems[file] = f"is truncated: its pixel data lack {short} bytes"
    return ds


def _missing_bytes(fh: BinaryIO, ds: Dataset) -> int | None:
    """Bytes missing from the native pixel data element at ``fh``'s position (0 when complete or encapsulated), or
    None when there is none. A deflated file's positions are not the file's: left to the decoder."""
    if str(getattr(ds, "file_meta", Dataset()).get("TransferSyntaxUID", "")) == "1.2.840.10008.1.2.1.99":
        return 0
    pos, head, size = fh.tell(), fh.read(12), os.fstat(fh.fileno()).st_size
    implicit, little = ds.original_encoding
    order = ">" if little is False else "<"
    if len(head) < 8 or struct.unpack(order + "HH", head[:4]) != (0x7FE0, 0x0010):
        return None
    if not implicit and len(head) < 12:
        return 12 - len(head)
    length = struct.unpack(order + "I", head[4:8] if implicit else head[8:12])[0]
    return 0 if length == 0xFFFFFFFF else max(0, pos + (8 if implicit else 12) + length - size)


def _choose(folder: Path, groups: dict[str, list[tuple[Path, Dataset]]], series: str | None) -> str:
    listing = "; ".join(
        f"{uid} ({ds.get('SeriesDescription', '') or '-'}, {ds.get('Modality', '') or '?'}, {len(items)} files)"
        for uid, items in groups.items()
        for ds in [items[0][1]]
    )
    if series is not None:
        if series not in groups:
            raise InputError(f"{folder}: no series {series} here; the series are: {listing}")
        return series
    if len(groups) > 1:
        raise InputError(f"{folder}: holds {len(groups)} DICOM series ({listing}); choose one with --series UID")
    return next(iter(groups))


def _floats(folder: Path, file: Path, ds: Dataset, keyword: str, size: int) -> np.ndarray:
    try:
        value = np.array([float(v) for v in ds[keyword].value], dtype=np.float64)
    except Exception:  # missing, empty, or not numbers
        value = np.zeros(0)
    if value.shape != (size,) or not np.isfinite(value).all():
        raise InputError(f"{folder}: file {file.name} has no valid {keyword} (not a cross-sectional image?)")
    return value


def _geometry(folder: Path, items: list[tuple[Path, Dataset]]) -> tuple[list[Path], list[Dataset], np.ndarray]:
    """Check the slices, sort them along the normal, and build the RAS+ affine."""
    for file, ds in items:
        syntax = UID(str(getattr(ds, "file_meta", Dataset()).get("TransferSyntaxUID", "")))
        if syntax not in DECODABLE:
            name = f"'{syntax.name}' ({syntax})" if syntax else "no transfer syntax"
            raise InputError(f"{folder}: file {file.name} uses {name}, which cannot be decoded here")
        if int(ds.get("NumberOfFrames", 1) or 1) > 1 or int(ds.get("SamplesPerPixel", 1) or 1) != 1:
            raise InputError(f"{folder}: file {file.name} is multi-frame or colour; a series of greyscale slices is needed")
    iops = [_floats(folder, f, ds, "ImageOrientationPatient", 6) for f, ds in items]
    keys = [tuple(np.round(v, 4)) for v in iops]
    common = iops[keys.index(Counter(keys).most_common(1)[0][0])]  # the majority's, as stored
    for (file, _), iop in zip(items, iops):
        if np.abs(iop - common).max() > 1e-4:
            raise InputError(
                f"{folder}: mixed orientations: file {file.name} has ImageOrientationPatient {_fmt(iop)}, the others "
                f"{_fmt(common)} (a localiser / scout in the series?)"
            )
    first = items[0][1]
    _floats(folder, items[0][0], first, "PixelSpacing", 2)
    for file, ds in items:
        for key in ("Rows", "Columns", "PixelSpacing"):
            if _value(ds.get(key)) != _value(first.get(key)):
                raise InputError(
                    f"{folder}: file {file.name} has {key} {ds.get(key)} where {items[0][0].name} has {first.get(key)}"
                )
    row, col = (v / np.linalg.norm(v) for v in (np.asarray(common[:3]), np.asarray(common[3:])))
    normal = np.cross(row, col)
    ipp = np.stack([_floats(folder, f, ds, "ImagePositionPatient", 3) for f, ds in items])
    order = np.argsort(ipp @ normal, kind="stable")
    ipp = ipp[order]
    files, datasets = [items[i][0] for i in order], [items[i][1] for i in order]
    gaps = np.diff(ipp @ normal)
    if len(gaps):
        tol = max(1e-3 * float(np.median(np.abs(gaps))), 0.01)
        if gaps.min() < tol:
            k = int(np.argmin(gaps))
            pair = f"{files[k].name} and {files[k + 1].name}"
            raise InputError(f"{folder}: duplicated slice: files {pair} lie at the same position")
        if np.abs(gaps - np.median(gaps)).max() > tol:
            k = int(np.argmax(np.abs(gaps - np.median(gaps))))
            raise InputError(
                f"{folder}: uneven slice spacing: {gaps[k]:.4g} mm between {files[k].name} and {files[k + 1].name}, "
                f"the median gap is {np.median(gaps):.4g} mm (a missing slice?)"
            )
        step = (ipp[-1] - ipp[0]) / (len(ipp) - 1)
        off = np.abs(ipp - (ipp[0] + np.arange(len(ipp))[:, None] * step)).max()
        if off > tol:
            raise InputError(f"{folder}: slice positions do not lie on a straight line (off by up to {off:.3g} mm)")
    else:
        thick = first.get("SpacingBetweenSlices") or first.get("SliceThickness") or 1.0
        step = normal * (abs(float(thick)) or 1.0)
    spacing = [float(v) for v in first.PixelSpacing]
    affine = np.eye(4)
    affine[:3] = _F[:, None] * np.stack([row * spacing[1], col * spacing[0], step, ipp[0]], axis=1)
    return files, datasets, affine


def _value(v: object) -> object:
    return tuple(round(float(x), 6) for x in v) if isinstance(v, (list, tuple, MultiValue)) else v


def _fmt(v: object) -> str:
    return "[" + ", ".join(f"{float(x):.4g}" for x in v) + "]"


def _pixels(folder: Path, files: list[Path], datasets: list[Dataset]) -> np.ndarray:
    """The rescaled voxels as float32 ``[column, row, slice]`` (F-ordered), read by GDCM in our slice order."""
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetImageIO("GDCMImageIO")
    reader.SetFileNames([str(f) for f in files])
    reader.SetOutputPixelType(sitk.sitkFloat32)
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        for file in files:  # name the file that fails
            try:
                sitk.ReadImage(str(file), sitk.sitkFloat32, imageIO="GDCMImageIO")
            except RuntimeError:
                problem = "cannot decode its pixel data (truncated or corrupt)"
                raise InputError(f"{folder}: file {file.name}: {problem}") from None
        raise InputError(f"{folder}: cannot read the series' pixel data ({reason(exc)})") from None
    arr = sitk.GetArrayFromImage(image)  # (K, J, I)
    expected = (len(files), int(datasets[0].Rows), int(datasets[0].Columns))
    if arr.shape != expected:
        raise InputError(f"{folder}: pixel data of shape {arr.shape} where the headers say {expected}")
    return arr.transpose(2, 1, 0)

