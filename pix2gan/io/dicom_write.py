"""DICOM series out: a derived series (a synthetic CT, say) written on exactly the slices of the series it was
predicted from, with the same patient, study and frame of reference.

A standard-deviation map (``modality`` ``"ct std"``: ``translate --uncertainty``) is not an image of the target: it
is written as a Secondary Capture series (Modality OT) whose ImageType, description, window and RescaleType say so,
its values kept to a fraction of a HU by the rescale slope (:func:`_std_encoding`). It keeps every slice's position,
orientation and pixel spacing, so that it lies on the prediction in a viewer (SimpleITK / GDCM read them, as tested).

Example:
    >>> _target("sct", "MR"), _target("", "CT"), _target("t1", "CT"), _target("pet", "PT"), _target("ct std", "MR")
    ('CT', 'CT', 'MR', 'PT', 'CT')
    >>> _is_std("ct std"), _is_std("ct"), _std_encoding(np.array([[[0.004, 12.5, 400.0]]]))[:2]
    (True, False, (0.02, 0.0))
"""

from __future__ import annotations

import copy
import datetime
import os
import re
import secrets
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    SecondaryCaptureImageStorage,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

from pix2gan.errors import InputError
from pix2gan.io.atomic import fsync_folder, refuse_existing
from pix2gan.io.dicom import DicomSeries
from pix2gan.io.volume import Volume

__all__ = ["SERIES_NUMBER_OFFSET", "check_target", "write"]

SERIES_NUMBER_OFFSET = 1000  # derived series number = the source's + 1000 (+ 2000 for a standard-deviation map)
_CT_NAMES = {"ct", "sct", "synthct", "pct", "cbct", "hu"}
_MR_NAMES = {"mr", "mri", "t1", "t1w", "t2", "t2w", "flair", "pd", "pdw", "t1c", "t1ce", "t1gd", "dwi", "adc"}
# Tags that would lie about the new pixels, or point at the source's (icons, overlays and curves go by group).
_STALE = (
    "SmallestImagePixelValue", "LargestImagePixelValue", "SmallestPixelValueInSeries", "LargestPixelValueInSeries",
    "PixelPaddingValue", "PixelPaddingRangeLimit", "RescaleType", "WindowCenterWidthExplanation", "VOILUTFunction",
    "VOILUTSequence", "ModalityLUTSequence", "LossyImageCompression", "LossyImageCompressionRatio",
    "LossyImageCompressionMethod", "IconImageSequence", "NumberOfFrames", "PixelAspectRatio", "ExtendedOffsetTable",
    "ExtendedOffsetTableLengths", "PixelData", "DerivationCodeSequence", "SourceImageSequence", "PresentationLUTShape",
)  # fmt: skip
# Acquisition tags (group 0018) kept when the modality changes; the rest describe the source's scanner settings.
_KEEP_0018 = {"SliceThickness", "SpacingBetweenSlices", "PatientPosition", "BodyPartExamined", "ProtocolName"}
# Type 1/2 attributes the target's image module needs when the source lacks them (empty = type 2 unknown).
_REQUIRED = {
    "CT": {"KVP": "", "AcquisitionNumber": ""},
    "MR": {"ScanningSequence": "RM", "SequenceVariant": "NONE", "ScanOptions": "", "MRAcquisitionType": "",
           "EchoTime": "", "EchoTrainLength": "", "RepetitionTime": ""},
    "OT": {"ConversionType": "WSD", "PatientOrientation": ""},  # Secondary Capture: made on a workstation
}  # fmt: skip
_INT16_MAX = 32767


@dataclass(frozen=True)
class _Series:
    """What every slice of the derived series says, decided once."""

    modality: str  # the written Modality: the target's, or OT for a standard-deviation map
    sop_class: str  # "": each source slice's own
    uid: str
    number_offset: int
    label: str  # SeriesDescription (cut to 64 characters)
    derivation: str  # DerivationDescription
    image_type: tuple[str, ...]
    slope: float
    intercept: float
    window: tuple[float, float]  # centre, width
    rescale_type: str  # "" for a CT or MR image (the module's own units), HU or US for a standard-deviation map
    now: datetime.datetime


