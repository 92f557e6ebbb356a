"""``--mode unpaired`` end to end: CycleGAN trained through the CLI on phantoms where a subject holds only T1, only CT
or both, resumed bit for bit, and translated both ways onto the input's exact grid in physical units."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from helpers import assert_identical, assert_one_clear_line, final_state
from pix2gan.checkpoint import load_checkpoint
from pix2gan.config import RunConfig
from pix2gan.runs import RunLayout
from pix2gan_cli.app import app

TINY = ["--src", "t1", "--dst", "ct", "--filters", "4", "--disc-filters", "4", "--disc-layers", "2", "--image-size",
        "32", "--epochs", "2", "--device", "cpu", "--threads", "1", "--no-progress"]  # fmt: skip


def cli(*args: object):  # noqa: ANN201
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def unpaired_run(unpaired_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 epochs through the CLI, one of the two subjects holding both held out for validation."""
    run = tmp_path_factory.mktemp("runs") / "cycle"
    result = cli("train", "--mode", "unpaired", "--data", unpaired_data, *TINY, "--val-fraction", "0.5",
                 "--test-fraction", "0", "--run-dir", run)  # fmt: skip
    assert result.exit_code == 0, result.output
    return run


def test_trains_cyclegan_end_to_end(unpaired_run: Path):
    cfg = RunConfig.from_dict(json.loads((unpaired_run / "config.json").read_text()))
    assert (cfg.mode.value, cfg.model.generator, cfg.model.norm.value, cfg.model.dropout) == ("unpaired", "resnet9", "instance", False)
    assert (cfg.train.batch_size, cfg.train.lr, cfg.train.betas, cfg.train.gan_loss.value) == (1, 2e-4, (0.5, 0.999), "lsgan")
    assert (cfg.train.lambda_cycle, cfg.train.lambda_identity, cfg.train.pool_size) == (10.0, None, 50)
    header = (unpaired_run / "log.csv").read_text().splitlines()[0].split(",")
    assert {"loss_g_idt_a", "loss_g_idt_b"} <= set(header)  # (not given: CycleGAN's 0.5, the channels match)
    ckpt = load_checkpoint(RunLayout(unpaired_run).latest)
    assert {k.split(".")[0] for k in ckpt.raw["generator"]} == {"g_ab", "g_ba"}
    assert {k.split(".")[0] for k in ckpt.raw["discriminator"]} == {"d_a", "d_b"}
    pools = ckpt.raw["objective_state"]
    assert int(pools["pool_a"]["count"]) == int(pools["pool_b"]["count"]) == 50  # (two epochs of ~30 steps: full)
    assert (ckpt.src_map.kind.value, ckpt.dst_map.kind.value) == ("percentile", "hu")
    assert ckpt.src_map.reference is not None  # (a generated T1 maps back with the training volumes' scale)
    assert json.loads(ckpt.raw["metrics"])["val_mae"] > 0  # validated on the held-out subject, in HU
    assert sorted(p.name for p in (unpaired_run / "panels").iterdir()) == ["epoch_001.png", "epoch_002.png"]


def test_one_sided_subjects_train_with_what_they_hold(unpaired_data: Path, unpaired_run: Path, tmp_path: Path):
    from pix2gan.tasks import build_task

    split = json.loads((unpaired_run / "split.json").read_text())
    assert split["val"] in (["sub-005"], ["sub-006"]) and split["test"] == []
    assert {"sub-001", "sub-002", "sub-003", "sub-004"} <= set(split["train"])
    cfg = RunConfig.from_dict(json.loads((unpaired_run / "config.json").read_text()))
    task = build_task(cfg, RunLayout(tmp_path / "r"), torch.device("cpu"), check_new=lambda: None)
    src_ids, dst_ids = ({c.subjects[i].id for i, _, _ in items} for c, items in
                        zip(task.dataset.caches, (task.dataset.src_items, task.dataset.dst_items), strict=True))  # fmt: skip
    paired = set(split["train"]) - {"sub-001", "sub-002", "sub-003", "sub-004"}
    assert src_ids == {"sub-001", "sub-003"} | paired  # T1-only subjects feed the source side only
    assert dst_ids == {"sub-002", "sub-004"} | paired  # CT-only subjects the target side only
    assert [s.id for s in task.val_cache.subjects] == split["val"]


