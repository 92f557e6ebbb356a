"""Synthesis quality per configuration at an equal wall-clock training budget (issue 10).

Every configuration trains for the same wall-clock time on phantoms it has never been scored on, then its held-out
subjects are translated and scored with the SynthRAD rules (MAE in HU inside the body mask, also per tissue class;
PSNR; SSIM) and the realism figures beside them (issue 18). One table per held-out set:

    configuration | steps | train s | img/s | vs plain | MAE | air | soft | bone | PSNR | SSIM | MAE vs 2-D
                  | NPS | LSD dB | sharp | sharp bone | W1 HU

* **steps**: optimisation steps the configuration got in its budget (epochs x steps per epoch).
* **img/s, vs plain**: training images per second of the row's own run (the time of its steps: epoch time minus
  the per-epoch validation), and that rate over a straightforward fp32 pix2pix loop (G forward, D update, G update,
  Adam's default for-each implementation, NCHW, eager, random crops from memory) with the *same* generator and
  discriminator (input channels included) and batch size, timed in this process right after the row's training (its
  best 1-s window after 1 s of warm-up). The plain loop always runs the full adversarial step, so ``no-gan`` shows
  what dropping D buys. Both are wall-clock figures: run the benchmark on an otherwise idle machine (two processes
  with 2 OpenMP threads each on 2 cores slow each other down far more than 2x).
* **MAE vs 2-D**: the row's MAE over the ``default`` row's MAE (today's 2-D pix2pix configuration); < 1 is better.
* **NPS, LSD dB, sharp, sharp bone, W1 HU**: the realism figures of ``pix2gan eval``
  (:mod:`pix2gan.evaluation.realism`), means over the held-out subjects: noise power of the prediction over the real
  CT's on soft-tissue squares (1 as noisy, < 1 smoother), the log-spectral distance of their noise power spectra (dB,
  0 best), gradient magnitude over the real CT's in the body and at bone edges (1 as sharp), and the Wasserstein-1
  distance of the HU values in the body (HU, 0 best). Distortion rewards the conditional mean; these show what it
  costs in texture (an L1-only row is expected to score lower NPS and sharpness than an adversarial one).

Usage::

    python bench/quality.py [--minutes 2] [--only default,context,...] [--threads 2] [--device cpu]
                            [--work DIR] [--keep] [--json out.json] [--figure pd.png]

With the defaults (2 minutes of training per row) the whole benchmark takes about an hour on 2 CPU cores (estimated,
not yet timed with the adversarial rows: about 19 trainings and the dial's 5 evaluations): per row the training
(sized by ``train --minutes``), a few seconds of the plain loop, and three evaluations.
``--minutes 0.1 --only default,resnet,l1-1000`` is a smoke run of 2-3 minutes.

Rows (each is the 2-D pix2pix configuration, pinned in :data:`PIX2PIX`, plus the change named, unless it says
otherwise):

==============  ====================================================================================================
default         2-D pix2pix, the default before issue 10: U-Net depth 5 / 16 filters, PatchGAN, 64-px crops, batch
                4, LSGAN + 100 x L1, lr 2e-4, dropout, one plane, no context, no TTA
context         + 2.5-D context: ``context=2`` (2 neighbouring slices on each side as extra input channels)
planes          + the three planes: ``planes=(axial, coronal, sagittal)``, predictions fused with ``fusion=mean``
tta             + test-time augmentation: ``tta=True`` (left-right mirrored prediction averaged in). Its training is
                the default's (``tta`` only records the recommended inference), so it reuses the default's weights
mask-ssim       + ``mask_weight=0.95`` (L1 weighted to the body mask) and ``lambda_ssim=1.0`` (SSIM loss term)
resnet          the ResNet generator: ``generator=resnet9``
no-gan          no adversarial term: ``gan_loss=none`` (pure L1 regression, no discriminator)
whole-slices    whole 128 x 128 slices instead of 64-px random crops: ``image_size=128``
bf16            bf16 autocast: ``precision=bf16``; only on CPUs with native bf16 (``avx512_bf16`` / ``amx_bf16``
                flags), skipped with a note elsewhere
l1-1000         ``lambda_l1=1000``
lr-1e-3         ``lr=1e-3``
no-dropout      ``dropout=False``
best            the changes of every row above that beat ``default`` on the *validation* subject, merged (on a
                clash the better row's value wins), then trained and evaluated like the others
pix2gan         the library's defaults today, no option given (what ``pix2gan train --src t1 --dst ct`` does)
==============  ====================================================================================================

The adversarial rows of issue 18 come last; each is the library's recommended paired configuration, pinned in
:data:`REGRESSION` (``gan_loss=none``, ``context=2``, ``tta=True``, ``lr=1e-3``, the rest as :data:`PIX2PIX`; what the
``pix2gan`` row trains today), plus the change named:

==================  ================================================================================================
gan                 ``gan_loss=lsgan, lr=2e-4``: LSGAN + 100 x L1 from the first step, G and D at pix2pix's lr
regression          :data:`REGRESSION` itself, unchanged: the best pure-regression row, the reference of the goal
warmup-0.25         ``gan_loss=lsgan, gan_warmup=0.25, lr=1e-3, lr_d=2e-4``: regression alone for 0.25 of the time
                    (its own schedule: constant, then linear decay to 0), then the adversarial term with G's
                    schedule started again (what ``pix2gan train --gan-warmup 0.25 --minutes M`` does: each phase's
                    epochs settled from the time of its own first epoch)
warmup-0.5          the same with ``gan_warmup=0.5``
warmup-0.75         the same with ``gan_warmup=0.75``
warmup-0.5-lrgan-2e-4
                    warmup-0.5 with ``lr_gan=2e-4``: G at pix2pix's learning rate after the switch (1e-3 before)
warmup-0.5-l1-10    warmup-0.5 with ``lambda_l1=10`` (the L1 weight of both phases; in the warm-up it only scales
                    the loss, which Adam nearly ignores)
warmup-0.5-l1-1000  warmup-0.5 with ``lambda_l1=1000``
warmup-0.75-l1-10   warmup-0.75 with ``lambda_l1=10``
dial-A              the weights of the row ``--dial-of`` names (default warmup-0.5), not retrained (the same
                    training), evaluated with ``realism=A`` for
                    A = 0, 0.25, 0.5, 0.75, 1: (1 - A) x the generator at the switch + A x the final one
==================  ================================================================================================

**Perception-distortion figure** (``--figure PATH``; by default ``bench/perception_distortion.png`` when every row
runs, none with ``--only``): one panel per held-out set, the MAE (HU) against the NPS log-spectral distance (dB) of
every row and of the lookup table, both lower-is-better (the best corner is the lower left); the Pareto front (the
rows no other row beats on both) is the dashed staircase and its rows' labels are bold; the dial rows are joined
by arrows from A = 0 to A = 1. ``--minutes 2.5 --only warmup-0.5,dial-0,dial-0.25,dial-0.5,dial-1 --figure
/tmp/pd.png`` is a smoke run of it (7 minutes on 2 busy cores; the dial rows evaluate warmup-0.5's weights).

A row whose options the library does not accept (``run_config`` raises ValueError, e.g. "unknown option(s)"), or
whose inference option ``evaluate_run`` does not take yet, is listed as skipped with the reason; the rest run.

**Nothing evaluated is ever trained on, and nothing is tuned on what it is scored on.** Training uses a phantom
family generated with seed ``TRAIN_SEED`` (the bundled ``samples/`` are seed 0; checked at start), split by subject
the normal way (train / val / test). Two held-out sets are scored:

(a) ``samples/``: the test-split subjects (the same ``sub-0NN`` names the run's ``split.json`` lists) of the bundled
    phantoms: another family (seed 0), so no anatomy, noise or bone density of it was seen in training;
(b) the test-split subjects of a third family, seed ``HELDOUT_SEED``.

The only data that steer a choice are the training family's validation subject(s): the loop picks ``best.pt`` by
validation MAE, and the ``best`` row picks its options by each row's validation MAE (scored with the row's
inference options). The held-out sets only ever receive finished models. Each table ends with the per-voxel
lookup-table baseline, fitted on the training-split subjects of that held-out folder (never the scored ones).

**Equal wall clock.** Each row trains with ``minutes=`` (``pix2gan train --minutes``): the loop times its own
epoch 1 (steps after the first two, and the validation) and settles ``epochs = max(1, round(60 * minutes /
epoch_time))`` once, its learning-rate schedule sized for that many (the run is the one ``--epochs`` that count
would train), so every row spends about ``--minutes`` in its training loop; ``train s`` shows the time it really
took (from the decoded data to the last checkpoint: one-off data decoding before the first step and the closing
report.html are not counted) and the row's line and ``--json`` its ratio to the budget (``budget_miss``).
Per-epoch checkpoints are kept (they are part of the loop), time-based ones are off (``checkpoint_minutes=0``) and no
validation panel is drawn (``panel_slices=0``), so the overhead is the same small per-epoch cost for every row.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import logging
import math
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TRAIN_SEED = 1  # phantom family trained on (the bundled samples/ are family 0)
HELDOUT_SEED = 2  # a third family, only ever evaluated
N_SUBJECTS, SIZE = 14, 128  # as the bundled samples
DEFAULT_MINUTES = 2.0
CLASS_KEYS = ("mae_air", "mae_soft", "mae_bone")
FIGURE = ROOT / "bench" / "perception_distortion.png"  # --figure's default for a run of every row
REALISM_COLUMNS = {"nps_ratio": ("NPS", ".3f"), "nps_lsd": ("LSD dB", ".2f"), "sharpness": ("sharp", ".3f"),
                   "sharpness_bone": ("sharp bone", ".3f"), "hu_w1": ("W1 HU", ".1f")}  # fmt: skip


# today's 2-D pix2pix default (before issue 10), pinned: the reference row and the base of every "+ X" row, so the
# rows keep measuring the same thing whatever the library's defaults become
PIX2PIX: dict[str, Any] = {"gan_loss": "lsgan", "gan_warmup": 0.0, "lambda_l1": 100.0, "lambda_ssim": 0.0, "context": 0, "planes": (),
                           "tta": False, "fusion": "mean", "lr": 2e-4, "dropout": True, "generator": "unet",
                           "image_size": 64, "batch_size": 4, "precision": "auto"}  # fmt: skip


# the library's recommended paired configuration today (issue 10: RECOMMENDED in pix2gan/config/flat.py, with its
# REGRESSION_LR; what the "pix2gan" row trains), pinned: the base of the adversarial rows of issue 18
REGRESSION: dict[str, Any] = {**PIX2PIX, "gan_loss": "none", "context": 2, "tta": True, "lr": 1e-3}
BASES = {"pix2pix": PIX2PIX, "regression": REGRESSION}


@dataclass
class Row:
    name: str
    what: str
    change: dict[str, Any] = field(default_factory=dict)  # flat options of run_config("paired", ...) over the base
    infer: dict[str, Any] = field(default_factory=dict)  # keyword arguments of evaluate_run
    needs: str | None = None  # a capability the row needs ("bf16")
    library_defaults: bool = False  # the library's own defaults instead of a base (the "pix2gan" row)
    base: str = "pix2pix"  # the pinned options the change applies to (:data:`BASES`)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.change) if self.library_defaults else {**BASES[self.base], **self.change}


# the warmup-0.5 row's change (the dial's weights): G at the regression's lr over the warm-up and after it, D at 2e-4
WARMUP = {"gan_loss": "lsgan", "gan_warmup": 0.5, "lr": 1e-3, "lr_d": 2e-4}
DIAL = (0.0, 0.25, 0.5, 0.75, 1.0)  # --realism of the dial rows
DIAL_OF = "warmup-0.75-l1-10"  # the row whose weights the dial rows evaluate (--dial-of): the paired default

ROWS = [
    Row("default", "2-D pix2pix (the default before issue 10)"),
    Row("context", "+ 2.5-D context (2 slices each side)", {"context": 2}),
    Row("planes", "+ 3 planes, mean fusion", {"planes": ("axial", "coronal", "sagittal"), "fusion": "mean"}),
    Row("tta", "+ test-time flip", {"tta": True}, {"tta": True}),
    Row("mask-ssim", "+ mask-weighted L1, SSIM loss", {"mask_weight": 0.95, "lambda_ssim": 1.0}),
    Row("resnet", "ResNet generator (resnet9)", {"generator": "resnet9"}),
    Row("no-gan", "no GAN (L1 only)", {"gan_loss": "none"}),
    Row("whole-slices", "whole 128-px slices", {"image_size": 128}),
    Row("bf16", "bf16 autocast", {"precision": "bf16"}, needs="bf16"),
    Row("l1-1000", "lambda_l1 1000", {"lambda_l1": 1000.0}),
    Row("lr-1e-3", "learning rate 1e-3", {"lr": 1e-3}),
    Row("no-dropout", "no dropout", {"dropout": False}),
    Row("pix2gan", "pix2gan's default now (no option given)", library_defaults=True),
    # issue 18: the adversarial variants, each the recommended regression (REGRESSION) plus the change named
    Row("regression", "the recommended regression (the paired default before issue 18)", base="regression"),
    Row("gan", "+ LSGAN from step 1, lr 2e-4", {"gan_loss": "lsgan", "lr": 2e-4}, base="regression"),
    *(Row(f"warmup-{f:g}", f"+ LSGAN after {f:g} of the time, G lr 1e-3, D 2e-4", {**WARMUP, "gan_warmup": f},
          base="regression") for f in (0.25, 0.5, 0.75)),
    Row("warmup-0.5-lrgan-2e-4", "warmup-0.5, G lr 2e-4 after the switch", {**WARMUP, "lr_gan": 2e-4},
        base="regression"),
    Row("warmup-0.5-l1-10", "warmup-0.5, lambda_l1 10", {**WARMUP, "lambda_l1": 10.0}, base="regression"),
    Row("warmup-0.75-l1-10", "warmup-0.75, lambda_l1 10", {**WARMUP, "gan_warmup": 0.75, "lambda_l1": 10.0},
        base="regression"),
    Row("warmup-0.5-l1-1000", "warmup-0.5, lambda_l1 1000", {**WARMUP, "lambda_l1": 1000.0}, base="regression"),
    # the weights of one adversarial row (--dial-of, DIAL_OF by default) at each realism: set in main()
    *(Row(f"dial-{a:g}", f"realism {a:g}", {}, {"realism": a}, base="regression") for a in DIAL),
]  # fmt: skip


def set_dial(name: str) -> None:
    """Make the dial rows evaluate the weights of row ``name`` (an adversarial warm-up row over REGRESSION)."""
    dialled = next((r for r in ROWS if r.name == name), None)
    if dialled is None or not dialled.change.get("gan_warmup") or dialled.base != "regression":
        raise ValueError(f"--dial-of {name}: not an adversarial warm-up row")
    for row in ROWS:
        if row.name.startswith("dial-"):
            row.change = dict(dialled.change)


set_dial(DIAL_OF)
SINGLE = {r.name for r in ROWS if r.change and not r.library_defaults and r.base == "pix2pix"}  # "best" combines
BEST = "best"
ROW_NAMES = [r.name for r in ROWS] + [BEST]


# ---------------------------------------------------------------------------------------------------------------
# data


def phantom_family(folder: Path, seed: int, n_subjects: int = N_SUBJECTS, size: int = SIZE,
                   misregister_mm: float | None = None, unpaired: bool = False, zte: bool = False) -> Path:  # fmt: skip
    """``n_subjects`` phantoms of family ``seed`` in ``folder`` (reused when a previous run left the same ones),
    misregistered by up to ``misregister_mm`` or split into ``unpaired`` halves as ``write_dataset`` does them, with
    the ZTE-like MR when ``zte``."""
    from pix2gan.data.phantom import write_dataset

    meta = folder / "phantom.json"
    if meta.is_file():
        info = json.loads(meta.read_text())
        if (info.get("seed") == seed and info.get("size") == size and len(info.get("subjects", {})) == n_subjects
                and info.get("misregister_mm") == misregister_mm and ("unpaired" in info) == unpaired
                and ("zte" in info.get("modalities", [])) == zte):  # fmt: skip
            return folder
        shutil.rmtree(folder)
    write_dataset(folder, n_subjects=n_subjects, size=size, seed=seed, misregister_mm=misregister_mm, unpaired=unpaired,
                  zte=zte)
    return folder


def bundled_seed() -> int | None:
    meta = ROOT / "samples" / "phantom.json"
    return json.loads(meta.read_text()).get("seed") if meta.is_file() else None


def native_bf16(device: torch.device) -> tuple[bool, str]:
    """Whether bf16 autocast runs on native instructions here, and what says so."""
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ok, f"{torch.cuda.get_device_name(device)} {'has' if ok else 'lacks'} bf16"
    flags: set[str] = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    capability = torch.backends.cpu.get_cpu_capability()
    found = sorted(flags & {"avx512_bf16", "amx_bf16"})
    if found or "AMX" in capability.upper():
        return True, f"CPU capability {capability}, flags {', '.join(found) or 'AMX'}"
    return False, f"no native bf16 on this CPU (capability {capability}, no avx512_bf16 / amx_bf16 flag)"


# ---------------------------------------------------------------------------------------------------------------
# configurations


def build_config(options: dict[str, Any], common: dict[str, Any], minutes: float, mode: str = "paired"):  # noqa: ANN201
    """The run configuration of a row of ``mode``, trained for ``minutes`` (raises ValueError for options the library
    does not take)."""
    from pix2gan.options import run_config

    cfg = run_config(mode, **{**common, **options, "minutes": minutes})
    if hasattr(cfg.train, "panel_slices"):
        cfg.train.panel_slices = 0  # no PNG per epoch (not a command-line option)
    return cfg


def unsupported_infer(infer: dict[str, Any]) -> list[str]:
    from pix2gan.evaluation import evaluate_run

    params = inspect.signature(evaluate_run).parameters
    return [k for k in infer if k not in params]


def training_key(cfg) -> str:  # noqa: ANN001
    """The configuration minus its recorded inference settings: rows with equal keys train identical weights."""
    d = cfg.to_dict()
    d.pop("infer", None)
    d["train"].pop("epochs", None)
    d["train"].pop("minutes", None)
    return json.dumps(d, sort_keys=True, default=str)


def infer_differences(cfg, other) -> set[str]:  # noqa: ANN001
    a, b = cfg.to_dict().get("infer", {}), other.to_dict().get("infer", {})
    return {k for k in set(a) | set(b) if a.get(k) != b.get(k)}


def combine_best(results: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """The changes and inference settings of every one-change row that beat ``default`` on validation MAE, merged
    over :data:`PIX2PIX`.

    Rows are taken best first, so on a clash (two rows setting one option differently) the better row's value wins.

    Example:
        >>> r = {"default": {"val_mae": 100.0}, "context": {"val_mae": 90.0, "change": {"context": 1}, "infer": {}},
        ...      "tta": {"val_mae": 95.0, "change": {"context": 2, "tta": True}, "infer": {"tta": True}},
        ...      "no-gan": {"val_mae": 120.0, "change": {"gan_loss": "none"}, "infer": {}}}
        >>> options, infer, winners = combine_best(r)
        >>> options["context"], options["tta"], options["gan_loss"], infer, winners
        (1, True, 'lsgan', {'tta': True}, ['context', 'tta'])
    """
    ref = results.get("default", {}).get("val_mae")
    if ref is None or not math.isfinite(ref):
        return {}, {}, []
    winners = sorted((n for n, r in results.items() if n in SINGLE and r.get("val_mae") is not None
                      and r["val_mae"] < ref), key=lambda n: results[n]["val_mae"])  # fmt: skip
    change: dict[str, Any] = {}
    infer: dict[str, Any] = {}
    for name in winners:
        for k, v in results[name]["change"].items():
            change.setdefault(k, v)
        for k, v in results[name]["infer"].items():
            infer.setdefault(k, v)
    return {**PIX2PIX, **change}, infer, winners


# ---------------------------------------------------------------------------------------------------------------
# timing


@contextlib.contextmanager
def instrumented(record: dict[str, Any]):  # noqa: ANN201
    """Time the loop from outside: when the task was built, each validation (``task.end_epoch``) of the run, and when
    the closing report began (the end of the loop).

    Wraps ``build_task`` as the loop sees it; if the loop no longer calls it by that name the records stay empty
    and the callers fall back to the epoch times of ``epochs.csv`` (which include validation).
    """
    from pix2gan.train import loop

    record.update(built=None, val_s=[], val_end=[], loop_end=None)
    original, report = getattr(loop, "build_task", None), getattr(loop, "_write_report", None)
    if original is None or report is None:
        yield record
        return

    def write_report(*args: Any, **kwargs: Any) -> None:
        record["loop_end"] = time.perf_counter()
        report(*args, **kwargs)

    def build_task(*args: Any, **kwargs: Any):  # noqa: ANN202
        task = original(*args, **kwargs)
        inner = task.end_epoch

        def end_epoch(*a: Any, **k: Any):  # noqa: ANN202
            t0 = time.perf_counter()
            try:
                return inner(*a, **k)
            finally:
                t1 = time.perf_counter()
                record["val_s"].append(t1 - t0)
                record["val_end"].append(t1)

        with contextlib.suppress(AttributeError, TypeError):
            task.end_epoch = end_epoch
        record["built"] = time.perf_counter()
        return task

    loop.build_task, loop._write_report = build_task, write_report
    try:
        yield record
    finally:
        loop.build_task, loop._write_report = original, report


def train(cfg, run_dir: Path) -> dict[str, Any]:  # noqa: ANN001
    """``fit`` with timings: loop seconds (after the data are decoded, before the report), step seconds (epochs minus
    validation), and how the run settled its budget."""
    from pix2gan.train.loop import fit

    with instrumented({}) as rec:
        result = fit(cfg, run_dir, progress=False)
        end = rec["loop_end"] or time.perf_counter()
    rows = result.epochs
    epoch_s = [float(r["seconds"]) for r in rows]
    val_s = rec["val_s"] if len(rec["val_s"]) == len(rows) else [0.0] * len(rows)
    return {
        "steps": int(rows[-1]["step"]) if rows else 0,
        "epochs": len(rows),
        "loop_s": end - rec["built"] if rec["built"] else sum(epoch_s),
        "step_s": sum(e - v for e, v in zip(epoch_s, val_s)),
        "step_s_includes_validation": not rec["val_s"],
        "val_end": rec["val_end"],
        "epoch_s": epoch_s,
        "val_mae_last": float(rows[-1].get("val_mae", float("nan"))) if rows else float("nan"),
        "budget": getattr(result, "budget", ""),
    }


def first_conv(net: torch.nn.Module) -> torch.nn.Conv2d:
    return next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))


def plain_images_per_s(cfg, device: torch.device, seconds: float) -> float:  # noqa: ANN001
    """Images/s of the straightforward fp32 pix2pix step with the row's networks and batch size."""
    from pix2gan.nets import build_networks

    torch.manual_seed(0)
    g, d = build_networks(cfg)
    g.to(device)
    d.to(device)
    size, batch = cfg.train.image_size, cfg.train.batch_size
    g_in, d_in = first_conv(g).in_channels, first_conv(d).in_channels
    g.eval()
    with torch.no_grad():
        g_out = g(torch.zeros(1, g_in, size, size, device=device)).shape[1]
    g.train()
    d_src = d_in - g_out  # D sees (source channels, target): the centre ones when G gets a 2.5-D stack
    lo = (g_in - d_src) // 2
    side = max(size, SIZE)
    pool = torch.rand(16, g_in + g_out, side, side, device=device) * 2 - 1
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    mse, l1 = torch.nn.MSELoss(), torch.nn.L1Loss()

    def step() -> None:
        idx = torch.randint(len(pool), (batch,)).tolist()
        offs = torch.randint(side - size + 1, (batch, 2)).tolist()
        crops = torch.stack([pool[i, :, y : y + size, x : x + size] for i, (y, x) in zip(idx, offs)])
        src, real = crops[:, :g_in], crops[:, g_in:]
        src_d = src[:, lo : lo + d_src]
        fake = g(src)
        for p in d.parameters():
            p.requires_grad_(True)
        opt_d.zero_grad()
        pred_real, pred_fake = d(torch.cat([src_d, real], 1)), d(torch.cat([src_d, fake.detach()], 1))
        loss_d = 0.5 * (mse(pred_real, torch.ones_like(pred_real)) + mse(pred_fake, torch.zeros_like(pred_fake)))
        loss_d.backward()
        opt_d.step()
        for p in d.parameters():
            p.requires_grad_(False)
        opt_g.zero_grad()
        pred = d(torch.cat([src_d, fake], 1))
        loss_g = mse(pred, torch.ones_like(pred)) + 100.0 * l1(fake, real)
        loss_g.backward()
        opt_g.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def window(min_s: float) -> float:
        """Images/s over at least 3 steps and ``min_s`` seconds."""
        sync()
        t0, steps = time.perf_counter(), 0
        while steps < 3 or time.perf_counter() - t0 < min_s:
            step()
            steps += 1
        sync()
        return steps * batch / (time.perf_counter() - t0)

    window(1.0)  # warm-up: the first steps of a process are several times slower (allocations, kernel choice)
    return max(window(1.0) for _ in range(max(1, round(seconds))))  # the steady state: the best 1-s window


