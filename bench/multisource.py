"""Many-to-one synthesis: T1 -> CT, ZTE -> CT, T1 + ZTE -> CT and an input-dropout model given each subset of its
inputs, at an equal training length (issue 20).

T1 shows cortical bone and air both dark; the ZTE-like MR (``pix2gan phantoms --zte``) shows bone intermediate and
air dark. Each row trains one model on the same phantom family (``TRAIN_SEED``, written with ``--zte``), then
translates held-out subjects of another family (``SCORING_SEED``) and scores them against their CT::

    row | inputs | MAE | air | soft | bone | PSNR | SSIM | NPS | LSD dB | sharp | sharp bone | W1 HU | MAE / ref |
        | bone / ref | epochs | steps | train s | time x | val MAE

================  ==================================================================================================
t1                ``pix2gan train --src t1 --dst ct`` (the paired default): the reference of the first goal
zte               ``--src zte``
t1+zte            ``--src t1,zte``: both as channels (2 (2K + 1) inputs), D judges both centre slices with the CT
dropout           ``--src t1,zte --input-dropout 0.5``: each source zero-filled with probability 0.5 in training
                  (never both), one availability channel per source; scored three times: given t1 and zte, t1 only
                  and zte only (the lines ``dropout{t1,zte}``, ``dropout{t1}``, ``dropout{zte}``). Its items hold
                  both sources 25 % of the time, t1 alone 37.5 %, zte alone 37.5 %
dropout-0.25      the same with 0.25: both 56 %, each alone 22 %; the trade between the subsets (not a goal's row)
================  ==================================================================================================

**Goals** (the issue's), printed with their numbers under the table:

1. T1 + ZTE: MAE at least 25 % below T1 -> CT's, bone MAE at least 35 % below (:func:`goal_two_sources`);
2. the dropout model within 5 % of the t1+zte model's MAE with both inputs, and within 10 % of each dedicated
   one-source model's with one (:func:`goal_dropout`).

**Equal training.** Every row trains ``--epochs N`` epochs (default :data:`DEFAULT_EPOCHS`, about 3 minutes of the
t1 row on 2 quiet cores), so all make the same steps of the same batches of crops (a run's crops and batch order
come from its seed) with the same schedule (the paired default's warm-up switches after the same epoch). A second
source only widens the generator's first convolution and the discriminator's, so a step costs about the same:
``train s`` is what each took and ``time x`` its ratio to the t1 row's, measured in the same run (on a machine
shared with other work the times are noisy, the steps are not). Equal steps rather than ``--minutes`` per row keep
the rows comparable when something else runs on the cores, which would make each row's first epoch, and so the
length ``--minutes`` settles from it, differ.

**What is scored.** The scored subjects are the test split (:func:`unpaired.scored_ids`) of family ``SCORING_SEED``,
never trained on, the same for every row; SynthRAD 2023 rules (MAE in HU inside the body mask; per tissue of the
CT: air < -200 HU, soft tissue -200..200, bone > 200), PSNR, SSIM, and the realism columns of
``bench/quality.py``. ``val MAE`` is each row's own validation subject of the training family, the only figure to
tune by; nothing here was tuned (every row takes the library's paired defaults; the dropout probability is
MM-GAN's).

Usage::

    python bench/multisource.py [--epochs 150] [--only t1,t1+zte] [--threads 2] [--device cpu] [--size 128]
                                [--subjects 14] [--work DIR [--reuse]] [--json out.json]

``--epochs 4 --size 64 --subjects 6`` is a smoke run (the default warm-up needs 4 epochs or more). ``--work DIR
--reuse`` scores again the runs an earlier call trained in ``DIR`` with the same configuration (the phantoms are
kept there too).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import quality  # noqa: E402  (bench/quality.py: phantom families, configurations, timed training, realism columns)
import unpaired  # noqa: E402  (bench/unpaired.py: the scored subjects, scoring views and scoring)

TRAIN_SEED = quality.TRAIN_SEED
SCORING_SEED = quality.HELDOUT_SEED
DEFAULT_EPOCHS = 150  # about 3 minutes of the t1 row at 128 px on 2 quiet cores (88 steps of 4 crops an epoch)
SOURCES = ("t1", "zte")
DROPOUT = 0.5  # MM-GAN trains on random subsets; 0.5 drops each of two sources a third of the time (never both)
GOAL_MAE, GOAL_BONE = 0.25, 0.35  # goal 1: T1 + ZTE this much below T1 alone (MAE, bone MAE)
GOAL_BOTH, GOAL_ONE = 0.05, 0.10  # goal 2: the dropout model within this of the dedicated models


@dataclass
class Row:
    """A model (its flat options over the paired defaults) and the subsets of its sources it is scored with."""

    name: str
    what: str
    options: dict[str, Any] = field(default_factory=dict)
    scored_with: tuple[tuple[str, ...], ...] = ()

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self.options["src"].split(","))

    def lines(self) -> list[tuple[str, tuple[str, ...]]]:
        """(line name, sources given) of each scoring of this row's model."""
        if not self.scored_with:
            return [(self.name, self.sources)]
        return [(f"{self.name}{{{','.join(s)}}}", s) for s in self.scored_with]


