"""The ZTE-like phantom (``--zte``): its tissue contrasts, its grid, its own random stream, and ZTE -> CT end to end."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage
from typer.testing import CliRunner

import pix2gan.data.phantom as phantom
from pix2gan.data.phantom import _PSF, _SIGMA_MR, _T1, Tissue, _grid, _mr_acquire, _place_head, make_subject
from pix2gan.data.zte import SOFT_TISSUES, ZTE_SIGNAL
from pix2gan_cli.app import app

SOFT = tuple(Tissue[name.upper()] for name in SOFT_TISSUES)


def cli(*args: str | os.PathLike):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def block_means(table: dict, rng_seed: int) -> dict[Tissue, float]:
    """Mean acquired signal of a uniform 24 x 24 x 4 block of each tissue, no bias field (p = 0), gain divided out."""
    p = np.zeros((24, 24, 4, 3), np.float32)
    means = {}
    for t in Tissue:
        m, gain = _mr_acquire(np.full(p.shape[:3], table[t], np.float32), p, np.random.default_rng(rng_seed))
        means[t] = float(m.mean()) / gain
    return means


def test_zte_contrast_on_pure_tissue():
    """Direct computation on known inputs: bone (of mid-range density) far above air in noise units, soft tissues
    nearly flat; in T1 the same acquisition leaves bone and air within two noise sigmas of each other."""
    zte, t1 = block_means({t: ZTE_SIGNAL[t.name.lower()] for t in Tissue}, 0), block_means(_T1, 0)
    bone_air = zte[Tissue.CORTICAL] - zte[Tissue.AIR]
    assert bone_air > 8 * _SIGMA_MR  # intermediate signal, clearly not a void
    assert zte[Tissue.CORTICAL] < 0.6 * min(zte[t] for t in SOFT)  # intermediate: below soft tissue
    soft = [zte[t] for t in SOFT]
    assert max(soft) - min(soft) < 0.25 * (min(soft) - zte[Tissue.CORTICAL])  # nearly flat beside the bone contrast
    t1_soft = [t1[t] for t in SOFT]
    assert max(t1_soft) - min(t1_soft) > 2 * (max(soft) - min(soft))  # T1 has the soft-tissue contrast ZTE lacks
    assert abs(t1[Tissue.CORTICAL] - t1[Tissue.AIR]) < 2 * _SIGMA_MR  # both voids in T1


def unmix(ph, image: np.ndarray) -> dict[Tissue, float]:
    """Each tissue's signal in ``image``, by least squares on the tissues' partial-volume fractions (the label map
    blurred as the phantom blurs it): the image is linear in them up to the bias field and the noise."""
    present = [t for t in Tissue if (ph.labels == t).any()]
    blurred = [ndimage.gaussian_filter((ph.labels == t).astype(np.float32), _PSF).ravel() for t in present]
    coef, *_ = np.linalg.lstsq(np.stack(blurred, 1), image.astype(float).ravel(), rcond=None)
    return dict(zip(present, coef))


@pytest.mark.parametrize("index", [0, 1, 2])
def test_zte_contrast_in_phantom(index: int):
    """In 32 x 32 phantoms, whose skull is thinner than a voxel: unmixed, cortical bone lies over 5 noise sigmas above
    air in ZTE (its densest bone, 1750 HU, about 6) and within 2 in T1, soft tissues spread little in ZTE and much in T1; voxels mostly bone lie above air
    outside the head with no overlap (5th vs 95th percentile)."""
    ph = make_subject(seed=0, index=index, size=32, zte=True)
    zte, t1 = unmix(ph, ph.zte), unmix(ph, ph.t1)
    bone_air = zte[Tissue.CORTICAL] - zte[Tissue.AIR]
    assert bone_air > 5 * _SIGMA_MR and abs(t1[Tissue.CORTICAL] - t1[Tissue.AIR]) < 2 * _SIGMA_MR
    soft, t1_soft = [zte[t] for t in SOFT], [t1[t] for t in SOFT]
    assert max(soft) - min(soft) < 0.25 * (min(soft) - zte[Tissue.CORTICAL]) and max(t1_soft) - min(t1_soft) > 3 * (max(soft) - min(soft))
    assert zte[Tissue.CORTICAL] < 0.6 * min(soft)  # intermediate

    fraction = {t: ndimage.gaussian_filter((ph.labels == t).astype(np.float32), _PSF) for t in Tissue}
    bone, air = fraction[Tissue.CORTICAL] > 0.5, (fraction[Tissue.AIR] > 0.9) & (ph.mask == 0)
    assert bone.sum() > 50 and air.sum() > 1000
    assert np.percentile(ph.zte[bone], 5) > np.percentile(ph.zte[air], 95)
    assert ph.zte.dtype == np.int16 and ph.zte.min() >= 0 and 0.75 <= ph.meta["zte_gain"] <= 1.3


def test_zte_own_stream_and_determinism():
    """Same seed, same bytes; asking for the ZTE (with or without T2) changes no other array nor meta entry; the ZTE
    is the direct computation from its values, the head's position and its own stream."""
    for seed, index in ((0, 0), (3, 1), (7, 4)):
        plain = make_subject(seed=seed, index=index, size=32)
        both = make_subject(seed=seed, index=index, size=32, t2=True, zte=True)
        again = make_subject(seed=seed, index=index, size=32, zte=True)
        assert plain.zte is None and both.zte.shape == plain.t1.shape
        assert np.array_equal(both.zte, again.zte)
        for name in ("t1", "ct", "mask", "labels", "affine"):
            assert np.array_equal(getattr(plain, name), getattr(both, name)), name
            assert np.array_equal(getattr(plain, name), getattr(again, name)), name
        assert np.array_equal(both.t2, make_subject(seed=seed, index=index, size=32, t2=True).t2)
        assert {k: v for k, v in both.meta.items() if k not in ("t2_gain", "zte_gain")} == plain.meta
        # its own stream: neither the T1 nor the T2 noise, nor another subject's
        assert not np.array_equal(both.zte, make_subject(seed=seed, index=index + 1, size=32, zte=True).zte)

        # the acquisition from the ZTE values on this label map with a fresh ZTE stream: the same bytes
        rng = np.random.default_rng(np.random.SeedSequence([seed, index], spawn_key=(0x7A7465,)))
        values = np.array([ZTE_SIGNAL[t.name.lower()] for t in Tissue], np.float32)[both.labels]
        bone = (both.labels == Tissue.CORTICAL) | (both.labels == Tissue.MARROW)
        hu = _sharp_hu(seed, index)
        values[bone] = 600.0 * (1.0 - (hu[bone] - 42.0) / 2000.0)  # Wiesinger et al. 2018, written out
        _, world = _grid(both.t1.shape, *both.meta["spacing_mm"][1:])
        head = _place_head(np.random.default_rng([seed, index]), world)  # the first draws of the main stream
        magnitude, gain = _mr_acquire(ndimage.gaussian_filter(values, _PSF), head.p, rng)
        assert np.array_equal(both.zte, np.clip(np.rint(magnitude), 0, 32767).astype(np.int16))
        assert round(gain, 3) == both.meta["zte_gain"]


