"""Throughput on this machine: data loading, training steps and translation, for the demo and unet_256 models.

Prints figures (never asserts them). Each figure comes with a baseline measured in the same run:

* data: slices/s fetched from the slice cache vs decoding the ``.nii.gz`` for every fetched slice (the naive way);
* training: slices/s of one pix2pix step (D phase + G phase) for the demo default and the unet_256 reference;
* translation: slices/s of a whole volume through ``Translator.translate_array``.

Usage::

    python bench/throughput.py [--data samples] [--seconds 8] [--threads 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from pix2gan.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from pix2gan.data.intensity import intensity_maps
from pix2gan.data.phantom import write_dataset
from pix2gan.data.slices import PairedSlices, SliceCache
from pix2gan.data.subjects import find_subjects
from pix2gan.nets import build_networks
from pix2gan.tasks.paired import PairedObjective
from pix2gan.train import build_optimizers, train_step
from pix2gan.infer.translate import Translator
from pix2gan.io import load_volume

DEFAULTS = TrainConfig()
CONFIGS = {
    "demo default": (ModelConfig(), DEFAULTS.batch_size, DEFAULTS.image_size),
    "unet_256 (pix2pix)": (ModelConfig(depth=8, base_filters=64, disc_filters=64), 1, 256),
}


def timed(fn, seconds: float, warmup: int = 2) -> tuple[int, float]:  # noqa: ANN001
    """Call ``fn`` until ``seconds`` have passed (after ``warmup`` calls); returns (calls, elapsed)."""
    for _ in range(warmup):
        fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return n, elapsed


def bench_data(root: Path, seconds: float) -> tuple[float, float]:
    dc = DataConfig(root=str(root))
    subjects = find_subjects(root, ["t1", "ct"], ["mask"])
    src_map, dst_map = intensity_maps(dc)
    cache = SliceCache(subjects, dc, src_map, dst_map)
    ds = PairedSlices(cache, 128, train=True)
    rng = np.random.default_rng(0)
    n, dt = timed(lambda: ds[int(rng.integers(len(ds)))], seconds)
    cached = n / dt

    def naive() -> None:  # what a Dataset that opens the files per item does: decode both volumes for one slice
        s = subjects[int(rng.integers(len(subjects)))]
        t1 = load_volume(s.files["t1"]).data
        ct = load_volume(s.files["ct"]).data
        k = int(rng.integers(t1.shape[2]))
        src_map.forward(t1[:, :, k], src_map.scale_of(t1)), dst_map.forward(ct[:, :, k], dst_map.scale_of(ct))

    n, dt = timed(naive, seconds / 2, warmup=1)
    return cached, n / dt


def bench_train(model: ModelConfig, batch: int, size: int, seconds: float) -> float:
    torch.manual_seed(0)
    g, d = build_networks(RunConfig(model=model))
    opt_g, opt_d = build_optimizers(g, d, DEFAULTS)
    x = {"src": torch.rand(batch, 1, size, size) * 2 - 1, "dst": torch.rand(batch, 1, size, size) * 2 - 1}
    n, dt = timed(lambda: train_step(PairedObjective(), x, g, d, opt_g, opt_d), seconds)
    return n * batch / dt


def bench_translate(model: ModelConfig, size: int, n_slices: int, seconds: float) -> float:
    cfg = RunConfig(model=model)
    g, _ = build_networks(cfg)
    tr = Translator(g, cfg, *intensity_maps(cfg.data), batch_size=16)
    vol = np.random.default_rng(0).uniform(0, 1000, (size, size, n_slices)).astype(np.float32)
    n, dt = timed(lambda: tr.translate_array(vol), seconds, warmup=1)
    return n * n_slices / dt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / "samples")
    parser.add_argument("--seconds", type=float, default=8.0, help="measuring time per figure")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console()
    console.print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, CUDA: {torch.cuda.is_available()}")

    data = args.data
    if not (data.is_dir() and any(data.glob("*/t1.nii.gz"))):
        data = Path(tempfile.mkdtemp()) / "phantoms"
        write_dataset(data, n_subjects=4, size=128, seed=0)
    cached, naive = bench_data(data, args.seconds)
    table = Table(title="data loading (128 x 128 paired crops)")
    table.add_column("method")
    table.add_column("slices/s", justify="right")
    table.add_column("vs naive", justify="right")
    table.add_row("slice cache (decode each volume once)", f"{cached:,.0f}", f"{cached / naive:,.0f}x")
    table.add_row("naive: decode .nii.gz per fetched slice", f"{naive:,.1f}", "1x")
    console.print(table)

    table = Table(title="training (one pix2pix step: D phase + G phase) and translation, CPU")
    for col in ("model", "params G / D", "batch x crop", "train slices/s", "translate slices/s", "train vs unet_256"):
        table.add_column(col, justify="right" if col != "model" else "left")
    rows = []
    for name, (model, batch, size) in CONFIGS.items():
        g, d = build_networks(RunConfig(model=model))
        params = f"{sum(p.numel() for p in g.parameters()) / 1e6:.2f}M / {sum(p.numel() for p in d.parameters()) / 1e6:.2f}M"
        train = bench_train(model, batch, size, args.seconds)
        slice_size = 128 if name == "demo default" else 256
        trans = bench_translate(model, slice_size, 16, args.seconds)
        rows.append((name, params, f"{batch} x {size}^2", train, f"{trans:,.1f} ({slice_size}^2)"))
    ref = rows[-1][3]
    for name, params, shape, train, trans in rows:
        table.add_row(name, params, shape, f"{train:,.1f}", trans, f"{train / ref:,.1f}x")
    console.print(table)


if __name__ == "__main__":
    main()
