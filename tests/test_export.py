"""Exported generators (ONNX, .pt2): equal to PyTorch, carrying what translate needs, translating through the same
streaming path as their checkpoint (values within docs/deployment.md's bounds: 2e-4 HU for ONNX, exact for pt2;
geometry the input's bit for bit), alone and mixed with checkpoints in an ensemble, the documentation's standalone
onnxruntime script run as written, bad files refused in one line, and ``pix2gan export`` end to end."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from conftest import tiny_config
from helpers import oblique_affine, write_nifti
from pix2gan.checkpoint import LoadedCheckpoint, load_checkpoint, save_checkpoint
from pix2gan.config import DataConfig, InferConfig, ModelConfig, RunConfig
from pix2gan.data.intensity import intensity_maps
from pix2gan.errors import InputError
from pix2gan.infer.export import capture_generator, export_onnx, export_pt2
from pix2gan.infer.exported import load_exported
from pix2gan.infer.translate import Ensemble, Translator, load_ensemble
from pix2gan.io import GEOMETRY_FIELDS
from pix2gan.nets import build_generator, padding_multiple
from pix2gan.runs import RunLayout
from pix2gan_cli.app import app

HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime", "onnxscript"))
needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason="needs pip install 'pix2gan[onnx]'")
# docs/deployment.md: "the result equals the checkpoint's within 2e-4 HU (ONNX; float rounding in another runtime)
# and exactly (pt2)"; its standalone onnxruntime script "reproduces pix2gan translate (within 1e-3 HU)"
BOUND_HU = {"onnx": 2e-4, "pt2": 0.0}
SCRIPT_BOUND_HU = 1e-3
DEPLOYMENT_MD = Path(__file__).resolve().parents[1] / "docs" / "deployment.md"
KEYS = {"format", "format_version", "version", "config", "intensity", "padding_multiple", "input", "output", "source",
        "exporter"}  # fmt: skip


def synthetic_checkpoint(tmp_path: Path, generator: str, context: int) -> LoadedCheckpoint:
    """An untrained paired checkpoint whose batch-norm running statistics differ from a batch's (so that a training
    mode export would not match), with a percentile target and its reference scale when ``context``."""
    data = DataConfig(src="ct", dst="t1", context=context) if context else DataConfig(context=context)
    cfg = RunConfig(data=data, model=ModelConfig(generator=generator, depth=3, base_filters=4))
    torch.manual_seed(0)
    net = build_generator(cfg)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    src_map, dst_map = intensity_maps(cfg.data)
    if context:
        dst_map = dataclasses.replace(dst_map, reference=(12.5, 880.25))
    return LoadedCheckpoint(tmp_path / "g.pt", cfg, src_map, dst_map, {"generator": net.state_dict(), "epoch": 3}, {})


def sizes(ckpt: LoadedCheckpoint) -> list[tuple[int, ...]]:
    """Two inputs unlike the export's own check: another batch size and in-plane size each (one block high for the
    U-Net; ResNet generators need two)."""
    m, c = padding_multiple(ckpt.config), ckpt.config.generator_model.in_channels
    low = m if ckpt.config.model.generator == "unet" else 2 * m
    return [(1, c, low, 5 * m), (4, c, 3 * m, 2 * m)]


def torch_outputs(ckpt: LoadedCheckpoint, x: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return ckpt.generator()(x).numpy()


@needs_onnx
@pytest.mark.parametrize("generator, context", [("unet", 0), ("unet", 2), ("resnet9", 0), ("resnet6", 2)])
def test_onnx_export_equals_pytorch(tmp_path, generator, context):
    import onnx
    import onnxruntime as ort

    ckpt = synthetic_checkpoint(tmp_path, generator, context)
    result = export_onnx(ckpt, tmp_path / "g.onnx")
    assert result.path.is_file() and result.size == result.path.stat().st_size and result.max_diff <= 1e-4
    model = onnx.load(result.path)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 18
    m, c = padding_multiple(ckpt.config), 2 * context + 1
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in (*model.graph.input, *model.graph.output)]
    assert dims == [["batch", c, f"{m}*height_blocks", f"{m}*width_blocks"], ["batch", 1, f"{m}*height_blocks", f"{m}*width_blocks"]]
    props = {p.key: p.value for p in model.metadata_props}
    assert {k.removeprefix("pix2gan.") for k in props} == KEYS
    assert json.loads(props["pix2gan.config"]) == ckpt.config.to_dict()
    assert json.loads(props["pix2gan.intensity"]) == {"src": ckpt.src_map.to_dict(), "dst": ckpt.dst_map.to_dict()}
    assert props["pix2gan.padding_multiple"] == str(m)
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(1)
    for shape in sizes(ckpt):
        x = torch.rand(shape, generator=gen) * 2 - 1
        out = session.run(["output"], {"input": x.numpy()})[0]
        np.testing.assert_allclose(out, torch_outputs(ckpt, x), rtol=0, atol=1e-4)
    loaded = load_exported(result.path, device="cpu").metadata
    assert (loaded.config, loaded.src_map, loaded.dst_map, loaded.multiple) == (ckpt.config, ckpt.src_map, ckpt.dst_map, m)


@pytest.mark.parametrize("generator, context", [("unet", 2), ("resnet6", 0)])
def test_pt2_export_equals_pytorch(tmp_path, generator, context):
    ckpt = synthetic_checkpoint(tmp_path, generator, context)
    result = export_pt2(ckpt, tmp_path / "g.pt2")
    assert result.format == "pt2" and result.max_diff <= 1e-4
    model = load_exported(result.path, device="cpu")
    assert (model.metadata.config, model.metadata.dst_map) == (ckpt.config, ckpt.dst_map)
    gen = torch.Generator().manual_seed(1)
    for shape in sizes(ckpt):
        x = torch.rand(shape, generator=gen) * 2 - 1
        with torch.inference_mode():
            out = model.generator(x).numpy()
        np.testing.assert_allclose(out, torch_outputs(ckpt, x), rtol=0, atol=1e-4)


def test_a_generator_in_training_mode_is_not_captured():
    """Batch statistics (and dropout, in instance-norm ResNets) are found in the captured graph itself."""
    net = build_generator(RunConfig(model=ModelConfig(depth=3, base_filters=2))).train()
    with pytest.raises(RuntimeError, match=r"would still train \(batch_norm\)"):
        capture_generator(net, 8, 1, decompose=False)
    cfg = RunConfig(model=ModelConfig(generator="resnet6", base_filters=2, norm="instance", dropout=True))
    with pytest.raises(RuntimeError, match=r"would still train \(dropout\)"):
        capture_generator(build_generator(cfg).train(), 4, 1, decompose=False)


# ------------------------------------------------------------------------------------------------------------------
# translating through an exported model
# ------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_exports(tiny_run, tmp_path_factory) -> dict[str, Path]:
    """The tiny U-Net run exported to .pt2 (and .onnx when onnx is installed)."""
    folder = tmp_path_factory.mktemp("exports")
    ckpt = load_checkpoint(RunLayout(tiny_run).best)
    out = {"pt2": export_pt2(ckpt, folder / "tiny.pt2").path}
    if HAS_ONNX:
        out["onnx"] = export_onnx(ckpt, folder / "tiny.onnx").path
    return out


@pytest.fixture(scope="module")
def planes_run(tiny_data, tmp_path_factory) -> Path:
    """A ResNet run trained with dropout, 2.5-D context, two planes and flip TTA recommended."""
    from pix2gan.train import fit

    cfg = tiny_config(tiny_data, epochs=1)
    cfg.model = dataclasses.replace(cfg.model, generator="resnet6", dropout=True)
    cfg.data = dataclasses.replace(cfg.data, context=2, planes=("axial", "coronal"))
    cfg.infer = InferConfig(tta=True)
    run = tmp_path_factory.mktemp("runs") / "planes"
    fit(cfg, run, progress=False)
    return run


def oblique_scan(folder: Path) -> Path:
    """An odd-sized int16 volume with an oblique affine, a scale slope and distinct q/s-form codes."""
    raw = np.random.default_rng(0).integers(0, 400, (37, 29, 7)).astype(np.int16)
    return write_nifti(folder / "scan.nii.gz", raw, oblique_affine(), slope=2.5, inter=1.0, qform_code=1, sform_code=2)


def assert_on_the_grid_of(src: Path, out: Path) -> None:
    """``out`` is float32 on ``src``'s grid: its shape, affine and every geometry field of the header, bit for bit."""
    a, b = nib.load(src), nib.load(out)
    assert a.shape == b.shape and b.get_data_dtype() == np.float32
    assert np.array_equal(a.affine, b.affine)
    for key in GEOMETRY_FIELDS:
        assert np.array_equal(a.header[key], b.header[key]), key