def _sharp_hu(seed: int, index: int) -> np.ndarray:
    """The phantom's HU map before blur and noise (the CT renderer's fourth output), caught on its way out."""
    caught = []
    original = phantom._render_ct_t1

    def catch(*args):  # noqa: ANN002, ANN202
        out = original(*args)
        caught.append(out[3].copy())
        return out

    phantom._render_ct_t1 = catch
    try:
        make_subject(seed=seed, index=index, size=32)
    finally:
        phantom._render_ct_t1 = original
    return caught[0]


def test_zte_bone_follows_density():
    """Denser bone is darker in ZTE, as ZTE pseudo-CT assumes: across subjects the unmixed cortical signal falls as the
    subject's cortical HU rises (rank order; gain divided out), and within a subject the bone voxels' signal before
    the acquisition is the linear function of their HU (the skull's smooth density variation shows)."""
    subjects = [make_subject(seed=4, index=i, size=32, zte=True) for i in range(6)]
    signal = [unmix(ph, ph.zte)[Tissue.CORTICAL] / ph.meta["zte_gain"] for ph in subjects]
    density = [ph.meta["cortical_hu"] for ph in subjects]
    assert np.corrcoef(np.argsort(np.argsort(signal)), np.argsort(np.argsort(density)))[0, 1] < -0.7
    labels, hu = subjects[0].labels, _sharp_hu(4, 0)
    cortical = labels == Tissue.CORTICAL
    assert hu[cortical].std() > 10  # the density field varies over the skull
    built = phantom._zte_signal(labels, hu)
    np.testing.assert_allclose(built[cortical], 600.0 * (1.0 - (hu[cortical] - 42.0) / 2000.0), rtol=1e-6)
    soft = labels == Tissue.GREY
    assert np.all(built[soft] == ZTE_SIGNAL["grey"]) and np.all(built[labels == Tissue.AIR] == 0.0)


