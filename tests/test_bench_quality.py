"""bench/quality.py: its rules (skips, reuse, the best combination) and one tiny row end to end (~15 s)."""

from __future__ import annotations

import doctest
import io
from pathlib import Path

import torch
from rich.console import Console

from helpers import TINY_NETS, load_bench



def _quality():  # noqa: ANN202
    return load_bench("quality")


def _ctx(q, data: Path, work: Path) -> dict:  # noqa: ANN001
    tiny = TINY_NETS
    return {"work": work, "device": "cpu", "minutes": 0.01, "plain_seconds": 0.1, "train_data": data,
            "heldout": {"tiny": data}, "lut": {},
            "common": {"data": str(data), "device": "cpu", "threads": 2, "checkpoint_minutes": 0, "keep_last": 1, **tiny}}  # fmt: skip


def test_rules(tiny_data: Path, tmp_path: Path) -> None:
    q = _quality()
    assert doctest.testmod(q).failed == 0  # combine_best's example
    console = Console(file=io.StringIO())
    ctx = _ctx(q, tiny_data, tmp_path)
    out = q.run_row("x", "x", {"no_such_option": 1}, {}, ctx, {}, console)
    assert "unknown option" in out["skipped"]
    out = q.run_row("y", "y", {}, {"no_such_keyword": True}, ctx, {}, console)
    assert "evaluate_run takes no no_such_keyword=" in out["skipped"]
    assert not (tmp_path / "runs").exists()  # skipped before anything is trained
    assert {r.name for r in q.ROWS} >= {"default", "context", "planes", "tta", "mask-ssim", "resnet", "no-gan",
                                        "whole-slices", "bf16", "l1-1000"}  # fmt: skip


def test_tiny_row(tiny_data: Path, tmp_path: Path) -> None:
    q = _quality()
    torch.set_num_threads(2)
    out = q.run_row("default", "today's default", {}, {}, _ctx(q, tiny_data, tmp_path), {}, Console(file=io.StringIO()))
    assert "skipped" not in out, out.get("skipped")
    assert out["steps"] >= 1 and out["images_per_s"] > 0 and out["plain_images_per_s"] > 0
    assert 0 < out["heldout"]["tiny"]["mean"]["mae"] < 4024
    mean = out["heldout"]["tiny"]["mean"]
    assert {"nps_ratio", "nps_lsd", "sharpness", "sharpness_bone", "hu_w1"} <= set(mean) and mean["sharpness"] > 0
    table = q.table_for("tiny", "t", {"default": out}, None)
    assert table.row_count == 1
    assert [c.header for c in table.columns][-5:] == ["NPS", "LSD dB", "sharp", "sharp bone", "W1 HU"]
    assert list(table.columns[-1].cells) == [format(mean["hu_w1"], ".1f")]


def test_adversarial_rows_are_the_recommended_regression_plus_their_change(tiny_data: Path) -> None:
    q = _quality()
    common = {"data": str(tiny_data), "device": "cpu"}
    rows = {r.name: r for r in q.ROWS}
    # REGRESSION pins the paired default before issue 18 (what --gan-loss none gives today); the default now is
    # the row the benchmark chose (DIAL_OF): the same training and inference as no option at all
    chosen = q.build_config(rows[q.DIAL_OF].options, common, 8)
    library = q.build_config({}, common, 8)
    assert q.training_key(chosen) == q.training_key(library) and not q.infer_differences(chosen, library)
    regression = q.build_config(q.REGRESSION, common, 8)
    assert q.training_key(regression) == q.training_key(q.build_config({"gan_loss": "none"}, common, 8))
    for name in ("gan", "warmup-0.25", "warmup-0.5", "warmup-0.75", "warmup-0.5-lrgan-2e-4", "warmup-0.5-l1-10",
                 "warmup-0.5-l1-1000", "warmup-0.75-l1-10", "dial-0", "dial-0.25", "dial-0.5", "dial-0.75",
                 "dial-1"):  # fmt: skip
        row = rows[name]
        assert row.base == "regression" and name in q.ROW_NAMES and name not in q.SINGLE  # "best" merges over PIX2PIX
        cfg = q.build_config(row.options, common, 8)  # the library takes every row's options
        assert cfg.data.context == 2 and cfg.infer.tta and cfg.train.gan_loss.value == "lsgan"
    train = {n: q.build_config(rows[n].options, common, 8).train for n in rows if rows[n].base == "regression"}
    assert [train[f"warmup-{f}"].gan_warmup for f in ("0.25", "0.5", "0.75")] == [0.25, 0.5, 0.75]
    assert train["gan"].gan_warmup == 0 and train["gan"].lr == 2e-4
    assert (train["warmup-0.5"].lr, train["warmup-0.5"].lr_d, train["warmup-0.5"].lr_gan) == (1e-3, 2e-4, None)
    assert train["warmup-0.5-lrgan-2e-4"].lr_gan == 2e-4
    assert [train[f"warmup-0.5-l1-{v}"].lambda_l1 for v in (10, 1000)] == [10.0, 1000.0]
    assert (train["warmup-0.75-l1-10"].gan_warmup, train["warmup-0.75-l1-10"].lambda_l1) == (0.75, 10.0)
    # the dial: one run (the chosen row's training) evaluated at five realism values, which evaluate_run takes
    warm = chosen
    for a in (0, 0.25, 0.5, 0.75, 1):
        row = rows[f"dial-{a}"]
        assert row.infer == {"realism": float(a)} and not q.unsupported_infer(row.infer)
        cfg = q.build_config(row.options, common, 8)
        assert q.training_key(cfg) == q.training_key(warm) and q.infer_differences(cfg, warm) <= set(row.infer)


def test_pareto_front() -> None:
    q = _quality()
    # lower is better on both: (3, 3) is dominated by (2, 3) (equal y, lower x); equal points both stay
    points = {"mae-best": (1.0, 9.0), "a": (2.0, 3.0), "a-again": (2.0, 3.0), "worse-x": (3.0, 3.0),
              "lsd-best": (8.0, 1.0), "inside": (5.0, 5.0), "nan": (0.5, float("nan"))}  # fmt: skip
    assert q.pareto_front(points) == ["mae-best", "a", "a-again", "lsd-best"]


def test_perception_distortion_figure(tmp_path: Path) -> None:
    q = _quality()

    def row(mae: float, lsd: float | None, **extra: object) -> dict:
        mean = {"mae": mae, **({"nps_lsd": lsd} if lsd is not None else {})}
        return {"heldout": {"s1": {"mean": mean}, "s2": {"mean": mean}}, "infer": {}, "base": "regression", **extra}

    dial = {f"dial-{a:g}": row(55 + 15 * a, 9 - 6 * a, infer={"realism": a}) for a in (0.0, 0.5, 1.0)}
    results = {"default": row(90.0, 4.0, base="pix2pix"), "pix2gan": row(55.0, 9.0, base="library"),
               "warmup-0.5": row(70.0, 3.0), "skipped": {"skipped": "why"}, **dial}  # fmt: skip
    path = tmp_path / "figs" / "pd.png"
    assert q.perception_distortion_figure(results, {"s1": {"mae": 170.0, "nps_lsd": 5.0}, "s2": None}, path, "note")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    points = q.figure_points(results, "s1", {"mae": 170.0, "nps_lsd": 5.0})
    assert set(points) == set(results) - {"skipped"} | {"lookup table"} and points["dial-0.5"] == (62.5, 6.0)
    # no row with both figures (e.g. MR targets: no realism figures): nothing written
    assert not q.perception_distortion_figure({"x": row(50.0, None)}, {"s1": None}, tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
