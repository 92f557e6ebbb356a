"""Inference of many-to-one models (``--src t1,zte``): the generator input equals training's, sources by name, the
refusals, outputs on the input's grid, and the CLI (subject folders, ``--input``, subsets, eval ``--sources``)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch
from torch import nn
from typer.testing import CliRunner

from helpers import assert_one_clear_line
from pix2gan.checkpoint import load_checkpoint
from pix2gan.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from pix2gan.data.phantom import write_dataset
from pix2gan.data.slices import PairedSlices, SliceCache
from pix2gan.data.sources import SourceLayout
from pix2gan.data.subjects import find_subjects
from pix2gan.errors import InputError
from pix2gan.infer.translate import Ensemble, Translator
from pix2gan.io import load_volume
from pix2gan_cli.app import app


@pytest.fixture(scope="session")
def ms_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 phantoms of 32 x 32 x 9 voxels with T1, ZTE, CT and mask (read only)."""
    root = tmp_path_factory.mktemp("multisource") / "data"
    write_dataset(root, n_subjects=5, size=32, seed=3, zte=True)
    return root


def _train(root: Path, run: Path, src: str, dropout: float) -> Path:
    from pix2gan.train import fit

    cfg = RunConfig(data=DataConfig(root=str(root), src=src, input_dropout=dropout),
                    model=ModelConfig(depth=3, base_filters=4, disc_filters=4, disc_layers=2),
                    train=TrainConfig(epochs=1, batch_size=4, image_size=32, device="cpu", panel_slices=1))  # fmt: skip
    fit(cfg, run, progress=False)
    return run


@pytest.fixture(scope="session")
def ms_runs(ms_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Runs of one epoch: ``drop`` (t1,zte with --input-dropout 0.5), ``full`` (t1,zte without), ``rev`` (zte,t1)."""
    base = tmp_path_factory.mktemp("msruns")
    return {"drop": _train(ms_data, base / "drop", "t1,zte", 0.5), "full": _train(ms_data, base / "full", "t1,zte", 0.0),
            "rev": _train(ms_data, base / "rev", "zte,t1", 0.0)}  # fmt: skip


def _translator(run: Path, **kw: object) -> Translator:
    return Translator.from_checkpoint(run / "checkpoints" / "best.pt", device="cpu", tta=False, **kw)


def _cli(*args: object, cwd: Path | None = None):
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(old)


class _Capture(nn.Module):
    """The generator, keeping every input it is given."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator, self.seen = generator, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.clone())
        return self.generator(x)


# --- the generator's input ------------------------------------------------------------------------------------------


def test_zero_filling_at_inference_equals_training(ms_data: Path, ms_runs: dict[str, Path], tmp_path: Path) -> None:
    """A 30 x 29 slice (padded to 32 x 32 by both) with zte missing: the streaming path's generator input equals the
    dataset's eval item (PairedSlices) assembled with zte absent, padded border included."""
    subject = tmp_path / "data" / "sub-001"
    subject.mkdir(parents=True)
    for name in ("t1", "zte", "ct", "mask"):
        img = nib.load(ms_data / "sub-001" / f"{name}.nii.gz")
        nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[1:31, 2:31], img.affine, img.header), subject / f"{name}.nii.gz")
    ckpt = load_checkpoint(ms_runs["drop"] / "checkpoints" / "best.pt")
    cfg, layout = ckpt.config, SourceLayout.of(ckpt.config)
    assert layout.optional and layout.names == ("t1", "zte") and layout.channels == 4
    cache = SliceCache(find_subjects(tmp_path / "data", ["t1", "zte", "ct"], ["mask"]), cfg.data, ckpt.src_map, ckpt.dst_map)
    data = PairedSlices(cache, image_size=32, train=False, layout=layout)
    i, (_, _, k) = next((i, p) for i, p in enumerate(data.pairs) if p[2] == 4)
    item = data[i]["src"]  # (4, 32, 32): both present
    expected = layout.assemble(item[None, : layout.stacks], torch.tensor([True, False]))[0]

    capture = _Capture(ckpt.generator("cpu"))
    tr = Translator(capture, cfg, ckpt.src_map, ckpt.dst_map, device="cpu", batch_size=64, tta=False)
    tr.translate_volume({"t1": load_volume(subject / "t1.nii.gz")})
    seen = torch.cat(capture.seen)[k]
    assert seen.shape == expected.shape == (4, 32, 32)
    assert float(seen[0, 0, 0]) == -1.0  # the border of the padded slice: background
    torch.testing.assert_close(seen[0], expected[0], rtol=0, atol=1e-6)  # t1 (training pads x + 1 with 0, then - 1)
    assert torch.equal(seen[1:], expected[1:])  # zte zero, availability 1 / 0 over the whole padded slice
    assert torch.equal(seen[1], torch.zeros(32, 32)) and torch.equal(seen[3], torch.zeros(32, 32))
    assert torch.equal(seen[2], torch.ones(32, 32))


