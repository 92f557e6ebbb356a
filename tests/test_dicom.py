"""DICOM series in and out (pix2gan.io.dicom): voxels and geometry against SimpleITK's own reading, pydicom's test
files, the derived series' tags, every refusal, and atomic (over)writes. Series are built by tests/dicom_series.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_series import HTJ2KLossless, RLELossless, oblique_affine, write_series
from pydicom.data import get_testdata_file
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage
from pydicom.uid import SecondaryCaptureImageStorage as SC

from pix2gan.data.phantom import make_subject
from pix2gan.errors import InputError
from pix2gan.io import dicom_write, load_volume, save_like
from pix2gan.io.dicom import DicomSeries, is_dicom_file, read
from pix2gan.io.dicom_write import write
from pix2gan.io.volume import Volume, is_dicom_folder

F = np.diag([-1.0, -1.0, 1.0])
AXIAL = np.array([[0.8, 0, 0, -6.0], [0, 0.8, 0, -4.4], [0, 0, 3.0, 10.0], [0, 0, 0, 1]])
OBLIQUE = oblique_affine()
SAGITTAL = np.array([[0, 0, 2.0, -30.0], [1.2, 0, 0, -9.0], [0, 1.1, 0, -6.0], [0, 0, 0, 1]])  # det > 0


@pytest.fixture(scope="module")
def phantom():
    """Realistic content: the phantom's CT (HU) and T1, cropped to 16 x 12 x 6."""
    ph = make_subject(1, 0, size=16, n_slices=6)
    return ph.ct[:, 2:14, :].astype(np.float64), ph.t1[:, 2:14, :].astype(np.float64)


