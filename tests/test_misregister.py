"""Phantoms that show the misregistration problem: the deformation's bounds, the warp against a direct computation, the
files written (t1, mask, aligned CT byte-identical to a plain set; the aligned CT invisible as a modality), the
unpaired layout, the command line and its refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from helpers import assert_one_clear_line
from pix2gan.data.misregister import (ALIGNED_CT, random_deformation, scoring_ct, unpaired_holdings,
                                      warp_ct)  # fmt: skip
from pix2gan.data.phantom import make_subject, write_dataset
from pix2gan.data.subjects import find_subjects, modality_file
from pix2gan.errors import InputError
from pix2gan_cli.app import app

SIZE = 32


def cli(*args: str | os.PathLike):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def voxels(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj)


# --- the deformation ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed,index,mm", [(0, 0, 4.0), (3, 2, 1.0), (9, 5, 20.0)])
def test_deformation_bounded_smooth_and_deterministic(seed, index, mm):
    ph = make_subject(seed, index, SIZE)
    d = random_deformation(seed, index, ph.affine, ph.ct.shape, mm)
    u = d.displacement.astype(np.float64)  # (X, Y, Z, 3) mm
    norm = np.linalg.norm(u, axis=-1)
    assert norm.max() <= d.budget_mm + 1e-4 and mm / 2 <= d.budget_mm <= mm  # at most MM at every voxel
    assert norm.max() >= d.budget_mm / 3 - 1e-4  # elastic amplitude >= D/3, rigid part <= 2D/3
    assert d.max_mm() == pytest.approx(norm.max()) and d.max_mm(ph.mask) <= d.max_mm()
    assert np.linalg.norm(d.shift_mm) <= d.budget_mm / 3 + 1e-9 and abs(d.rotation_deg) <= 2.0
    # smooth enough never to fold: the Jacobian determinant of x -> x + u(x) stays positive, near 1 for small MM
    spacing = np.diag(ph.affine)[:3]
    grads = np.stack([np.stack(np.gradient(u[..., c], *spacing), -1) for c in range(3)], -2)  # (X, Y, Z, 3, 3)
    assert np.linalg.det(np.eye(3) + grads).min() > (0.15 if mm > 6 else 0.7)
    again = random_deformation(seed, index, ph.affine, ph.ct.shape, mm)
    assert np.array_equal(again.displacement, d.displacement)
    other = random_deformation(seed, index + 1, ph.affine, ph.ct.shape, mm)
    assert not np.array_equal(other.displacement, d.displacement)


def test_rotation_of_a_large_misregistration_reaches_degrees():
    """At 20 mm the rigid rotation is not capped by the budget: over subjects it spans most of +-2 degrees."""
    ph = make_subject(0, 0, SIZE)
    angles = [random_deformation(0, i, ph.affine, ph.ct.shape, 20.0).rotation_deg for i in range(12)]
    assert max(abs(a) for a in angles) > 1.0 and all(abs(a) <= 2.0 for a in angles)


def test_warp_matches_linear_interpolation_by_hand():
    """A constant shift of 1 voxel along x and 0.25 voxel along y, with edges repeated, against direct indexing."""
    rng = np.random.default_rng(0)
    ct = rng.integers(-1000, 2000, size=(6, 5, 3)).astype(np.int16)
    affine = np.diag([2.0, 3.0, 4.0, 1.0])
    affine[:3, 3] = [-5.0, 7.0, 1.0]
    u = np.zeros((*ct.shape, 3), np.float32)
    u[..., 0], u[..., 1] = 2.0, 0.75  # mm: 1 voxel in x, 0.25 voxel in y
    x = np.minimum(np.arange(6) + 1, 5)
    y0, y1 = np.arange(5), np.minimum(np.arange(5) + 1, 4)
    f = ct.astype(np.float64)
    expected = 0.75 * f[x][:, y0] + 0.25 * f[x][:, y1]
    assert np.array_equal(warp_ct(ct, affine, u), np.rint(expected).astype(np.int16))
    assert np.array_equal(warp_ct(ct, affine, np.zeros_like(u)), ct)  # no displacement, no change


# --- the files written ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """The same family written plainly, misregistered by 4 mm (twice) and unpaired + misregistered, with T2."""
    root = tmp_path_factory.mktemp("misregister")
    write_dataset(root / "plain", n_subjects=4, size=SIZE, seed=5, t2=True)
    write_dataset(root / "mis", n_subjects=4, size=SIZE, seed=5, t2=True, misregister_mm=4.0)
    write_dataset(root / "mis-again", n_subjects=4, size=SIZE, seed=5, t2=True, misregister_mm=4.0)
    write_dataset(root / "both", n_subjects=4, size=SIZE, seed=5, t2=True, misregister_mm=4.0, unpaired=True)
    return root


def test_misregistered_set_keeps_everything_else(sets):
    plain, mis = sets / "plain", sets / "mis"
    info = json.loads((mis / "phantom.json").read_text())
    assert info["modalities"] == ["t1", "ct", "mask", "t2"] and info["misregister_mm"] == 4.0
    assert info["aligned_ct"] == ALIGNED_CT.as_posix() == "aligned/ct.nii.gz" and "unpaired" not in info
    for i, sid in enumerate(f"sub-00{k}" for k in range(1, 5)):
        for name in ("t1.nii.gz", "mask.nii.gz", "t2.nii.gz"):
            assert (mis / sid / name).read_bytes() == (plain / sid / name).read_bytes(), (sid, name)
        assert (mis / sid / ALIGNED_CT).read_bytes() == (plain / sid / "ct.nii.gz").read_bytes()  # bit for bit
        warped, aligned = nib.load(mis / sid / "ct.nii.gz"), nib.load(mis / sid / ALIGNED_CT)
        t1 = nib.load(mis / sid / "t1.nii.gz")
        assert np.array_equal(warped.affine, t1.affine) and np.array_equal(warped.affine, aligned.affine)
        for key in ("qform_code", "sform_code", "pixdim", "srow_x", "srow_y", "srow_z"):
            assert np.array_equal(warped.header[key], t1.header[key]), key
        w, a = np.asarray(warped.dataobj), np.asarray(aligned.dataobj)
        assert w.dtype == np.int16 and w.shape == a.shape and (w != a).mean() > 0.2  # moved ...
        bone_w, bone_a = (w > 300).mean(), (a > 300).mean()
        assert abs(bone_w / bone_a - 1) < 0.05  # ... yet the same HU histogram: bone volume within 5 %
        assert abs((w < -500).mean() / (a < -500).mean() - 1) < 0.01 and abs(w.mean() - a.mean()) < 5
        meta = info["subjects"][sid]["misregistration"]
        ph = make_subject(5, i, SIZE)
        d = random_deformation(5, i, ph.affine, ph.ct.shape, 4.0)
        assert meta["max_displacement_mm"] == round(d.max_mm(), 3) <= 4.0
        assert meta["max_displacement_body_mm"] == round(d.max_mm(ph.mask), 3)
        assert np.array_equal(w, warp_ct(a, ph.affine, d.displacement))  # the file is that warp of the aligned CT
        plain_meta = json.loads((plain / "phantom.json").read_text())["subjects"][sid]
        assert {k: v for k, v in info["subjects"][sid].items() if k != "misregistration"} == plain_meta


def test_same_seed_same_bytes(sets):
    a, b = sets / "mis", sets / "mis-again"
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 1 + 4 * 5  # phantom.json; t1, ct, mask, t2 and aligned/ct per subject
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_aligned_ct_is_no_modality(sets):
    mis = sets / "mis"
    subjects = find_subjects(mis, ["t1", "ct"], ["mask", "t2"])
    assert [s.id for s in subjects] == ["sub-001", "sub-002", "sub-003", "sub-004"]
    for s in subjects:
        assert s.files == {m: s.folder / f"{m}.nii.gz" for m in ("t1", "ct", "mask", "t2")}
        assert modality_file(s.folder, "ct") == s.folder / "ct.nii.gz"
        assert modality_file(s.folder, "aligned") is None and (s.folder / ALIGNED_CT).is_file()
        assert scoring_ct(s.folder) == s.folder / ALIGNED_CT
    with pytest.raises(InputError, match="unknown modality 'aligned'; the subjects hold ct, mask, t1, t2"):
        find_subjects(mis, ["aligned"])
    assert scoring_ct(sets / "plain" / "sub-001") == sets / "plain" / "sub-001" / "ct.nii.gz"


# --- unpaired sets --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [4, 5, 6, 10, 14, 15])
def test_unpaired_holdings(n):
    holds = unpaired_holdings(n)
    n_both = max(2, round(0.25 * n))
    assert holds[n - n_both :] == ["both"] * n_both
    assert holds[: n - n_both] == ["mr" if i % 2 == 0 else "ct" for i in range(n - n_both)]


def test_unpaired_layout(sets):
    both, plain = sets / "both", sets / "plain"
    info = json.loads((both / "phantom.json").read_text())
    assert info["unpaired"] == {"mr_only": ["sub-001"], "ct_only": ["sub-002"], "paired": ["sub-003", "sub-004"]}
    assert info["modalities"] == ["t1", "ct", "mask", "t2"]
    listing = {s: sorted(p.relative_to(both / s).as_posix() for p in (both / s).rglob("*") if p.is_file())
               for s in ("sub-001", "sub-002", "sub-003", "sub-004")}  # fmt: skip
    assert listing == {
        "sub-001": ["mask.nii.gz", "t1.nii.gz", "t2.nii.gz"],  # MR only: T1 and T2, no CT of any kind
        "sub-002": ["aligned/ct.nii.gz", "ct.nii.gz", "mask.nii.gz"],
        "sub-003": ["aligned/ct.nii.gz", "ct.nii.gz", "mask.nii.gz", "t1.nii.gz", "t2.nii.gz"],
        "sub-004": ["aligned/ct.nii.gz", "ct.nii.gz", "mask.nii.gz", "t1.nii.gz", "t2.nii.gz"],
    }
    for sid, files in listing.items():
        for rel in files:  # every file kept is the one of the misregistered (or plain) set, byte for byte
            ref = (sets / "mis" / sid / rel) if rel.startswith(("ct", "aligned")) else (plain / sid / rel)
            assert (both / sid / rel).read_bytes() == ref.read_bytes(), (sid, rel)
    assert "misregistration" not in info["subjects"]["sub-001"] and "misregistration" in info["subjects"]["sub-002"]
    with pytest.raises(InputError, match="sub-001: subject has no ct"):  # paired training refuses it as it is
        find_subjects(both, ["t1", "ct"])


def test_overwrite_removes_what_the_new_layout_lacks(tmp_path):
    write_dataset(tmp_path, n_subjects=4, size=SIZE, seed=2, misregister_mm=3.0)
    write_dataset(tmp_path, n_subjects=4, size=SIZE, seed=2, unpaired=True, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "sub-001").iterdir()) == ["mask.nii.gz", "t1.nii.gz"]
    assert sorted(p.name for p in (tmp_path / "sub-002").iterdir()) == ["ct.nii.gz", "mask.nii.gz"]
    assert not (tmp_path / "sub-003" / "aligned").exists()
    info = json.loads((tmp_path / "phantom.json").read_text())
    assert "misregister_mm" not in info and info["unpaired"]["paired"] == ["sub-003", "sub-004"]


# --- the command line -----------------------------------------------------------------------------------------------


def test_cli_end_to_end(tmp_path):
    out = tmp_path / "ph"
    result = cli("phantoms", out, "--subjects", "6", "--size", "32", "--misregister", "4", "--unpaired")
    assert result.exit_code == 0, result.output
    assert "wrote 6 subjects" in result.output
    info = json.loads((out / "phantom.json").read_text())
    assert info["misregister_mm"] == 4.0 and info["modalities"] == ["t1", "ct", "mask"]
    assert info["unpaired"] == {"mr_only": ["sub-001", "sub-003"], "ct_only": ["sub-002", "sub-004"],
                                "paired": ["sub-005", "sub-006"]}  # fmt: skip
    for sid, meta in info["subjects"].items():
        has_ct = sid not in info["unpaired"]["mr_only"]
        assert (out / sid / "ct.nii.gz").is_file() == (out / sid / ALIGNED_CT).is_file() == has_ct
        assert (out / sid / "t1.nii.gz").is_file() == (sid not in info["unpaired"]["ct_only"])
        assert ("misregistration" in meta) == has_ct
        if has_ct:
            assert 0 < meta["misregistration"]["max_displacement_mm"] <= 4.0
    subjects = find_subjects(out, ["mask"], ["t1", "ct"])  # what each holds, as the data code sees it
    assert [s.id for s in subjects if {"t1", "ct"} <= set(s.files)] == ["sub-005", "sub-006"]


@pytest.mark.parametrize("args,needle", [
    (["--misregister", "25"], "--misregister 25 mm: too large; at most 20 mm"),
    (["--misregister", "0"], "--misregister 0 mm: must be > 0"),
    (["--misregister", "-3"], "--misregister -3 mm: must be > 0"),
    (["--unpaired", "--subjects", "3"], "--unpaired needs at least 4 subjects"),
])  # fmt: skip
def test_cli_refusals(tmp_path, args, needle):
    out = tmp_path / "ph"
    assert_one_clear_line(cli("phantoms", out, "--size", "32", *args), needle)
    assert not out.exists()  # refused before anything was written