def test_sources_by_name_and_direct_computation(ms_data: Path, ms_runs: dict[str, Path]) -> None:
    """Sources are matched by name, never position: {zte, t1} and {t1, zte} give the same volume, and a zte,t1
    model's output is its generator applied to [zte | t1], each normalised by its own percentiles."""
    t1, zte = (load_volume(ms_data / "sub-002" / f"{n}.nii.gz").data for n in ("t1", "zte"))
    drop = _translator(ms_runs["drop"])
    a = drop.translate_array({"t1": t1, "zte": zte})
    b = drop.translate_array({"zte": zte, "t1": t1})
    assert np.array_equal(a, b)
    rev = _translator(ms_runs["rev"])
    assert rev.layout.names == ("zte", "t1") and rev.layout.channels == 2
    got = rev.translate_array({"t1": t1, "zte": zte})
    maps = rev.src_maps
    x = np.stack([maps[n].forward(v, maps[n].scale_of(v)) for n, v in (("zte", zte), ("t1", t1))])  # (2, X, Y, Z)
    with torch.no_grad():
        pred = rev.generator(torch.from_numpy(np.moveaxis(x, 3, 0).copy()))[:, 0].numpy()  # axial slices, 32 x 32
    direct = np.moveaxis(rev.dst_map.inverse(pred), 0, 2)
    np.testing.assert_allclose(got, direct, rtol=0, atol=1e-3)


def test_ensemble_of_two_channel_orders(ms_data: Path, ms_runs: dict[str, Path]) -> None:
    """A t1,zte and a zte,t1 model form one ensemble: its mean is the mean of the two, each fed by name."""
    t1, zte = (load_volume(ms_data / "sub-002" / f"{n}.nii.gz").data for n in ("t1", "zte"))
    full, rev = _translator(ms_runs["full"]), _translator(ms_runs["rev"])
    given = {"zte": zte, "t1": t1}
    fused = Ensemble([full, rev]).translate_array(given).image
    one, two = full.translate_array(given), rev.translate_array(given)
    assert not np.allclose(one, two)  # two models, not one twice
    np.testing.assert_allclose(fused, (one + two) / 2, rtol=0, atol=1e-3)


# --- refusals -------------------------------------------------------------------------------------------------------


def test_refusals(ms_data: Path, ms_runs: dict[str, Path], tmp_path: Path) -> None:
    t1 = load_volume(ms_data / "sub-001" / "t1.nii.gz").data
    full, drop = _translator(ms_runs["full"]), _translator(ms_runs["drop"])
    with pytest.raises(InputError, match=r"needs zte too"):
        full.translate_array(t1)  # one array: the first source alone
    with pytest.raises(InputError, match=r"'t2' is not an input of this model; it takes t1, zte"):
        drop.translate_array({"t1": t1, "t2": t1})
    with pytest.raises(InputError, match="no input given"):
        drop.translate_array({})
    with pytest.raises(InputError, match=f"{ms_runs['full']}.*needs zte too"):  # the member that refuses is named
        Ensemble([drop, full]).translate_array({"t1": t1})
    with pytest.raises(InputError, match=r"t1only: translates t1 -> ct, but .* translates t1 \+ zte -> ct"):
        Ensemble([drop, Translator(drop.generator, RunConfig(), drop.src_map, drop.dst_map, name="t1only")])
    # sources on different grids: one line naming both files
    zte = tmp_path / "zte.nii.gz"
    img = nib.load(ms_data / "sub-001" / "zte.nii.gz")
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), img.affine @ np.diag([1.0, 1.0, 1.5, 1.0])), zte)
    with pytest.raises(InputError) as err:
        drop.translate_file(ms_data / "sub-001" / "t1.nii.gz", tmp_path / "out.nii.gz", inputs={"zte": zte})
    assert str(zte) in str(err.value) and "t1.nii.gz" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out.nii.gz").exists()


# --- outputs on the input's grid ------------------------------------------------------------------------------------


