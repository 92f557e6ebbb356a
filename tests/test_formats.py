"""MetaImage and NRRD volumes: read and written with their geometry exact, translated into their own format, and a
SynthRAD2025-style ``.mha`` data set trained and scored end to end.

Geometry is compared the way the issue asks: SimpleITK reads input and output and their origin, spacing and direction
agree to 1e-6 (they are in fact copied unchanged within a format); NIfTI outputs keep the header fields bit for bit.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from helpers import oblique_affine, write_nifti
from pix2gan.errors import InputError
from test_synthrad_rules import reference_2025  # SynthRAD2025's published formulas, written independently
from pix2gan.evaluation.metrics import RULES
from pix2gan.io import GEOMETRY_FIELDS, load_volume, save_like
from pix2gan.io.itk import ItkGeometry, geometry_from_affine
from pix2gan_cli.app import app

ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")
TINY = ["--epochs", "1", "--depth", "3", "--filters", "4", "--disc-filters", "4", "--disc-layers", "2",
        "--image-size", "32", "--batch-size", "4", "--no-progress", "--device", "cpu"]  # fmt: skip


def _oblique_itk(path: Path, shape_zyx=(7, 11, 13), dtype=np.int16) -> sitk.Image:
    """An odd-sized, oblique, anisotropic ITK image written to ``path`` (values distinct per voxel)."""
    rng = np.random.default_rng(1)
    image = sitk.GetImageFromArray(rng.integers(-1000, 2000, shape_zyx).astype(dtype))
    rotation = oblique_affine(spacing=(1, 1, 1))[:3, :3]
    image.SetDirection(tuple(rotation.ravel()))
    image.SetSpacing((0.83, 1.17, 3.3))
    image.SetOrigin((-91.25, 12.5, -40.75))
    sitk.WriteImage(image, str(path), True)
    return image


def _same_geometry(a: sitk.Image, b: sitk.Image, atol: float = 1e-6) -> None:
    assert a.GetSize() == b.GetSize()
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), rtol=0, atol=atol)
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), rtol=0, atol=atol)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), rtol=0, atol=atol)


@pytest.mark.parametrize("suffix", ITK_SUFFIXES)
def test_itk_read_matches_simpleitk_physical_points(tmp_path, suffix):
    image = _oblique_itk(tmp_path / f"a{suffix}")
    volume = load_volume(tmp_path / f"a{suffix}")
    assert volume.format == ("metaimage" if suffix in (".mha", ".mhd") else "nrrd")
    assert volume.shape == image.GetSize() and volume.data.dtype == np.float32
    flip = np.array([-1.0, -1.0, 1.0])  # LPS -> RAS
    for index in [(0, 0, 0), (12, 10, 6), (3, 7, 2), (12, 0, 5)]:
        assert volume.data[index] == image.GetPixel(index)
        lps = np.array(image.TransformIndexToPhysicalPoint(index))
        np.testing.assert_allclose((volume.affine @ [*index, 1])[:3], flip * lps, rtol=0, atol=1e-9)


@pytest.mark.parametrize("suffix", ITK_SUFFIXES)
@pytest.mark.parametrize("dtype", [np.float32, np.int16])
def test_itk_round_trip_keeps_geometry_exactly(tmp_path, suffix, dtype):
    image = _oblique_itk(tmp_path / f"in{suffix}")
    volume = load_volume(tmp_path / f"in{suffix}")
    out = tmp_path / "out" / f"pred{suffix}"
    save_like(out, volume.data + 0.25, volume, dtype=dtype, describe="pix2gan ct")
    back = sitk.ReadImage(str(out))
    _same_geometry(image, back, atol=1e-9)  # NRRD stores spacing x direction as one matrix: not always bit for bit
    if suffix in (".mha", ".mhd"):
        assert (back.GetOrigin(), back.GetSpacing(), back.GetDirection()) == (
            image.GetOrigin(), image.GetSpacing(), image.GetDirection())  # fmt: skip
    expected = sitk.GetArrayFromImage(image).astype(np.float32) + 0.25
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), expected.astype(dtype) if dtype == np.float32 else np.rint(expected).astype(dtype))
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".")) == []  # no staging left


def test_nifti_to_itk_and_back_converts_lps_ras(tmp_path):
    affine = oblique_affine()
    data = np.random.default_rng(0).normal(size=(9, 10, 5)).astype(np.float32)
    nii = write_nifti(tmp_path / "a.nii.gz", data, affine)
    source = load_volume(nii)
    save_like(tmp_path / "a.mha", source.data, source)
    save_like(tmp_path / "a.nrrd", source.data, source)
    reference = sitk.ReadImage(str(nii))  # SimpleITK's own reading of the NIfTI
    for name in ("a.mha", "a.nrrd"):
        converted = sitk.ReadImage(str(tmp_path / name))
        _same_geometry(reference, converted)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(converted), sitk.GetArrayFromImage(reference))
    mha = load_volume(tmp_path / "a.mha")
    np.testing.assert_allclose(mha.affine, source.affine, rtol=0, atol=1e-9)  # the NIfTI's own (float32 srow) affine
    save_like(tmp_path / "b.nii.gz", mha.data, mha)  # ITK -> NIfTI: the affine as qform and sform (code 1)
    back = nib.load(tmp_path / "b.nii.gz")
    np.testing.assert_allclose(back.affine, source.affine, rtol=0, atol=1e-6)
    assert int(back.header["qform_code"]) == 1 and int(back.header["sform_code"]) == 1
    np.testing.assert_array_equal(np.asarray(back.dataobj), data)


def test_geometry_from_affine_is_the_inverse_of_affine():
    geometry = geometry_from_affine(oblique_affine())
    np.testing.assert_allclose(geometry.affine(), oblique_affine(), rtol=0, atol=1e-12)
    stored = ItkGeometry((1.5, -2.0, 3.0), (0.7, 0.7, 2.5), tuple(np.eye(3)[[1, 0, 2]].ravel()))
    again = geometry_from_affine(stored.affine())
    np.testing.assert_allclose(again.origin, stored.origin, atol=1e-12)
    np.testing.assert_allclose(again.spacing, stored.spacing, atol=1e-12)
    np.testing.assert_allclose(again.direction, stored.direction, atol=1e-12)


def test_nifti_output_keeps_header_fields_bit_for_bit(tmp_path):
    nii = write_nifti(tmp_path / "a.nii.gz", np.ones((5, 6, 7), np.float32), oblique_affine(), qform_code=2, sform_code=4)
    source = load_volume(nii)
    save_like(tmp_path / "b.nii.gz", source.data * 2, source)
    a, b = nib.load(nii).header, nib.load(tmp_path / "b.nii.gz").header
    for key in GEOMETRY_FIELDS:
        assert np.array_equal(a[key], b[key]), key


# --- the CLI ---------------------------------------------------------------------------------------------------------


def _cli(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.mark.parametrize("suffix", [".mha", ".nrrd"])
def test_translate_writes_the_input_format_on_its_grid(tmp_path, tiny_data, tiny_run, suffix):
    nii_source = load_volume(tiny_data / "sub-001" / "t1.nii.gz")
    oblique = write_nifti(tmp_path / "scan.nii.gz", nii_source.data[:, :31, :], oblique_affine())  # odd size, oblique
    save_like(tmp_path / f"scan{suffix}", load_volume(oblique).data, load_volume(oblique))
    code, out = _cli("translate", tmp_path / f"scan{suffix}", "--run", tiny_run, "--device", "cpu")
    assert code == 0, out
    written = tmp_path / f"scan_ct{suffix}"
    _same_geometry(sitk.ReadImage(str(tmp_path / f"scan{suffix}")), sitk.ReadImage(str(written)))
    assert sitk.ReadImage(str(written)).GetOrigin() == sitk.ReadImage(str(tmp_path / f"scan{suffix}")).GetOrigin()
    code, out = _cli("translate", oblique, "--run", tiny_run, "--device", "cpu")  # the same volume as NIfTI
    assert code == 0, out
    np.testing.assert_array_equal(load_volume(written).data, load_volume(tmp_path / "scan_ct.nii.gz").data)
    code, out = _cli("translate", tmp_path / f"scan{suffix}", "--run", tiny_run, "--device", "cpu", "-o",
                     tmp_path / "conv.nii.gz")  # fmt: skip
    assert code == 0, out
    np.testing.assert_allclose(nib.load(tmp_path / "conv.nii.gz").affine, load_volume(oblique).affine, rtol=0, atol=1e-6)


def _synthrad2025_set(root: Path, tiny_data: Path) -> Path:
    """The tiny phantoms in SynthRAD2025's layout: ``<subject>/{mr,ct,mask}.mha``."""
    for subject in sorted(p for p in tiny_data.iterdir() if p.is_dir()):
        for src, dst in (("t1", "mr"), ("ct", "ct"), ("mask", "mask")):
            volume = load_volume(subject / f"{src}.nii.gz")
            save_like(root / subject.name / f"{dst}.mha", volume.data, volume, dtype=np.int16)
    return root


