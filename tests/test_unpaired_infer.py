"""Inference of unpaired (CycleGAN) runs in either direction: exports of G_ab and G_ba (ONNX and pt2) carrying their
direction's modalities and intensity maps, test-time flips, planes, uncertainty and ensembles with ``--reverse``
against a direct computation on the input's exact grid in the right units, ``sample``'s cycle panels and the run
report."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from helpers import assert_one_clear_line
from pix2gan.checkpoint import load_checkpoint
from pix2gan.config import RunConfig
from pix2gan.data.slices import pad_to
from pix2gan.infer.exported import load_exported
from pix2gan.nets import padding_multiple
from pix2gan.runs import RunLayout
from pix2gan_cli.app import app

HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime", "onnxscript"))
TINY = dict(src="t1", dst="ct", filters=4, disc_filters=4, disc_layers=2, image_size=32, device="cpu", threads=1,
            val_fraction=0.5, test_fraction=0.0)  # fmt: skip
AXIAL, CORONAL, LR = 2, 1, 0  # the phantoms' array axes (their affine is diagonal, RAS)


def cli(*args: object):  # noqa: ANN201
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(unpaired_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two tiny CycleGAN runs: A on the axial and coronal planes (2 epochs of batches of 4), B on array axis 2 (1 epoch, another
    seed); one subject holding both held out for validation."""
    from pix2gan.train import fit

    root = tmp_path_factory.mktemp("runs")
    a = RunConfig.from_options("unpaired", data=str(unpaired_data), planes=["axial", "coronal"], epochs=2, batch_size=4,
                               **TINY)  # fmt: skip
    b = RunConfig.from_options("unpaired", data=str(unpaired_data), epochs=1, seed=1, **TINY)
    fit(a, root / "a", progress=False)
    fit(b, root / "b", progress=False)
    return root / "a", root / "b"


def _nets(run: Path, reverse: bool):  # noqa: ANN202
    """The direction's network and (input, output) maps, taken from the checkpoint's weights here."""
    ckpt = load_checkpoint(RunLayout(run).model_checkpoint())
    nets = ckpt.generator()
    return (nets.g_ba, ckpt.dst_map, ckpt.src_map) if reverse else (nets.g_ab, ckpt.src_map, ckpt.dst_map)


