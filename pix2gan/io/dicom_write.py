"""DICOM series out: a derived series (a synthetic CT, say) written on exactly the slices of the series it was
predicted from, with the same patient, study and frame of reference.

Example:
    >>> _target("sct", "MR"), _target("", "CT"), _target("t1", "CT"), _target("pet", "PT")
    ('CT', 'CT', 'MR', 'PT')
"""

from __future__ import annotations

import copy
import datetime
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid
from pydicom.valuerep import format_number_as_ds

from pix2gan.errors import InputError
from pix2gan.io.atomic import fsync_folder, refuse_existing
from pix2gan.io.dicom import DicomSeries
from pix2gan.io.volume import Volume, is_dicom_file

__all__ = ["SERIES_NUMBER_OFFSET", "write"]

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
}  # fmt: skip



def _target(modality: str, source: str) -> str:
    """The written Modality: CT for a CT-like target, MR for an MR-like one, else (no target / another) the source's."""
    tokens = set(re.split(r"[^a-z0-9]+", modality.lower()))
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
    and geometry; a new SeriesInstanceUID, SeriesNumber (source + 1000; + 2000 for a ``modality`` naming a ``std``
    map) and SOPInstanceUIDs; Modality and SOP class CT for a CT-like ``modality`` (``ct``, ``sct``...), MR for an
    MR-like one (``mr``, ``t1``...), else the source's;
    ImageType DERIVED\\SECONDARY; SeriesDescription "pix2gan <describe>"; int16 pixels (CT: slope 1, intercept
    -1024; others: slope 1, intercept 0 for int16-valued data, else a slope spanning the range); SourceImageSequence
    naming the source slice. Private and pixel-describing tags go, and the source's acquisition tags (group 0018)
    when the modality changes. Explicit VR little endian. ``dtype`` is ignored (always int16 with a rescale).
    Atomic: written into ``.<name>.tmp*`` beside ``path``, fsynced, moved into place; an existing series
    (``overwrite``) is moved aside and removed only once the new one is in place.

    Raises:
        InputError: ``template`` is not a DICOM series; ``path`` is not a folder, exists without ``overwrite`` or
            holds non-DICOM files; the folder cannot be written.
        ValueError: ``data`` has another shape than ``template`` or holds NaN / Inf.
    """
    path = Path(path)
    if template.format != "dicom" or not isinstance(template.header, DicomSeries):
        raise InputError(f"{path}: a DICOM series is written only on a DICOM series' grid (the input is {template.format})")
    if tuple(data.shape) != template.shape:
        raise ValueError(f"save_like: data shape {tuple(data.shape)} differs from template {template.shape}")
    if not np.isfinite(data).all():
        raise ValueError(f"{path}: data holds NaN or Inf values; nothing written")
    _check_target(path, overwrite)
    src: DicomSeries = template.header
    target = _target(modality, src.modality)
    slope, intercept, window = _encoding(data, target)
    series_uid = generate_uid()
    # a prediction's std map is a second derived series of the same study: give it a series number of its own
    number_offset = SERIES_NUMBER_OFFSET * (2 if "std" in modality.lower().split() else 1)
    label = " ".join(describe.encode("ascii", "replace").decode().split()) or f"synthetic {target}"
    label = label if label.lower().startswith("pix2gan") else f"pix2gan {label}"
    now = datetime.datetime.now()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp", dir=path.parent))
        mask = os.umask(0o022)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)  # mkdtemp makes it 0700; give the folder the mode mkdir would
    except OSError as exc:
        raise InputError(f"{path.parent}: cannot write here ({exc.strerror or exc})") from None
    try:
        for k, source in enumerate(src.datasets):
            ds = _derived(source, target, series_uid, label, now, src.uid, number_offset)
            plane = data[:, :, k].T.astype(np.float64)  # (rows, columns)
            stored = np.clip(np.rint((plane - intercept) / slope), -32768, 32767).astype("<i2")
            ds.Rows, ds.Columns = stored.shape
            ds.RescaleSlope, ds.RescaleIntercept = format_number_as_ds(slope), format_number_as_ds(intercept)
            ds.WindowCenter, ds.WindowWidth = (format_number_as_ds(round(w, 4)) for w in window)
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


def _check_target(path: Path, overwrite: bool) -> None:
    if path.is_symlink() or path.exists():
        if path.is_symlink() or not path.is_dir():
            raise InputError(f"{path}: exists and is not a folder; a DICOM series is written into a folder")
        refuse_existing(path, overwrite)
        other = [p.name for p in path.iterdir() if not p.name.startswith(".") and not (p.is_file() and is_dicom_file(p))]
        if other:
            raise InputError(f"{path}: holds other things than DICOM files ({other[0]}, ...); refusing to replace it")


def _swap_in(tmp: Path, path: Path) -> None:
    """Move the finished folder onto ``path``; an old one is moved aside first and removed once the new one is there."""
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
    fsync_folder(path.parent)
    shutil.rmtree(old, ignore_errors=True)


def _derived(
    source: Dataset, target: str, series_uid: str, label: str, now: datetime.datetime, source_series: str,
    number_offset: int = SERIES_NUMBER_OFFSET,
) -> Dataset:  # fmt: skip
    """A copy of one source slice's header turned into the derived slice's header (pixels added by the caller)."""
    ds = copy.deepcopy(source)
    ds.remove_private_tags()
    changed = target != str(source.get("Modality", "") or "").upper()
    for tag in list(ds.keys()):  # curves and overlays; the source's acquisition settings when the modality changes
        if tag.group >> 8 in (0x50, 0x60) or (changed and tag.group == 0x0018 and ds[tag].keyword not in _KEEP_0018):
            del ds[tag]
    for keyword in _STALE:
        ds.pop(keyword, None)
    for keyword, value in _REQUIRED.get(target, {}).items():
        if keyword not in ds:
            setattr(ds, keyword, value)
    sop_class = {"CT": CTImageStorage, "MR": MRImageStorage}.get(target, source.get("SOPClassUID", CTImageStorage))
    ref = Dataset()
    ref.ReferencedSOPClassUID = source.get("SOPClassUID", sop_class)
    ref.ReferencedSOPInstanceUID = source.get("SOPInstanceUID", "")
    ds.SourceImageSequence = [ref]
    ds.DerivationDescription = f"{label}, predicted from series {source_series}"[:1024]
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
    ds.SeriesInstanceUID, ds.Modality = series_uid, target
    ds.SeriesNumber = int(source.get("SeriesNumber", 0) or 0) + number_offset
    ds.SeriesDescription = label[:64]
    ds.ImageType = ["DERIVED", "SECONDARY"]
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.SeriesDate = ds.ContentDate = ds.InstanceCreationDate = date
    ds.SeriesTime = ds.ContentTime = ds.InstanceCreationTime = time
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    return ds