def assert_same_translation(reference: Path, result: Path, src: Path, bound: float) -> float:
    """Both outputs on the grid of the input ``src``, and their values within ``bound`` (HU or the target's units);
    returns the largest difference."""
    assert_on_the_grid_of(src, reference)
    assert_on_the_grid_of(src, result)
    diff = float(np.abs(nib.load(reference).get_fdata() - nib.load(result).get_fdata()).max())
    assert diff <= bound, diff
    return diff


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_translating_with_an_export_equals_the_checkpoint(tiny_run, tiny_exports, tmp_path, fmt):
    if fmt not in tiny_exports:
        pytest.skip("needs pip install 'pix2gan[onnx]'")
    src = oblique_scan(tmp_path)
    reference = load_ensemble([tiny_run], [], device="cpu").translate_file(src, tmp_path / "ckpt.nii.gz")
    ensemble = load_ensemble([], [], models=[tiny_exports[fmt]], device="cpu", batch_size=5)
    assert [m.name for m in ensemble.members] == [str(tiny_exports[fmt])] and ensemble.members[0].dtype is None
    assert_same_translation(reference, ensemble.translate_file(src, tmp_path / f"{fmt}.nii.gz"), src, BOUND_HU[fmt])


@needs_onnx
def test_a_25d_two_plane_export_with_tta_translates_like_its_checkpoint(planes_run, tmp_path):
    ckpt = load_checkpoint(RunLayout(planes_run).best)
    assert any(isinstance(m, nn.Dropout) for m in ckpt.generator().modules())  # trained with dropout
    path = export_onnx(ckpt, tmp_path / "planes.onnx").path
    src = oblique_scan(tmp_path)
    reference = load_ensemble([planes_run], [], device="cpu").translate_file(src, tmp_path / "ckpt.nii.gz", uncertainty=True)
    ensemble = load_ensemble([], [], models=[path], device="cpu")
    assert len(ensemble.passes(nib.load(src).affine)) == 4  # two planes, each also mirrored
    out = ensemble.translate_file(src, tmp_path / "onnx.nii.gz", uncertainty=True)
    assert_same_translation(reference, out, src, BOUND_HU["onnx"])
    assert_same_translation(tmp_path / "ckpt_std.nii.gz", tmp_path / "onnx_std.nii.gz", src, BOUND_HU["onnx"])
    # eval mode: dropout off, so the same input gives the same output twice
    generator = ensemble.members[0].generator
    x = torch.rand(2, 5, 16, 12) * 2 - 1
    first, second = generator(x), generator(x)
    assert torch.equal(first, second)
    np.testing.assert_allclose(first.numpy(), torch_outputs(ckpt, x), rtol=0, atol=1e-4)