ROWS = [
    Row("t1", "T1 -> CT (the paired default)", {"src": "t1"}),
    Row("zte", "ZTE -> CT", {"src": "zte"}),
    Row("t1+zte", "T1 + ZTE -> CT, both as channels", {"src": "t1,zte"}),
    Row("dropout", f"T1 + ZTE -> CT, input dropout {DROPOUT:g}", {"src": "t1,zte", "input_dropout": DROPOUT},
        (("t1", "zte"), ("t1",), ("zte",))),
    Row("dropout-0.25", "T1 + ZTE -> CT, input dropout 0.25 (both given more often: 56 % of items, against 25 %)",
        {"src": "t1,zte", "input_dropout": 0.25}, (("t1", "zte"), ("t1",), ("zte",))),
]
ROW_NAMES = [r.name for r in ROWS]
REFERENCE_OF_SUBSET = {"{t1,zte}": "t1+zte", "{t1}": "t1", "{zte}": "zte"}  # a dropout model's line -> dedicated model


def reference(line: str) -> str | None:
    """The line a line's MAE is compared with: t1 for t1+zte, the dedicated model of the same inputs for a dropout
    model's line.

    Example:
        >>> reference("t1+zte"), reference("dropout-0.25{zte}"), reference("t1")
        ('t1', 'zte', None)
    """
    if line == "t1+zte":
        return "t1"
    subset = line[line.find("{"):] if "{" in line else ""
    return REFERENCE_OF_SUBSET.get(subset)

METRICS = {"mae": ("MAE", ".1f"), "mae_air": ("air", ".1f"), "mae_soft": ("soft", ".1f"), "mae_bone": ("bone", ".1f"),
           "psnr": ("PSNR", ".2f"), "ssim": ("SSIM", ".4f")}  # fmt: skip


def score(run_dir: Path, view: Path, out: Path, device: str, sources: tuple[str, ...]) -> dict[str, Any]:
    """The run's model scored on a scoring view (:func:`unpaired.scoring_view`) given ``sources`` only."""
    from pix2gan.evaluation import evaluate_run
    from pix2gan.runs import RunLayout

    report = evaluate_run(view, checkpoint=RunLayout(run_dir).model_checkpoint(), data_root=view.parent / "data",
                          split="test", out_dir=out, baseline=False, device=device, sources=sources)  # fmt: skip
    d = report.to_dict()
    return {"mean": d["mean"], "per_subject": d["per_subject"]}


