"""Translation keeps the input's geometry bit for bit and maps values back to physical units."""

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from helpers import oblique_affine, write_nifti
from pix2gan.runs import RunLayout
from pix2gan.config import ModelConfig, RunConfig
from pix2gan.data.intensity import intensity_maps
from pix2gan.nets import UNetGenerator
from pix2gan.infer.translate import Translator, predict_slices
from pix2gan.infer.outputs import plan_outputs
from pix2gan.io import GEOMETRY_FIELDS
from pix2gan.errors import InputError


@pytest.fixture(scope="module")
def translator(tiny_run):
    return Translator.from_checkpoint(RunLayout(tiny_run).best, device="cpu")


@pytest.mark.parametrize("shape", [(37, 29, 5), (32, 32, 9), (13, 50, 3)])
def test_geometry_preserved_for_unseen_scan(translator, tmp_path, shape):
    """Odd in-plane size, oblique affine, int16 with scl_slope: same shape, affine, q/s-form codes, pixdim."""
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 400, shape).astype(np.int16)
    src = write_nifti(tmp_path / "scan.nii.gz", raw, oblique_affine(), slope=2.5, inter=1.0, qform_code=1, sform_code=2)
    out = translator.translate_file(src, tmp_path / "scan_ct.nii.gz")
    a, b = nib.load(src), nib.load(out)
    assert b.shape == a.shape
    assert b.get_data_dtype() == np.float32
    assert np.array_equal(a.affine, b.affine)
    for key in GEOMETRY_FIELDS:
        assert np.array_equal(a.header[key], b.header[key]), key
    assert (int(b.header["qform_code"]), int(b.header["sform_code"])) == (1, 2)
    values = b.get_fdata()
    assert values.min() >= -1024 - 1e-3 and values.max() <= 3000 + 1e-3  # HU from the tanh range


def test_refuses_to_overwrite(translator, tmp_path):
    src = write_nifti(tmp_path / "s.nii.gz", np.random.default_rng(1).uniform(0, 500, (16, 16, 4)).astype(np.float32))
    out = tmp_path / "o.nii.gz"
    out.write_bytes(b"keep me")
    with pytest.raises(InputError, match="already exists"):
        translator.translate_file(src, out)
    assert out.read_bytes() == b"keep me"
    translator.translate_file(src, out, overwrite=True)
    assert nib.load(out).shape == (16, 16, 4)


def test_bad_source_leaves_no_output(translator, tmp_path):
    src = write_nifti(tmp_path / "flat.nii.gz", np.full((16, 16, 4), 5.0, np.float32))
    with pytest.raises(InputError, match=r"flat\.nii\.gz: .*constant"):
        translator.translate_file(src, tmp_path / "out.nii.gz")
    assert not (tmp_path / "out.nii.gz").exists()


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_slice_axis_is_respected(axis):
    """An identity-like generator through translate_array returns the volume's own (normalised) structure."""

    class Echo(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(()))

        def forward(self, x):
            return x * self.w

    cfg = RunConfig(model=ModelConfig(depth=3))
    cfg.data.slice_axis = axis
    src_map, dst_map = intensity_maps(cfg.data)
    tr = Translator(Echo(), cfg, src_map, dst_map)
    vol = np.random.default_rng(2).uniform(0, 1000, (9, 10, 11)).astype(np.float32)
    out = tr.translate_array(vol)
    assert out.shape == vol.shape
    expected = dst_map.inverse(src_map.forward(vol, src_map.scale_of(vol)))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-2)


def test_predict_slices_pads_and_crops():
    g = UNetGenerator(ModelConfig(depth=3, base_filters=4)).eval()
    x = torch.rand(5, 1, 19, 23) * 2 - 1
    y = predict_slices(g, x, 8, batch_size=2)
    assert y.shape == (5, 1, 19, 23)
    # batching does not change results
    torch.testing.assert_close(y, predict_slices(g, x, 8, batch_size=5))