@pytest.fixture(scope="module")
def other_checkpoint(tiny_run, tmp_path_factory) -> Path:
    """``tiny_run``'s best checkpoint with every convolution weight scaled by a random factor near 1: a second model
    of the same modalities and settings that predicts other values."""
    raw = torch.load(RunLayout(tiny_run).best, weights_only=True)
    gen = torch.Generator().manual_seed(5)
    raw["generator"] = {k: v * (1 + 0.3 * torch.randn(v.shape, generator=gen)) if v.ndim == 4 else v
                        for k, v in raw["generator"].items()}  # fmt: skip
    path = tmp_path_factory.mktemp("other") / "other.pt"
    save_checkpoint(path, raw)
    return path


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_an_ensemble_mixes_checkpoints_and_exports(tiny_run, other_checkpoint, tmp_path, fmt):
    """A checkpoint and another model's export, fused: the same volume and spread as the two checkpoints fused."""
    if fmt == "onnx" and not HAS_ONNX:
        pytest.skip("needs pip install 'pix2gan[onnx]'")
    export = export_onnx if fmt == "onnx" else export_pt2
    other = export(load_checkpoint(other_checkpoint), tmp_path / f"other.{fmt}").path
    mixed = load_ensemble([tiny_run], [], models=[other], device="cpu")
    assert len(mixed.members) == 2 and mixed.describe().startswith("2 models")
    src = oblique_scan(tmp_path)
    reference = load_ensemble([tiny_run], [other_checkpoint], device="cpu")
    reference.translate_file(src, tmp_path / "ckpts.nii.gz", uncertainty=True)
    mixed.translate_file(src, tmp_path / "mixed.nii.gz", uncertainty=True)
    assert_same_translation(tmp_path / "ckpts.nii.gz", tmp_path / "mixed.nii.gz", src, BOUND_HU[fmt])
    assert_same_translation(tmp_path / "ckpts_std.nii.gz", tmp_path / "mixed_std.nii.gz", src, BOUND_HU[fmt])
    # both members count: the two models disagree by many HU, so neither alone gives the fused volume
    assert float(np.median(nib.load(tmp_path / "mixed_std.nii.gz").get_fdata())) > 1.0
    load_ensemble([tiny_run], [], device="cpu").translate_file(src, tmp_path / "one.nii.gz")
    one = nib.load(tmp_path / "one.nii.gz").get_fdata()
    assert np.abs(one - nib.load(tmp_path / "mixed.nii.gz").get_fdata()).max() > 1.0


