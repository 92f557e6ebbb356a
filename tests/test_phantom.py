"""The bundled phantoms: deterministic, in physical units, and built so a per-voxel lookup cannot solve them."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from pix2gan.evaluation.baseline import LookupTable
from pix2gan.config import IntensityKind
from pix2gan.data.intensity import IntensityMap
from pix2gan.data.phantom import Tissue, make_subject, write_dataset


@pytest.fixture(scope="module")
def heads():
    return [make_subject(seed=0, index=i, size=128) for i in range(4)]  # the bundled resolution


def test_deterministic():
    a, b = make_subject(seed=7, index=2, size=32), make_subject(seed=7, index=2, size=32)
    assert np.array_equal(a.ct, b.ct) and np.array_equal(a.t1, b.t1)
    assert not np.array_equal(a.ct, make_subject(seed=7, index=3, size=32).ct)


def test_subjects_vary(heads):
    metas = [h.meta for h in heads]
    assert len({tuple(m["head_axes_mm"]) for m in metas}) == 4
    assert len({m["cortical_hu"] for m in metas}) == 4
    assert len({int(h.mask.sum()) for h in heads}) == 4


def core(h, tissue):
    """Voxels of ``tissue`` whose 3 x 3 in-plane neighbourhood is the same tissue (free of partial volume)."""
    return ndimage.binary_erosion(h.labels == tissue, structure=np.ones((3, 3, 1), bool))


def test_ct_values_in_hu(heads):
    for h in heads:
        ct = h.ct.astype(float)
        med = {t: np.median(ct[core(h, t)]) for t in (Tissue.FAT, Tissue.WHITE, Tissue.GREY, Tissue.MUSCLE)}
        assert np.median(ct[h.mask == 0]) == pytest.approx(-1000, abs=30)  # air outside the head
        assert -160 < med[Tissue.FAT] < -40
        assert 0 < med[Tissue.WHITE] < med[Tissue.GREY] < 90 and 20 < med[Tissue.MUSCLE] < 70  # GM: near bone
        assert 1000 < np.percentile(ct[h.labels == Tissue.CORTICAL], 99) < 2000  # blurred thin cortical tables
        assert h.ct.min() >= -1024 and h.ct.dtype == np.int16


def test_t1_contrast(heads):
    for h in heads:
        t1 = h.t1.astype(float)
        med = {t: np.median(t1[core(h, t)]) for t in (Tissue.FAT, Tissue.WHITE, Tissue.GREY, Tissue.CSF)}
        assert med[Tissue.FAT] > med[Tissue.WHITE] > med[Tissue.GREY] > med[Tissue.CSF]  # T1 weighting
        # bone and air are both signal voids: the darkest cortical voxels are as dark as the air outside
        assert np.percentile(t1[h.labels == Tissue.CORTICAL], 5) < 0.25 * med[Tissue.GREY]
        assert np.median(t1[h.mask == 0]) < 0.1 * med[Tissue.GREY]


def test_anisotropic_affine_and_mask(heads):
    h = heads[0]
    spacing = np.sqrt((h.affine[:3, :3] ** 2).sum(0))
    assert spacing[2] > 1.5 * spacing[0] and spacing[0] == spacing[1]
    assert set(np.unique(h.mask)) == {0, 1}
    # air cavities sit inside the body mask
    assert ((h.labels == Tissue.AIR) & (h.mask == 1)).sum() > 0


def test_lookup_table_fails_on_bone_and_air(heads):
    """A per-voxel T1 -> HU table fitted on three heads makes big errors on bone and air of the fourth."""
    m = IntensityMap(IntensityKind.PERCENTILE)
    norm = lambda h: m.forward(h.t1, m.scale_of(h.t1.astype(np.float32)))  # noqa: E731
    lut = LookupTable.fit([norm(h)[h.mask > 0] for h in heads[:3]], [h.ct[h.mask > 0] for h in heads[:3]])
    test = heads[3]
    err = np.abs(lut.apply(norm(test)) - test.ct)
    inside = test.mask > 0
    assert err[inside & (test.labels == Tissue.WHITE)].mean() < 60
    assert err[inside & (test.labels == Tissue.CORTICAL)].mean() > 150
    assert err[inside & (test.labels == Tissue.MARROW)].mean() > 150  # bright like fat in T1, bone in CT
    assert err[inside].mean() > 100


def test_write_dataset_layout_and_no_overwrite(tmp_path):
    folders = write_dataset(tmp_path, n_subjects=2, size=32, seed=1)
    assert [f.name for f in folders] == ["sub-001", "sub-002"]
    img = nib.load(folders[0] / "ct.nii.gz")
    assert img.header["qform_code"] == 1 and img.header["sform_code"] == 1
    assert json.loads((tmp_path / "phantom.json").read_text())["subjects"]["sub-002"]["index"] == 1
    before = (folders[0] / "t1.nii.gz").read_bytes()
    with pytest.raises(FileExistsError):
        write_dataset(tmp_path, n_subjects=2, size=32, seed=2)
    assert (folders[0] / "t1.nii.gz").read_bytes() == before
    write_dataset(tmp_path / "again", n_subjects=1, size=32, seed=1)
    assert (tmp_path / "again/sub-001/t1.nii.gz").read_bytes() == before  # byte-identical files
    assert not (tmp_path / "sub-001/t2.nii.gz").exists()  # T2 only when asked for
    assert json.loads((tmp_path / "phantom.json").read_text())["modalities"] == ["t1", "ct", "mask"]


# --- the T2 image: a stream of its own, so t1, ct and mask are what they always were ----------------------------

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@pytest.mark.parametrize("seed,index,size", [(0, 0, 32), (7, 3, 48), (123, 11, 32)])
def test_t2_changes_nothing_else(seed, index, size):
    plain, with_t2 = make_subject(seed, index, size), make_subject(seed, index, size, t2=True)
    assert plain.t2 is None and with_t2.t2 is not None and with_t2.t2.shape == plain.t1.shape
    for name in ("t1", "ct", "mask", "labels", "affine"):
        assert np.array_equal(getattr(plain, name), getattr(with_t2, name)), name
    assert {k: v for k, v in with_t2.meta.items() if k != "t2_gain"} == plain.meta
    again = make_subject(seed, index, size, t2=True)
    assert np.array_equal(again.t2, with_t2.t2) and again.meta == with_t2.meta  # deterministic
    other = make_subject(seed, index + 1, size, t2=True)
    assert not np.array_equal(other.t2, with_t2.t2)


def test_bundled_samples_regenerate_identically_with_t2(tmp_path):
    """The committed t1, ct and mask files come back byte for byte from a set written with T2."""
    info = json.loads((SAMPLES / "phantom.json").read_text())
    seed, size = info["seed"], info["size"]
    assert info["modalities"] == ["t1", "ct", "mask"] and not list(SAMPLES.glob("sub-*/t2.nii.gz"))
    write_dataset(tmp_path, n_subjects=2, size=size, seed=seed, t2=True)
    written = json.loads((tmp_path / "phantom.json").read_text())
    assert written["modalities"] == ["t1", "ct", "mask", "t2"]
    for sid in ("sub-001", "sub-002"):
        for name in ("t1", "ct", "mask"):
            assert (tmp_path / sid / f"{name}.nii.gz").read_bytes() == (SAMPLES / sid / f"{name}.nii.gz").read_bytes()
        assert (tmp_path / sid / "t2.nii.gz").is_file()
        meta = written["subjects"][sid]
        assert "t2_gain" in meta and {k: v for k, v in meta.items() if k != "t2_gain"} == info["subjects"][sid]
    last = len(info["subjects"]) - 1  # subject i depends only on seed, index and size
    ph = make_subject(seed=seed, index=last, size=size, t2=True)
    for name in ("t1", "ct", "mask"):
        stored = nib.load(SAMPLES / f"sub-{last + 1:03d}" / f"{name}.nii.gz")
        assert np.array_equal(np.asarray(stored.dataobj), getattr(ph, name)), name
        assert np.array_equal(stored.affine, ph.affine)