def _direct(run: Path, volume: np.ndarray, reverse: bool, axes: tuple[int, ...], tta: bool) -> list[np.ndarray]:
    """Every prediction of ``volume`` computed here: each plane's slices (padded with -1 to the multiple,
    symmetrically, and cropped back), and with ``tta`` the same of the left-right mirrored volume, mirrored back."""
    net, m_in, m_out = _nets(run, reverse)
    multiple = padding_multiple(load_checkpoint(RunLayout(run).model_checkpoint()).config)
    x = m_in.forward(volume, m_in.scale_of(volume))
    out = []
    for flip in (False, True) if tta else (False,):
        v = np.flip(x, LR) if flip else x
        for axis in axes:
            s = torch.from_numpy(np.ascontiguousarray(np.moveaxis(v, axis, 0)))[:, None]  # (N, 1, H, W)
            h, w = s.shape[-2:]
            padded, (left, _, top, _) = pad_to(s, -(-h // multiple) * multiple, -(-w // multiple) * multiple, -1.0)
            with torch.no_grad():
                y = net(padded)[:, 0, top : top + h, left : left + w].numpy()
            y = np.moveaxis(m_out.inverse(y), 0, axis)
            out.append(np.flip(y, LR) if flip else y)
    return out


def _same_grid(src: Path, out: Path) -> None:
    a, b = nib.load(src), nib.load(out)
    assert a.shape == b.shape and np.array_equal(a.affine, b.affine)
    for get in ("get_qform", "get_sform"):
        assert np.array_equal(getattr(a.header, get)(), getattr(b.header, get)())
    assert np.array_equal(a.header["pixdim"], b.header["pixdim"])


def _in_t1_units(run: Path, pred: np.ndarray) -> None:
    """A generated T1 lies in the training T1 volumes' reference range, far from HU (CT air is -1000)."""
    lo, hi = load_checkpoint(RunLayout(run).model_checkpoint()).src_map.reference
    assert 0 <= lo < hi and lo - 1e-3 <= pred.min() and pred.max() <= hi + 1e-3


# --- export ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def g_ba_pt2(runs) -> Path:
    """Run B's G_ba exported through the CLI as a .pt2, to its default place."""
    result = cli("export", "--run", runs[1], "--reverse", "--format", "pt2")
    assert result.exit_code == 0, result.output
    assert "ct -> t1 (G_ba of an unpaired run)" in result.output and "max |difference| 0 " in result.output
    return runs[1] / "export" / "model_reverse.pt2"


def test_reverse_export_translates_dst_to_src_exactly_like_the_checkpoint(runs, g_ba_pt2: Path, unpaired_data: Path,
                                                                          tmp_path: Path):
    run = runs[1]
    meta = load_exported(g_ba_pt2, device="cpu").metadata
    ckpt = load_checkpoint(RunLayout(run).model_checkpoint())
    assert (meta.config.data.src, meta.config.data.dst, meta.source["generator"]) == ("ct", "t1", "G_ba")
    assert (meta.src_map, meta.dst_map) == (ckpt.dst_map, ckpt.src_map)  # HU in, T1 out with its reference scale
    assert meta.dst_map.reference == ckpt.src_map.reference is not None
    scan = tmp_path / "sub-002" / "ct.nii.gz"  # (a CT-only subject)
    shutil.copytree(unpaired_data / "sub-002", scan.parent)
    result = cli("translate", scan, "--model", g_ba_pt2, "--device", "cpu")
    assert result.exit_code == 0, result.output
    out = scan.parent / "ct_t1.nii.gz"  # named by the output's modality
    _same_grid(scan, out)
    pred = np.asarray(nib.load(out).dataobj)
    result = cli("translate", scan, "--run", run, "--reverse", "--device", "cpu", "-o", tmp_path / "ckpt.nii.gz")
    assert result.exit_code == 0, result.output
    assert np.array_equal(pred, np.asarray(nib.load(tmp_path / "ckpt.nii.gz").dataobj))
    _in_t1_units(run, pred)
    expected = _direct(run, np.asarray(nib.load(scan).dataobj, dtype=np.float32), True, (AXIAL,), False)[0]
    np.testing.assert_allclose(pred, expected, rtol=1e-5, atol=1e-2)


@pytest.mark.skipif(not HAS_ONNX, reason="needs pix2gan[onnx]")
def test_default_export_of_an_unpaired_run_is_g_ab_and_refused_with_reverse(runs, unpaired_data: Path, tmp_path: Path):
    out = tmp_path / "g.onnx"
    result = cli("export", "--run", runs[1], "-o", out)
    assert result.exit_code == 0, result.output
    assert "t1 -> ct (G_ab of an unpaired run)" in result.output
    meta = load_exported(out, device="cpu").metadata
    ckpt = load_checkpoint(RunLayout(runs[1]).model_checkpoint())
    assert (meta.config.data.src, meta.config.data.dst, meta.source["generator"]) == ("t1", "ct", "G_ab")
    assert (meta.src_map, meta.dst_map) == (ckpt.src_map, ckpt.dst_map)
    scan = unpaired_data / "sub-001" / "t1.nii.gz"
    result = cli("translate", scan, "--model", out, "--device", "cpu", "-o", tmp_path / "ct.nii.gz")
    assert result.exit_code == 0, result.output
    expected = _direct(runs[1], np.asarray(nib.load(scan).dataobj, dtype=np.float32), False, (AXIAL,), False)[0]
    np.testing.assert_allclose(np.asarray(nib.load(tmp_path / "ct.nii.gz").dataobj), expected, rtol=1e-5, atol=1e-2)
    # an export holds one direction: --reverse takes only a G_ba export
    result = cli("translate", scan, "--model", out, "--reverse", "-o", tmp_path / "y.nii.gz")
    assert_one_clear_line(result, "--reverse: this exported model translates t1 -> ct")
    assert not (tmp_path / "y.nii.gz").exists()


def test_export_reverse_of_a_paired_run_is_one_line(tiny_run: Path, tmp_path: Path):
    result = cli("export", "--run", tiny_run, "--reverse", "-o", tmp_path / "m.pt2")
    assert_one_clear_line(result, "--reverse translates with G_ba of an unpaired")
    assert not list(tmp_path.iterdir())


# --- TTA, planes, uncertainty, ensembles ----------------------------------------------------------------------------


@pytest.mark.parametrize("reverse", [True, False])
def test_ensemble_of_planes_and_flips_with_uncertainty_matches_a_direct_computation(runs, unpaired_data: Path,
                                                                                    tmp_path: Path, reverse: bool):  # fmt: skip
    a, b = runs
    scan = unpaired_data / ("sub-005/ct.nii.gz" if reverse else "sub-005/t1.nii.gz")
    out = tmp_path / "pred.nii.gz"
    result = cli("translate", scan, "--run", a, "--run", b, "--tta", "--uncertainty", "--device", "cpu", "-o", out,
                 *(["--reverse"] if reverse else []))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert ("ct -> t1" if reverse else "t1 -> ct") in result.output
    std_file = tmp_path / "pred_std.nii.gz"
    _same_grid(scan, out)
    _same_grid(scan, std_file)
    volume = np.asarray(nib.load(scan).dataobj, dtype=np.float32)
    passes = _direct(a, volume, reverse, (AXIAL, CORONAL), True) + _direct(b, volume, reverse, (AXIAL,), True)
    assert len(passes) == 6  # A: 2 planes x 2 flips; B: 1 plane x 2 flips
    stack = np.stack(passes)
    pred, std = np.asarray(nib.load(out).dataobj), np.asarray(nib.load(std_file).dataobj)
    scale = float(np.ptp(stack))
    np.testing.assert_allclose(pred, stack.mean(0), rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(std, stack.std(0), rtol=0, atol=1e-4 * scale)
    assert std.max() > 1e-3 * scale  # (the passes differ: the fusion is not of six copies)
    if reverse:
        _in_t1_units(a, pred)
    else:
        assert -1024 - 1e-3 <= pred.min() and pred.max() <= 3000 + 1e-3 and np.ptp(pred) > 100  # HU, not [-1, 1]


def test_reverse_checkpoint_and_g_ba_export_make_one_ensemble(runs, g_ba_pt2: Path, unpaired_data: Path, tmp_path: Path):
    a, b = runs
    scan = unpaired_data / "sub-006" / "ct.nii.gz"
    out = tmp_path / "pred.nii.gz"
    result = cli("translate", scan, "--run", a, "--model", g_ba_pt2, "--reverse", "--no-tta", "--device", "cpu", "-o", out)
    assert result.exit_code == 0, result.output
    _same_grid(scan, out)
    volume = np.asarray(nib.load(scan).dataobj, dtype=np.float32)
    passes = _direct(a, volume, True, (AXIAL, CORONAL), False) + _direct(b, volume, True, (AXIAL,), False)
    np.testing.assert_allclose(np.asarray(nib.load(out).dataobj), np.mean(passes, 0), rtol=0, atol=1e-2)
    # without --reverse the run's member is G_ab (t1 -> ct): the G_ba export cannot join it
    result = cli("translate", scan, "--run", a, "--model", g_ba_pt2, "-o", tmp_path / "y.nii.gz")
    assert_one_clear_line(result, "translates ct -> t1, but")
    assert not (tmp_path / "y.nii.gz").exists()


# --- sample and report ----------------------------------------------------------------------------------------------


def test_sample_draws_a_to_b_to_a_and_b_to_a_to_b_of_a_held_out_subject(runs, unpaired_data: Path, tmp_path: Path):
    from pix2gan.data.planes import context_stack
    from pix2gan.infer.cycle_panel import CYCLE_TITLES
    from pix2gan.reporting.panels import compose_panel

    run = runs[1]
    result = cli("sample", "--run", run, "--device", "cpu")
    assert result.exit_code == 0, result.output
    png = run / "samples" / "cycle-seed0.png"
    assert png.is_file() and "cycle panels" in result.output
    (sid,) = json.loads((run / "split.json").read_text())["val"]
    ckpt = load_checkpoint(RunLayout(run).model_checkpoint())
    t1, ct, mask = (np.asarray(nib.load(unpaired_data / sid / f"{m}.nii.gz").dataobj, dtype=np.float32)
                    for m in ("t1", "ct", "mask"))
    filled = np.flatnonzero(mask.reshape(-1, mask.shape[2]).sum(0) > 0)
    ks = sorted({int(filled[int(round(q * (len(filled) - 1)))]) for q in (0.25, 0.5, 0.75)})
    g_ab, g_ba = ckpt.generator().g_ab, ckpt.generator().g_ba
    sa, sb = ckpt.src_map.scale_of(t1), ckpt.dst_map.scale_of(ct)
    a = torch.from_numpy(np.ascontiguousarray(np.moveaxis(ckpt.src_map.forward(t1, sa), 2, 0)))
    b = torch.from_numpy(np.ascontiguousarray(np.moveaxis(ckpt.dst_map.forward(ct, sb), 2, 0)))
    rows, labels = [], []
    with torch.no_grad():
        xa, xb = context_stack(a, ks, 0), b[ks][:, None]  # (3, 1, 32, 32)
        fake_b, fake_a = g_ab(xa), g_ba(xb)
        rec_a, rec_b = g_ba(fake_b), g_ab(fake_a)
    for i, k in enumerate(ks):
        for imgs, (m1, s1), (m2, s2), tag in (((xa, fake_b, rec_a), (ckpt.src_map, sa), (ckpt.dst_map, sb), "a>b>a"),
                                              ((xb, fake_a, rec_b), (ckpt.dst_map, sb), (ckpt.src_map, sa), "b>a>b")):
            x, y, z = (t[i, 0].numpy() for t in imgs)
            rows.append(dict(zip(CYCLE_TITLES, (m1.inverse(x, s1), m2.inverse(y, s2), m1.inverse(z, s1)), strict=True)))
            labels.append(f"{sid} {k}: {tag}")
    expected = np.asarray(compose_panel(rows, titles=CYCLE_TITLES, row_labels=labels).convert("RGB"), dtype=int)
    drawn = np.asarray(Image.open(png).convert("RGB"), dtype=int)
    assert drawn.shape == expected.shape and len(rows) == 6
    assert np.abs(drawn - expected).max() <= 1  # (one grey level: float rounding of another batch size)
    again = cli("sample", "--run", run, "--device", "cpu")
    assert_one_clear_line(again, "cycle-seed0.png")  # an existing PNG is kept


def test_report_shows_both_directions_cycle_losses_panels_and_eval(runs, tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(runs[0], run)
    assert cli("eval", "--run", run, "--split", "val", "--device", "cpu", "--metrics", "mae").exit_code == 0
    assert cli("sample", "--run", run, "--device", "cpu").exit_code == 0
    result = cli("report", run)
    assert result.exit_code == 0, result.output
    html = (run / "report.html").read_text()
    assert "unpaired (CycleGAN" in html and "t1 ↔ ct" in html
    assert "G_ab: t1 → ct" in html and "G_ba: ct → t1" in html and "best validation MAE of G_ab (HU)" in html
    assert "λ cycle 10.0" in html and "identity 0.5" in html and "history pool 50" in html
    assert "a → b → a and b → a → b after epoch 2" in html and "samples/cycle-seed0.png" in html
    assert "latent 64" not in html and "fixed latent" not in html  # (not described as a noise/class run)
    assert 'id="eval-' in html and "val" in html
    epochs = (run / "epochs.csv").read_text().splitlines()[0]
    assert "loss_g_cycle_a" in epochs and "loss_g_cycle_b" in epochs  # (the curves' CSV columns, in the table)