# ------------------------------------------------------------------------------------------------------------------
# docs/deployment.md's script: onnxruntime, numpy and nibabel alone
# ------------------------------------------------------------------------------------------------------------------
def documented_script() -> str:
    """The python block of docs/deployment.md's "Running the ONNX model without pix2gan", as it stands there."""
    section = DEPLOYMENT_MD.read_text().split("## Running the ONNX model without pix2gan\n", 1)[1].split("\n## ", 1)[0]
    blocks = section.split("```python\n")
    assert len(blocks) == 2, "expected one python block in the section"
    return blocks[1].split("```", 1)[0]


@needs_onnx
@pytest.mark.parametrize("case", ["run t1 -> ct", "ct -> t1, 2.5-D"])
def test_the_documented_onnxruntime_script_reproduces_translate(tiny_run, tiny_exports, tiny_data, tmp_path, case):
    """The script, run as the documentation prints it in a process where torch and pix2gan cannot be imported, on an
    exported model and a phantom: within its stated 1e-3 HU of ``translate``. Two models: the trained tiny run (MR
    percentiles in, HU window out, one slice) and a 2.5-D CT -> T1 model (HU window in, reference scale out)."""
    subject = json.loads((tiny_run / "split.json").read_text())["test"][0]
    if case == "run t1 -> ct":
        shutil.copyfile(tiny_exports["onnx"], tmp_path / "model.onnx")
        translator = Translator.from_checkpoint(RunLayout(tiny_run).best, device="cpu")
        shutil.copyfile(tiny_data / subject / "t1.nii.gz", tmp_path / "scan.nii.gz")
    else:
        ckpt = synthetic_checkpoint(tmp_path, "unet", context=2)
        export_onnx(ckpt, tmp_path / "model.onnx")
        translator = Translator.from_checkpoint(ckpt, device="cpu")
        shutil.copyfile(tiny_data / subject / "ct.nii.gz", tmp_path / "scan.nii.gz")
    assert not translator.tta and len(translator.passes()) == 1  # what the script covers
    (tmp_path / "script.py").write_text(documented_script())
    no_torch = ("import runpy, sys\nfor m in ('torch', 'pix2gan'): sys.modules[m] = None\n"
                "runpy.run_path('script.py', run_name='__main__')")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", no_torch], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    reference = Ensemble([translator]).translate_file(tmp_path / "scan.nii.gz", tmp_path / "reference.nii.gz")
    src = tmp_path / "scan.nii.gz"
    assert_same_translation(reference, tmp_path / "scan_ct.nii.gz", src, SCRIPT_BOUND_HU)


# ------------------------------------------------------------------------------------------------------------------
# bad files
# ------------------------------------------------------------------------------------------------------------------
def one_line_error(path: Path, match: str) -> str:
    with pytest.raises(InputError, match=match) as info:
        load_ensemble([], [], models=[path], device="cpu")
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