def run_row(row: Row, ctx: dict[str, Any], console: Console) -> list[dict[str, Any]]:
    """Train ``row`` for ``ctx["epochs"]`` and score it with each subset of its sources; one result per line."""
    cfg = quality.build_config(row.options, ctx["common"], 1.0).with_options(epochs=ctx["epochs"])  # (not by time)
    run_dir = ctx["work"] / "runs" / row.name
    timing = run_dir / "bench_train.json"  # the training's figures, for --reuse
    if ctx.get("reuse") and timing.is_file() and json.loads(timing.read_text())["config"] == cfg.to_dict():
        t = json.loads(timing.read_text())["train"]
        console.print(f"  {row.name}: trained by an earlier run of the same configuration (--reuse)", highlight=False)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
        t = quality.train(cfg, run_dir)
        timing.write_text(json.dumps({"config": cfg.to_dict(), "train": t}, default=str))
    ctx.setdefault("reference_s", t["loop_s"])  # the first row's time
    results = []
    for line, sources in row.lines():
        out: dict[str, Any] = {"name": line, "row": row.name, "what": row.what, "options": row.options,
                               "sources": list(sources), "epochs": t["epochs"], "steps": t["steps"],
                               "loop_s": t["loop_s"], "time_x": t["loop_s"] / ctx["reference_s"],
                               "run_dir": str(run_dir)}  # fmt: skip
        ev = ctx["work"] / "eval" / line
        out["scored"] = score(run_dir, ctx["view"], ev / "scored", ctx["device"], sources)
        val_ids = json.loads((run_dir / "split.json").read_text()).get("val", [])
        if val_ids:
            val_view = unpaired.scoring_view(ctx["train_set"], val_ids, ctx["work"] / "views" / f"val-{line}", SOURCES)
            out["val"] = score(run_dir, val_view, ev / "val", ctx["device"], sources)
        m, val = out["scored"]["mean"], out.get("val", {}).get("mean", {}).get("mae", math.nan)
        console.print(f"  {line}: {t['epochs']} epochs, {t['steps']} steps, train {t['loop_s']:.0f} s "
                      f"({out['time_x']:.2f}x t1's); MAE {m.get('mae', math.nan):.1f} HU, bone "
                      f"{m.get('mae_bone', math.nan):.1f} (val {val:.1f})", highlight=False)  # fmt: skip
        results.append(out)
    return results


def guarded(row: Row, ctx: dict[str, Any], console: Console) -> list[dict[str, Any]]:
    """:func:`run_row`, a failure reported as the row's reason instead of ending the benchmark."""
    try:
        return run_row(row, ctx, console)
    except Exception as exc:  # noqa: BLE001
        first = str(exc).splitlines()[0] if str(exc) else ""
        console.print(f"  [yellow]{row.name}: failed: {type(exc).__name__}: {first}", highlight=False)
        return [{"name": line, "row": row.name, "what": row.what, "skipped": f"failed: {type(exc).__name__}: {first}"}
                for line, _ in row.lines()]  # fmt: skip


def value(results: dict[str, dict[str, Any]], name: str, key: str = "mae") -> float | None:
    """A scored mean figure of line ``name``, None when it did not run."""
    v = results.get(name, {}).get("scored", {}).get("mean", {}).get(key)
    return float(v) if v is not None and math.isfinite(v) else None


def goal_two_sources(results: dict[str, dict[str, Any]]) -> tuple[bool | None, str]:
    """Goal 1: T1 + ZTE's MAE at least 25 % below T1's, bone MAE at least 35 % below.

    Example:
        >>> r = {"t1": {"scored": {"mean": {"mae": 100.0, "mae_bone": 300.0}}},
        ...      "t1+zte": {"scored": {"mean": {"mae": 70.0, "mae_bone": 180.0}}}}
        >>> goal_two_sources(r)  # doctest: +ELLIPSIS
        (True, 'goal 1 (...): met: MAE 70.0 vs 100.0 HU (30.0 % lower), bone 180.0 vs 300.0 HU (40.0 % lower)')
    """
    head = f"goal 1 (T1 + ZTE: MAE >= {100 * GOAL_MAE:g} % below T1, bone >= {100 * GOAL_BONE:g} % below)"
    both, one = value(results, "t1+zte"), value(results, "t1")
    bone_both, bone_one = value(results, "t1+zte", "mae_bone"), value(results, "t1", "mae_bone")
    if None in (both, one, bone_both, bone_one):
        return None, f"{head}: not measured (needs the rows t1 and t1+zte)"
    lower, bone_lower = 1 - both / one, 1 - bone_both / bone_one  # type: ignore[operator]
    met = lower >= GOAL_MAE and bone_lower >= GOAL_BONE
    return met, (f"{head}: {'met' if met else 'NOT met'}: MAE {both:.1f} vs {one:.1f} HU ({100 * lower:.1f} % lower), "
                 f"bone {bone_both:.1f} vs {bone_one:.1f} HU ({100 * bone_lower:.1f} % lower)")  # fmt: skip