def _tokens(modality: str) -> set[str]:
    return set(re.split(r"[^a-z0-9]+", modality.lower()))


def _is_std(modality: str) -> bool:
    """``modality`` names a standard-deviation map (``"ct std"``), not an image of the target."""
    return "std" in _tokens(modality)


def _target(modality: str, source: str) -> str:
    """What is predicted: CT for a CT-like target, MR for an MR-like one, else (no target / another) the source's."""
    tokens = _tokens(modality)
    if tokens & _CT_NAMES:
        return "CT"
    if tokens & _MR_NAMES:
        return "MR"
    return source.upper() or "OT"


def _encoding(data: np.ndarray, target: str) -> tuple[float, float, tuple[float, float]]:
    """Slope, intercept (as DS strings would say them) and the window (centre, width) for the stored int16."""
    if target == "CT":
        return 1.0, -1024.0, (40.0, 400.0)
    lo, hi = float(data.min()), float(data.max())
    p1, p99 = (float(v) for v in np.percentile(data[::2, ::2, :], [1, 99]))
    window = ((p1 + p99) / 2, max(p99 - p1, 1.0))
    if lo >= -32768 and hi <= 32767 and all(np.array_equal(s, np.rint(s)) for s in np.moveaxis(data, -1, 0)):
        return 1.0, 0.0, window
    slope = float(format_number_as_ds((hi - lo) / 65000.0 if hi > lo else 1.0))
    return slope, float(format_number_as_ds(lo + 32500.0 * slope)), window


def _std_encoding(data: np.ndarray) -> tuple[float, float, tuple[float, float]]:
    """A standard-deviation map's slope, intercept 0 and window [0, 99th percentile] (width at least 1, as DICOM
    asks). The slope is the finest of 0.0001, 0.0002, 0.0005, 0.001, ... whose int16 range holds the largest value:
    0.01 for a std up to 327.67 (HU), so fractions of a HU are kept to within half the slope."""
    top = float(np.abs(data).max())
    slope = next(s for s in (float(f"{m}e{k}") for k in range(-4, 40) for m in (1, 2, 5)) if s * _INT16_MAX >= top)
    width = max(float(np.percentile(data[::2, ::2, :], 99)), 1.0)
    return slope, 0.0, (width / 2, width)