def test_synthrad2025_mha_layout_trains_and_scores(tmp_path, tiny_data):
    data = _synthrad2025_set(tmp_path / "synthrad2025", tiny_data)
    run = tmp_path / "run"
    code, out = _cli("train", "--data", data, "--src", "mr", "--dst", "ct", "--run-dir", run, *TINY)
    assert code == 0, out
    split = json.loads((run / "split.json").read_text())
    code, out = _cli("eval", "--run", run, "--rules", "synthrad2025", "--json", tmp_path / "eval.json", "--device", "cpu")
    assert code == 0, out
    report = json.loads((tmp_path / "eval.json").read_text())
    assert sorted(report["per_subject"]) == split["test"]
    assert report["rules"] == {"name": "synthrad2025", "space": "HU clipped to [-1024, 3071]", "data_range": 4095.0,
                               "ssim": "masked MS-SSIM", "source": RULES["synthrad2025"].source}  # fmt: skip
    for sid, row in report["per_subject"].items():  # the figures of the written .mha prediction, written independently
        pred = sitk.GetArrayFromImage(sitk.ReadImage(str(run / "eval" / "test" / f"{sid}_ct.mha"))).astype(np.float64)
        gt, mask = (sitk.GetArrayFromImage(sitk.ReadImage(str(data / sid / f"{k}.mha"))).astype(np.float64)
                    for k in ("ct", "mask"))  # fmt: skip
        expected = reference_2025(gt, pred, mask)
        assert 0 < expected["ssim"] < 1, expected
        for key in ("mae", "psnr", "ssim"):
            assert row[key] == pytest.approx(expected[key], rel=1e-7), (sid, key)
    test_subject = split["test"][0]
    code, out = _cli("translate", data / test_subject, "--run", run, "--device", "cpu", "-o", tmp_path / "pred")
    assert code == 0, out
    written = tmp_path / "pred" / f"{test_subject}.mha"
    _same_geometry(sitk.ReadImage(str(data / test_subject / "mr.mha")), sitk.ReadImage(str(written)))


