"""Planes, 2.5-D context, test-time flips and ensembles at inference: the numbers each fusion must give, the input's
geometry kept bit for bit, and the command line from training with the new options to ``eval``."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from helpers import assert_one_clear_line, oblique_affine, write_nifti
from pix2gan.checkpoint import load_checkpoint
from pix2gan.config import PLANES, DataConfig, InferConfig, ModelConfig, RunConfig
from pix2gan.data.intensity import intensity_maps
from pix2gan.data.planes import context_stack, lr_axis, plane_axes
from pix2gan.data.slices import from_slices, to_slices
from pix2gan.errors import InputError
from pix2gan.infer.fusion import Accumulator, mirrored
from pix2gan.infer.translate import Ensemble, Translator, predict_slices, std_path
from pix2gan.io import GEOMETRY_FIELDS
from pix2gan.nets import build_generator, init_weights
from pix2gan.runs import RunLayout
from pix2gan_cli.app import app

# array axis 0 runs inferior, 1 left, 2 anterior: axial slices along axis 0, coronal along 2, sagittal along 1
ILA = np.array([[0.0, -1.2, 0.0, 10.0], [0.0, 0.0, 0.8, -5.0], [-2.5, 0.0, 0.0, 3.0], [0.0, 0.0, 0.0, 1.0]])


def make_cfg(*, planes: tuple[str, ...] = (), context: int = 0, tta: bool = False, fusion: str = "mean", axis: int = 2,
             **data: object) -> RunConfig:  # fmt: skip
    return RunConfig(data=DataConfig(planes=planes, context=context, slice_axis=axis, **data),
                     model=ModelConfig(depth=3, base_filters=4), infer=InferConfig(tta=tta, fusion=fusion))  # fmt: skip


def make_generator(cfg: RunConfig, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    generator = build_generator(cfg, init=False)
    init_weights(generator, gain=0.3)  # outputs spread over the HU range, not all near one value
    return generator


def make_translator(cfg: RunConfig, seed: int = 0, *, generator: torch.nn.Module | None = None, batch_size: int = 4,
                    **kwargs: object) -> Translator:  # fmt: skip
    generator = make_generator(cfg, seed) if generator is None else generator
    return Translator(generator, cfg, *intensity_maps(cfg.data), batch_size=batch_size, **kwargs)


def volume(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 800, shape).astype(np.float32)


def f64_mean(*arrays: np.ndarray) -> np.ndarray:
    return np.mean(np.stack(arrays).astype(np.float64), axis=0)


# --------------------------------------------------------------------------------------------------------------------
# the accumulator itself
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("fusion", ["mean", "median"])
def test_accumulator_puts_every_pass_back_in_place(order, fusion):
    """Passes along any axis of the volume or of its mirror image, slices in any order: numpy's mean, population
    std and median of the passes in the volume's own grid."""
    shape = (4, 5, 19)  # more than one 8-slice slab of the median
    rng = np.random.default_rng(0)
    truths = [rng.normal(0, 300, shape).astype(np.float32) for _ in range(5)]
    acc = Accumulator(shape, fusion=fusion, with_std=True, order=order)
    for truth, (axis, flip) in zip(truths, [(0, None), (1, 0), (2, 2), (2, None), (0, 1)], strict=True):
        write = acc.add_pass(axis, flip)
        view = np.moveaxis(mirrored(truth, flip), axis, 0)  # what the pass predicts, slice by slice
        for k in rng.permutation(view.shape[0]):
            write(int(k), view[k].copy())
    fused, std = acc.result()
    assert fused.shape == std.shape == shape and fused.dtype == std.dtype == np.float32
    assert fused.flags.f_contiguous if order == "F" else fused.flags.c_contiguous
    stack = np.stack(truths).astype(np.float64)
    if fusion == "median":
        np.testing.assert_array_equal(fused, np.median(np.stack(truths), axis=0))
    else:
        np.testing.assert_allclose(fused, stack.mean(0), atol=1e-3)
    np.testing.assert_allclose(std, stack.std(0), atol=1e-3)