def sitk_series(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """SimpleITK's own reading of a folder (its own file sorting): voxels [x, y, z] and the RAS+ affine."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    image = reader.Execute()
    affine = np.eye(4)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    affine[:3, :3] = F @ direction @ np.diag(image.GetSpacing())
    affine[:3, 3] = F @ np.array(image.GetOrigin())
    return sitk.GetArrayFromImage(image).transpose(2, 1, 0).astype(np.float64), affine


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_is_dicom_file(tmp_path: Path) -> None:
    (tmp_path / "a.DCM").write_bytes(b"")
    (tmp_path / "IM0001").write_bytes(b"\0" * 128 + b"DICM" + b"\2\0")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "short").write_bytes(b"DICM")
    assert is_dicom_file(tmp_path / "a.DCM") and is_dicom_file(tmp_path / "IM0001")
    assert not is_dicom_file(tmp_path / "notes.txt") and not is_dicom_file(tmp_path / "short")
    assert not is_dicom_file(tmp_path / "missing") and not is_dicom_file(tmp_path)
    assert is_dicom_folder(tmp_path)


@pytest.mark.parametrize("modality", ["CT", "MR"])
@pytest.mark.parametrize("affine", [AXIAL, OBLIQUE, SAGITTAL], ids=["axial", "oblique", "sagittal"])
def test_read_voxels_and_geometry(tmp_path: Path, phantom, affine: np.ndarray, modality: str) -> None:
    ct, t1 = phantom
    values = ct if modality == "CT" else t1
    files = write_series(tmp_path / "s", values, affine, modality=modality, implicit=modality == "MR")
    volume = read(tmp_path / "s")
    assert volume.format == "dicom" and volume.path == tmp_path / "s" and volume.shape == values.shape
    assert volume.data.dtype == np.float32 and volume.data.flags.f_contiguous
    np.testing.assert_array_equal(volume.data, values)  # int16 HU / signal stored with slope 1: exact
    np.testing.assert_allclose(volume.affine, affine, atol=1e-6)
    ref_data, ref_affine = sitk_series(tmp_path / "s")
    np.testing.assert_allclose(volume.affine, ref_affine, atol=1e-6)
    np.testing.assert_array_equal(volume.data, ref_data)
    header = volume.header
    assert isinstance(header, DicomSeries) and header.modality == modality and len(header.datasets) == 6
    assert [int(ds.InstanceNumber) for ds in header.datasets] == [1, 2, 3, 4, 5, 6]  # sorted along the normal
    assert sorted(header.files) == sorted(files) and header.files != tuple(sorted(files))  # names do not sort


def test_read_sorts_along_the_normal_when_k_runs_against_it(tmp_path: Path, phantom) -> None:
    ct, _ = phantom
    flipped = OBLIQUE.copy()
    flipped[:3, 2] *= -1  # slice k + 1 lies below slice k: the reader starts from the other end
    write_series(tmp_path / "s", ct, flipped)
    volume = read(tmp_path / "s")
    np.testing.assert_array_equal(volume.data, ct[:, :, ::-1])
    expected = OBLIQUE.copy()
    expected[:3, 3] = flipped[:3, :4] @ [0, 0, 5, 1]
    np.testing.assert_allclose(volume.affine, expected, atol=1e-6)
    np.testing.assert_allclose(volume.affine, sitk_series(tmp_path / "s")[1], atol=1e-6)


def test_read_applies_each_slices_rescale(tmp_path: Path, phantom) -> None:
    _, t1 = phantom
    slopes = [0.5, 1.0, 0.25, 2.0, 0.125, 1.0]
    write_series(tmp_path / "s", t1 * 0.37, OBLIQUE, modality="MR", intercept=-7.5, slopes=slopes)
    expected = np.stack([np.rint((t1[..., k] * 0.37 + 7.5) / s) * s - 7.5 for k, s in enumerate(slopes)], -1)
    np.testing.assert_allclose(read(tmp_path / "s").data, expected, atol=1e-4)


def test_read_rle_series_and_load_volume(tmp_path: Path, phantom) -> None:
    ct, _ = phantom
    write_series(tmp_path / "s", ct, OBLIQUE, transfer_syntax=RLELossless)
    assert pydicom.dcmread(next((tmp_path / "s").iterdir())).file_meta.TransferSyntaxUID == RLELossless
    volume = load_volume(tmp_path / "s")  # through the format table
    np.testing.assert_array_equal(volume.data, ct)


@pytest.mark.parametrize(
    "name", ["CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_RLE.dcm",
             "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm"],
)  # fmt: skip
def test_pydicom_test_files(tmp_path: Path, name: str) -> None:
    """Real files as one-slice series; the compressed MR_small copies decode to MR_small's values."""
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(get_testdata_file(name, download=False), folder)
    ref = pydicom.dcmread(get_testdata_file("CT_small.dcm" if name.startswith("CT") else "MR_small.dcm", download=False))
    expected = ref.pixel_array * float(ref.get("RescaleSlope", 1)) + float(ref.get("RescaleIntercept", 0))
    volume = read(folder)
    assert volume.shape == (ref.Columns, ref.Rows, 1)
    np.testing.assert_array_equal(volume.data[:, :, 0].T, expected)
    row, col = np.array(ref.ImageOrientationPatient[:3]), np.array(ref.ImageOrientationPatient[3:])
    np.testing.assert_allclose(volume.affine[:3, 0], F @ row * float(ref.PixelSpacing[1]), atol=1e-6)
    np.testing.assert_allclose(volume.affine[:3, 1], F @ col * float(ref.PixelSpacing[0]), atol=1e-6)
    np.testing.assert_allclose(volume.affine[:3, 3], F @ np.array(ref.ImagePositionPatient, float), atol=1e-6)
    thick = float(ref.get("SpacingBetweenSlices") or ref.SliceThickness)
    np.testing.assert_allclose(volume.affine[:3, 2], F @ np.cross(row, col) * thick, atol=1e-6)
    ref_data, ref_affine = sitk_series(folder)
    np.testing.assert_allclose(volume.affine[:, [0, 1, 3]], ref_affine[:, [0, 1, 3]], atol=1e-6)
    np.testing.assert_array_equal(volume.data, ref_data)


def check_derived(out: Path, source: Volume, modality: str) -> list[pydicom.Dataset]:
    """The derived series' tags, slice by slice against its source."""
    files = sorted(out.iterdir())
    assert [f.name for f in files] == [f"IM{k:05d}.dcm" for k in range(1, source.shape[2] + 1)]
    written = [pydicom.dcmread(f) for f in files]
    series_uids = {ds.SeriesInstanceUID for ds in written}
    sops = [ds.SOPInstanceUID for ds in written]
    src = source.header.datasets
    assert len(series_uids) == 1 and series_uids.isdisjoint({s.SeriesInstanceUID for s in src})
    assert len(set(sops)) == len(sops) and set(sops).isdisjoint({s.SOPInstanceUID for s in src})
    for ds, s in zip(written, src):
        for key in ("PatientName", "PatientID", "StudyInstanceUID", "FrameOfReferenceUID", "InstanceNumber"):
            assert ds[key].value == s[key].value, key
        for key in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
            np.testing.assert_allclose([float(v) for v in ds[key].value], [float(v) for v in s[key].value], atol=1e-9)
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
        assert ds.SOPClassUID == (CTImageStorage if modality == "CT" else MRImageStorage) and ds.Modality == modality
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY"]
        assert ds.SeriesDescription.startswith("pix2gan") and len(ds.SeriesDescription) <= 64
        assert int(ds.SeriesNumber) == int(s.SeriesNumber) + 1000
        assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (16, 16, 15, 1)
        assert (ds.SamplesPerPixel, ds.PhotometricInterpretation) == (1, "MONOCHROME2")
        assert ds.pixel_array.dtype == np.int16 and float(ds.WindowWidth) > 0
        assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == s.SOPInstanceUID
        assert "LargestImagePixelValue" not in ds and not any(e.tag.is_private for e in ds)
    return written


def test_round_trip_ct(tmp_path: Path, phantom) -> None:
    ct, _ = phantom
    write_series(tmp_path / "src", ct, OBLIQUE)
    source = read(tmp_path / "src")
    prediction = source.data + np.float32(0.3)  # fractional HU: rounded to int16 on the way out
    write(tmp_path / "out", prediction, source, describe="synthetic CT (model unet-3d, epoch 20)", modality="ct")
    written = check_derived(tmp_path / "out", source, "CT")
    assert all(float(ds.RescaleSlope) == 1 and float(ds.RescaleIntercept) == -1024 for ds in written)
    assert written[0].SeriesDescription == "pix2gan synthetic CT (model unet-3d, epoch 20)"
    back = read(tmp_path / "out")
    np.testing.assert_array_equal(back.data, np.rint(prediction))
    np.testing.assert_allclose(back.affine, source.affine, atol=1e-9)
    ref_data, ref_affine = sitk_series(tmp_path / "out")
    np.testing.assert_allclose(ref_affine, sitk_series(tmp_path / "src")[1], atol=1e-6)
    np.testing.assert_array_equal(ref_data, back.data)


def test_mr_source_to_ct_drops_mr_acquisition_tags(tmp_path: Path, phantom) -> None:
    ct, t1 = phantom
    write_series(tmp_path / "src", t1, SAGITTAL, modality="MR")
    source = read(tmp_path / "src")
    save_like(tmp_path / "out", ct.astype(np.float32), source, modality="ct", describe="x" * 100)
    written = check_derived(tmp_path / "out", source, "CT")
    first = written[0]
    assert "EchoTime" not in first and "MagneticFieldStrength" not in first and "ContrastBolusAgent" not in first
    assert "KVP" in first and first.SliceThickness == source.header.datasets[0].SliceThickness
    np.testing.assert_array_equal(read(tmp_path / "out").data, ct)


def test_ct_source_to_mr_keeps_the_range_with_a_slope(tmp_path: Path, phantom) -> None:
    ct, t1 = phantom
    write_series(tmp_path / "src", ct, AXIAL)
    source = read(tmp_path / "src")
    values = (t1 * 12.345 + 0.5).astype(np.float32)  # beyond int16 and fractional: needs a slope
    write(tmp_path / "out", values, source, modality="t1")
    written = check_derived(tmp_path / "out", source, "MR")
    slope = float(written[0].RescaleSlope)
    assert slope != 1 and "KVP" not in written[0] and written[0].ScanningSequence == "RM"
    np.testing.assert_allclose(read(tmp_path / "out").data, values, atol=slope / 2 + 1e-2)
    # int16-valued MR is stored exactly with slope 1; no modality keeps the source's (MR)
    write_series(tmp_path / "mr", t1, OBLIQUE, modality="MR")
    mr = read(tmp_path / "mr")
    write(tmp_path / "mr_out", mr.data, mr)
    assert check_derived(tmp_path / "mr_out", mr, "MR")[0].RescaleSlope == 1
    np.testing.assert_array_equal(read(tmp_path / "mr_out").data, t1)


def test_big_endian_source_round_trip(tmp_path: Path) -> None:
    folder = tmp_path / "be"
    folder.mkdir()
    shutil.copy(get_testdata_file("MR_small_bigendian.dcm", download=False), folder)
    source = read(folder)
    write(tmp_path / "out", source.data, source, modality="mr")
    back = read(tmp_path / "out")
    np.testing.assert_array_equal(back.data, source.data)
    np.testing.assert_allclose(back.affine, source.affine, atol=1e-9)


def damage(folder: Path, name: str, **changes: object) -> None:
    ds = pydicom.dcmread(folder / name)
    for key, value in changes.items():
        setattr(ds, key, value)
    ds.save_as(folder / name)


def first_file(folder: Path) -> str:
    return sorted(p.name for p in folder.iterdir())[0]


REFUSALS = {
    "missing slice": (dict(drop=3), ["uneven slice spacing", "missing slice"]),
    "duplicated slice": (dict(duplicate=2), ["duplicated slice", "same position"]),
    "localiser": (dict(localiser=True), ["mixed orientations", "scout.dcm", "localiser"]),
    "htj2k": (
        dict(transfer_syntax=HTJ2KLossless), ["High-Throughput JPEG 2000", "1.2.840.10008.1.2.4.201", "cannot be decoded"]
    ),
    "jpeg2000 part 2": (dict(transfer_syntax="1.2.840.10008.1.2.4.93"), ["JPEG 2000 Part 2", "cannot be decoded"]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusals_from_the_series(tmp_path: Path, phantom, case: str) -> None:
    kwargs, words = REFUSALS[case]
    write_series(tmp_path / "s", phantom[0], OBLIQUE, **kwargs)
    with pytest.raises(InputError) as err:
        load_volume(tmp_path / "s")
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "s"))
    for word in words:
        assert word in message


def test_refusals_of_damaged_files(tmp_path: Path, phantom) -> None:
    def fresh(name: str) -> Path:
        folder = tmp_path / name
        write_series(folder, phantom[0], AXIAL)
        return folder

    def refused(folder: Path, *words: str) -> None:
        with pytest.raises(InputError) as err:
            read(folder)
        assert "\n" not in str(err.value) and str(folder) in str(err.value)
        for word in words:
            assert word in str(err.value)

    folder = fresh("truncated")
    name = first_file(folder)
    (folder / name).write_bytes((folder / name).read_bytes()[:-40])
    refused(folder, name, "truncated")
    folder = fresh("header_cut")
    (folder / name).write_bytes((folder / name).read_bytes()[:300])
    refused(folder, name)
    folder = fresh("junk")
    (folder / "notes.txt").write_text("not an image\n")
    refused(folder, "notes.txt", "not a DICOM file")
    folder = fresh("spacing")
    damage(folder, name, PixelSpacing=[0.5, 0.5])
    refused(folder, name, "PixelSpacing")
    folder = fresh("rows")
    damage(folder, name, Rows=10, PixelData=np.zeros((10, 16), "<i2").tobytes())
    refused(folder, name, "Rows")
    folder = fresh("no_iop")
    damage(folder, name, ImageOrientationPatient=None)
    refused(folder, name, "ImageOrientationPatient")
    (tmp_path / "empty").mkdir()
    refused(tmp_path / "empty", "no DICOM")


def test_several_series_need_a_choice(tmp_path: Path, phantom) -> None:
    ct, t1 = phantom
    folder = tmp_path / "study"
    write_series(folder, ct, AXIAL, series_uid="1.2.3.4.1", description="CT head", prefix="ct")
    write_series(folder, t1, OBLIQUE, modality="MR", series_uid="1.2.3.4.2", description="T1 MPRAGE", prefix="mr")
    with pytest.raises(InputError) as err:
        load_volume(folder)
    message = str(err.value)
    assert "\n" not in message and str(folder) in message and "2 DICOM series" in message and "--series UID" in message
    for word in ("1.2.3.4.1 (CT head, CT, 6 files)", "1.2.3.4.2 (T1 MPRAGE, MR, 6 files)"):
        assert word in message
    with pytest.raises(InputError, match=r"no series 1\.2\.9 here.*1\.2\.3\.4\.1.*1\.2\.3\.4\.2"):
        read(folder, series="1.2.9")
    volume = load_volume(folder, series="1.2.3.4.2")
    assert volume.header.uid == "1.2.3.4.2" and volume.header.modality == "MR"
    np.testing.assert_array_equal(volume.data, t1)


def test_writer_refusals_leave_nothing(tmp_path: Path, phantom) -> None:
    ct, _ = phantom
    write_series(tmp_path / "src", ct, AXIAL)
    source = read(tmp_path / "src")
    out = tmp_path / "out"
    nifti = Volume(data=source.data, affine=source.affine, path=tmp_path / "ct.nii.gz", format="nifti")
    with pytest.raises(InputError, match="only on a DICOM series"):
        write(out, source.data, nifti)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        write(tmp_path / "afile", source.data, source)
    with pytest.raises(ValueError, match="shape"):
        save_like(out, source.data[:, :, :3], source)
    bad = source.data.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write(out, bad, source)
    assert not out.exists() and leftovers(tmp_path) == []


def test_atomic_overwrite(tmp_path: Path, phantom, monkeypatch: pytest.MonkeyPatch) -> None:
    ct, _ = phantom
    write_series(tmp_path / "src", ct, AXIAL)
    source = read(tmp_path / "src")
    out = tmp_path / "out"
    write(out, source.data, source)
    first = sorted(p.read_bytes() for p in out.iterdir())
    with pytest.raises(InputError, match="already exists.*--overwrite"):
        write(out, source.data + 1, source)
    assert sorted(p.read_bytes() for p in out.iterdir()) == first

    calls = []
    real = pydicom.dcmwrite

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(dicom_write.pydicom, "dcmwrite", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write(out, source.data + 1, source, overwrite=True)
    with pytest.raises(RuntimeError, match="disk on fire"):
        calls.clear()
        write(tmp_path / "new", source.data + 1, source)
    monkeypatch.setattr(dicom_write.pydicom, "dcmwrite", real)
    assert sorted(p.read_bytes() for p in out.iterdir()) == first  # the old series, untouched
    assert not (tmp_path / "new").exists() and leftovers(tmp_path) == []

    shutil.copy(out / "IM00001.dcm", out / "IM00099.dcm")  # a stale slice from an older, longer series
    write(out, source.data + 1, source, overwrite=True)
    assert len(list(out.iterdir())) == 6 and leftovers(tmp_path) == []  # replaced as a whole
    np.testing.assert_array_equal(read(out).data, source.data + 1)

    (out / "report.pdf").write_text("not DICOM")
    with pytest.raises(InputError, match="other things than DICOM files"):
        write(out, source.data, source, overwrite=True)
    assert (out / "report.pdf").exists()


@pytest.mark.parametrize(
    "name, content",
    [("notes.dcm", b"a text file named .dcm"), ("IM00099.dcm", b"\0" * 128 + b"DICM" + b"\2\0garbage"),
     (".hidden", b"not DICOM either"), ("sub/IM00001.dcm", b"")],
    ids=["named-dcm", "magic-only", "hidden", "sub-folder"],
)  # fmt: skip
def test_overwrite_reads_every_file_before_deleting(tmp_path: Path, phantom, name: str, content: bytes) -> None:
    """A file is DICOM by its content, not its name: a folder with anything else is refused and kept as it is."""
    write_series(tmp_path / "src", phantom[0], AXIAL)
    source = read(tmp_path / "src")
    out = tmp_path / "out"
    write(out, source.data, source)
    (out / name).parent.mkdir(exist_ok=True)
    (out / name).write_bytes(content)
    before = sorted((p.relative_to(out), p.read_bytes()) for p in out.rglob("*") if p.is_file())
    with pytest.raises(InputError) as err:
        write(out, source.data + 1, source, overwrite=True)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{out}: holds other things than DICOM files ({name.split('/')[0]}")
    assert sorted((p.relative_to(out), p.read_bytes()) for p in out.rglob("*") if p.is_file()) == before
    assert leftovers(tmp_path) == []


def test_gantry_tilt_gives_a_sheared_affine(tmp_path: Path, phantom) -> None:
    """Slices shifted in-plane from one to the next (a tilted gantry): the affine's slice column follows the IPPs."""
    tilted = AXIAL.copy()
    tilted[:3, 2] = [0.0, 0.6, 3.0]  # each slice 0.6 mm further anterior
    write_series(tmp_path / "s", phantom[0], tilted)
    volume = read(tmp_path / "s")
    np.testing.assert_allclose(volume.affine, tilted, atol=1e-6)
    for k, ds in enumerate(volume.header.datasets):
        np.testing.assert_allclose(F @ (volume.affine @ [0, 0, k, 1])[:3], [float(v) for v in ds.ImagePositionPatient])


def test_written_folder_mode_follows_the_umask(tmp_path: Path, phantom) -> None:
    write_series(tmp_path / "src", phantom[0], AXIAL)
    source = read(tmp_path / "src")
    write(tmp_path / "out", source.data, source)
    mask = os.umask(0o022)
    os.umask(mask)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o777 & ~mask


def test_dicomdir_skipped_and_non_image_series_listed(tmp_path: Path, phantom) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import generate_uid

    folder = tmp_path / "export"
    write_series(folder, phantom[0], AXIAL, series_uid="1.2.3.4.1")
    others = [("DICOMDIR", "1.2.840.10008.1.3.10", None), ("report", "1.2.840.10008.5.1.4.1.1.88.11", "1.2.3.4.9")]
    for name, sop_class, series in others:
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = sop_class, generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        if series:
            ds.SOPClassUID, ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.Modality = sop_class, generate_uid(), series, "SR"
        ds.save_as(folder / name, enforce_file_format=True)
    with pytest.raises(InputError, match=r"2 DICOM series .*1\.2\.3\.4\.9 \(-, SR, 1 files\)"):
        read(folder)
    np.testing.assert_array_equal(read(folder, series="1.2.3.4.1").data, phantom[0])
    with pytest.raises(InputError, match="file report has no pixel data"):
        read(folder, series="1.2.3.4.9")


@pytest.mark.parametrize("target, units", [("ct", "HU"), ("t1", "US")])
def test_std_map_is_a_secondary_capture_with_fractions(tmp_path: Path, phantom, target: str, units: str) -> None:
    """The --uncertainty map is not an image of the target: Modality OT (Secondary Capture), its ImageType,
    description, window and RescaleType say std, and values below 0.5 keep their fractions through the slope."""
    write_series(tmp_path / "src", phantom[0], OBLIQUE)
    source = read(tmp_path / "src")
    std = np.random.default_rng(0).uniform(0.0, 0.49, source.shape).astype(np.float32)  # all below half a HU
    std[3, 4, :] = np.linspace(1.0, 250.0, source.shape[2])  # a few large ones
    save_like(tmp_path / "std", std, source, modality=f"{target} std", describe=f"pix2gan {target} std (run-7)")
    written = [pydicom.dcmread(f) for f in sorted((tmp_path / "std").iterdir())]
    p99 = float(np.percentile(std[::2, ::2, :], 99))
    for ds, s in zip(written, source.header.datasets):
        assert (ds.Modality, ds.SOPClassUID, ds.file_meta.MediaStorageSOPClassUID) == ("OT", SC, SC)
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY", "STD_DEV"] and ds.ConversionType == "WSD"
        assert "PatientOrientation" in ds  # type 2 in a Secondary Capture (empty: the geometry is IOP / IPP)
        label = f"pix2gan {target} std (HU) (run-7)" if units == "HU" else f"pix2gan {target} std (run-7)"
        assert ds.SeriesDescription == label and "standard deviation" in ds.DerivationDescription
        assert ds.RescaleType == units and float(ds.RescaleIntercept) == 0 and float(ds.RescaleSlope) == 0.01
        assert float(ds.WindowWidth) == pytest.approx(max(p99, 1.0), abs=1e-4)  # [0, 99th percentile], not 40 / 400
        assert float(ds.WindowCenter) == pytest.approx(float(ds.WindowWidth) / 2, abs=1e-4)
        assert int(ds.SeriesNumber) == int(s.SeriesNumber) + 2000 and "KVP" not in ds
        assert ds.FrameOfReferenceUID == s.FrameOfReferenceUID and ds.ImagePositionPatient == s.ImagePositionPatient
    back = read(tmp_path / "std")
    np.testing.assert_allclose(back.data, std, atol=0.005 + 1e-6)  # half the slope
    assert np.count_nonzero(back.data[std > 0.01]) == np.count_nonzero(std > 0.01)  # not rounded to 0
    np.testing.assert_allclose(back.affine, source.affine, atol=1e-9)
    ref_data, ref_affine = sitk_series(tmp_path / "std")  # SimpleITK places it on the source's grid too
    np.testing.assert_allclose(ref_affine, source.affine, atol=1e-6)
    np.testing.assert_allclose(ref_data, back.data, atol=1e-6)


def test_std_slope_holds_a_large_std() -> None:
    slope, intercept, (centre, width) = dicom_write._std_encoding(np.full((2, 2, 2), 1000.0))
    assert (slope, intercept, centre, width) == (0.05, 0.0, 500.0, 1000.0)  # 0.02 * 32767 < 1000 <= 0.05 * 32767
    assert dicom_write._std_encoding(np.zeros((2, 2, 2)))[:2] == (0.0001, 0.0)


def test_write_leaves_the_umask_alone_and_needs_no_chmod(tmp_path: Path, phantom, monkeypatch) -> None:
    """The temporary folder gets its mode from mkdir: the process umask is never changed, and a chmod that fails
    (it used to follow the folder's creation, outside the clean-up) cannot leak the folder."""
    write_series(tmp_path / "src", phantom[0], AXIAL)
    source = read(tmp_path / "src")
    mask = os.umask(0o022)
    os.umask(mask)
    calls = []
    real_umask = os.umask

    def umask(value: int) -> int:
        calls.append(value)
        return real_umask(value)

    def chmod(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(dicom_write.os, "umask", umask)
    monkeypatch.setattr(dicom_write.os, "chmod", chmod)
    write(tmp_path / "out", source.data, source)
    monkeypatch.undo()
    assert calls == [] and leftovers(tmp_path) == []
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o777 & ~mask


@pytest.mark.parametrize("step", ["move-aside", "move-in", "sync"])
def test_a_failed_swap_keeps_the_old_series_and_leaves_nothing(tmp_path: Path, phantom, monkeypatch, step) -> None:
    """--overwrite: a failure while the new series replaces the old one puts the old one back (or, once the new one
    is in, still removes the old one); no temporary folder is left either way."""
    write_series(tmp_path / "src", phantom[0], AXIAL)
    source = read(tmp_path / "src")
    out = tmp_path / "out"
    write(out, source.data, source)
    first = sorted(p.read_bytes() for p in out.iterdir())
    real_rename, real_sync = os.rename, dicom_write.fsync_folder

    def rename(src, dst):
        moving = {"move-aside": Path(src) == out, "move-in": Path(src).name.startswith(".out.tmp")}
        if moving.get(step):
            raise OSError(5, "Input/output error (injected)")
        return real_rename(src, dst)

    def sync(folder: Path) -> None:
        if step == "sync" and Path(folder) == tmp_path:
            raise OSError(5, "Input/output error (injected)")
        real_sync(folder)

    monkeypatch.setattr(dicom_write.os, "rename", rename)
    monkeypatch.setattr(dicom_write, "fsync_folder", sync)
    with pytest.raises(InputError, match="cannot write the series.*injected"):
        write(out, source.data + 1, source, overwrite=True)
    monkeypatch.undo()
    assert leftovers(tmp_path) == []
    if step == "sync":  # the new series was in place when syncing its parent failed
        np.testing.assert_array_equal(read(out).data, source.data + 1)
    else:
        assert sorted(p.read_bytes() for p in out.iterdir()) == first


def test_formats_table_and_no_import_circle_in_io() -> None:
    """Every format has a reader and writer in one explicit table; the io modules import each other without a
    circle, counting imports inside functions, and none by a string."""
    import ast

    import pix2gan.io as io_package
    from pix2gan.io import codecs, dicom, itk, nifti
    from pix2gan.io.volume import FORMATS

    assert sorted(codecs.CODECS) == sorted(f.name for f in FORMATS)
    assert codecs.CODECS["dicom"] == codecs.Codec(dicom.read, dicom_write.write)
    assert codecs.CODECS["nrrd"].read is itk.read and codecs.CODECS["nifti"].write is nifti.write
    folder = Path(io_package.__file__).parent
    graph: dict[str, set[str]] = {}
    for file in folder.glob("*.py"):
        tree = ast.parse(file.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        froms = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        names |= {f"pix2gan.io.{a.name}" for n in froms if n.module == "pix2gan.io" for a in n.names}
        assert "importlib" not in names, file.name
        graph[file.stem] = {n.split(".")[2] for n in names if n.startswith("pix2gan.io.")} - {file.stem}
    graph.pop("__init__")

    def reach(start: str, seen: set[str]) -> set[str]:
        for nxt in graph.get(start, set()) - seen:
            seen.add(nxt)
            reach(nxt, seen)
        return seen

    assert [m for m in graph if m in reach(m, set())] == []


def test_cli_overwrite_replaces_an_earlier_derived_series(tmp_path: Path, tiny_data, tiny_run) -> None:
    """`pix2gan translate <series> --uncertainty`: the prediction and its std map; run again, refused without
    --overwrite, replaced with it (new series, nothing left over); a folder holding a non-DICOM `.dcm` is kept."""
    from typer.testing import CliRunner

    from helpers import assert_one_clear_line
    from pix2gan_cli.app import app

    t1 = load_volume(tiny_data / "sub-002" / "t1.nii.gz")
    series = tmp_path / "in" / "mr"
    write_series(series, t1.data, t1.affine, modality="MR")
    args = ["translate", str(series), "--run", str(tiny_run), "--device", "cpu", "--uncertainty", "--tta"]
    out, std = tmp_path / "in" / "mr_ct", tmp_path / "in" / "mr_ct_std"

    def uids() -> tuple[set[str], set[str]]:
        return tuple({pydicom.dcmread(f).SeriesInstanceUID for f in folder.iterdir()} for folder in (out, std))

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    first = uids()
    std_ds = pydicom.dcmread(sorted(std.iterdir())[0])
    assert (std_ds.Modality, std_ds.RescaleType, std_ds.SeriesDescription[:19]) == ("OT", "HU", "pix2gan ct std (HU)")
    values = load_volume(std).data
    assert values.min() >= 0 and np.any(values != np.rint(values))  # fractions of a HU kept
    assert_one_clear_line(CliRunner().invoke(app, args), "already exists (use --overwrite")
    assert uids() == first

    result = CliRunner().invoke(app, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    second = uids()
    assert all(len(s) == 1 for s in second) and second[0] != first[0] and second[1] != first[1]
    assert len(list(out.iterdir())) == len(list(std.iterdir())) == t1.shape[2]
    assert leftovers(tmp_path / "in") == []
    np.testing.assert_allclose(load_volume(out).affine, load_volume(series).affine, atol=1e-6)

    (out / "IM00001.dcm").write_text("not DICOM, whatever its name says")
    assert_one_clear_line(CliRunner().invoke(app, [*args, "--overwrite"]), "IM00001.dcm: no DICM preamble")
    assert (out / "IM00001.dcm").read_text().startswith("not DICOM") and len(list(out.iterdir())) == t1.shape[2]
