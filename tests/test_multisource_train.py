"""Training a many-to-one model (``--src t1,zte``, ``--input-dropout``): the CLI end to end (the networks' channels,
the description line), resume bit-identical, two gloo ranks in step, the input-dropout draws against the items of a
run without dropout, config files listing the sources, and the refusals (sources on different grids, dropout with
one source, several sources outside paired mode, a source named twice or also the target)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from helpers import assert_identical, assert_one_clear_line, csv_rows, final_state, run_at_step, torchrun
from pix2gan.config import DataConfig, RunConfig
from pix2gan.data.intensity import intensity_maps
from pix2gan.data.planes import context_stack
from pix2gan.data.phantom import write_dataset
from pix2gan.data.slices import PairedSlices, SliceCache
from pix2gan.data.sources import SourceLayout
from pix2gan.data.subjects import find_subjects
from pix2gan.runs import RunLayout
from pix2gan_cli.app import app

TINY = ["--depth", "3", "--filters", "4", "--disc-filters", "4", "--disc-layers", "2", "--image-size", "32",
        "--batch-size", "4", "--device", "cpu", "--threads", "1", "--no-progress"]  # fmt: skip
MANY = ["--src", "t1,zte", "--dst", "ct", "--context", "1", "--input-dropout", "0.5"]


@pytest.fixture(scope="module")
def zte_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 phantoms of 32 x 32 x 9 voxels with t1, zte, ct and mask (4 train, 1 val, 1 test; read only)."""
    root = tmp_path_factory.mktemp("zte") / "data"
    write_dataset(root, n_subjects=6, size=32, seed=0, zte=True)
    return root


