"""bench/multisource.py: the goals' arithmetic, and every row end to end on tiny phantoms (equal steps, the dropout
model scored with each subset, each line its own translation of the scored subjects)."""

from __future__ import annotations

import doctest
import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from pix2gan.evaluation.metrics import RULES, mae, tissue_mae
from pix2gan.io import load_volume

from helpers import TINY_NETS, load_bench



def _bench():  # noqa: ANN202
    return load_bench("multisource")


def _line(mae_: float, bone: float | None = None) -> dict:
    return {"scored": {"mean": {"mae": mae_, **({} if bone is None else {"mae_bone": bone})}}}


def test_goals() -> None:
    b = _bench()
    assert doctest.testmod(b).failed == 0
    # goal 1: both bounds included; either one missed is NOT met
    assert b.goal_two_sources({"t1": _line(100.0, 200.0), "t1+zte": _line(75.0, 130.0)})[0] is True
    met, line = b.goal_two_sources({"t1": _line(100.0, 200.0), "t1+zte": _line(75.0, 131.0)})
    assert met is False and "34.5 % lower" in line
    assert b.goal_two_sources({"t1": _line(100.0, 200.0), "t1+zte": _line(75.1, 100.0)})[0] is False
    assert b.goal_two_sources({"t1": _line(100.0, 200.0)})[0] is None  # a line that did not run: not measured
    # goal 2: every one of the three lines against its own reference
    ok = {"t1": _line(100.0), "zte": _line(80.0), "t1+zte": _line(60.0), "dropout{t1,zte}": _line(63.0),
          "dropout{t1}": _line(110.0), "dropout{zte}": _line(88.0)}  # fmt: skip
    assert b.goal_dropout(ok)[0] is True
    assert b.goal_dropout({**ok, "dropout{t1,zte}": _line(63.1)})[0] is False
    assert b.goal_dropout({**ok, "dropout{zte}": _line(88.1)})[0] is False
    assert b.goal_dropout({k: v for k, v in ok.items() if k != "dropout{t1}"})[0] is None
    assert b.reference("dropout-0.25{t1,zte}") == "t1+zte" and b.reference("dropout{t1}") == "t1"
    rows = {r.name: r for r in b.ROWS}
    assert [n for n, _ in rows["dropout"].lines()] == ["dropout{t1,zte}", "dropout{t1}", "dropout{zte}"]
    assert rows["t1+zte"].lines() == [("t1+zte", ("t1", "zte"))]


def test_rows_tiny(tmp_path: Path) -> None:
    """Every row for 4 epochs on 32-px phantoms of 4 subjects: the same steps each, the dropout model scored three
    times, each line's MAE and bone MAE those of its own predictions against the scored subject's CT."""
    b = _bench()
    out = io.StringIO()
    console = Console(file=out, width=250)
    rows = [r for r in b.ROWS if r.name != "dropout-0.25"]  # (the same kind of row as dropout)
    results, ids = b.benchmark(rows, tmp_path, 4, console, size=32, n_subjects=4, extra=TINY_NETS)
    assert list(results) == ["t1", "zte", "t1+zte", "dropout{t1,zte}", "dropout{t1}", "dropout{zte}"]
    assert len(ids) == 1
    steps = {r["steps"] for r in results.values()}
    assert len(steps) == 1 and all(r["epochs"] == 4 for r in results.values())
    family = tmp_path / f"scoring-seed{b.SCORING_SEED}-zte"
    target = load_volume(family / ids[0] / "ct.nii.gz").data
    mask = load_volume(family / ids[0] / "mask.nii.gz").data > 0
    window = RULES["synthrad2023"].window
    predictions = {}
    for name, r in results.items():
        assert "skipped" not in r, (name, r.get("skipped"))
        pred = load_volume(tmp_path / "eval" / name / "scored" / f"{ids[0]}_ct.nii.gz").data
        predictions[name] = pred
        assert r["scored"]["mean"]["mae"] == pytest.approx(mae(pred, target, mask, window), rel=1e-5)
        assert r["scored"]["mean"]["mae_bone"] == pytest.approx(tissue_mae(pred, target, mask, window)["mae_bone"],
                                                                rel=1e-5)  # fmt: skip
        config = json.loads((Path(r["run_dir"]) / "config.json").read_text())["data"]
        assert config["src"] == ",".join(b.ROWS[[x.name for x in b.ROWS].index(r["row"])].sources)
    # one dropout model, three different inputs: three different translations
    assert results["dropout{t1}"]["run_dir"] == results["dropout{zte}"]["run_dir"]
    assert (predictions["dropout{t1}"] != predictions["dropout{zte}"]).any()
    assert (predictions["dropout{t1}"] != predictions["dropout{t1,zte}"]).any()
    table = b.table_of(results, "t")
    assert [c.header for c in table.columns] == b.COLUMNS and table.row_count == 6
    cells = {c.header: list(c.cells) for c in table.columns}
    assert cells["inputs"] == ["t1", "zte", "t1+zte", "t1+zte", "t1", "zte"]
    ratio = results["t1+zte"]["scored"]["mean"]["mae"] / results["t1"]["scored"]["mean"]["mae"]
    assert cells["MAE / ref"][2] == format(ratio, ".3f") and cells["MAE / ref"][0] == "–"
    b.report(results, ids, 4, console)
    printed = out.getvalue()
    assert "goal 1 (T1 + ZTE" in printed and "goal 2 (dropout" in printed and "not measured" not in printed