def goal_dropout(results: dict[str, dict[str, Any]]) -> tuple[bool | None, str]:
    """Goal 2: the dropout model within 5 % of t1+zte with both inputs, within 10 % of t1 / zte with one.

    Example:
        >>> r = {n: {"scored": {"mean": {"mae": v}}} for n, v in [("t1", 100.0), ("zte", 80.0), ("t1+zte", 60.0),
        ...      ("dropout{t1,zte}", 62.0), ("dropout{t1}", 105.0), ("dropout{zte}", 90.0)]}
        >>> goal_dropout(r)[0], goal_dropout(r)[1].split(": ")[2]
        (False, 'both 62.0 vs 60.0 HU (+3.3 %), t1 105.0 vs 100.0 HU (+5.0 %), zte 90.0 vs 80.0 HU (+12.5 %)')
    """
    head = (f"goal 2 (dropout model within {100 * GOAL_BOTH:g} % of t1+zte, {100 * GOAL_ONE:g} % of each one-input "
            f"model)")  # fmt: skip
    parts, met = [], True
    for line, label, limit in (("dropout{t1,zte}", "both", GOAL_BOTH), ("dropout{t1}", "t1", GOAL_ONE),
                               ("dropout{zte}", "zte", GOAL_ONE)):  # fmt: skip
        got, ref = value(results, line), value(results, reference(line))  # type: ignore[arg-type]
        if got is None or ref is None:
            return None, f"{head}: not measured (needs {line} and {reference(line)})"
        parts.append(f"{label} {got:.1f} vs {ref:.1f} HU ({100 * (got / ref - 1):+.1f} %)")
        met = met and got <= (1 + limit) * ref
    return met, f"{head}: {'met' if met else 'NOT met'}: {', '.join(parts)}"


def ratio(results: dict[str, dict[str, Any]], name: str, ref: str, key: str = "mae") -> float | None:
    """Line ``name``'s figure ``key`` over line ``ref``'s (None when either is missing)."""
    a, b = value(results, name, key), value(results, ref, key)
    return a / b if a is not None and b else None


def goals(results: dict[str, dict[str, Any]]) -> list[tuple[bool | None, str]]:
    return [goal_two_sources(results), goal_dropout(results)]


COLUMNS = ["line", "inputs", *(h for h, _ in METRICS.values()), *(h for h, _ in quality.REALISM_COLUMNS.values()),
           "MAE / ref", "bone / ref", "epochs", "steps", "train s", "time x", "val MAE"]  # fmt: skip


def table_of(results: dict[str, dict[str, Any]], title: str) -> Table:
    """One line per scoring (a skipped one: dashes)."""
    fmt = quality.fmt
    table = Table(title=title)
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in ("line", "inputs") else "right")
    for name, r in results.items():
        if "skipped" in r:
            table.add_row(f"{name} [dim]{r['skipped']}[/]", *["–"] * (len(COLUMNS) - 1))
            continue
        m, ref = r["scored"]["mean"], reference(name)
        rel, bone = (ratio(results, name, ref, key) if ref else None for key in ("mae", "mae_bone"))
        table.add_row(name, "+".join(r["sources"]), *(fmt(m.get(k), spec) for k, (_, spec) in METRICS.items()),
                      *quality.realism_cells(m), fmt(rel, ".3f"), fmt(bone, ".3f"), str(r["epochs"]), str(r["steps"]),
                      fmt(r["loop_s"], ".0f"), fmt(r["time_x"], ".2f"),
                      fmt(r.get("val", {}).get("mean", {}).get("mae"), ".1f"))  # fmt: skip
    return table


