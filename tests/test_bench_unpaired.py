"""bench/unpaired.py: the goals' arithmetic, scoring against the aligned CT, each kind of row end to end, tiny."""

from __future__ import annotations

import doctest
import io
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from pix2gan.data.phantom import write_dataset
from pix2gan.evaluation.metrics import RULES, mae
from pix2gan.infer.translate import Translator
from pix2gan.io import load_volume
from pix2gan.checkpoint import load_checkpoint

from helpers import TINY_NETS, load_bench


def _bench():  # noqa: ANN202
    return load_bench("unpaired")


def _mae(value: float) -> dict:
    return {"scored": {"mean": {"mae": value}}}


def test_goals() -> None:
    u = _bench()
    assert doctest.testmod(u).failed == 0  # scored_ids and the goals' examples
    # goal 1: at least 20 % below, the boundary included; higher is said so
    met, line = u.goal_misregistered({"pix2pix-6mm": _mae(80.0), "cyclegan-6mm": _mae(64.0)})
    assert met is True and "20.0 % lower" in line and "64.0 HU" in line and "80.0 HU" in line
    met, line = u.goal_misregistered({"pix2pix-6mm": _mae(80.0), "cyclegan-6mm": _mae(64.1)})
    assert met is False and "19.9 % lower" in line and "NOT met" in line
    met, line = u.goal_misregistered({"pix2pix-6mm": _mae(50.0), "cyclegan-6mm": _mae(60.0)})
    assert met is False and "20.0 % higher" in line
    # goal 2: within 1.5x of pix2pix on aligned pairs (not on halves, where it has no row)
    assert u.goal_unpaired({"pix2pix-aligned": _mae(40.0), "cyclegan-halves": _mae(60.0)})[0] is True
    results = {"pix2pix-aligned": _mae(40.0), "cyclegan-halves": _mae(60.4), "pix2pix-6mm": _mae(90.0)}
    met, line = u.goal_unpaired(results)
    assert met is False and "1.51x" in line
    # a goal whose rows did not run (or failed) is not measured, never met
    assert u.goal_unpaired({"cyclegan-halves": _mae(10.0)})[0] is None
    assert u.goal_misregistered({"pix2pix-6mm": _mae(80.0), "cyclegan-6mm": {"skipped": "failed"}})[0] is None
    assert u.goal_misregistered({"pix2pix-6mm": _mae(80.0), "cyclegan-6mm": _mae(float("nan"))})[0] is None
    rows = {r.name: r for r in u.ROWS}
    pairs = {f"{m}-{d}" for m in ("pix2pix", "cyclegan") for d in ("aligned", "3mm", "6mm")}
    assert set(rows) == pairs | {"cyclegan-halves"}
    assert rows["cyclegan-halves"].reference == "pix2pix-aligned" and rows["cyclegan-3mm"].reference == "pix2pix-3mm"


def test_scoring_uses_the_aligned_ct(tiny_run: Path, tmp_path: Path) -> None:
    """A run scored on a misregistered family: each subject's figures are those of the run's own translation against
    ``aligned/ct.nii.gz``, not against the warped ``ct.nii.gz``, whatever the run's split."""
    u = _bench()
    family = tmp_path / "mis"
    write_dataset(family, n_subjects=4, size=32, seed=5, misregister_mm=6.0)
    ids = ["sub-002", "sub-004"]
    view = u.scoring_view(family, ids, tmp_path / "view")
    res = u.score(tiny_run, view, tmp_path / "pred", "cpu")
    assert sorted(res["per_subject"]) == ids
    ckpt = load_checkpoint(tiny_run / "checkpoints" / "best.pt")
    translator = Translator.from_checkpoint(ckpt, device="cpu")
    window = RULES["synthrad2023"].window
    for sid in ids:
        pred = load_volume(tmp_path / "pred" / f"{sid}_ct.nii.gz").data
        direct = translator.translate_volume(load_volume(family / sid / "t1.nii.gz"))
        np.testing.assert_allclose(pred, direct, atol=1e-3)  # the run's translation of that subject
        mask = load_volume(family / sid / "mask.nii.gz").data > 0
        aligned, warped = (load_volume(family / sid / p).data for p in ("aligned/ct.nii.gz", "ct.nii.gz"))
        figure = res["per_subject"][sid]["mae"]
        assert figure == pytest.approx(mae(pred, aligned, mask, window), rel=1e-6)
        assert abs(figure - mae(pred, warped, mask, window)) > 0.1  # (the two CTs differ enough to tell)
    assert res["mean"]["mae"] == pytest.approx(np.mean([res["per_subject"][s]["mae"] for s in ids]))


