"""Build realistic DICOM series for tests with pydicom (nothing downloaded), and damage them on request.

``write_series(folder, volume, affine)`` writes one file per slice ``volume[:, :, k]`` (column i, row j), placed
by the RAS+ ``affine`` (converted to LPS: IPP, IOP, PixelSpacing), values stored as int16 with a rescale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    ImplicitVRLittleEndian,
    MRImageStorage,
    RLELossless,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

__all__ = ["write_series", "rotation", "oblique_affine", "lps_geometry", "HTJ2KLossless", "RLELossless"]

_F = np.diag([-1.0, -1.0, 1.0])


def rotation(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """A proper rotation (det +1) from three angles in degrees."""
    a, b, c = np.deg2rad([yaw_deg, pitch_deg, roll_deg])
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    ry = np.array([[np.cos(c), 0, np.sin(c)], [0, 1, 0], [-np.sin(c), 0, np.cos(c)]])
    return rz @ rx @ ry


def oblique_affine(spacing=(0.9, 1.1, 2.5), angles=(20.0, -15.0, 10.0), origin=(12.5, -30.25, 40.0)) -> np.ndarray:
    """A RAS+ affine with orthogonal axes in an oblique orientation."""
    affine = np.eye(4)
    affine[:3, :3] = rotation(*angles) @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


def lps_geometry(affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row cosines, column cosines, (row spacing, column spacing), slice step) in LPS from a RAS+ affine."""
    lps = _F @ affine[:3, :4]
    sx, sy = np.linalg.norm(lps[:, 0]), np.linalg.norm(lps[:, 1])
    return lps[:, 0] / sx, lps[:, 1] / sy, np.array([sy, sx]), lps[:, 2]


def _ds_list(values) -> list[str]:
    return [format_number_as_ds(float(v)) for v in values]