def test_resume_is_bit_identical_pools_included(unpaired_data: Path, tmp_path: Path, monkeypatch):
    import pix2gan.train.state as state_mod
    from pix2gan.errors import TrainingInterrupted
    from pix2gan.train import fit, resume_run

    cfg = RunConfig.from_options("unpaired", data=str(unpaired_data), src="t1", dst="ct", filters=4, disc_filters=4,
                                 disc_layers=2, image_size=32, epochs=2, device="cpu", threads=1, pool_size=4,
                                 checkpoint_every=5)  # fmt: skip
    fit(cfg, tmp_path / "ref", progress=False)
    real_count = state_mod.LoopState.count

    def interrupt(state, losses):  # noqa: ANN001, ANN202
        ok = real_count(state, losses)
        if state.step == 50:  # inside epoch 2 (36 steps per epoch), the pools full and drawing
            signal.raise_signal(signal.SIGINT)
        return ok

    monkeypatch.setattr(state_mod.LoopState, "count", interrupt)
    with pytest.raises(TrainingInterrupted, match="step 50 of"):
        fit(cfg, tmp_path / "cut", progress=False)
    monkeypatch.setattr(state_mod.LoopState, "count", real_count)
    stopped = torch.load(RunLayout(tmp_path / "cut").latest, weights_only=True)
    assert int(stopped["step"]) == 50 and int(stopped["objective_state"]["pool_a"]["count"]) == 4
    resume_run(tmp_path / "cut", progress=False)
    assert_identical(final_state(tmp_path / "ref"), final_state(tmp_path / "cut"))
    pools = [torch.load(RunLayout(tmp_path / r).latest, weights_only=True)["objective_state"] for r in ("ref", "cut")]
    assert_identical(pools[0], pools[1], "objective_state")


def _direct(ckpt, volume: np.ndarray, reverse: bool) -> np.ndarray:  # noqa: ANN001
    """G_ab (or G_ba) slice by slice along axis 2, computed here from the checkpoint's weights and maps."""
    nets = ckpt.generator()
    net, m_in, m_out = (nets.g_ba, ckpt.dst_map, ckpt.src_map) if reverse else (nets.g_ab, ckpt.src_map, ckpt.dst_map)
    x = torch.from_numpy(m_in.forward(volume, m_in.scale_of(volume))).permute(2, 0, 1)[:, None]  # (Z, 1, 32, 32)
    with torch.no_grad():
        y = net(x)[:, 0].permute(1, 2, 0).numpy()
    return m_out.inverse(y)  # (HU for CT; a generated T1 in the training volumes' reference scale)


@pytest.mark.parametrize("reverse", [False, True])
def test_translate_both_ways_on_the_input_grid_in_units(unpaired_data: Path, unpaired_run: Path, tmp_path: Path, reverse: bool):
    scan = unpaired_data / ("sub-002/ct.nii.gz" if reverse else "sub-001/t1.nii.gz")
    out = tmp_path / "out.nii.gz"
    result = cli("translate", scan, "--run", unpaired_run, "-o", out, "--device", "cpu", *(["--reverse"] if reverse else []))
    assert result.exit_code == 0, result.output
    assert ("ct -> t1" if reverse else "t1 -> ct") in result.output
    src, pred = nib.load(scan), nib.load(out)
    assert np.array_equal(src.affine, pred.affine) and src.shape == pred.shape
    assert np.array_equal(src.header.get_qform(), pred.header.get_qform())
    ckpt = load_checkpoint(RunLayout(unpaired_run).model_checkpoint())
    expected = _direct(ckpt, np.asarray(src.dataobj, dtype=np.float32), reverse)
    np.testing.assert_allclose(np.asarray(pred.dataobj), expected, rtol=1e-5, atol=1e-2)


