"""Training speed: images/s, time per phase, peak memory and (on GPUs) model FLOPs utilisation, per configuration.

Every configuration runs in its own subprocess (so its peak memory is its own) over the real data path: the bundled
phantoms' slice cache, the epoch-seeded batch sampler and the DataLoader, then the one training step
(:func:`pix2gan.train.step.train_step` over pix2pix's losses) under a :class:`~pix2gan.train.hardware.StepContext`,
with the generator named by ``--generator`` (any paired entry of the network registry). The first row of each architecture is the same step written the
straightforward way (fp32, batch 1, NCHW, eager, Adam's default implementation); every other row is reported as a
ratio to it, measured in the same run.

* CPU (default): the demo architecture (the default config) and unet_256, a few flag combinations each; under
  5 minutes on 2 cores.
* GPU: unet_256 at batch 1, 16, 64 in every precision and flag combination, with MFU = counted FLOPs per step / step
  time / the device's dense peak (bf16/fp16 rows: the tensor-core peak; fp32 rows: the TF32 peak, which cuDNN uses
  for fp32 convolutions by default).

Usage::

    python bench/train.py [--device auto] [--steps 3] [--seconds 4] [--compile] [--threads 0] [--generator unet]
                          [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
ARCHS = {  # name: (depth, ngf, ndf, crop)
    "demo (default config)": (5, 16, 8, 64),
    "unet_256 (pix2pix)": (8, 64, 64, 256),
}
# Dense peak FLOP/s by device name fragment: (tensor-core bf16/fp16, TF32)
PEAKS = {"H200": (989e12, 494e12), "H100": (989e12, 494e12), "A100": (312e12, 156e12), "L4": (121e12, 60e12),
         "A10": (125e12, 62.5e12), "V100": (125e12, 15.7e12)}  # fmt: skip


def configs(device: str, with_compile: bool) -> list[dict]:
    """The rows to measure: a straightforward baseline first for each architecture, then the variants."""
    rows = []
    for arch in ARCHS:
        base = {"arch": arch, "batch": 1, "precision": "fp32", "channels_last": False, "compile": False, "plain": True}
        rows.append(base)
        if device == "cpu":
            batches = [4] if arch.startswith("demo") else [1, 4]
            variants = [("fp32", False, False), ("bf16", False, False), ("fp32", True, False)]
            if with_compile:
                variants.append(("fp32", False, True))
        else:
            batches = [1, 16, 64]
            variants = [(p, cl, c) for p in ("fp32", "bf16", "fp16") for cl in (False, True) for c in (False, True)]
            if not with_compile:
                variants = [v for v in variants if not v[2]]
        for b in batches:
            for precision, cl, comp in variants:
                rows.append({"arch": arch, "batch": b, "precision": precision, "channels_last": cl, "compile": comp,
                             "plain": False})  # fmt: skip
    return rows


def run_child(spec: dict) -> dict:
    """Measure one configuration in this process; returns its figures."""
    from torch.utils.data import DataLoader

    from pix2gan.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from pix2gan.data.batches import EpochBatchSampler
    from pix2gan.data.intensity import intensity_maps
    from pix2gan.data.slices import PairedSlices, SliceCache
    from pix2gan.data.subjects import find_subjects
    from pix2gan.device import resolve_device, resolve_precision
    from pix2gan.nets import build_networks
    from pix2gan.tasks.paired import PairedObjective
    from pix2gan.train import build_optimizers, train_step
    from pix2gan.train.hardware import DistInfo, StepContext, wrap_for_training

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    device = resolve_device(spec["device"])
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    depth, ngf, ndf, crop = ARCHS[spec["arch"]]
    cfg = RunConfig(data=DataConfig(root=str(ROOT / "samples")),
                    model=ModelConfig(generator=spec["generator"], depth=depth, base_filters=ngf, disc_filters=ndf))  # fmt: skip
    subjects = find_subjects(cfg.data.root, ["t1", "ct"], ["mask"])[:4]
    cache = SliceCache(subjects, cfg.data, *intensity_maps(cfg.data))
    dataset = PairedSlices(cache, crop, train=True, min_foreground=0.01)
    sampler = EpochBatchSampler(len(dataset), spec["batch"], seed=0)
    loader = DataLoader(dataset, batch_sampler=sampler, pin_memory=device.type == "cuda")

    torch.manual_seed(0)
    generator, discriminator = build_networks(cfg)
    generator.to(device)
    discriminator.to(device)
    if spec["plain"]:  # the textbook step: Adam's default (for-each) implementation, nothing else
        opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    else:
        opt_g, opt_d = build_optimizers(generator, discriminator, TrainConfig())
    info = DistInfo()
    g = wrap_for_training(generator, device, info, channels_last=spec["channels_last"], compile=spec["compile"])
    d = wrap_for_training(discriminator, device, info, channels_last=spec["channels_last"], compile=spec["compile"])
    dtype = resolve_precision(spec["precision"], device)
    timings: dict[str, float] = {}
    objective = PairedObjective()
    ctx = StepContext(device=device, dtype=dtype, channels_last=spec["channels_last"], timings=timings)

    def batches():
        while True:
            sampler.set_epoch(sampler.epoch + 1)
            yield from loader

    source = batches()

    def step() -> None:
        t0 = time.perf_counter()
        batch = ctx.prepare(next(source))
        ctx._sync()
        timings["data"] = timings.get("data", 0.0) + time.perf_counter() - t0
        train_step(objective, batch, g, d, opt_g, opt_d, ctx=ctx)

    warmup = 3 if spec["compile"] else 1
    for _ in range(warmup):
        step()
    flops = None
    if device.type == "cuda":
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            step()
        flops = counter.get_total_flops()
        torch.cuda.reset_peak_memory_stats(device)
    timings.clear()
    ctx._sync()
    t0 = time.perf_counter()
    steps = 0
    while steps < spec["steps"] or time.perf_counter() - t0 < spec["seconds"]:  # at least N steps and S seconds
        step()
        steps += 1
    ctx._sync()
    seconds = (time.perf_counter() - t0) / steps
    out = {**spec, "steps": steps, "images_per_s": spec["batch"] / seconds, "step_s": seconds,
           "phases": {k: v / steps for k, v in timings.items()}}  # fmt: skip
    if device.type == "cuda":
        out["peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        name = torch.cuda.get_device_name(device)
        peak = next((v for k, v in PEAKS.items() if k in name), None)
        if peak and flops:
            out["mfu"] = flops / seconds / (peak[1] if dtype is None else peak[0])
    else:
        with open("/proc/self/status") as fh:
            hwm = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM"))
        out["peak_mib"] = hwm / 1024  # the whole process: interpreter, torch, data, model, step
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=0, help="at least this many timed steps per row (default: 3 on CPU, 20 on GPU)")
    parser.add_argument("--seconds", type=float, default=4.0, help="and at least this many seconds of timed steps per row")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--generator", default="unet", help="generator architecture (a name of the network registry)")
    parser.add_argument("--compile", action="store_true", help="include torch.compile rows (slow to start on CPU)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return

    from pix2gan.device import resolve_device

    device = resolve_device(args.device)
    steps = args.steps or (20 if device.type == "cuda" else 3)
    console = Console(width=max(160, Console().width))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    console.print(f"[bold]bench/train.py[/] ({args.generator} generator) on {name}, torch {torch.__version__}, at least {steps} timed steps and "
                  f"{args.seconds:g} s per row")  # fmt: skip
    results = []
    t_start = time.perf_counter()
    for spec in configs(device.type, args.compile):
        spec = {**spec, "device": str(device), "steps": steps, "seconds": args.seconds, "threads": args.threads,
                "generator": args.generator}
        done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})  # fmt: skip
        if done.returncode:
            tail = done.stderr.strip().splitlines()[-1:] or ["?"]
            console.print(f"[red]{spec['arch']} b{spec['batch']} {spec['precision']}: failed: {tail[0]}")
            continue
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        r = results[-1]
        console.print(f"  {r['arch']:<22} b{r['batch']:<3} {r['precision']} cl={int(r['channels_last'])} "
                      f"compile={int(r['compile'])}  {r['images_per_s']:.2f} img/s", highlight=False)  # fmt: skip

    table = Table(title="training step (D phase + G phase), images/s vs the straightforward step of the same arch")
    for col in ("architecture", "batch", "precision", "chan-last", "compile", "img/s", "vs plain", "data ms",
                "G ms", "D ms", "optim ms", "peak MiB", "MFU"):  # fmt: skip
        table.add_column(col, justify="left" if col == "architecture" else "right")
    plain: dict[str, float] = {}
    for r in results:
        if r["plain"]:
            plain[r["arch"]] = r["images_per_s"]
        ratio = r["images_per_s"] / plain[r["arch"]] if r["arch"] in plain else float("nan")
        ph = r["phases"]
        table.add_row(
            r["arch"] + (" [dim](plain)" if r["plain"] else ""), str(r["batch"]), r["precision"],
            "yes" if r["channels_last"] else "", "yes" if r["compile"] else "", f"{r['images_per_s']:.2f}",
            f"{ratio:.2f}x", *(f"{1000 * ph.get(k, 0.0):.1f}" for k in ("data", "G", "D", "optimiser")),
            f"{r['peak_mib']:.0f}", f"{100 * r['mfu']:.1f} %" if "mfu" in r else "-",
        )  # fmt: skip
    console.print(table)
    default = next((r for r in results if r["arch"].startswith("demo") and not r["plain"]
                    and r["precision"] == "fp32" and not r["channels_last"] and not r["compile"]), None)  # fmt: skip
    if default and "demo (default config)" in plain:
        ratio = default["images_per_s"] / plain["demo (default config)"]
        console.print(f"default config vs the straightforward step at the same architecture: {ratio:.2f}x "
                      f"({'meets' if ratio >= 1.5 else 'below'} the 1.5x goal)")  # fmt: skip
    console.print(f"[dim]peak MiB: {'torch.cuda.max_memory_allocated' if device.type == 'cuda' else 'process RSS high-water mark (VmHWM)'}; "
                  f"phases are synchronised wall times per step; {time.perf_counter() - t_start:.0f} s in all")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