def write_series(
    folder: str | Path,
    volume: np.ndarray,
    affine: np.ndarray,
    *,
    modality: str = "CT",
    series_uid: str | None = None,
    study_uid: str | None = None,
    frame_uid: str | None = None,
    patient_id: str = "PIX2GAN-TEST-01",
    description: str | None = None,
    series_number: int = 3,
    slope: float = 1.0,
    intercept: float | None = None,
    slopes: list[float] | None = None,
    drop: int | None = None,
    duplicate: int | None = None,
    localiser: bool = False,
    transfer_syntax: str | None = None,
    implicit: bool = False,
    prefix: str = "",
    private: bool = True,
) -> list[Path]:
    """Write ``volume`` (I, J, K; physical units) as a DICOM series in ``folder`` and return the files written.

    Args:
        modality: "CT" (CT Image Storage, intercept -1024 by default) or "MR" (MR Image Storage, intercept 0).
        slope / intercept: the rescale used to store int16 values; ``slopes`` gives one slope per slice.
        drop: leave slice ``drop`` out (a missing slice). duplicate: write slice ``duplicate`` twice.
        localiser: add a 1-slice scout of the same series with another orientation.
        transfer_syntax: encode the pixels: ``RLELossless`` (decodable) or another UID, whose pixel data is written
            as opaque encapsulated bytes (undecodable garbage, fine for syntaxes that must be refused).
        implicit: implicit VR little endian instead of explicit.
        prefix: file name prefix; files are named in an order unrelated to their position (sorting is tested).
        private: add a private tag block (the writer must drop it).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    volume = np.asarray(volume, dtype=np.float64)
    n_i, n_j, n_k = volume.shape
    row, col, pixel_spacing, step = lps_geometry(affine)
    origin = (_F @ affine[:3, 3])
    intercept = (-1024.0 if modality == "CT" else 0.0) if intercept is None else intercept
    series_uid, study_uid, frame_uid = series_uid or generate_uid(), study_uid or generate_uid(), frame_uid or generate_uid()
    slices = [k for k in range(n_k) if k != drop] + ([duplicate] if duplicate is not None else [])
    written = []
    for n, k in enumerate(slices):
        s = slopes[k] if slopes is not None else slope
        stored = np.clip(np.rint((volume[:, :, k].T - intercept) / s), -32768, 32767).astype("<i2")
        ds = _slice(modality, study_uid, series_uid, frame_uid, patient_id, description, series_number)
        ds.ImagePositionPatient = _ds_list(origin + k * step)
        ds.ImageOrientationPatient = _ds_list(np.concatenate([row, col]))
        ds.PixelSpacing = _ds_list(pixel_spacing)
        ds.SliceThickness = format_number_as_ds(float(np.linalg.norm(step)))
        ds.SpacingBetweenSlices = format_number_as_ds(float(np.linalg.norm(step)))
        ds.SliceLocation = format_number_as_ds(float((origin + k * step)[2]))
        ds.InstanceNumber = k + 1
        ds.Rows, ds.Columns = n_j, n_i
        ds.RescaleSlope, ds.RescaleIntercept = format_number_as_ds(float(s)), format_number_as_ds(float(intercept))
        if private:
            block = ds.private_block(0x0029, "PIX2GAN TEST", create=True)
            block.add_new(0x01, "LO", "vendor secret")
        name = folder / f"{prefix}{(37 * n + 11) % 97:03d}_{n}.dcm"
        _save(ds, stored, name, transfer_syntax, implicit)
        written.append(name)
    if localiser:
        ds = _slice(modality, study_uid, series_uid, frame_uid, patient_id, description, series_number)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
        ds.ImagePositionPatient = _ds_list(origin)
        ds.ImageOrientationPatient = _ds_list(np.concatenate([row, step / np.linalg.norm(step)]))
        ds.PixelSpacing = _ds_list(pixel_spacing)
        ds.InstanceNumber, ds.Rows, ds.Columns = n_k + 1, n_j, n_i
        ds.RescaleSlope, ds.RescaleIntercept = "1", format_number_as_ds(float(intercept))
        _save(ds, np.zeros((n_j, n_i), "<i2"), folder / f"{prefix}scout.dcm", None, implicit)
        written.append(folder / f"{prefix}scout.dcm")
    return written


def _slice(modality, study_uid, series_uid, frame_uid, patient_id, description, series_number) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage if modality == "CT" else MRImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20240102", "101500", "ACC123"
    ds.Modality, ds.Manufacturer, ds.ReferringPhysicianName = modality, "pix2gan tests", ""
    ds.StudyDescription = "HEAD"
    ds.SeriesDescription = description or ("CT head" if modality == "CT" else "T1 MPRAGE")
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Test^Phantom", patient_id, "19700101", "O"
    if modality == "CT":
        ds.KVP, ds.ConvolutionKernel, ds.XRayTubeCurrent = "120", "H30s", 200
    else:
        ds.ScanningSequence, ds.SequenceVariant, ds.EchoTime, ds.RepetitionTime = "GR", "SP", "3.1", "2300"
        ds.MagneticFieldStrength, ds.ContrastBolusAgent = "3", "Gadovist"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
    ds.StudyID, ds.SeriesNumber, ds.AcquisitionNumber = "1", series_number, 1
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.WindowCenter, ds.WindowWidth = "40", "400"
    ds.LargestImagePixelValue = 4095
    return ds


def _save(ds: Dataset, stored: np.ndarray, name: Path, transfer_syntax: str | None, implicit: bool) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.PixelData = stored.tobytes()
    ds["PixelData"].VR = "OW"
    if transfer_syntax == RLELossless:
        ds.compress(RLELossless, stored)
    elif transfer_syntax is not None:
        meta.TransferSyntaxUID = UID(transfer_syntax)
        ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + stored.tobytes()[:64]])
        ds["PixelData"].VR = "OB"
    ds.save_as(name, enforce_file_format=True)
