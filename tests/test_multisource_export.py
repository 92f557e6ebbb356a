"""Around a trained many-to-one model (``--src t1,zte --input-dropout``): its export takes the generator's whole
input (stacks and availability channels) and equals the checkpoint's generator on the same assembled input, with
the metadata naming every channel; a loaded export's configuration carries the sources; one-source exports read
as before; the report's rows of sources, dropout and channel layout; ``sample`` of a paired many-to-one run."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch

from pix2gan.checkpoint import load_checkpoint
from pix2gan.config import ModelConfig, RunConfig, TrainConfig
from pix2gan.data.phantom import write_dataset
from pix2gan.data.sources import SourceLayout
from pix2gan.errors import InputError
from pix2gan.infer.export import export_onnx, export_pt2
from pix2gan.infer.export_metadata import ExportMetadata
from pix2gan.infer.exported import load_exported
from pix2gan.infer.translate import Translator
from pix2gan.runs import RunLayout

HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime", "onnxscript"))
# exported vs PyTorch in the network's [-1, 1] space: pt2 runs the same kernels; ONNX within the export's own check
BOUND = {"pt2": 1e-6, "onnx": 1e-4}
CHANNELS = ["t1[k-1]", "t1[k]", "t1[k+1]", "zte[k-1]", "zte[k]", "zte[k+1]", "available:t1", "available:zte"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A t1,zte -> ct run with context 1 and input dropout 0.5, one epoch on 5 phantoms of 32 px."""
    from pix2gan.train import fit

    root = tmp_path_factory.mktemp("zte") / "data"
    write_dataset(root, n_subjects=5, size=32, seed=1, zte=True)
    cfg = RunConfig.from_options("paired", data=str(root), src="t1,zte", dst="ct", context=1, input_dropout=0.5,
                                 depth=3, filters=4, disc_filters=4, disc_layers=2, image_size=32, batch_size=4,
                                 epochs=1, device="cpu", threads=1)  # fmt: skip
    out = tmp_path_factory.mktemp("runs") / "t1zte"
    fit(cfg, out, progress=False)
    return out


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
def test_export_takes_stacks_and_availability(fmt, run, tmp_path):
    """The export of a dropout model takes 2 x 3 + 2 channels; loaded back, its output on an assembled input (both
    sources; zte zero-filled with its availability 0) equals the checkpoint's generator's on the same input."""
    if fmt == "onnx" and not HAS_ONNX:
        pytest.skip("needs pip install 'pix2gan[onnx]'")
    ckpt = load_checkpoint(RunLayout(run).best)
    result = (export_pt2 if fmt == "pt2" else export_onnx)(ckpt, tmp_path / f"g.{fmt}")
    layout = SourceLayout.of(ckpt.config)
    assert result.metadata.in_channels == layout.channels == 8
    model = load_exported(result.path, device="cpu")
    net = ckpt.generator()
    stacks = torch.rand(2, layout.stacks, 16, 24, generator=torch.Generator().manual_seed(0)) * 2 - 1
    outputs = []
    for present in ([True, True], [True, False]):
        x = layout.assemble(stacks, torch.tensor(present))
        with torch.inference_mode():
            got, want = model.generator(x), net(x)
        assert got.shape == want.shape == (2, 1, 16, 24)
        assert float((got - want).abs().max()) <= BOUND[fmt], present
        outputs.append(want)
    assert not torch.equal(*outputs), "the availability channels and the zero-filling changed nothing"


