import gzip
import os

import nibabel as nib
import numpy as np
import pytest

from helpers import oblique_affine, write_nifti
from pix2gan.io import GEOMETRY_FIELDS, atomic_path, check_same_grid, load_volume, save_like
from pix2gan.errors import InputError


def test_load_applies_scaling_and_keeps_header(tmp_path):
    raw = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    path = write_nifti(tmp_path / "a.nii.gz", raw, oblique_affine(), slope=2.0, inter=-10.0)
    vol = load_volume(path)
    assert vol.data.dtype == np.float32
    np.testing.assert_array_equal(vol.data, raw * 2.0 - 10.0)
    np.testing.assert_array_equal(vol.affine, nib.load(path).affine)


def test_single_frame_4d_is_squeezed(tmp_path):
    path = write_nifti(tmp_path / "a.nii", np.ones((4, 5, 6, 1), np.float32))
    assert load_volume(path).shape == (4, 5, 6)


@pytest.mark.parametrize("shape", [(5, 5, 4, 3), (6, 7)])
def test_not_3d_is_refused(tmp_path, shape):
    path = write_nifti(tmp_path / "bad.nii.gz", np.ones(shape, np.float32))
    with pytest.raises(InputError, match=r"bad\.nii\.gz: volume is \d-D"):
        load_volume(path)


def test_zero_size_axis(tmp_path):
    path = write_nifti(tmp_path / "z.nii.gz", np.ones((4, 0, 3), np.float32))
    with pytest.raises(InputError, match="zero-size axis"):
        load_volume(path)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_voxels(tmp_path, value):
    data = np.zeros((4, 4, 4), np.float32)
    data[1, 2, 3] = value
    path = write_nifti(tmp_path / "n.nii.gz", data)
    with pytest.raises(InputError, match=r"n\.nii\.gz: 1 voxel\(s\) are NaN or Inf"):
        load_volume(path)


def test_constant_volume_when_asked(tmp_path):
    path = write_nifti(tmp_path / "c.nii.gz", np.full((4, 4, 4), 3.0, np.float32))
    assert load_volume(path).shape == (4, 4, 4)
    with pytest.raises(InputError, match="constant"):
        load_volume(path, allow_constant=False)


def test_truncated_gzip(tmp_path):
    good = write_nifti(tmp_path / "g.nii.gz", np.random.default_rng(0).normal(size=(30, 30, 30)).astype(np.float32))
    bad = tmp_path / "t.nii.gz"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputError, match=r"t\.nii\.gz: .*(truncated|corrupt|readable)"):
        load_volume(bad)


@pytest.mark.parametrize(
    "content,name",
    [
        (b"", "empty.nii.gz"),
        (b"hello, this is not an image\n" * 20, "text.nii.gz"),
        (gzip.compress(b"\x00" * 400), "wrongmagic.nii.gz"),
        (b"\x00" * 400, "wrongmagic.nii"),
    ],
)
def test_garbage_files(tmp_path, content, name):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        load_volume(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message


def test_missing_and_wrong_suffix(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_volume(tmp_path / "nope.nii.gz")
    (tmp_path / "x.png").write_bytes(b"x")
    with pytest.raises(InputError, match="not a supported volume file name"):
        load_volume(tmp_path / "x.png")
    with pytest.raises(InputError, match="is a folder"):
        load_volume(tmp_path)


def test_grid_checks(tmp_path):
    a = load_volume(write_nifti(tmp_path / "a.nii.gz", np.zeros((4, 5, 6), np.float32)))
    b = load_volume(write_nifti(tmp_path / "b.nii.gz", np.zeros((4, 5, 7), np.float32)))
    shifted = np.eye(4)
    shifted[0, 3] = 2.0
    c = load_volume(write_nifti(tmp_path / "c.nii.gz", np.zeros((4, 5, 6), np.float32), shifted))
    check_same_grid(a, a)
    with pytest.raises(InputError, match=r"b\.nii\.gz: shape \(4, 5, 7\) differs"):
        check_same_grid(a, b)
    with pytest.raises(InputError, match=r"c\.nii\.gz: affine differs .* by up to 2 mm"):
        check_same_grid(a, c)


@pytest.mark.parametrize("qform_code,sform_code", [(1, 1), (1, 0), (0, 2), (2, 4)])
def test_save_like_preserves_geometry_bit_for_bit(tmp_path, qform_code, sform_code):
    raw = np.random.default_rng(0).integers(-100, 100, (13, 17, 5)).astype(np.int16)
    src = write_nifti(tmp_path / "in.nii.gz", raw, oblique_affine(), slope=0.5, inter=3.0,
                      qform_code=qform_code, sform_code=sform_code)
    vol = load_volume(src)
    out = tmp_path / "out.nii.gz"
    save_like(out, vol.data * 2, vol)
    a, b = nib.load(src), nib.load(out)
    assert b.shape == a.shape and b.get_data_dtype() == np.float32
    for key in GEOMETRY_FIELDS:
        assert np.array_equal(a.header[key], b.header[key]), key
    assert np.array_equal(a.affine, b.affine)
    np.testing.assert_array_equal(b.get_fdata(dtype=np.float32), vol.data * 2)
    assert b.header.get_slope_inter() in ((1.0, 0.0), (None, None))


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.nii.gz"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target, overwrite=True) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.nii.gz"]


def test_atomic_files_get_the_usual_mode(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "f.json") as tmp:
            tmp.write_text("{}")
    finally:
        os.umask(old)
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == 0o644


def test_atomic_path_refuses_existing_without_overwrite(tmp_path):
    target = tmp_path / "x.json"
    target.write_text("{}")
    with pytest.raises(InputError, match="already exists"):
        with atomic_path(target):
            pass


def test_unwritable_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InputError, match="cannot write here"):
        with atomic_path(blocker / "sub" / "out.nii.gz"):
            pass


def test_atomic_write_takes_the_umask_mode_without_touching_the_umask(tmp_path, monkeypatch):
    """The temporary file is created with mode 0666 for the kernel to apply the umask: reading the umask would mean
    setting it (os.umask), a process-wide change other threads could see."""
    import os

    from pix2gan.io import atomic_write_text

    old = os.umask(0o027)
    try:
        monkeypatch.setattr(os, "umask", lambda mask: (_ for _ in ()).throw(AssertionError("umask changed")))
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        monkeypatch.undo()
        os.umask(old)
    assert (tmp_path / "a.txt").read_text() == "x"
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