# --- DICOM series through the CLI ------------------------------------------------------------------------------------


def test_translate_dicom_series_writes_a_derived_series(tmp_path, tiny_data, tiny_run):
    import pydicom
    from dicom_series import oblique_affine as dicom_oblique
    from dicom_series import write_series

    t1 = load_volume(tiny_data / "sub-001" / "t1.nii.gz")
    study, frame = "1.2.826.0.1.3680043.8.498.77", "1.2.826.0.1.3680043.8.498.78"
    source_files = write_series(tmp_path / "scan", t1.data[:, :31], dicom_oblique(), modality="MR", study_uid=study,
                                frame_uid=frame, series_uid="1.2.826.0.1.3680043.8.498.79")  # fmt: skip
    write_series(tmp_path / "scan", t1.data[:, :31], dicom_oblique(), modality="MR", study_uid=study, frame_uid=frame,
                 series_uid="1.2.826.0.1.3680043.8.498.80", prefix="z")  # a second series in the folder  # fmt: skip
    code, out = _cli("translate", tmp_path / "scan", "--run", tiny_run, "--device", "cpu", "--series",
                     "1.2.826.0.1.3680043.8.498.79")  # fmt: skip
    assert code == 0, out
    derived = tmp_path / "scan_ct"
    files = sorted(derived.iterdir())
    assert len(files) == len(source_files) == t1.shape[2]
    # pydicom: the same patient, study, frame of reference and slice geometry; a new series of CT slices
    sources = sorted((pydicom.dcmread(f, stop_before_pixels=True) for f in source_files), key=lambda d: d.InstanceNumber)
    written = sorted((pydicom.dcmread(f) for f in files), key=lambda d: d.InstanceNumber)
    assert len({d.SeriesInstanceUID for d in written}) == 1 and written[0].SeriesInstanceUID != sources[0].SeriesInstanceUID
    assert len({d.SOPInstanceUID for d in written} | {d.SOPInstanceUID for d in sources}) == 2 * len(files)
    for src, dst in zip(sources, written):
        assert (dst.PatientID, dst.StudyInstanceUID, dst.FrameOfReferenceUID) == (src.PatientID, study, frame)
        assert dst.Modality == "CT" and list(dst.ImageType)[:2] == ["DERIVED", "SECONDARY"]
        assert "pix2gan" in dst.SeriesDescription
        assert dst.ImagePositionPatient == src.ImagePositionPatient
        assert dst.ImageOrientationPatient == src.ImageOrientationPatient and dst.PixelSpacing == src.PixelSpacing
        assert dst.pixel_array.dtype == np.int16 and float(dst.RescaleSlope) == 1.0
    # SimpleITK reads the derived series back onto the source's grid
    read = lambda fs: sitk.ReadImage([str(f) for f in fs])  # noqa: E731
    ordered = lambda fs: sorted(fs, key=lambda f: int(pydicom.dcmread(f, stop_before_pixels=True).InstanceNumber))  # noqa: E731
    _same_geometry(read(ordered(source_files)), read(ordered(files)))
    # the voxels: HU rounded to integers, equal to translating the same volume as NIfTI
    series = load_volume(tmp_path / "scan", series="1.2.826.0.1.3680043.8.498.79")
    save_like(tmp_path / "same.nii.gz", series.data, series)
    code, out = _cli("translate", tmp_path / "same.nii.gz", "--run", tiny_run, "--device", "cpu")
    assert code == 0, out
    expected = np.rint(load_volume(tmp_path / "same_ct.nii.gz").data)  # HU as int16, slope 1
    back = load_volume(derived)
    np.testing.assert_array_equal(back.data, expected)
    np.testing.assert_allclose(back.affine, series.affine, rtol=0, atol=1e-6)