def test_rows_tiny(tmp_path: Path) -> None:
    """Both methods on aligned, 6 mm and unpaired halves (each kind of row, both goals), on 32-px phantoms of 4
    subjects with tiny networks and a second of training each: structure, budget, scored subjects."""
    u = _bench()
    out = io.StringIO()
    console = Console(file=out, width=250)
    names = ["pix2pix-aligned", "pix2pix-6mm", "cyclegan-6mm", "cyclegan-halves"]
    rows = [r for r in u.ROWS if r.name in names]
    results, ids = u.benchmark(rows, tmp_path, 0.01, console, size=32, n_subjects=4, extra=TINY_NETS)
    assert ids == u.scored_ids(["sub-001", "sub-002", "sub-003", "sub-004"]) and len(ids) == 1
    assert list(results) == names
    for name, r in results.items():
        assert "skipped" not in r, (name, r.get("skipped"))
        assert list(r["scored"]["per_subject"]) == ids  # the same subjects for every row, whatever its split
        mean = r["scored"]["mean"]
        assert 0 < mean["mae"] < 4024 and {"psnr", "ssim", "nps_ratio", "nps_lsd", "sharpness", "hu_w1"} <= set(mean)
        assert r["epochs"] >= 1 and r["steps"] >= r["epochs"] and r["budget_miss"] == r["loop_s"] / 0.6
        mode = json.loads((Path(r["run_dir"]) / "config.json").read_text())["train"]["mode"]
        assert mode == r["mode"] == ("unpaired" if name.startswith("cyclegan") else "paired")
    # each row's figure is its own run's translation scored against the scoring family's CT (aligned: no warp)
    family = tmp_path / f"scoring-seed{u.SCORING_SEED}"
    assert not (family / ids[0] / "aligned").exists()
    for name, r in results.items():
        pred = load_volume(tmp_path / "eval" / name / "scored" / f"{ids[0]}_ct.nii.gz").data
        target = load_volume(family / ids[0] / "ct.nii.gz").data
        mask = load_volume(family / ids[0] / "mask.nii.gz").data > 0
        assert r["scored"]["mean"]["mae"] == pytest.approx(mae(pred, target, mask, RULES["synthrad2023"].window))
    # the training sets: misregistered ones keep the aligned CT apart, the halves hold one side each
    sets = {d: tmp_path / f"train-seed{u.TRAIN_SEED}-{d}" for d in ("aligned", "6mm", "halves")}
    assert not (tmp_path / f"train-seed{u.TRAIN_SEED}-3mm").exists()  # only the sets the rows train on
    assert json.loads((sets["6mm"] / "phantom.json").read_text())["misregister_mm"] == 6.0
    assert (sets["6mm"] / "sub-001" / "aligned" / "ct.nii.gz").is_file()
    halves = sets["halves"]
    assert not (halves / "sub-001" / "ct.nii.gz").exists() and not (halves / "sub-002" / "t1.nii.gz").exists()
    table = u.table_of(results, "t")
    assert [c.header for c in table.columns] == u.COLUMNS and table.row_count == len(names)
    cells = {c.header: list(c.cells) for c in table.columns}
    assert cells["MAE"] == [format(r["scored"]["mean"]["mae"], ".1f") for r in results.values()]
    assert cells["MAE / ref"][0] == "1.000" and cells["epochs"] == [str(r["epochs"]) for r in results.values()]
    ratio = results["cyclegan-halves"]["scored"]["mean"]["mae"] / results["pix2pix-aligned"]["scored"]["mean"]["mae"]
    assert cells["MAE / ref"][-1] == format(ratio, ".3f")
    u.report(results, ids, 0.01, console)
    printed = out.getvalue()
    assert "goal 1 (6mm" in printed and "goal 2 (halves" in printed and "not measured" not in printed