def test_accumulator_of_one_pass_or_identical_passes_has_zero_std():
    acc = Accumulator((3, 4, 5), with_std=True)
    value = np.random.default_rng(1).normal(0, 500, (3, 4, 5)).astype(np.float32)
    for _ in range(3):
        write = acc.add_pass(1)
        for k in range(4):
            write(k, value[:, k])
    fused, std = acc.result()
    np.testing.assert_array_equal(fused, value)
    assert not std.any()
    plain = Accumulator((2, 2, 2))  # without with_std: no std volume kept, and none returned
    write = plain.add_pass(0)
    for k in range(2):
        write(k, value[k, :2, :2])
    fused, std = plain.result()
    assert plain.m2 is None and std is None
    np.testing.assert_array_equal(fused, value[:2, :2, :2])
    with pytest.raises(ValueError, match="no prediction"):
        Accumulator((2, 2, 2)).result()
    with pytest.raises(ValueError, match="fusion"):
        Accumulator((2, 2, 2), fusion="max")


# --------------------------------------------------------------------------------------------------------------------
# 2.5-D: translate never reads its own predictions
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("axis", "batch_size"), [(2, 3), (0, 3), (1, 1)])
def test_in_place_translation_with_context_equals_whole_volume_prediction(axis, batch_size):
    """A real 5-channel U-Net over its neighbours, written over the source in batches: the numbers of stacking
    every slice of the normalised volume first and predicting them all."""
    cfg = make_cfg(context=2, axis=axis)
    tr = make_translator(cfg, batch_size=batch_size)
    first_conv = next(m for m in tr.generator.modules() if isinstance(m, torch.nn.Conv2d))
    assert tr.context == 2 and first_conv.in_channels == 5
    vol = volume((11, 13, 7), seed=5)
    norm = torch.from_numpy(to_slices(tr.src_map.forward(vol, tr.src_map.scale_of(vol)), axis))  # (N, H, W)
    n = norm.shape[0]
    stacks = context_stack(norm, list(range(n)), 2)  # (N, 5, H, W)
    # streaming runs batch_size input slices per pass: batch_size // 5 stacks of 5
    pred = predict_slices(tr.generator, stacks, tr.multiple, batch_size=max(1, batch_size // 5))[:, 0].numpy()
    expected = from_slices(tr.dst_map.inverse(pred), axis)

    in_place = vol.copy()
    assert tr.translate_array(in_place, out=in_place) is in_place
    np.testing.assert_array_equal(in_place, expected)
    np.testing.assert_array_equal(tr.translate_array(vol), expected)  # into a new array: the same

    # the neighbours really matter: the centre slice alone as every channel gives other numbers
    alone = predict_slices(tr.generator, stacks[:, 2:3].expand_as(stacks).contiguous(), tr.multiple)[:, 0].numpy()
    assert np.abs(from_slices(tr.dst_map.inverse(alone), axis) - expected).max() > 1.0


# --------------------------------------------------------------------------------------------------------------------
# fusion keeps the input's geometry
# --------------------------------------------------------------------------------------------------------------------
def test_three_planes_with_tta_keep_the_geometry_of_an_oblique_odd_sized_scan(tmp_path):
    cfg = make_cfg(planes=PLANES, context=1, tta=True)
    tr = make_translator(cfg)
    raw = np.random.default_rng(0).integers(0, 400, (13, 11, 7)).astype(np.int16)
    affine = oblique_affine()  # rotated, 0.9 x 1.1 x 3 mm
    src = write_nifti(tmp_path / "scan.nii.gz", raw, affine, slope=2.5, inter=1.0, qform_code=1, sform_code=2)
    a = nib.load(src)
    assert len(tr.passes(a.affine)) == 6  # three planes, each also mirrored
    out = tr.translate_file(src, tmp_path / "scan_ct.nii.gz", uncertainty=True)
    assert std_path(out) == tmp_path / "scan_ct_std.nii.gz"
    images = [nib.load(out), nib.load(std_path(out))]
    for b in images:
        assert b.shape == a.shape == (13, 11, 7)
        assert b.get_data_dtype() == np.float32
        assert np.array_equal(a.affine, b.affine)
        for key in GEOMETRY_FIELDS:
            assert np.array_equal(a.header[key], b.header[key]), key
        assert (int(b.header["qform_code"]), int(b.header["sform_code"])) == (1, 2)
        assert np.array_equal(a.header.get_qform(), b.header.get_qform())
        assert np.array_equal(a.header.get_sform(), b.header.get_sform())
    fused, std = (b.get_fdata(dtype=np.float32) for b in images)
    assert fused.min() >= -1024 - 1e-3 and fused.max() <= 3000 + 1e-3 and fused.std() > 1.0
    assert std.min() >= 0 and std.max() > 1.0 and np.isfinite(std).all()
    expected = Ensemble([tr]).translate_array(a.get_fdata(dtype=np.float32), affine=a.affine, uncertainty=True)
    np.testing.assert_allclose(fused, expected.image, atol=1e-3)
    np.testing.assert_allclose(std, expected.std, atol=1e-3)
    # no uncertainty asked: no std file; int16 output is the rounded fused volume
    i16 = nib.load(tr.translate_file(src, tmp_path / "i16.nii.gz", dtype="int16"))
    assert not std_path(tmp_path / "i16.nii.gz").exists()
    assert i16.get_data_dtype() == np.int16 and np.array_equal(i16.affine, a.affine)
    np.testing.assert_array_equal(np.asarray(i16.dataobj), np.rint(expected.image).astype(np.int16))


# --------------------------------------------------------------------------------------------------------------------
# what each fusion equals
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("affine", [None, ILA], ids=["ras", "ila"])
def test_tta_is_the_mean_of_the_volume_and_its_mirror_image(affine):
    cfg = make_cfg(context=1, planes=("axial",))
    plain = make_translator(cfg)
    flipping = make_translator(cfg, generator=plain.generator, tta=True)
    vol = volume((9, 10, 7), seed=2)
    lr = lr_axis(np.eye(4) if affine is None else affine)
    assert lr == (0 if affine is None else 1)
    once = plain.translate_array(vol, affine=affine)
    mirror = np.flip(plain.translate_array(np.ascontiguousarray(np.flip(vol, lr)), affine=affine), lr)
    assert np.abs(once - mirror).max() > 1.0  # the mirrored pass is a different prediction
    result = Ensemble([flipping]).translate_array(vol, affine=affine, uncertainty=True)
    assert result.passes == 2
    np.testing.assert_allclose(result.image, f64_mean(once, mirror), atol=1e-3)
    np.testing.assert_allclose(result.std, np.abs(once.astype(np.float64) - mirror) / 2, atol=1e-3)
    np.testing.assert_array_equal(flipping.translate_array(vol, affine=affine), result.image)
    # the model's recommendation is the default, an explicit choice overrides it
    assert make_translator(make_cfg(tta=True), generator=plain.generator).tta
    assert not make_translator(make_cfg(tta=True), generator=plain.generator, tta=False).tta


def test_three_planes_fuse_to_the_mean_of_three_one_plane_models():
    """One generator used through a 3-plane config and three 1-plane ones; the planes come from the affine."""
    generator = make_generator(make_cfg(context=1))
    vol = volume((9, 10, 7), seed=3)
    one = []
    for plane in PLANES:
        single = make_translator(make_cfg(planes=(plane,), context=1), generator=generator)
        out = single.translate_array(vol, affine=ILA)
        (axis,) = plane_axes(ILA, (plane,))
        by_axis = make_translator(make_cfg(context=1, axis=axis), generator=generator).translate_array(vol)
        np.testing.assert_array_equal(out, by_axis)  # the plane is the array axis the affine says
        one.append(out)
    assert [plane_axes(ILA, (p,))[0] for p in PLANES] == [0, 2, 1]
    assert min(np.abs(one[i] - one[j]).max() for i, j in [(0, 1), (0, 2), (1, 2)]) > 1.0
    three = make_translator(make_cfg(planes=PLANES, context=1), generator=generator)
    result = Ensemble([three]).translate_array(vol, affine=ILA, uncertainty=True)
    assert result.passes == 3
    np.testing.assert_allclose(result.image, f64_mean(*one), atol=1e-3)
    np.testing.assert_allclose(result.std, np.std(np.stack(one).astype(np.float64), axis=0), atol=1e-3)


def test_an_ensemble_is_the_mean_of_its_members_and_its_std_their_spread():
    cfg = make_cfg(context=1)
    a, b = make_translator(cfg, seed=0, name="a.pt"), make_translator(cfg, seed=1, name="b.pt")
    vol = volume((9, 10, 7), seed=4)
    ya, yb = a.translate_array(vol), b.translate_array(vol)
    assert np.abs(ya - yb).max() > 1.0  # different random weights, different predictions
    both = Ensemble([a, b]).translate_array(vol, uncertainty=True)
    assert both.passes == 2
    np.testing.assert_allclose(both.image, f64_mean(ya, yb), atol=1e-3)
    np.testing.assert_allclose(both.std, np.std(np.stack([ya, yb]).astype(np.float64), axis=0), atol=1e-3)
    np.testing.assert_allclose(Ensemble([a, b]).translate_array(vol).image, both.image, atol=1e-3)
    # the same model twice: its own prediction, and no spread at all
    twice = Ensemble([a, a]).translate_array(vol, uncertainty=True)
    np.testing.assert_array_equal(twice.image, ya)
    assert twice.std.shape == vol.shape and not twice.std.any()
    # one model, one prediction: a zero uncertainty map when asked for
    alone = Ensemble([a]).translate_array(vol, uncertainty=True)
    assert alone.passes == 1 and not alone.std.any()
    np.testing.assert_array_equal(alone.image, ya)
    assert Ensemble([a]).translate_array(vol).std is None


@pytest.mark.parametrize("layout", ["C", "F"])
def test_median_of_three_members_is_numpys_median(layout):
    cfg = make_cfg(context=1, fusion="median")
    members = [make_translator(cfg, seed=s) for s in (0, 1, 2)]
    vol = volume((9, 10, 7), seed=6)
    vol = np.asfortranarray(vol) if layout == "F" else vol  # F: as nibabel reads volumes
    outputs = np.stack([m.translate_array(vol) for m in members])
    ensemble = Ensemble(members)
    assert ensemble.fusion == "median"  # the first member's recommendation
    result = ensemble.translate_array(vol, uncertainty=True)
    assert result.passes == 3
    np.testing.assert_array_equal(result.image, np.median(outputs, axis=0))
    np.testing.assert_allclose(result.std, np.std(outputs.astype(np.float64), axis=0), atol=1e-3)
    mean = Ensemble(members, fusion="mean").translate_array(vol).image
    np.testing.assert_allclose(mean, outputs.astype(np.float64).mean(0), atol=1e-3)
    assert np.abs(mean - result.image).max() > 1.0


@pytest.mark.parametrize(
    ("other", "needle"),
    [
        ({"src": "t2"}, "translates t2 -> ct"),
        ({"dst": "sct"}, "translates t1 -> sct"),
        ({"percentiles": (1.0, 99.0)}, "normalises t1 differently"),
        ({"hu_window": (-1000.0, 2000.0)}, "normalises ct differently"),
        ({"dst_intensity": "percentile"}, "normalises ct differently"),
    ],
)
def test_members_that_disagree_are_refused_naming_the_checkpoint(other, needle):
    first = make_translator(make_cfg(), name="runs/a/checkpoints/best.pt")
    odd = make_translator(make_cfg(**other), name="runs/b/checkpoints/best.pt")
    with pytest.raises(InputError, match="ensemble members must agree") as info:
        Ensemble([first, odd])
    assert str(info.value).startswith("runs/b/checkpoints/best.pt: ") and needle in str(info.value)
    assert "runs/a/checkpoints/best.pt" in str(info.value)
    # planes, context and tta may differ between members
    Ensemble([first, make_translator(make_cfg(planes=PLANES, context=2, tta=True), name="c.pt")])


@pytest.mark.parametrize(("one", "other"), [({"dst": "t2"}, {"dst": "t2", "hu_window": (-1000.0, 2000.0)}),
                                            ({"src": "cbct"}, {"src": "cbct", "percentiles": (1.0, 99.0)})])  # fmt: skip
def test_members_differing_only_in_a_setting_their_maps_do_not_use_are_accepted(one, other):
    """t1 -> t2 uses no HU window and cbct -> ct no percentiles: those settings cannot make members disagree."""
    a, b = make_translator(make_cfg(**one), seed=0, name="a.pt"), make_translator(make_cfg(**other), seed=1, name="b.pt")
    for member in (a, b):  # a percentile target is mapped back with the training volumes' median scale
        member.dst_map = dataclasses.replace(member.dst_map, reference=(0.0, 1000.0))
    vol = volume((9, 10, 7), seed=7)
    ya, yb = a.translate_array(vol), b.translate_array(vol)
    np.testing.assert_allclose(Ensemble([a, b]).translate_array(vol).image, f64_mean(ya, yb), atol=1e-3)


# --------------------------------------------------------------------------------------------------------------------
# the command line, end to end
# --------------------------------------------------------------------------------------------------------------------
TINY = ["--depth", "3", "--filters", "4", "--disc-filters", "4", "--disc-layers", "2", "--image-size", "32",
        "--batch-size", "8", "--no-progress", "--device", "cpu"]  # fmt: skip


def cli(*args: str | os.PathLike):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False, env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def fused_run(tiny_data, tmp_path_factory) -> Path:
    """One epoch with every new training option: two planes, 3-slice context, TTA recommended, mask-weighted L1,
    SSIM, no discriminator."""
    run = tmp_path_factory.mktemp("fused") / "run"
    result = cli("train", "--data", tiny_data, "--run-dir", run, "--epochs", "1", *TINY, "--planes", "axial,coronal",
                 "--context", "1", "--tta", "--mask-weight", "0.95", "--lambda-ssim", "1", "--gan-loss", "none")  # fmt: skip
    assert result.exit_code == 0, result.output
    return run


def test_cli_trains_translates_ensembles_and_evaluates_with_the_new_options(fused_run, tiny_data, tmp_path):
    ckpt = load_checkpoint(RunLayout(fused_run).best)
    cfg = ckpt.config
    assert cfg.data.planes == ("axial", "coronal") and cfg.data.context == 1
    assert cfg.infer.tta is True and cfg.infer.fusion == "mean"
    assert cfg.train.mask_weight == 0.95 and cfg.train.lambda_ssim == 1.0 and cfg.train.gan_loss == "none"
    assert json.loads((fused_run / "config.json").read_text())["data"]["planes"] == ["axial", "coronal"]
    header = (fused_run / "log.csv").read_text().splitlines()[0].split(",")
    assert "loss_g_ssim" in header and "loss_g_gan" not in header

    # translate with no flags: the model's planes, context and TTA (4 predictions, fused)
    scan = tmp_path / "scan.nii.gz"
    shutil.copy(tiny_data / "sub-001" / "t1.nii.gz", scan)
    result = cli("translate", scan, "--run", fused_run, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "axial+coronal, 3-slice context, flip TTA, mean fusion" in " ".join(result.output.split())
    out = tmp_path / "scan_ct.nii.gz"
    src, pred = nib.load(scan), nib.load(out)
    assert pred.shape == src.shape and np.array_equal(pred.affine, src.affine)
    assert not std_path(out).exists()
    translator = Translator.from_checkpoint(ckpt, device="cpu")
    assert translator.tta and len(translator.passes(src.affine)) == 4
    expected = translator.translate_array(src.get_fdata(dtype=np.float32), affine=src.affine)
    np.testing.assert_allclose(pred.get_fdata(dtype=np.float32), expected, atol=1e-3)

    # --uncertainty writes <output>_std.nii.gz; an existing one is refused without --overwrite
    unc = tmp_path / "u.nii.gz"
    result = cli("translate", scan, "--run", fused_run, "--device", "cpu", "-o", unc, "--uncertainty")
    assert result.exit_code == 0, result.output
    std = nib.load(tmp_path / "u_std.nii.gz")
    assert std.shape == src.shape and np.array_equal(std.affine, src.affine) and std.get_data_dtype() == np.float32
    std_values = std.get_fdata(dtype=np.float32)
    assert std_values.min() >= 0 and std_values.max() > 0
    np.testing.assert_allclose(nib.load(unc).get_fdata(dtype=np.float32), expected, atol=1e-3)
    unc.unlink()  # only the std file is left in the way
    before = (tmp_path / "u_std.nii.gz").read_bytes()
    again = cli("translate", scan, "--run", fused_run, "--device", "cpu", "-o", unc, "--uncertainty")
    assert_one_clear_line(again, "u_std.nii.gz")
    assert "already exists" in again.output and not unc.exists()
    assert (tmp_path / "u_std.nii.gz").read_bytes() == before
    result = cli("translate", scan, "--run", fused_run, "--device", "cpu", "-o", unc, "--uncertainty", "--overwrite")
    assert result.exit_code == 0, result.output

    # --no-tta and --fusion median override the model's recommendation
    result = cli("translate", scan, "--run", fused_run, "--device", "cpu", "-o", tmp_path / "n.nii.gz", "--no-tta")
    assert result.exit_code == 0 and "flip TTA" not in result.output, result.output
    no_tta = Translator.from_checkpoint(ckpt, device="cpu", tta=False)
    np.testing.assert_allclose(nib.load(tmp_path / "n.nii.gz").get_fdata(dtype=np.float32),
                               no_tta.translate_array(src.get_fdata(dtype=np.float32), affine=src.affine), atol=1e-3)  # fmt: skip
    bad = cli("translate", scan, "--run", fused_run, "--device", "cpu", "-o", tmp_path / "m.nii.gz", "--fusion", "max")
    assert_one_clear_line(bad, "fusion")

    # --run R --run R: an ensemble of the model with itself -- its own prediction, and zero spread
    ens = tmp_path / "e.nii.gz"
    result = cli("translate", scan, "--run", fused_run, "--run", fused_run, "--device", "cpu", "-o", ens, "--uncertainty")
    assert result.exit_code == 0, result.output
    assert "2 models" in result.output
    np.testing.assert_allclose(nib.load(ens).get_fdata(dtype=np.float32), expected, atol=1e-3)
    np.testing.assert_allclose(nib.load(tmp_path / "e_std.nii.gz").get_fdata(dtype=np.float32), std_values, atol=1e-3)
    # the same through --checkpoint, repeated
    result = cli("translate", scan, "--checkpoint", RunLayout(fused_run).best, "--checkpoint", RunLayout(fused_run).best,
                 "--device", "cpu", "-o", tmp_path / "c.nii.gz")  # fmt: skip
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(nib.load(tmp_path / "c.nii.gz").get_fdata(dtype=np.float32), expected, atol=1e-3)

    # eval: the model used as translate uses it; tissue MAEs and the uncertainty ranking reported
    report_path = tmp_path / "e.json"
    result = cli("eval", "--run", fused_run, "--device", "cpu", "--out", tmp_path / "eval", "--json", report_path)
    assert result.exit_code == 0, result.output
    text = result.output
    for name in ("MAE (HU)", "MAE air (HU)", "MAE soft (HU)", "MAE bone (HU)", "PSNR (dB)", "SSIM", "std~|err| ρ"):
        assert name in text, name
    report = json.loads(report_path.read_text())
    (sid, row), *_ = report["per_subject"].items()
    assert list(row) == ["mae", "mae_air", "mae_soft", "mae_bone", "psnr", "ssim", "nps_ratio", "nps_lsd", "sharpness",
                         "sharpness_bone", "hu_w1", "std_error_spearman", "std_mean"]  # fmt: skip
    assert row["std_mean"] > 0 and -1.0 <= row["std_error_spearman"] <= 1.0
    assert (tmp_path / "eval" / f"{sid}_ct.nii.gz").is_file() and (tmp_path / "eval" / f"{sid}_ct_std.nii.gz").is_file()
    # --no-tta --no-uncertainty: one prediction per plane, still fused, no std column
    result = cli("eval", "--run", fused_run, "--device", "cpu", "--out", tmp_path / "eval2", "--no-tta",
                 "--no-uncertainty", "--no-baseline")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "std~|err| ρ" not in result.output and "MAE air (HU)" in result.output


def test_tta_skips_the_mirror_of_sagittal_slices_without_context():
    """Mirroring left-right only reorders sagittal slices: without context that pass would repeat the plain one."""
    from pix2gan.config import DataConfig, InferConfig, ModelConfig, RunConfig
    from pix2gan.data.intensity import intensity_maps
    from pix2gan.infer.translate import Translator
    from pix2gan.nets import build_generator

    def passes(context):
        cfg = RunConfig(data=DataConfig(planes=("axial", "sagittal"), context=context), model=ModelConfig(depth=3, base_filters=4),
                        infer=InferConfig(tta=True))
        return Translator(build_generator(cfg), cfg, *intensity_maps(cfg.data)).passes()

    assert passes(0) == [(2, None), (2, 0), (0, None)]
    assert passes(1) == [(2, None), (2, 0), (0, None), (0, 0)]