# ---------------------------------------------------------------------------------------------------------------
# evaluation


def evaluate(run_dir: Path, data_root: Path, split: str, out: Path, infer: dict[str, Any], device: str,
             baseline: bool = False) -> dict[str, Any]:  # fmt: skip
    from pix2gan.evaluation import evaluate_run

    report = evaluate_run(run_dir, data_root=data_root, split=split, out_dir=out, baseline=baseline, device=device,
                          **infer)  # fmt: skip
    d = report.to_dict()
    return {"mean": d["mean"], "per_subject": d["per_subject"], "baseline": d.get("baseline", {}).get("mean")}


# ---------------------------------------------------------------------------------------------------------------
# the benchmark


def run_row(name: str, what: str, options: dict[str, Any], infer: dict[str, Any], ctx: dict[str, Any],
            results: dict[str, dict[str, Any]], console: Console) -> dict[str, Any]:  # fmt: skip
    """Probe, train, time the plain loop, evaluate; returns the row's figures (or ``skipped`` with the reason)."""
    out: dict[str, Any] = {"name": name, "what": what, "options": options, "infer": infer}
    try:
        cfg = build_config(options, ctx["common"], ctx["minutes"])
    except (ValueError, TypeError) as exc:
        return {**out, "skipped": f"run_config: {exc}"}
    missing = unsupported_infer(infer)
    if missing:
        return {**out, "skipped": f"evaluate_run takes no {', '.join(missing)}= yet"}
    work: Path = ctx["work"]
    device = torch.device(ctx["device"])

    # a row whose training equals an earlier row's (only recorded inference settings differ) reuses its weights
    key = training_key(cfg)
    twin = next((r for r in results.values() if r.get("key") == key and "run_dir" in r), None)
    if twin is not None and infer_differences(cfg, twin["cfg"]) <= set(infer):
        console.print(f"  {name}: same training as {twin['name']}; evaluating its weights with {infer}")
        out.update({k: twin[k] for k in ("steps", "epochs", "budget", "budget_miss", "loop_s", "step_s", "images_per_s",
                                          "plain_images_per_s", "run_dir", "batch")})  # fmt: skip
        out["reuses"] = twin["name"]
    else:
        run_dir = work / "runs" / name
        shutil.rmtree(run_dir, ignore_errors=True)
        t = train(cfg, run_dir)
        miss = t["loop_s"] / (60.0 * ctx["minutes"])
        console.print(f"  {name}: {t['budget'] or '(no budget recorded)'}; train {t['loop_s']:.1f} s = {miss:.2f} x "
                      f"the budget", highlight=False)  # fmt: skip
        batch = cfg.train.batch_size
        plain = plain_images_per_s(cfg, device, ctx["plain_seconds"])  # now, under the machine's current load
        out.update(steps=t["steps"], epochs=t["epochs"], budget=t["budget"], budget_miss=miss, loop_s=t["loop_s"],
                   step_s=t["step_s"], images_per_s=t["steps"] * batch / max(t["step_s"], 1e-9),
                   plain_images_per_s=plain, run_dir=run_dir, batch=batch)  # fmt: skip
    out["key"], out["cfg"] = key, cfg
    out["vs_plain"] = out["images_per_s"] / out["plain_images_per_s"]

    ev = work / "eval" / name
    val = evaluate(out["run_dir"], ctx["train_data"], "val", ev / "val", infer, ctx["device"])
    out["val_mae"] = val["mean"].get("mae", float("nan"))
    out["heldout"] = {}
    for set_name, folder in ctx["heldout"].items():
        res = evaluate(out["run_dir"], folder, "test", ev / set_name, infer, ctx["device"],
                       baseline=set_name not in ctx["lut"])  # fmt: skip
        if res["baseline"] is not None:
            ctx["lut"][set_name] = res["baseline"]
        out["heldout"][set_name] = res
    m = {s: r["mean"] for s, r in out["heldout"].items()}
    console.print(f"  {name}: {out['steps']} steps, {out['images_per_s']:.1f} img/s ({out['vs_plain']:.2f}x plain), "
                  f"val MAE {out['val_mae']:.1f}, " + ", ".join(f"{s} MAE {v.get('mae', float('nan')):.1f}"
                                                               for s, v in m.items()), highlight=False)  # fmt: skip
    return out