def test_outputs_on_the_primary_grid(ms_data: Path, ms_runs: dict[str, Path], tmp_path: Path) -> None:
    """NIfTI in: the primary's affine, shape and header fields bit for bit, the values the in-memory translation in
    HU; MetaImage in: origin, spacing and direction kept; the zte-only output lies on the zte's grid."""
    drop = _translator(ms_runs["drop"])
    t1p, ztep = ms_data / "sub-001" / "t1.nii.gz", ms_data / "sub-001" / "zte.nii.gz"
    out = drop.translate_file(t1p, tmp_path / "ct.nii.gz", inputs={"zte": ztep})
    src, res = nib.load(t1p), nib.load(out)
    assert res.shape == src.shape and np.array_equal(res.affine, src.affine)
    assert np.array_equal(res.header.get_sform(), src.header.get_sform())
    assert np.array_equal(res.header.get_qform(), src.header.get_qform())
    assert np.array_equal(res.header["pixdim"], src.header["pixdim"])
    expected = drop.translate_array({"t1": load_volume(t1p).data, "zte": load_volume(ztep).data}, affine=src.affine)
    assert np.array_equal(np.asarray(res.dataobj), expected)
    assert expected.min() >= -1024.5 and expected.max() <= 3000.5  # HU

    for name, path in (("t1", t1p), ("zte", ztep)):  # MetaImage sources: the output keeps the primary's geometry
        image = sitk.ReadImage(str(path))
        image.SetOrigin((3.5, -7.25, 11.0))
        sitk.WriteImage(image, str(tmp_path / f"{name}.mha"))
    mha = drop.translate_file(None, tmp_path / "zte_ct.mha", inputs={"zte": tmp_path / "zte.mha"})
    a, b = sitk.ReadImage(str(mha)), sitk.ReadImage(str(tmp_path / "zte.mha"))
    assert (a.GetSize(), a.GetOrigin(), a.GetSpacing(), a.GetDirection()) == (b.GetSize(), b.GetOrigin(), b.GetSpacing(), b.GetDirection())
    alone = drop.translate_array({"zte": load_volume(tmp_path / "zte.mha").data})
    assert np.array_equal(load_volume(mha).data, alone)


# --- the command line -----------------------------------------------------------------------------------------------


def test_cli_translate(ms_data: Path, ms_runs: dict[str, Path], tmp_path: Path) -> None:
    data = tmp_path / "data"
    for sid in ("sub-001", "sub-002"):
        shutil.copytree(ms_data / sid, data / sid)
    (data / "sub-002" / "zte.nii.gz").unlink()
    drop, full = ms_runs["drop"], ms_runs["full"]
    t1, zte = data / "sub-001" / "t1.nii.gz", data / "sub-001" / "zte.nii.gz"

    # a subject folder: each source by name
    r = _cli("translate", data / "sub-001", "--run", full, "--device", "cpu", "-o", tmp_path / "a.nii.gz")
    assert r.exit_code == 0 and "[t1 + zte]" in r.output and "(t1 + zte -> ct" in r.output, r.output
    expected = _translator(full).translate_volume({"t1": load_volume(t1), "zte": load_volume(zte)})
    assert np.array_equal(load_volume(tmp_path / "a.nii.gz").data, expected)
    # --input: the same translation
    r = _cli("translate", t1, "--input", f"zte={zte}", "--run", full, "--device", "cpu", "-o", tmp_path / "b.nii.gz")
    assert r.exit_code == 0, r.output
    assert np.array_equal(load_volume(tmp_path / "b.nii.gz").data, expected)
    # a model that needs zte, given t1 alone: how to give it
    assert_one_clear_line(_cli("translate", t1, "--run", full, "--device", "cpu", "-o", tmp_path / "c.nii.gz"),
                          "needs zte too")  # fmt: skip
    r = _cli("translate", t1, "--run", full, "--device", "cpu", "-o", tmp_path / "c.nii.gz")
    assert "--input zte=FILE" in r.output and not (tmp_path / "c.nii.gz").exists()
    # the dropout model: t1 alone, zte alone (output beside it)
    r = _cli("translate", t1, "--run", drop, "--device", "cpu", "-o", tmp_path / "d.nii.gz")
    assert r.exit_code == 0 and "t1 (zte missing) -> ct" in r.output, r.output
    assert np.array_equal(load_volume(tmp_path / "d.nii.gz").data, _translator(drop).translate_volume({"t1": load_volume(t1)}))
    r = _cli("translate", "--input", f"zte={zte}", "--run", drop, "--device", "cpu")
    assert r.exit_code == 0 and "zte (t1 missing) -> ct" in r.output, r.output
    assert (data / "sub-001" / "zte_ct.nii.gz").is_file()
    (data / "sub-001" / "zte_ct.nii.gz").unlink()
    # refusals, one line each
    for args, needle in ((["--input", "t2=x.nii.gz"], "has no source 't2'"), (["--input", "zte"], "expected NAME=PATH"),
                         (["--input", f"zte={tmp_path / 'none.nii.gz'}"], "file not found"),
                         (["--input", f"t1={t1}"], "given as"), ([t1, "--input", f"zte={zte}"], "at most one volume file")):  # fmt: skip
        assert_one_clear_line(_cli("translate", t1, *args, "--run", drop, "--device", "cpu", "-o", tmp_path / "e"), needle)
    # subject folders: the one lacking zte is skipped by the model that needs it, translated by the dropout model
    r = _cli("translate", data / "sub-001", data / "sub-002", "--run", full, "--device", "cpu", "-o", tmp_path / "f")
    assert r.exit_code == 2 and (tmp_path / "f" / "sub-001.nii.gz").is_file() and not (tmp_path / "f" / "sub-002.nii.gz").exists()
    assert "sub-002 [t1 (zte missing)]" in r.output and "needs zte too" in r.output, r.output
    r = _cli("translate", data / "sub-001", data / "sub-002", "--run", drop, "--device", "cpu", "-o", tmp_path / "g",
             "--nproc", "2")  # fmt: skip
    assert r.exit_code == 0 and "t1 + zte; t1 (zte missing) -> ct" in r.output, r.output
    one = _translator(drop).translate_volume({"t1": load_volume(data / "sub-002" / "t1.nii.gz")})
    assert np.array_equal(load_volume(tmp_path / "g" / "sub-002.nii.gz").data, one)