@pytest.fixture(scope="module")
def dropout_run(zte_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``pix2gan train --src t1,zte --context 1 --input-dropout 0.5`` for 2 epochs, a checkpoint at every step; the
    run folder and what the command printed."""
    run = tmp_path_factory.mktemp("runs") / "t1zte"
    result = CliRunner().invoke(app, ["train", "--data", str(zte_data), *MANY, *TINY, "--epochs", "2",
                                      "--checkpoint-every", "1", "--keep-last", "100", "--run-dir", str(run)])  # fmt: skip
    assert result.exit_code == 0, result.output
    return run, result.output


def _first_conv_in_channels(state: dict[str, torch.Tensor]) -> int:
    """The input channels of a network's first convolution (the first 4-D weight of its state dict)."""
    return next(v.shape[1] for k, v in state.items() if k.endswith("weight") and v.ndim == 4)


def test_cli_trains_two_sources_with_input_dropout(dropout_run):
    """G takes S (2K + 1) + S = 2 x 3 + 2 channels (the stacks, then one availability channel per source), D the
    centre slice of each source with the target (S + 1 = 3); the description line names both sources and the
    dropout; the checkpoint and config.json list the sources, each one's map and the dropout."""
    run, output = dropout_run
    raw = torch.load(RunLayout(run).latest, weights_only=True)
    assert _first_conv_in_channels(raw["generator"]) == 2 * 3 + 2
    assert _first_conv_in_channels(raw["discriminator"]) == 2 + 1
    text = " ".join(output.split())
    assert "training t1 + zte -> ct, input dropout 0.5 on 36 slices (axis 2, 3-slice stacks)" in text, text
    config = json.loads((run / "config.json").read_text())["data"]
    assert (config["src"], config["input_dropout"], config["src_intensities"]) == ("t1,zte", 0.5, ["percentile"] * 2)
    intensity = json.loads(raw["intensity"])
    assert list(intensity["sources"]) == ["t1", "zte"] and intensity["sources"]["t1"] == intensity["src"]
    assert run.name == "t1zte" and RunConfig.from_options(src="t1,zte").run_name() == "t1+zte2ct"


def test_resume_with_input_dropout_is_bit_identical(dropout_run, tmp_path):
    """Stopped after step 11 (in epoch 2, after epoch 1's validation) and resumed with ``train --resume``: the same
    networks, optimisers and step log as the uninterrupted run (the dropout draws come from each item's seed)."""
    ref, _ = dropout_run
    steps = csv_rows(RunLayout(ref).log)
    assert len(steps) == 18  # (36 slices, batch 4: 9 steps an epoch)
    cut = run_at_step(ref, tmp_path / "cut", 11)
    result = CliRunner().invoke(app, ["train", "--resume", str(cut), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert_identical(final_state(ref), final_state(cut))
    assert csv_rows(RunLayout(cut).log) == steps


@pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="torch built without gloo")
def test_two_gloo_ranks_with_input_dropout_agree(zte_data, tmp_path):
    """Two gloo ranks training t1,zte with input dropout end with the same weights, those of the run's checkpoint,
    with G's availability channels."""
    run = tmp_path / "run"
    args = ["train", "--data", zte_data, *MANY, *TINY, "--batch-size", "2", "--epochs", "1", "--run-dir", run]
    done = torchrun(tmp_path, 2, args)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / "weights2" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for net in ("g", "d"):
        for key, value in ranks[0][net].items():
            assert torch.equal(value, ranks[1][net][key]), f"{net}.{key} differs between ranks"
    saved = torch.load(RunLayout(run).latest, weights_only=True)
    assert_identical(ranks[0]["g"], dict(saved["generator"]))
    assert _first_conv_in_channels(saved["generator"]) == 8 and '"world": 2' in saved["progress"]


# --- the dataset's input dropout ----------------------------------------------------------------------------------


def _datasets(root: Path, image_size: int, p: float) -> tuple[PairedSlices, ...]:
    """Three datasets of one cache of t1,zte (context 1): no dropout (every source needed), availability channels
    with P = 0, and availability channels with ``p``."""
    dc = DataConfig(root=str(root), src="t1,zte", dst="ct", context=1)
    cache = SliceCache(find_subjects(root, ["t1", "zte", "ct"], ["mask"])[:2], dc, *intensity_maps(dc))
    plain = SourceLayout(("t1", "zte"), 1)
    optional = SourceLayout(("t1", "zte"), 1, optional=True)
    return tuple(PairedSlices(cache, image_size, train=True, layout=layout, input_dropout=q)
                 for layout, q in ((plain, 0.0), (optional, 0.0), (optional, p)))  # fmt: skip


def test_input_dropout_draws(zte_data):
    """P = 0: the stacks are exactly the items of a run without dropout, availability all 1. P = 0.5, seed by seed
    (16 x 16 random crops of 32 x 32 slices, random flips): never every source dropped; a dropped stack exactly 0, a
    kept one exactly the no-dropout item (same crop and flip: the dropout draws come after them), availability
    planes constant 1 / 0 matching; both sources are dropped somewhere."""
    plain, zero, half = _datasets(zte_data, 16, 0.5)
    dropped = {"t1": 0, "zte": 0}
    for i in range(0, len(plain), 3):
        for seed in range(6):
            key = (i, 1000 * i + seed)
            ref = plain[key]
            item0, item = zero[key], half[key]
            assert_identical(item0["src"][:6], ref["src"])
            assert_identical(item0["dst"], ref["dst"])
            assert torch.equal(item0["src"][6:], torch.ones(2, 16, 16))
            assert_identical(item["dst"], ref["dst"])
            avail = item["src"][6:]
            present = [bool(avail[j].eq(1).all()) for j in range(2)]
            for j, name in enumerate(("t1", "zte")):
                assert torch.equal(avail[j], torch.full((16, 16), float(present[j])))
                block = item["src"][3 * j : 3 * j + 3]
                assert torch.equal(block, ref["src"][3 * j : 3 * j + 3] if present[j] else torch.zeros(3, 16, 16))
                dropped[name] += not present[j]
            assert any(present), f"item {key}: every source dropped"
    assert dropped["t1"] > 0 and dropped["zte"] > 0, dropped


def test_one_source_items_are_the_context_stacks(tiny_data):
    """A one-source cache's evaluation items (no layout given) are the slice's context stack and its target, as
    computed directly from the cache: the many-to-one layout leaves one source as it was."""
    dc = DataConfig(root=str(tiny_data), context=1)
    cache = SliceCache(find_subjects(tiny_data, ["t1", "ct"], ["mask"])[:1], dc, *intensity_maps(dc))
    data = PairedSlices(cache, 32, train=False, context=1)
    s = cache.subjects[0]
    for i, (_, _, k) in enumerate(data.pairs):
        item = data[i]
        # (the crop pads with -1 as x + 1 - 1: float32 rounding near 0 kept)
        assert_identical(item["src"], context_stack(s.src, k, 1) + 1.0 - 1.0)
        assert_identical(item["dst"], s.dst[k : k + 1] + 1.0 - 1.0)


# --- config files and refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_config_file_lists_sources_and_dropout(suffix, tmp_path):
    """``src: [t1, zte]`` in a YAML or JSON file means ``t1,zte``; ``input-dropout`` is read; the run's config round
    trip (to_dict / from_dict, and its config.json as a file) keeps the sources, their maps and the dropout."""
    from pix2gan.config.files import run_config_with_file

    path = tmp_path / f"cfg{suffix}"
    if suffix == ".yaml":
        path.write_text("src: [t1, zte]\ndst: ct\ninput-dropout: 0.25\n")
    else:
        path.write_text(json.dumps({"src": ["t1", "zte"], "dst": "ct", "input_dropout": 0.25}))
    cfg = run_config_with_file(path)
    k = cfg.data.context  # (the paired recommendation)
    assert (cfg.data.sources, cfg.data.input_dropout, cfg.data.optional_sources) == (("t1", "zte"), 0.25, True)
    assert cfg.generator_model.in_channels == 2 * (2 * k + 1) + 2 == SourceLayout.of(cfg).channels
    again = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert (again.data.src, again.data.src_intensities, again.data.input_dropout) == \
        (cfg.data.src, cfg.data.src_intensities, 0.25)  # fmt: skip
    nested = tmp_path / "config.json"
    nested.write_text(json.dumps({**cfg.to_dict(), "data": {**cfg.to_dict()["data"], "src": ["t1", "zte"]}}))
    assert run_config_with_file(nested).data == cfg.data
    path.write_text(json.dumps({"src": ["t1", 3]}))
    with pytest.raises(Exception, match=r"src: expected text, got \['t1', 3\]"):
        run_config_with_file(path)


def test_sources_on_different_grids_refused(zte_data, tmp_path):
    """A subject whose zte is shifted by 2 mm: training refuses it in one line naming both files."""
    root = tmp_path / "data"
    shutil.copytree(zte_data, root)
    zte = root / "sub-002" / "zte.nii.gz"
    img = nib.load(zte)
    affine = img.affine.copy()
    affine[0, 3] += 2.0
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj), affine, img.header), zte)
    result = CliRunner().invoke(app, ["train", "--data", str(root), *MANY, *TINY, "--epochs", "1",
                                      "--run-dir", str(tmp_path / "run")])  # fmt: skip
    assert_one_clear_line(result, str(zte))
    assert "t1.nii.gz" in result.output and not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize(("args", "needle"), [
    (["--src", "t1", "--input-dropout", "0.5"], "--input-dropout drops one of several sources"),
    (["--mode", "unpaired", "--src", "t1,zte"], "several sources are a paired-mode model"),
    (["--src", "t1,t1"], "a source is named twice"),
    (["--src", "t1,ct", "--dst", "ct"], "the target 'ct' cannot also be a source"),
])  # fmt: skip
def test_refusals(args, needle, zte_data, tmp_path):
    """Each refused in one line before anything is written."""
    result = CliRunner().invoke(app, ["train", "--data", str(zte_data), *args, *TINY, "--epochs", "1",
                                      "--run-dir", str(tmp_path / "run")])  # fmt: skip
    assert_one_clear_line(result, needle)
    assert not (tmp_path / "run").exists()