def guarded(name: str, what: str, options: dict[str, Any], infer: dict[str, Any], ctx: dict[str, Any],
            results: dict[str, dict[str, Any]], console: Console) -> dict[str, Any]:  # fmt: skip
    """:func:`run_row`, with a failure (e.g. a library mid-change) reported as the row's reason instead of ending all."""
    try:
        return run_row(name, what, options, infer, ctx, results, console)
    except Exception as exc:  # noqa: BLE001
        return {"name": name, "what": what, "options": options, "infer": infer,
                "skipped": f"failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}


def run_rows(rows: list[Row], only: list[str], ctx: dict[str, Any], results: dict[str, dict[str, Any]],
             console: Console) -> None:  # fmt: skip
    """Run the ``rows`` named in ``only``, in order, into ``results`` (a row needing bf16 where there is none is
    skipped with the reason); each result also records the row's ``change`` and ``base``."""
    bf16_ok, bf16_note = ctx["bf16"]
    for row in rows:
        if row.name not in only:
            continue
        if row.needs == "bf16" and not bf16_ok:
            results[row.name] = {"name": row.name, "what": row.what, "options": row.options, "infer": row.infer,
                                 "skipped": bf16_note}  # fmt: skip
        else:
            results[row.name] = guarded(row.name, row.what, row.options, row.infer, ctx, results, console)
        results[row.name].update(change=row.change, base="library" if row.library_defaults else row.base)
        if "skipped" in results[row.name]:
            console.print(f"  [yellow]{row.name}: skipped: {results[row.name]['skipped']}", highlight=False)


def fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return format(value, spec)


def table_for(set_name: str, title: str, results: dict[str, dict[str, Any]], lut: dict[str, float] | None) -> Table:
    table = Table(title=title)
    for col in ("configuration", "steps", "train s", "img/s", "vs plain", "MAE", "air", "soft", "bone", "PSNR",
                "SSIM", "MAE vs 2-D", *(head for head, _ in REALISM_COLUMNS.values())):  # fmt: skip
        table.add_column(col, justify="left" if col == "configuration" else "right")
    ref = results.get("default", {}).get("heldout", {}).get(set_name, {}).get("mean", {}).get("mae")
    for name, r in results.items():
        label = f"{name} [dim]{r['what']}[/]"
        if "skipped" in r:
            table.add_row(label, *["–"] * 10, "[yellow]skipped[/]", *["–"] * len(REALISM_COLUMNS))
            continue
        m = r["heldout"][set_name]["mean"]
        rel = m.get("mae") / ref if ref and m.get("mae") is not None else None
        if r.get("reuses"):
            label += f" [dim](weights of {r['reuses']})[/]"
        table.add_row(label, str(r["steps"]), fmt(r["loop_s"], ".0f"), fmt(r["images_per_s"], ".1f"),
                      fmt(r["vs_plain"], ".2f") + "x", fmt(m.get("mae"), ".1f"),
                      *(fmt(m.get(k), ".1f") for k in CLASS_KEYS), fmt(m.get("psnr"), ".2f"), fmt(m.get("ssim"), ".4f"),
                      fmt(rel, ".3f"), *realism_cells(m))  # fmt: skip
    if lut:
        rel = lut.get("mae") / ref if ref and lut.get("mae") is not None else None
        table.add_row("[dim]lookup table (no context, no training loop)[/]", "", "", "", "", fmt(lut.get("mae"), ".1f"),
                      *(fmt(lut.get(k), ".1f") for k in CLASS_KEYS), fmt(lut.get("psnr"), ".2f"),
                      fmt(lut.get("ssim"), ".4f"), fmt(rel, ".3f"), *realism_cells(lut))  # fmt: skip
    return table


def realism_cells(mean: dict[str, Any]) -> list[str]:
    """The realism figures of a row's means (:data:`REALISM_COLUMNS`), "–" where missing."""
    return [fmt(mean.get(key), spec) for key, (_, spec) in REALISM_COLUMNS.items()]


# ---------------------------------------------------------------------------------------------------------------
# perception-distortion figure


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """The names of the non-dominated points, lower being better on both axes, by increasing x (then y).

    A point is dominated when another is as low on both axes and lower on one; equal points dominate neither.
    Points with a non-finite coordinate take no part.

    Example:
        >>> pareto_front({"a": (1, 5), "b": (2, 3), "c": (3, 4), "d": (4, 1), "e": (2, 3), "f": (1, 6),
        ...               "g": (0.5, float("nan"))})
        ['a', 'b', 'e', 'd']
        >>> pareto_front({}), pareto_front({"x": (1.0, 2.0)})
        ([], ['x'])
    """
    finite = {n: p for n, p in points.items() if all(math.isfinite(v) for v in p)}

    def dominated(p: tuple[float, float]) -> bool:
        return any(q[0] <= p[0] and q[1] <= p[1] and q != p for q in finite.values())

    return sorted((n for n, p in finite.items() if not dominated(p)), key=lambda n: finite[n])


def figure_points(results: dict[str, dict[str, Any]], set_name: str, lut: dict[str, Any] | None,
                  x_key: str = "mae", y_key: str = "nps_lsd") -> dict[str, tuple[float, float]]:  # fmt: skip
    """(MAE, LSD) of every evaluated row on held-out set ``set_name``, and of the lookup table as ``lookup table``."""
    means = {n: r["heldout"][set_name]["mean"] for n, r in results.items()
             if "skipped" not in r and set_name in r.get("heldout", {})}  # fmt: skip
    if lut:
        means["lookup table"] = lut
    return {n: (float(m[x_key]), float(m[y_key])) for n, m in means.items()
            if m.get(x_key) is not None and m.get(y_key) is not None}  # fmt: skip


def perception_distortion_figure(results: dict[str, dict[str, Any]], luts: dict[str, dict[str, Any] | None],
                                 path: Path, note: str = "") -> bool:  # fmt: skip
    """One panel per held-out set (the keys of ``luts``): MAE (HU) against the NPS log-spectral distance (dB), one
    labelled point per row, the Pareto front as a step line, the dial rows joined in realism order; written
    atomically as PNG to ``path``. False (and nothing written) when no row has both figures."""
    sets = {s: figure_points(results, s, lut) for s, lut in luts.items()}
    sets = {s: pts for s, pts in sets.items() if pts}
    if not sets:
        return False
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from pix2gan.io import atomic_path

    fig, axes = plt.subplots(1, len(sets), figsize=(7.5 * len(sets), 6.2), squeeze=False)
    for ax, (set_name, points) in zip(axes[0], sets.items()):
        draw_panel(ax, set_name, points, results)
    if note:
        fig.text(0.5, 0.01, note, ha="center", va="bottom", fontsize=8, color="0.3")
    fig.tight_layout(rect=(0, 0.03 if note else 0, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return True


GROUP_STYLE = {  # colour, marker, legend of each kind of row (row_group)
    "pix2pix": ("tab:blue", "o", "2-D pix2pix + one change"), "library": ("tab:green", "s", "pix2gan default"),
    "regression": ("tab:orange", "D", "regression + adversarial"), "dial": ("tab:red", "o", "realism dial (one run)"),
    "lut": ("black", "x", "lookup table"),
}  # fmt: skip


def row_group(name: str, results: dict[str, dict[str, Any]]) -> str:
    """The kind of a point (:data:`GROUP_STYLE`): its row's base, ``dial`` for a realism row, ``lut`` for the table."""
    if name not in results:
        return "lut"
    r = results[name]
    return "dial" if "realism" in r.get("infer", {}) else r.get("base", "pix2pix")


def draw_panel(ax, set_name: str, points: dict[str, tuple[float, float]],  # noqa: ANN001
               results: dict[str, dict[str, Any]]) -> None:  # fmt: skip
    """One held-out set's panel of :func:`perception_distortion_figure`. The lookup table, when far beyond every
    trained row (over 1.5x their largest MAE), is named in a corner instead of stretching the axes."""
    lut = points.get("lookup table")
    others = [xy[0] for n, xy in points.items() if n != "lookup table"]
    if lut is not None and others and lut[0] > 1.5 * max(others):
        points = {n: xy for n, xy in points.items() if n != "lookup table"}
        ax.text(0.98, 0.98, f"lookup table: {lut[0]:.1f} HU, {lut[1]:.2f} dB (off the axes)", transform=ax.transAxes,
                ha="right", va="top", fontsize=8, color="0.3")  # fmt: skip
    seen: set[str] = set()
    labels: dict[tuple[float, float], list[str]] = {}
    for name, xy in points.items():
        group = row_group(name, results)
        colour, marker, legend = GROUP_STYLE[group]
        ax.scatter(*xy, c=colour, marker=marker, s=36, zorder=3, label=None if group in seen else legend)
        seen.add(group)
        labels.setdefault(xy, []).append(name)
    ax.margins(x=0.1, y=0.08)  # room for the labels at the edges
    front_names = set(pareto_front(points))
    for xy, names in labels.items():  # rows on one spot (e.g. dial-1 and warmup-0.5) share a label; the front's bold
        below = all(row_group(n, results) == "dial" for n in names)  # the dial's: under the point, off its arrows
        ax.annotate(" = ".join(names), xy, xytext=(0, -11) if below else (4, 3), textcoords="offset points",
                    ha="center" if below else "left", fontsize=7, zorder=4,
                    fontweight="bold" if front_names & set(names) else "normal")  # fmt: skip
    dial = sorted((results[n]["infer"]["realism"], points[n]) for n in points if row_group(n, results) == "dial")
    for (_, p0), (_, p1) in zip(dial, dial[1:]):
        ax.annotate("", p1, p0, zorder=2, arrowprops={"arrowstyle": "-|>", "color": "tab:red", "lw": 1.2,
                                                      "shrinkA": 4, "shrinkB": 5, "mutation_scale": 9})  # fmt: skip
    if dial:
        ax.annotate("realism 0 → 1", dial[0][1], xytext=(-6, 5), textcoords="offset points", ha="right", fontsize=7,
                    color="tab:red")  # fmt: skip
    front = [points[n] for n in sorted(front_names, key=lambda n: points[n])]
    if front:
        xs, ys = zip(*front)
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        ax.step([xs[0], *xs, x1], [y1, *ys, ys[-1]], where="post", color="0.4", lw=1, ls="--", zorder=1,
                label="Pareto front (lower-left is better)")  # fmt: skip
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
    ax.set_xlabel("MAE (HU, in the body mask)")
    ax.set_ylabel("NPS log-spectral distance (dB)")
    ax.set_title(f"held out: {set_name}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")


def selected_rows(parser: argparse.ArgumentParser, only: str, names: list[str]) -> list[str]:
    """The rows ``--only`` names (comma-separated; all of ``names`` when empty); an unknown one is a usage error."""
    chosen = [n.strip() for n in only.split(",") if n.strip()] or names
    unknown = [n for n in chosen if n not in names]
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    return chosen


def phantom_bench_arguments(parser: argparse.ArgumentParser, rows: list[str]) -> None:
    """The options the phantom benchmarks share (``bench/unpaired.py``, ``bench/multisource.py``): ``--only`` (of
    ``rows``), ``--threads``, ``--device``, ``--size``, ``--subjects``, ``--work`` and ``--json``."""
    parser.add_argument("--only", default="", help=f"comma-separated rows ({', '.join(rows)})")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=SIZE, help="phantom size (voxels in-plane)")
    parser.add_argument("--subjects", type=int, default=N_SUBJECTS, help="subjects per phantom family")
    parser.add_argument("--work", type=Path, default=None,
                        help="work folder, kept afterwards (default: a temporary one, removed at the end)")
    parser.add_argument("--json", type=Path, default=None)


@contextlib.contextmanager
def work_folder(given: Path | None, prefix: str):  # noqa: ANN201
    """The benchmark's work folder: ``given`` (made if missing, kept afterwards), or a temporary one (named with
    ``prefix``) removed at the end, whatever happens in between."""
    work = (given or Path(tempfile.mkdtemp(prefix=prefix))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        yield work
    finally:
        if given is None:
            shutil.rmtree(work, ignore_errors=True)


def bench_session(threads: int, device: str) -> tuple[torch.device, Console, str]:
    """Quiet logs, ``threads`` torch threads (0: torch's default), the device, a wide console and the device's name
    for the header line."""
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning)
    if threads:
        torch.set_num_threads(threads)
    from pix2gan.device import resolve_device

    resolved = resolve_device(device)
    console = Console(width=max(170, Console().width))
    name = (torch.cuda.get_device_name(resolved) if resolved.type == "cuda"
            else f"CPU, {torch.get_num_threads()} threads")  # fmt: skip
    return resolved, console, name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=DEFAULT_MINUTES, help="training wall clock per row")
    parser.add_argument("--only", default="", help=f"comma-separated rows ({', '.join(ROW_NAMES)})")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--plain-seconds", type=float, default=4.0, help="seconds of timed plain-loop steps per row (after 1 s of warm-up)")
    parser.add_argument("--work", type=Path, default=None, help="work folder, kept afterwards (default: a temporary one, removed unless --keep)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (runs, predictions, panels)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--dial-of", default=DIAL_OF, help="the adversarial warm-up row whose weights the dial rows "
                        "evaluate (trained once, with its own row or the first dial row)")
    parser.add_argument("--figure", type=Path, default=None,
                        help=f"perception-distortion PNG (default {FIGURE.relative_to(ROOT)} when every row runs)")
    args = parser.parse_args()
    only = selected_rows(parser, args.only, ROW_NAMES)
    if args.minutes <= 0:
        parser.error("--minutes must be > 0")
    try:
        set_dial(args.dial_of)
    except ValueError as exc:
        parser.error(str(exc))

    device, console, name = bench_session(args.threads, args.device)
    seed0 = bundled_seed()
    if seed0 in (TRAIN_SEED, HELDOUT_SEED):
        sys.exit(f"samples/phantom.json says seed {seed0}: it must differ from TRAIN_SEED and HELDOUT_SEED")
    keep = args.keep or args.work is not None
    work = args.work or Path(tempfile.mkdtemp(prefix="pix2gan-quality-"))
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    bf16_ok, bf16_note = native_bf16(device)
    console.print(f"[bold]bench/quality.py[/] on {name}, torch {torch.__version__}: {args.minutes:g} min of training "
                  f"per row, rows {', '.join(only)}; work folder {work}", highlight=False)  # fmt: skip

    t0 = time.perf_counter()
    train_data = phantom_family(work / f"phantoms-seed{TRAIN_SEED}", TRAIN_SEED)
    third = phantom_family(work / f"phantoms-seed{HELDOUT_SEED}", HELDOUT_SEED)
    heldout = {"samples": ROOT / "samples", f"seed {HELDOUT_SEED}": third}
    console.print(f"  phantoms: training family seed {TRAIN_SEED}, held out: samples/ (seed {seed0}) and seed "
                  f"{HELDOUT_SEED} ({time.perf_counter() - t0:.0f} s)", highlight=False)  # fmt: skip
    ctx: dict[str, Any] = {
        "work": work, "device": str(device), "minutes": args.minutes, "plain_seconds": args.plain_seconds,
        "train_data": train_data, "heldout": heldout, "lut": {}, "bf16": (bf16_ok, bf16_note),
        "common": {"data": str(train_data), "src": "t1", "dst": "ct", "device": str(device), "threads": args.threads,
                   "checkpoint_minutes": 0, "keep_last": 1},
    }  # fmt: skip
    results: dict[str, dict[str, Any]] = {}
    try:
        run_rows([r for r in ROWS if r.base == "pix2pix" and not r.library_defaults], only, ctx, results, console)
        if BEST in only:
            options, infer, winners = combine_best(results)
            what = "best: " + (" + ".join(winners) if winners else "nothing beat default")
            if "default" not in results or "skipped" in results.get("default", {}):
                results[BEST] = {"name": BEST, "what": "best", "options": {}, "infer": {},
                                 "skipped": "needs the default row"}  # fmt: skip
            elif len(winners) <= 1:
                same = winners[0] if winners else "default"
                results[BEST] = {**results[same], "name": BEST, "what": what, "reuses": same}
                console.print(f"  best: = {same} (no other row beat default on validation)")
            else:
                console.print(f"  best: combining {', '.join(winners)}: {options} {infer or ''}", highlight=False)
                results[BEST] = guarded(BEST, what, options, infer, ctx, results, console)
        run_rows([r for r in ROWS if r.library_defaults], only, ctx, results, console)  # the defaults chosen from above
        run_rows([r for r in ROWS if r.base != "pix2pix" and not r.library_defaults], only, ctx, results, console)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)

    for set_name in heldout:
        title = (f"held out: {set_name}, test subjects (SynthRAD: MAE in HU inside the mask, air / soft tissue / bone "
                 f"by the target's HU); {args.minutes:g} min of training per row")  # fmt: skip
        console.print(table_for(set_name, title, results, ctx["lut"].get(set_name)))
    done = [r for r in results.values() if "val_mae" in r]
    if done:
        console.print("validation MAE (training family's val subject; what 'best' chooses by): "
                      + ", ".join(f"{r['name']} {r['val_mae']:.1f}" for r in done), highlight=False)  # fmt: skip
    for r in results.values():
        if "skipped" in r:
            console.print(f"[yellow]skipped {r['name']}[/]: {r['skipped']}", highlight=False)
    console.print(f"[dim]img/s: the row's training steps (epoch time minus validation); vs plain: over the fp32 "
                  f"textbook step with the same networks and batch; bf16: {bf16_note}; "
                  f"{time.perf_counter() - t_start:.0f} s in all[/]", highlight=False)  # fmt: skip
    figure = args.figure or (None if args.only.strip() else FIGURE)
    if figure is not None:
        note = (f"{args.minutes:g} min of training per row; means over each set's held-out test subjects; the dial "
                f"rows are {args.dial_of}'s weights at the realism named")  # fmt: skip
        if perception_distortion_figure(results, {s: ctx["lut"].get(s) for s in heldout}, figure, note):
            console.print(f"perception-distortion figure: {figure}", highlight=False)
        else:
            console.print(f"[yellow]no row has MAE and NPS LSD: no figure written to {figure}[/]", highlight=False)
    if args.json:
        clean = {n: {k: v for k, v in r.items() if k not in ("cfg", "key")} for n, r in results.items()}
        meta = {"minutes": args.minutes, "threads": torch.get_num_threads(), "device": str(device),
                "torch": torch.__version__, "train_seed": TRAIN_SEED, "heldout_seed": HELDOUT_SEED, "dial_of": args.dial_of,
                "bundled_seed": seed0, "bf16": bf16_note, "lookup_table": ctx["lut"], "figure": figure}  # fmt: skip
        args.json.write_text(json.dumps({"meta": meta, "rows": clean}, indent=1, default=str))


if __name__ == "__main__":
    main()