def _series(src: DicomSeries, data: np.ndarray, describe: str, modality: str) -> _Series:
    """The tags of the derived series: a ``modality`` target's image, or (``"... std"``) its standard deviation."""
    target = _target(modality, src.modality)
    label = " ".join(describe.encode("ascii", "replace").decode().split()) or f"synthetic {target}"
    label = label if label.lower().startswith("pix2gan") else f"pix2gan {label}"
    now = datetime.datetime.now()
    if not _is_std(modality):
        slope, intercept, window = _encoding(data, target)
        return _Series(
            modality=target, sop_class={"CT": CTImageStorage, "MR": MRImageStorage}.get(target, ""),
            uid=generate_uid(), number_offset=SERIES_NUMBER_OFFSET, label=label,
            derivation=f"{label}, predicted from series {src.uid}", image_type=("DERIVED", "SECONDARY"),
            slope=slope, intercept=intercept, window=window, rescale_type="", now=now,
        )  # fmt: skip
    units = "HU" if target == "CT" else "US"  # US: unspecified (the target's own units)
    words = label.split(" ")
    if "std" not in words:
        words.append("std")
    if units == "HU" and "(HU)" not in words:
        words.insert(words.index("std") + 1, "(HU)")
    label = " ".join(words)
    slope, intercept, window = _std_encoding(data)
    what = "standard deviation in HU" if units == "HU" else "standard deviation"
    return _Series(
        modality="OT", sop_class=SecondaryCaptureImageStorage, uid=generate_uid(),
        number_offset=2 * SERIES_NUMBER_OFFSET, label=label,
        derivation=f"{label}: {what} of the predictions of series {src.uid}",
        image_type=("DERIVED", "SECONDARY", "STD_DEV"), slope=slope, intercept=intercept, window=window,
        rescale_type=units, now=now,
    )  # fmt: skip


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
    """Write ``data`` (physical units, ``template``'s shape and index order) as a derived series in folder ``path``.

    ``IM00001.dcm``... (sorted order), each the source slice's header with the same patient, study, frame of reference
    and geometry; a new SeriesInstanceUID, SeriesNumber (source + 1000) and SOPInstanceUIDs; Modality and SOP class
    CT for a CT-like ``modality`` (``ct``, ``sct``...), MR for an MR-like one (``mr``, ``t1``...), else the source's;
    ImageType DERIVED\\SECONDARY; SeriesDescription "pix2gan <describe>"; int16 pixels (CT: slope 1, intercept
    -1024; others: slope 1, intercept 0 for int16-valued data, else a slope spanning the range); SourceImageSequence
    naming the source slice. A ``modality`` naming a ``std`` map (``"ct std"``) gives a Secondary Capture series
    instead: Modality OT, SeriesNumber source + 2000, ImageType DERIVED\\SECONDARY\\STD_DEV, a description saying
    "std (HU)", RescaleType HU (US for a non-CT target), intercept 0 and a decimal slope that keeps fractions (0.01
    for a std up to 327.67), a window over [0, 99th percentile]. Private and pixel-describing tags go, and the
    source's acquisition tags (group 0018) when the modality changes. Explicit VR little endian. ``dtype`` is
    ignored (always int16 with a rescale); ``data`` has ``template``'s shape (:func:`~pix2gan.io.codecs.save_like`
    checks it). Atomic: written into ``.<name>.tmp*`` beside ``path``, fsynced, moved into place; an existing series
    (``overwrite``; every file in it read and found to be DICOM first) is moved aside and removed only once the new
    one is in place, and put back if that fails.

    Raises:
        InputError: ``template`` is not a DICOM series; ``path`` is not a folder, exists without ``overwrite`` or
            holds anything but DICOM files; the folder cannot be written.
        ValueError: ``data`` holds NaN / Inf.
    """
    path = Path(path)
    if template.format != "dicom" or not isinstance(template.header, DicomSeries):
        raise InputError(f"{path}: a DICOM series is written only on a DICOM series' grid (the input is {template.format})")
    if not np.isfinite(data).all():
        raise ValueError(f"{path}: data holds NaN or Inf values; nothing written")
    check_target(path, overwrite)
    src: DicomSeries = template.header
    series = _series(src, data, describe, modality)
    tmp = _new_folder(path)
    try:
        for k, source in enumerate(src.datasets):
            ds = _derived(source, series)
            plane = data[:, :, k].T.astype(np.float64)  # (rows, columns)
            stored = np.clip(np.rint((plane - series.intercept) / series.slope), -32768, 32767).astype("<i2")
            ds.Rows, ds.Columns = stored.shape
            ds.PixelData = stored.tobytes()
            ds["PixelData"].VR = "OW"
            ds.InstanceNumber = ds.get("InstanceNumber", None) or k + 1
            with open(tmp / f"IM{k + 1:05d}.dcm", "wb") as fh:
                pydicom.dcmwrite(fh, ds, enforce_file_format=True)  # save_as refuses a big endian source
                fh.flush()
                os.fsync(fh.fileno())
        fsync_folder(tmp)
        _swap_in(tmp, path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise InputError(f"{path}: cannot write the series ({exc.strerror or exc})") from None
        raise


def _new_folder(path: Path) -> Path:
    """A new empty hidden folder beside ``path`` to write the series into. Made by mkdir, so it has the mode mkdir
    gives (0777 less the umask) without reading or changing the process' umask."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            tmp = path.parent / f".{path.name}.tmp{secrets.token_hex(4)}"
            try:
                tmp.mkdir()
            except FileExistsError:
                continue
            return tmp
        raise FileExistsError(f"no free temporary name .{path.name}.tmp*")
    except OSError as exc:
        raise InputError(f"{path.parent}: cannot write here ({exc.strerror or exc})") from None


def check_target(path: Path, overwrite: bool) -> None:
    """Refuse to write over anything but an existing folder of DICOM files (and that only with ``overwrite``)."""
    if path.is_symlink() or path.exists():
        if path.is_symlink() or not path.is_dir():
            raise InputError(f"{path}: exists and is not a folder; a DICOM series is written into a folder")
        refuse_existing(path, overwrite)
        for entry in sorted(path.iterdir()):  # hidden ones too: everything here is deleted once replaced
            problem = _not_dicom(entry)
            if problem:
                raise InputError(
                    f"{path}: holds other things than DICOM files ({entry.name}: {problem}); refusing to replace it"
                )


def _not_dicom(entry: Path) -> str:
    """Why ``entry`` is not a DICOM file, read from its content (its name proves nothing); "" when it is one."""
    if entry.is_symlink() or not entry.is_file():
        return "a link" if entry.is_symlink() else "not a file"
    try:
        with open(entry, "rb") as fh, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom's complaints about a damaged header: the refusal says it
            if fh.read(132)[128:] != b"DICM":
                return "no DICM preamble"
            fh.seek(0)
            ds = pydicom.dcmread(fh, stop_before_pixels=True)
    except Exception as exc:  # unreadable, or a header pydicom cannot parse
        return f"unreadable as DICOM ({type(exc).__name__})"
    if not ds.file_meta.get("MediaStorageSOPClassUID"):
        return "no SOP class"
    return ""


def _swap_in(tmp: Path, path: Path) -> None:
    """Move the finished folder onto ``path``; an old one is moved aside first, put back if the move fails, and removed
    once the new one is there (also when syncing the parent folder then fails)."""
    if not path.exists():
        os.rename(tmp, path)
        fsync_folder(path.parent)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old", dir=path.parent))
    try:
        os.rename(path, old)  # onto the empty folder just made
    except BaseException:
        old.rmdir()
        raise
    try:
        os.rename(tmp, path)
    except BaseException:
        os.rename(old, path)
        raise
    try:
        fsync_folder(path.parent)
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _derived(source: Dataset, series: _Series) -> Dataset:
    """A copy of one source slice's header turned into the derived slice's header (pixels added by the caller)."""
    ds = copy.deepcopy(source)
    ds.remove_private_tags()
    changed = series.modality != str(source.get("Modality", "") or "").upper()
    for tag in list(ds.keys()):  # curves and overlays; the source's acquisition settings when the modality changes
        if tag.group >> 8 in (0x50, 0x60) or (changed and tag.group == 0x0018 and ds[tag].keyword not in _KEEP_0018):
            del ds[tag]
    for keyword in _STALE:
        ds.pop(keyword, None)
    for keyword, value in _REQUIRED.get(series.modality, {}).items():
        if keyword not in ds:
            setattr(ds, keyword, value)
    sop_class = series.sop_class or source.get("SOPClassUID", CTImageStorage)
    ref = Dataset()
    ref.ReferencedSOPClassUID = source.get("SOPClassUID", sop_class)
    ref.ReferencedSOPInstanceUID = source.get("SOPInstanceUID", "")
    ds.SourceImageSequence = [ref]
    ds.DerivationDescription = series.derivation[:1024]
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
    ds.SeriesInstanceUID, ds.Modality = series.uid, series.modality
    ds.SeriesNumber = int(source.get("SeriesNumber", 0) or 0) + series.number_offset
    ds.SeriesDescription = series.label[:64]
    ds.ImageType = list(series.image_type)
    date, time = series.now.strftime("%Y%m%d"), series.now.strftime("%H%M%S")
    ds.SeriesDate = ds.ContentDate = ds.InstanceCreationDate = date
    ds.SeriesTime = ds.ContentTime = ds.InstanceCreationTime = time
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = format_number_as_ds(series.slope), format_number_as_ds(series.intercept)
    ds.WindowCenter, ds.WindowWidth = (format_number_as_ds(round(w, 4)) for w in series.window)
    if series.rescale_type:  # a standard-deviation map: its units, and what its window shows
        ds.RescaleType = series.rescale_type
        ds.WindowCenterWidthExplanation = "std (HU)" if series.rescale_type == "HU" else "std"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    return ds