def benchmark(rows: list[Row], work: Path, epochs: int, console: Console, *, size: int = quality.SIZE,
              n_subjects: int = quality.N_SUBJECTS, device: str = "cpu", threads: int = 2,
              extra: dict[str, Any] | None = None,
              reuse: bool = False) -> tuple[dict[str, dict[str, Any]], list[str]]:  # fmt: skip
    """Write the phantoms into ``work``, train ``rows`` for ``epochs`` each and score them; the results by line name
    and the scored subjects. ``extra``: flat options every row adds (the tests' tiny networks); ``reuse``: keep a
    row's run in ``work`` trained by an earlier call with the same configuration (to score again)."""
    t0 = time.perf_counter()
    train_set = quality.phantom_family(work / f"train-seed{TRAIN_SEED}-zte", TRAIN_SEED, n_subjects, size, zte=True)
    family = quality.phantom_family(work / f"scoring-seed{SCORING_SEED}-zte", SCORING_SEED, n_subjects, size, zte=True)
    ids = unpaired.scored_ids(sorted(p.name for p in family.iterdir() if p.is_dir()))
    view = unpaired.scoring_view(family, ids, work / "views" / "scored", SOURCES)
    console.print(f"  phantoms with ZTE: training family seed {TRAIN_SEED}, scored: seed {SCORING_SEED} subjects "
                  f"{', '.join(ids)} ({time.perf_counter() - t0:.0f} s)", highlight=False)  # fmt: skip
    ctx = {"work": work, "device": device, "epochs": epochs, "reuse": reuse, "train_set": train_set, "view": view,
           "common": {"dst": "ct", "data": str(train_set), "device": device, "threads": threads,
                      "checkpoint_minutes": 0, "keep_last": 1, **(extra or {})}}  # fmt: skip
    results = {}
    for row in rows:
        results.update({r["name"]: r for r in guarded(row, ctx, console)})
    return results, ids


def report(results: dict[str, dict[str, Any]], ids: list[str], epochs: int, console: Console) -> None:
    """Print the table, the goals' lines and what the ratio columns mean."""
    title = (f"scored: family seed {SCORING_SEED}, subjects {', '.join(ids)} (SynthRAD 2023: MAE in HU in the mask, "
             f"per tissue of the CT); every row {epochs} epochs on family seed {TRAIN_SEED}")  # fmt: skip
    console.print(table_of(results, title))
    for _, line in goals(results):
        console.print(line, highlight=False)
    console.print("[dim]MAE / ref, bone / ref: over t1 (t1+zte), t1+zte (dropout{t1,zte}), t1 (dropout{t1}), zte "
                  "(dropout{zte}); time x: training time over the t1 row's; val MAE: the row's validation subject of "
                  "the training family (the figure to tune by)[/]", highlight=False)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="training epochs of every row")
    quality.phantom_bench_arguments(parser, ROW_NAMES)
    parser.add_argument("--reuse", action="store_true", help="with --work: score the runs an earlier call trained "
                        "there with the same configuration instead of training them again")  # fmt: skip
    args = parser.parse_args()
    only = quality.selected_rows(parser, args.only, ROW_NAMES)
    if args.epochs <= 0:
        parser.error("--epochs must be > 0")
    device, console, name = quality.bench_session(args.threads, args.device)
    with quality.work_folder(args.work, "pix2gan-multisource-") as work:
        t_start = time.perf_counter()
        console.print(f"[bold]bench/multisource.py[/] on {name}, torch {torch.__version__}: rows {', '.join(only)}, "
                      f"{args.epochs} epochs each; {args.subjects} subjects of {args.size} px per family; work folder "
                      f"{work}", highlight=False)  # fmt: skip
        results, ids = benchmark([r for r in ROWS if r.name in only], work, args.epochs, console, size=args.size,
                                 n_subjects=args.subjects, device=str(device), threads=args.threads,
                                 reuse=args.reuse)  # fmt: skip
    report(results, ids, args.epochs, console)
    total = time.perf_counter() - t_start
    console.print(f"[dim]{total:.0f} s in all ({total / 60:.1f} min)[/]", highlight=False)
    if args.json:
        meta = {"epochs": args.epochs, "threads": torch.get_num_threads(), "device": str(device),
                "torch": torch.__version__, "train_seed": TRAIN_SEED, "scoring_seed": SCORING_SEED, "scored": ids,
                "size": args.size, "subjects": args.subjects, "dropout": DROPOUT,
                "goals": [{"met": met, "line": line} for met, line in goals(results)], "total_s": total}  # fmt: skip
        args.json.write_text(json.dumps({"meta": meta, "rows": results}, indent=1, default=str))


if __name__ == "__main__":
    main()