def test_bundled_samples_unchanged_with_zte():
    """The default-size subject 1 with ZTE has the bundled samples' T1, CT and mask, bit for bit."""
    root = Path(__file__).resolve().parents[1] / "samples" / "sub-001"
    ph = make_subject(seed=0, index=0, size=128, zte=True)
    for name in ("t1", "ct", "mask"):
        img = nib.load(root / f"{name}.nii.gz")
        assert np.array_equal(np.asarray(img.dataobj), getattr(ph, name)), name
        assert np.array_equal(img.affine, ph.affine), name


def test_cli_zte_files_bytes_and_grid(tmp_path: Path):
    plain, with_zte = tmp_path / "plain", tmp_path / "zte"
    assert cli("phantoms", plain, "--subjects", "2", "--size", "32", "--seed", "5", "--t2").exit_code == 0
    result = cli("phantoms", with_zte, "--subjects", "2", "--size", "32", "--seed", "5", "--t2", "--zte")
    assert result.exit_code == 0, result.output
    for sub in ("sub-001", "sub-002"):
        assert sorted(p.name for p in (with_zte / sub).iterdir()) == [
            "ct.nii.gz", "mask.nii.gz", "t1.nii.gz", "t2.nii.gz", "zte.nii.gz"]  # fmt: skip
        for name in ("t1", "ct", "mask", "t2"):  # byte-identical files
            assert (plain / sub / f"{name}.nii.gz").read_bytes() == (with_zte / sub / f"{name}.nii.gz").read_bytes()
        t1, zte = nib.load(with_zte / sub / "t1.nii.gz"), nib.load(with_zte / sub / "zte.nii.gz")
        assert zte.shape == t1.shape and zte.affine.tobytes() == t1.affine.tobytes()
        for code in ("sform_code", "qform_code"):
            assert zte.header[code] == t1.header[code]
        index = int(sub.removeprefix("sub-")) - 1
        assert np.array_equal(np.asarray(zte.dataobj), make_subject(seed=5, index=index, size=32, zte=True).zte)
    meta = json.loads((with_zte / "phantom.json").read_text())
    assert meta["modalities"] == ["t1", "ct", "mask", "t2", "zte"]
    assert all("zte_gain" in s for s in meta["subjects"].values())
    assert "zte_gain" not in json.dumps(json.loads((plain / "phantom.json").read_text()))


def test_cli_zte_with_misregister_and_unpaired(tmp_path: Path):
    """The ZTE goes with the T1 (MR-only and paired subjects), on the T1's grid and undeformed."""
    data = tmp_path / "d"
    result = cli("phantoms", data, "--subjects", "4", "--size", "32", "--seed", "2", "--zte", "--misregister", "4",
                 "--unpaired")  # fmt: skip
    assert result.exit_code == 0, result.output
    for i, sub in enumerate(sorted(p for p in data.iterdir() if p.is_dir())):
        names = {p.name for p in sub.iterdir() if p.is_file()}
        assert ("zte.nii.gz" in names) == ("t1.nii.gz" in names), names
        if "zte.nii.gz" in names:
            ph = make_subject(seed=2, index=i, size=32, zte=True)
            assert np.array_equal(np.asarray(nib.load(sub / "zte.nii.gz").dataobj), ph.zte)


def test_cli_help_names_zte():
    result = cli("phantoms", "--help")
    assert result.exit_code == 0 and "--zte" in result.output and "ZTE" in result.output


def test_zte_to_ct_trains(tmp_path: Path):
    """The paired pipeline takes ``--src zte --dst ct`` on such a family (one tiny epoch)."""
    data, run = tmp_path / "data", tmp_path / "run"
    assert cli("phantoms", data, "--subjects", "4", "--size", "32", "--seed", "1", "--zte").exit_code == 0
    result = cli("train", "--data", data, "--src", "zte", "--dst", "ct", "--run-dir", run, "--epochs", "1",
                 "--depth", "3", "--filters", "4", "--disc-filters", "4", "--disc-layers", "2", "--image-size", "32",
                 "--batch-size", "4", "--no-progress", "--device", "cpu")  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["src"] == "zte" and config["data"]["src_intensity"] == "percentile"