def test_export_metadata_names_the_inputs(run, tmp_path):
    """The metadata names the channels in order, the sources' blocks, context, availability, whether sources may be
    missing and each one's map; the description says it; loaded back, the metadata equals the written one and a
    Translator of the export carries the sources; the metadata's sources must agree with its configuration."""
    from pix2gan.infer.exported import read_pt2_metadata

    ckpt = load_checkpoint(RunLayout(run).best)
    meta = export_pt2(ckpt, tmp_path / "g.pt2").metadata
    props = meta.to_props()
    tensor = json.loads(props["pix2gan.input"])
    assert tensor["channel_names"] == CHANNELS and tensor["shape"][1] == len(CHANNELS)
    assert (tensor["sources"], tensor["context"], tensor["optional"]) == (["t1", "zte"], 1, True)
    assert tensor["blocks"] == {"t1": [0, 3], "zte": [3, 6]} and tensor["availability"] == CHANNELS[-2:]
    maps = json.loads(props["pix2gan.intensity"])["sources"]
    assert list(maps) == ["t1", "zte"] and maps["t1"] == ckpt.src_map.to_dict() and maps["zte"]["kind"] == "percentile"
    assert meta.describe().startswith("t1 + zte -> ct, inputs: t1[k-1..k+1], zte[k-1..k+1], available:t1, "
                                      "available:zte (any non-empty subset, missing ones zero-filled)")  # fmt: skip
    assert read_pt2_metadata(tmp_path / "g.pt2") == meta
    translator = Translator.from_exported(tmp_path / "g.pt2", device="cpu")
    assert (translator.config.data.sources, translator.config.data.input_dropout) == (("t1", "zte"), 0.5)

    damaged = {**props, "pix2gan.input": json.dumps({**tensor, "sources": ["zte", "t1"]})}
    with pytest.raises(InputError, match="damaged pix2gan metadata .input sources zte, t1, configuration t1,zte"):
        ExportMetadata.from_props("g.pt2", damaged)


def test_one_source_export_metadata_unchanged():
    """A one-source model's properties hold no source list (as exports written before several sources), describe
    it as before, and read back."""
    from pix2gan.data.intensity import intensity_maps

    cfg = RunConfig(model=ModelConfig(depth=2, base_filters=2))
    meta = ExportMetadata(cfg, *intensity_maps(cfg.data), multiple=4)
    props = meta.to_props()
    tensor = json.loads(props["pix2gan.input"])
    assert not {"sources", "channel_names", "availability"} & set(tensor)
    assert "sources" not in json.loads(props["pix2gan.intensity"])
    assert meta.describe().startswith("t1 -> ct, unet, axis 2, 1-slice input")
    assert ExportMetadata.from_props("old.onnx", props) == meta


def test_report_shows_sources_dropout_and_layout(run, tmp_path):
    """The report names the sources in channel order with their maps, the dropout and which may be missing, and the
    channel layout; a one-source run's report has none of these rows."""
    from pix2gan.reporting import render_html_report

    html = render_html_report(run)
    assert "t1 + zte → ct (mask: mask)" in html
    assert "t1, zte (in channel order; each normalised by its own map: t1 percentile, zte percentile)" in html
    assert "0.5: in training each source was zero-filled with this probability" in html
    assert "8 channels: t1[k-1..k+1] 0–2, zte[k-1..k+1] 3–5, available:t1 6, available:zte 7" in html

    one = tmp_path / "one"
    one.mkdir()
    (one / "config.json").write_text(json.dumps(RunConfig(train=TrainConfig(epochs=1)).to_dict()))
    html = render_html_report(one)
    assert "t1 → ct (mask: mask)" in html and "channel layout" not in html and "input dropout" not in html


def test_sample_panels_of_a_many_to_one_run(run, tmp_path):
    """``pix2gan sample --run`` of a t1,zte run draws its source | prediction panels from every source; without a
    subject's zte the run's data no longer holds the model's inputs (one line)."""
    from pix2gan.infer.sample import SampleRequest, draw
    from pix2gan.runs import resolve_run

    out, what = draw(resolve_run(run, None), SampleRequest(), output=tmp_path / "p.png", device="cpu")
    assert what == "source | prediction panels" and out.stat().st_size > 0

    cfg = load_checkpoint(RunLayout(run).best).config
    root = tmp_path / "data"
    shutil.copytree(cfg.data.root, root)
    (root / json.loads((run / "split.json").read_text())["test"][0] / "zte.nii.gz").unlink()
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    config = json.loads((copy / "config.json").read_text())
    raw = torch.load(RunLayout(copy).best, weights_only=True)
    raw["config"] = json.dumps({**json.loads(raw["config"]), "data": {**config["data"], "root": str(root)}})
    torch.save(raw, RunLayout(copy).best)
    with pytest.raises(InputError, match="zte"):
        draw(resolve_run(copy, RunLayout(copy).best), SampleRequest(), output=tmp_path / "q.png", device="cpu")