def test_plan_outputs(tmp_path, tiny_data):
    scan = write_nifti(tmp_path / "in" / "scan.nii.gz", np.zeros((4, 4, 4), np.float32))
    write_nifti(tmp_path / "in" / "other.nii", np.zeros((4, 4, 4), np.float32))
    assert plan_outputs([scan], None, src="t1", dst="ct") == [(scan, tmp_path / "in" / "scan_ct.nii.gz")]
    assert plan_outputs([scan], tmp_path / "x.nii.gz", src="t1", dst="ct")[0][1] == tmp_path / "x.nii.gz"
    folder = plan_outputs([tmp_path / "in"], tmp_path / "out", src="t1", dst="ct")
    assert [o.name for _, o in folder] == ["other.nii", "scan.nii.gz"]
    subject = plan_outputs([tiny_data / "sub-001"], tmp_path / "out", src="t1", dst="ct")
    assert subject == [(tiny_data / "sub-001" / "t1.nii.gz", tmp_path / "out" / "sub-001.nii.gz")]
    with pytest.raises(InputError, match="file not found"):
        plan_outputs([tmp_path / "missing.nii.gz"], None, src="t1", dst="ct")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="folder holds no volumes"):
        plan_outputs([tmp_path / "empty"], None, src="t1", dst="ct")
    (tmp_path / "in" / "scan_ct.nii.gz").write_bytes(b"x")
    with pytest.raises(InputError, match="scan_ct.nii.gz: already exists"):
        plan_outputs([scan], None, src="t1", dst="ct")
    with pytest.raises(InputError, match="would also be written"):
        plan_outputs([scan, scan], tmp_path / "o2", src="t1", dst="ct")
    with pytest.raises(InputError, match="3 inputs need an output folder"):
        plan_outputs([tmp_path / "in"], tmp_path / "o.nii.gz", src="t1", dst="ct")


def test_folder_without_output_goes_to_a_sibling_folder(tmp_path):
    for name in ("a.nii.gz", "b.nii.gz"):
        write_nifti(tmp_path / "scans" / name, np.zeros((4, 4, 4), np.float32))
    plan = plan_outputs([tmp_path / "scans"], None, src="t1", dst="ct")
    assert [o for _, o in plan] == [tmp_path / "scans_ct" / "a.nii.gz", tmp_path / "scans_ct" / "b.nii.gz"]
    cwd = os.getcwd()
    os.chdir(tmp_path / "scans")
    try:
        assert plan_outputs([Path(".")], None, src="t1", dst="ct")[0][1] == tmp_path / "scans_ct" / "a.nii.gz"
    finally:
        os.chdir(cwd)


def test_int16_output_is_rounded_hu_with_unit_scaling(translator, tmp_path):
    src = write_nifti(tmp_path / "s.nii.gz", np.random.default_rng(3).uniform(0, 500, (16, 16, 4)).astype(np.float32))
    f32 = translator.translate_file(src, tmp_path / "f.nii.gz")
    i16 = translator.translate_file(src, tmp_path / "i.nii.gz", dtype="int16")
    img = nib.load(i16)
    assert img.get_data_dtype() == np.int16
    assert img.header.get_slope_inter() in ((1.0, 0.0), (None, None))
    np.testing.assert_array_equal(np.asarray(img.dataobj), np.rint(nib.load(f32).get_fdata()).astype(np.int16))


def test_cli_batch_size_and_device_reach_the_translator(tiny_run, tmp_path):
    """``pix2gan translate --batch-size N --device cpu`` end to end: the same numbers as the API with that batch size."""
    from typer.testing import CliRunner

    from pix2gan_cli.app import app

    src = write_nifti(tmp_path / "s.nii.gz", np.random.default_rng(4).uniform(0, 500, (20, 18, 7)).astype(np.float32))
    runner = CliRunner()
    out = tmp_path / "cli.nii.gz"
    result = runner.invoke(app, ["translate", str(src), "--run", str(tiny_run), "-o", str(out), "--batch-size", "3",
                                 "--device", "cpu"])  # fmt: skip
    assert result.exit_code == 0, result.output
    api = Translator.from_checkpoint(RunLayout(tiny_run).best, device="cpu", batch_size=3)
    expected = api.translate_file(src, tmp_path / "api.nii.gz")
    np.testing.assert_array_equal(nib.load(out).get_fdata(), nib.load(expected).get_fdata())
    for bad, message in ((["--batch-size", "0"], "batch-size"), (["--device", "tpu"], "unknown device")):
        result = runner.invoke(app, ["translate", str(src), "--run", str(tiny_run), "-o", str(tmp_path / "x.nii.gz"), *bad])
        assert result.exit_code == 2 and message in result.output, result.output