def test_dicom_subjects_train_and_mha_folders_score(tmp_path, tiny_data):
    """A hospital-style set (T1 as a DICOM series folder per subject, CT and mask as NIfTI) trains; SynthRAD2025's
    ``--pred/--target/--mask`` folders of ``.mha`` files score under its rules."""
    from dicom_series import write_series

    data = tmp_path / "hospital"
    for subject in sorted(p for p in tiny_data.iterdir() if p.is_dir()):
        t1 = load_volume(subject / "t1.nii.gz")
        write_series(data / subject.name / "t1", t1.data, t1.affine, modality="MR")
        for name in ("ct", "mask"):
            (data / subject.name / f"{name}.nii.gz").write_bytes((subject / f"{name}.nii.gz").read_bytes())
    run = tmp_path / "run"
    code, out = _cli("train", "--data", data, "--src", "t1", "--dst", "ct", "--run-dir", run, *TINY)
    assert code == 0, out
    test_subject = json.loads((run / "split.json").read_text())["test"][0]
    code, out = _cli("translate", data / test_subject, "--run", run, "--device", "cpu", "-o", tmp_path / "pred")
    assert code == 0, out
    assert (tmp_path / "pred" / test_subject).is_dir()  # the subject's T1 series gives a derived series

    folders = {name: tmp_path / name for name in ("p", "t", "m")}
    for sid in ("a", "b"):
        ct = load_volume(tiny_data / "sub-001" / "ct.nii.gz")
        mask = load_volume(tiny_data / "sub-001" / "mask.nii.gz")
        save_like(folders["t"] / f"{sid}.mha", ct.data, ct, dtype=np.int16)
        save_like(folders["p"] / f"{sid}.mha", ct.data + 10.0, ct)
        save_like(folders["m"] / f"{sid}.mha", mask.data, mask, dtype=np.int16)
    code, out = _cli("eval", "--pred", folders["p"], "--target", folders["t"], "--mask", folders["m"], "--rules",
                     "synthrad2025", "--json", tmp_path / "e.json")  # fmt: skip
    assert code == 0, out
    report = json.loads((tmp_path / "e.json").read_text())
    assert sorted(report["per_subject"]) == ["a", "b"]
    assert report["per_subject"]["a"]["mae"] == pytest.approx(10.0)