def test_reverse_refused_for_a_paired_run(tiny_run: Path, tiny_data: Path, tmp_path: Path):
    subject = sorted(p for p in tiny_data.iterdir() if p.is_dir())[0]
    result = cli("translate", subject / "ct.nii.gz", "--run", tiny_run, "-o", tmp_path / "x.nii.gz", "--reverse")
    assert_one_clear_line(result, "--reverse translates with G_ba of an unpaired")
    assert not (tmp_path / "x.nii.gz").exists()


@pytest.mark.parametrize("missing", ["t1", "ct"])
def test_no_subject_with_one_side_is_one_line(unpaired_data: Path, tmp_path: Path, missing: str):
    data = tmp_path / "data"
    keep = {"t1": ("sub-002", "sub-004"), "ct": ("sub-001", "sub-003")}[missing]  # the one-sided subjects without it
    for subject in keep:
        (data / subject).mkdir(parents=True)
        for f in (unpaired_data / subject).iterdir():
            (data / subject / f.name).write_bytes(f.read_bytes())
    result = cli("train", "--mode", "unpaired", "--data", data, *TINY, "--run-dir", tmp_path / "run")
    assert_one_clear_line(result, f"no subject has a {missing!r} volume")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("option", [["--gan-warmup", "0.5"], ["--gan-loss", "none"]])
def test_refused_options(unpaired_data: Path, tmp_path: Path, option: list[str]):
    result = cli("train", "--mode", "unpaired", "--data", unpaired_data, *TINY, *option, "--run-dir", tmp_path / "run")
    assert_one_clear_line(result, option[0])
    assert not (tmp_path / "run").exists()


def test_identity_asked_for_where_it_cannot_apply_is_one_line(unpaired_data: Path, tmp_path: Path):
    """With --context the target batches hold single slices, which G_ab (taking stacks) cannot map onto themselves: a
    weight given is refused before the run folder exists; left out, the run trains without the identity term."""
    run = tmp_path / "run"
    result = cli("train", "--mode", "unpaired", "--data", unpaired_data, *TINY, "--context", "1",
                 "--lambda-identity", "0.5", "--run-dir", run)  # fmt: skip
    assert_one_clear_line(result, "--lambda-identity 0.5: the identity loss feeds target images to G_ab")
    assert not run.exists()
    result = cli("train", "--mode", "unpaired", "--data", unpaired_data, *TINY, "--context", "1", "--epochs", "1",
                 "--run-dir", run)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "identity loss off" in result.output
    header = (run / "log.csv").read_text().splitlines()[0].split(",")
    assert "loss_g_idt_a" not in header and "loss_g_cycle_a" in header


def test_eval_scores_g_ab_against_the_held_out_targets(unpaired_data: Path, unpaired_run: Path, tmp_path: Path):
    from pix2gan.evaluation.paired import evaluate_run

    (sid,) = json.loads((unpaired_run / "split.json").read_text())["val"]
    report = evaluate_run(unpaired_run, split="val", device="cpu", metrics=("mae",), out_dir=tmp_path)
    ckpt = load_checkpoint(RunLayout(unpaired_run).model_checkpoint())
    t1, ct, mask = (np.asarray(nib.load(unpaired_data / sid / f"{m}.nii.gz").dataobj, dtype=np.float32)
                    for m in ("t1", "ct", "mask"))  # fmt: skip
    pred = _direct(ckpt, t1, reverse=False)
    expected = np.abs(np.clip(pred, -1024, 3000) - np.clip(ct, -1024, 3000))[mask > 0].mean()
    assert report.per_subject[sid]["mae"] == pytest.approx(expected, rel=1e-4)
    assert not report.baseline_per_subject  # (no lookup table: the training subjects are not pairs)
    result = cli("eval", "--run", unpaired_run, "--split", "train", "--device", "cpu")
    assert_one_clear_line(result, "holds only one of t1 and ct")
