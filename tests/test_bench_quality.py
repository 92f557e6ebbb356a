"""bench/quality.py: its rules (skips, reuse, the best combination) and one tiny row end to end (~15 s)."""

from __future__ import annotations

import doctest
import importlib.util
import io
import sys
from pathlib import Path

import torch
from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent


def _quality():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("bench_quality", ROOT / "bench" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (its dataclasses look their module up)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _ctx(q, data: Path, work: Path) -> dict:  # noqa: ANN001
    tiny = {"depth": 3, "filters": 4, "disc_filters": 4, "disc_layers": 2, "image_size": 32, "batch_size": 4}
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