def test_bad_pt2_files_are_refused_in_one_line(tmp_path, tiny_run):
    junk = tmp_path / "junk.pt2"
    junk.write_bytes(b"not a zip archive at all")
    one_line_error(junk, "not a readable .pt2 archive")
    bare = tmp_path / "bare.pt2"  # a torch.export program without pix2gan metadata
    torch.export.save(torch.export.export(nn.Conv2d(1, 1, 3), (torch.zeros(1, 1, 8, 8),)), bare)
    one_line_error(bare, "not a pix2gan export")
    one_line_error(RunLayout(tiny_run).best, r"not an exported model \(.onnx or .pt2\)")
    one_line_error(tmp_path / "missing.pt2", "not found")


@needs_onnx
def test_bad_onnx_files_are_refused_in_one_line(tmp_path, tiny_exports):
    import onnx
    from onnx import TensorProto, helper

    junk = tmp_path / "junk.onnx"
    junk.write_text("hello")
    one_line_error(junk, "not a readable ONNX model")
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["output"])], "g",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1])])  # fmt: skip
    onnx.save(helper.make_model(graph), tmp_path / "foreign.onnx")
    one_line_error(tmp_path / "foreign.onnx", "not a pix2gan export")
    model = onnx.load(tiny_exports["onnx"])
    for prop in model.metadata_props:
        if prop.key == "pix2gan.version":
            prop.value = "7.0.0"
    onnx.save(model, tmp_path / "future.onnx")
    one_line_error(tmp_path / "future.onnx", "exported by pix2gan 7.0.0, another major version")
    del model.metadata_props[:]
    model.metadata_props.add(key="pix2gan.format", value="pix2gan-export")
    onnx.save(model, tmp_path / "partial.onnx")
    one_line_error(tmp_path / "partial.onnx", "incomplete pix2gan metadata")


def test_without_onnx_installed_the_error_says_what_to_install(tmp_path, monkeypatch, tiny_run):
    for name in ("onnx", "onnxruntime", "onnxscript"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    one_line_error(model, r"needs onnxruntime: pip install 'pix2gan\[onnx\]'")
    with pytest.raises(InputError, match=r"^exporting to ONNX needs .*pip install 'pix2gan\[onnx\]'$"):
        export_onnx(load_checkpoint(RunLayout(tiny_run).best), tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


def test_the_core_imports_without_onnx():
    code = ("import sys\nfor m in ('onnx', 'onnxruntime', 'onnxscript'): sys.modules[m] = None\n"
            "import pix2gan.infer.export, pix2gan.infer.exported, pix2gan.infer.translate, pix2gan_cli.app")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


# ------------------------------------------------------------------------------------------------------------------
# the command line
# ------------------------------------------------------------------------------------------------------------------
def cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def test_cli_export_writes_the_file_and_refuses_to_overwrite(tiny_run, tmp_path):
    out = tmp_path / "model.pt2"
    result = cli("export", "--run", tiny_run, "-o", out)
    assert result.exit_code == 0, result.output
    assert out.is_file() and str(out) in result.output and "(batch, 1, 8h, 8w)" in result.output
    assert "t1 -> ct, unet" in result.output
    stamp = out.stat().st_mtime_ns
    again = cli("export", "--run", tiny_run, "-o", out)
    assert again.exit_code == 2 and "already exists (use --overwrite" in again.output
    assert out.stat().st_mtime_ns == stamp
    wrong = cli("export", "--run", tiny_run, "-o", tmp_path / "model.onnx", "--format", "pt2")
    assert wrong.exit_code == 2 and "a .onnx name for a --format pt2 export" in wrong.output


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_cli_translate_with_model_equals_the_run(tiny_run, tiny_exports, tmp_path, fmt):
    """``pix2gan translate --model FILE`` through the CLI: the same output as ``--run`` within the documented bound
    (2e-4 HU for ONNX, exact for pt2), both on the input's grid bit for bit."""
    if fmt not in tiny_exports:
        pytest.skip("needs pip install 'pix2gan[onnx]'")
    src = oblique_scan(tmp_path)
    by_run = cli("translate", src, "--run", tiny_run, "--device", "cpu", "-o", tmp_path / "run.nii.gz")
    assert by_run.exit_code == 0, by_run.output
    by_model = cli("translate", src, "--model", tiny_exports[fmt], "--device", "cpu", "-o", tmp_path / "model.nii.gz")
    assert by_model.exit_code == 0, by_model.output
    assert str(tiny_exports[fmt]) in by_model.output.replace("\n", "")
    assert_same_translation(tmp_path / "run.nii.gz", tmp_path / "model.nii.gz", src, BOUND_HU[fmt])