def test_cli_eval_sources(ms_runs: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "drop"
    shutil.copytree(ms_runs["drop"], run)
    r = _cli("eval", "--run", run, "--device", "cpu", "--metrics", "mae", "--no-baseline", "--json", tmp_path / "a.json")
    assert r.exit_code == 0, r.output
    full = json.loads((tmp_path / "a.json").read_text())
    assert full["sources"] == {"used": ["t1", "zte"], "missing": []} and "mae_bone" in full["mean"]
    r = _cli("eval", "--run", run, "--device", "cpu", "--metrics", "mae", "--no-baseline", "--sources", "zte",
             "--json", tmp_path / "b.json")  # fmt: skip
    assert r.exit_code == 0 and "zte (t1 missing)" in r.output, r.output
    only = json.loads((tmp_path / "b.json").read_text())
    assert only["sources"] == {"used": ["zte"], "missing": ["t1"]} and only["mean"]["mae"] != full["mean"]["mae"]
    assert list((run / "eval" / "test" / "sources-zte").glob("*_ct.nii.gz"))
    assert_one_clear_line(_cli("eval", "--run", ms_runs["full"], "--device", "cpu", "--sources", "t1"), "needs zte too")
    assert_one_clear_line(_cli("eval", "--run", run, "--device", "cpu", "--sources", "ct"), "'ct' is not an input")


def test_dicom_series_sources(ms_data: Path, ms_runs: dict[str, Path], tmp_path: Path) -> None:
    """Two MR series (t1, zte) of one oblique grid in: a derived CT series on the t1 series' grid, its values the
    in-memory translation rounded to integer HU."""
    from dicom_series import oblique_affine, write_series

    affine = oblique_affine()
    for name in ("t1", "zte"):
        write_series(tmp_path / name, load_volume(ms_data / "sub-001" / f"{name}.nii.gz").data, affine, modality="MR")
    drop = _translator(ms_runs["drop"])
    out = drop.translate_file(tmp_path / "t1", tmp_path / "ct", inputs={"zte": tmp_path / "zte"})
    back, t1 = load_volume(out), load_volume(tmp_path / "t1")
    assert back.format == "dicom" and back.shape == t1.shape
    np.testing.assert_allclose(back.affine, t1.affine, atol=1e-9)
    expected = drop.translate_volume({"t1": t1, "zte": load_volume(tmp_path / "zte")})
    np.testing.assert_array_equal(back.data, np.rint(expected))


def test_dial_of_a_multisource_run(ms_data: Path, tmp_path: Path) -> None:
    """The realism dial of a t1,zte --gan-warmup run, scored from zte alone: every realism translated from zte."""
    run = tmp_path / "run"
    r = _cli("train", "--data", ms_data, "--src", "t1,zte", "--dst", "ct", "--input-dropout", "0.5", "--gan-warmup",
             "0.5", "--no-tta", "--depth", "3", "--filters", "4", "--disc-filters", "4", "--disc-layers", "2",
             "--image-size", "32", "--batch-size", "4", "--epochs", "2", "--device", "cpu", "--threads", "1",
             "--no-progress", "--run-dir", run)  # fmt: skip
    assert r.exit_code == 0, r.output
    r = _cli("eval", "--run", run, "--no-baseline", "--device", "cpu", "--metrics", "mae", "--sources", "zte")
    assert r.exit_code == 0 and "zte (t1 missing)" in r.output, r.output
    assert not (run / "eval" / "dial.json").exists()  # the run's dial is that of all its sources
    dial = json.loads((run / "eval" / "test" / "sources-zte" / "dial.json").read_text())
    assert sorted(v["realism"] for v in dial["values"]) == [0.0, 0.5, 1.0]
    for v in dial["values"]:  # every realism translated from zte alone, into its own folder
        assert "sources-zte" in Path(v["predictions"]).parts, v["predictions"]
        assert list(Path(v["predictions"]).glob("*_ct.nii.gz")) and v["mean"]["mae"] > 0