def test_dicom_uncertainty_map_is_a_second_derived_series(tmp_path, tiny_data, tiny_run):
    import pydicom
    from dicom_series import write_series

    t1 = load_volume(tiny_data / "sub-002" / "t1.nii.gz")
    write_series(tmp_path / "in" / "mr", t1.data, t1.affine, modality="MR", series_number=7)
    code, out = _cli("translate", tmp_path / "in" / "mr", "--run", tiny_run, "--device", "cpu", "--uncertainty", "--tta",
                     "-o", tmp_path / "out")  # fmt: skip
    assert code == 0, out
    pred, std = (sorted((tmp_path / "out" / name).iterdir()) for name in ("mr", "mr_std"))
    assert len(pred) == len(std) == t1.shape[2]
    first_pred, first_std = pydicom.dcmread(pred[0]), pydicom.dcmread(std[0])
    assert (first_pred.SeriesNumber, first_std.SeriesNumber) == (1007, 2007)
    assert first_pred.SeriesInstanceUID != first_std.SeriesInstanceUID
    assert first_pred.StudyInstanceUID == first_std.StudyInstanceUID
    assert "std" in first_std.SeriesDescription and "std" not in first_pred.SeriesDescription
    assert np.all(load_volume(tmp_path / "out" / "mr_std").data >= 0)


_SITK_TYPES = [("sitkInt8", "MET_CHAR"), ("sitkUInt8", "MET_UCHAR"), ("sitkInt16", "MET_SHORT"),
               ("sitkUInt16", "MET_USHORT"), ("sitkInt32", "MET_INT"), ("sitkUInt32", "MET_UINT"),
               ("sitkInt64", "MET_LONG_LONG"), ("sitkUInt64", "MET_ULONG_LONG"), ("sitkFloat32", "MET_FLOAT"),
               ("sitkFloat64", "MET_DOUBLE")]  # fmt: skip


@pytest.mark.parametrize(("pixel", "element"), _SITK_TYPES)
def test_uncompressed_mhd_of_every_simpleitk_pixel_type_is_read(tmp_path, pixel, element):
    """SimpleITK's own uncompressed ``.mhd`` + ``.raw`` of each scalar type: read with its values, not called short."""
    values = np.arange(4 * 3 * 2).reshape(2, 3, 4) % 100  # [z, y, x]
    image = sitk.Cast(sitk.GetImageFromArray(values.astype(np.int16)), getattr(sitk, pixel))
    sitk.WriteImage(image, str(tmp_path / "v.mhd"), False)
    assert f"ElementType = {element}\n" in (tmp_path / "v.mhd").read_text()
    assert np.array_equal(load_volume(tmp_path / "v.mhd").data, values.T.astype(np.float32))


@pytest.mark.parametrize("element", ["MET_LONG", "MET_ULONG"])
def test_mhd_long_is_four_bytes_as_in_metaio(tmp_path, element):
    """MetaIO's MET_LONG / MET_ULONG are 32-bit (MET_ValueTypeSize): a complete file of them is read, a short one
    refused with the byte counts."""
    values = np.arange(4 * 3 * 2).reshape(2, 3, 4)
    sitk.WriteImage(sitk.GetImageFromArray(values.astype(np.int32)), str(tmp_path / "v.mhd"), False)
    header = tmp_path / "v.mhd"
    header.write_text(header.read_text().replace("ElementType = MET_INT", f"ElementType = {element}"))
    assert np.array_equal(load_volume(header).data, values.T.astype(np.float32))
    raw = tmp_path / "v.raw"
    raw.write_bytes(raw.read_bytes()[:-1])
    with pytest.raises(InputError, match=r"v\.mhd: its data file v\.raw is short \(95 bytes, 96 expected\)"):
        load_volume(header)
