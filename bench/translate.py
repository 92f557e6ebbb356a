"""Translating a large volume: peak memory and speed of the streaming pipeline vs the old whole-volume one.

Builds a synthetic ``size x size x slices`` float32 source (a smooth random field inside an ellipsoidal body, with
noise; nothing is downloaded), writes it to a temporary ``.nii`` (uncompressed by default so that gzip level 9 does
not dominate the timings; ``--gzip`` uses ``.nii.gz`` for the source and the outputs), and translates it file to
file in a fresh subprocess per method, so that each method's peak RSS is measured in isolation:

* streaming: ``Translator.translate_file`` -- one batch of slices normalised, translated and mapped back at a time,
  written over the decoded source, saved slice by slice;
* baseline: the pipeline before streaming, kept below verbatim: whole volume -> normalised copy -> slice-first copy
  -> list of batch outputs -> ``torch.cat`` -> inverse map -> moveaxis copy -> ``astype`` copy when saving;
* default: the default inference settings of a paired model (``RunConfig.from_options("paired")``: its planes,
  context and test-time augmentation; ``--planes``/``--context``/``--tta`` set others) -- several predictions
  fused slice by slice, reported as a ratio to the one-plane streaming row, and checked against the bound
  ``4 x volume + model``.

RSS growth = peak RSS during the translation (``VmHWM``, reset through ``/proc/self/clear_refs`` once imports, the
model and a warm-up forward pass are done) minus the RSS at that point. The bound checked is
``3 x float32 volume + model`` (parameters and buffers). Prints figures; exits 1 when the streaming path breaks
the bound or its output differs from the baseline's.

Usage::

    python bench/translate.py [--size 512] [--slices 300] [--batch-size 16] [--device auto] [--checkpoint PATH]
                              [--gzip] [--threads 0] [--planes axial,coronal,sagittal] [--context K] [--tta|--no-tta]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from pix2gan.config import ModelConfig, RunConfig
from pix2gan.options import run_config
from pix2gan.data.intensity import intensity_maps
from pix2gan.data.slices import from_slices, pad_to, to_slices
from pix2gan.nets import build_generator
from pix2gan.infer.translate import Translator
from pix2gan.device import resolve_device
from pix2gan.io import GEOMETRY_FIELDS, load_volume
from pix2gan.io.nifti import _write_image

MIB = 2**20


# --------------------------------------------------------------------------------------------------------------------
# the baseline: translate.py and volumes.save_like as they were before streaming
# --------------------------------------------------------------------------------------------------------------------
@torch.no_grad()
def old_predict_slices(generator, slices, multiple, *, batch_size=16, device=None):
    device = device or next(generator.parameters()).device
    n, _, h, w = slices.shape
    ph, pw = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    outputs = []
    for start in range(0, n, batch_size):
        batch = slices[start : start + batch_size].to(device, non_blocking=True)
        padded, (left, _, top, _) = pad_to(batch, ph, pw, value=-1.0)
        out = generator(padded)[..., top : top + h, left : left + w]
        outputs.append(out.float().cpu())
    return torch.cat(outputs) if outputs else torch.empty(0, 1, h, w)


def old_translate_array(tr: Translator, volume: np.ndarray) -> np.ndarray:
    scale = tr.src_map.scale_of(volume)
    slices = to_slices(tr.src_map.forward(volume, scale), tr.slice_axis)  # (N, H, W)
    pred = old_predict_slices(
        tr.generator, torch.from_numpy(slices)[:, None], tr.multiple, batch_size=tr.batch_size, device=tr.device
    )[:, 0].numpy()
    return np.ascontiguousarray(from_slices(tr.dst_map.inverse(pred), tr.slice_axis))


def old_save_like(path: Path, data: np.ndarray, template, dtype=np.float32, describe: str = "") -> None:
    src = template.image.header
    header = src.copy()
    header.set_data_dtype(dtype)
    header.set_slope_inter(1.0, 0.0)
    if describe:
        header["descrip"] = describe.encode()[:79]
    arr = np.asarray(data)
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(dtype)
        arr = np.clip(np.rint(arr), info.min, info.max)
    image = nib.Nifti1Image(arr.astype(dtype), template.affine, header=header)
    for key in GEOMETRY_FIELDS:
        image.header[key] = src[key]
    image.header.set_data_shape(arr.shape)
    _write_image(Path(path), image, True)


def old_translate_file(tr: Translator, in_path: Path, out_path: Path) -> None:
    source = load_volume(in_path)
    pred = old_translate_array(tr, source.data)
    old_save_like(out_path, pred, source, describe=f"pix2gan {tr.config.data.dst}")


# --------------------------------------------------------------------------------------------------------------------
# measuring one method in a child process
# --------------------------------------------------------------------------------------------------------------------
def _status_mib(field: str) -> float:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE).group(1)) / 1024  # type: ignore[union-attr]


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def build_translator(checkpoint: Path | None, device: str, batch_size: int, generator_name: str,
                     inference: dict | None = None) -> Translator:  # fmt: skip
    """The model to time: a checkpoint, or random weights of the demo-sized default; ``inference``: None for the
    one-plane 2-D model, else the default paired configuration with these options (None values: the defaults)."""
    if checkpoint is not None:
        return Translator.from_checkpoint(checkpoint, device=device, batch_size=batch_size)
    torch.manual_seed(0)
    if inference is None:
        cfg = RunConfig(model=ModelConfig(generator=generator_name))  # one plane, no context, no TTA
    else:
        cfg = run_config("paired", generator=generator_name, **inference)
    generator = build_generator(cfg)
    src_map, dst_map = intensity_maps(cfg.data)
    return Translator(generator, cfg, src_map, dst_map, device=resolve_device(device), batch_size=batch_size)


def _inference(args: argparse.Namespace) -> dict:
    planes = tuple(p for p in args.planes.split(",") if p) if args.planes is not None else None
    return {"planes": planes, "context": args.context, "tta": args.tta}


def child(args: argparse.Namespace) -> None:
    inference = _inference(args) if args.child == "default" else None
    tr = build_translator(args.checkpoint, args.device, args.batch_size, args.generator, inference)
    with torch.inference_mode():  # warm-up: thread pools, kernels; not part of the measured growth
        tr.generator(torch.zeros(1, tr.config.generator_model.in_channels, 64, 64, device=tr.device))
    model_bytes = sum(t.numel() * t.element_size() for t in [*tr.generator.parameters(), *tr.generator.buffers()])
    base = _status_mib("VmRSS")
    exact = _reset_peak()
    t0 = time.perf_counter()
    if args.child in ("streaming", "default"):
        tr.translate_file(args.src, args.out, overwrite=True)
    else:
        old_translate_file(tr, args.src, args.out)
    wall = time.perf_counter() - t0
    peak = _status_mib("VmHWM")
    result = {"base_mib": base, "peak_mib": peak, "growth_mib": peak - base, "wall_s": wall, "exact_peak": exact,
              "model_mib": model_bytes / MIB, "device": str(tr.device), "threads": torch.get_num_threads(),
              "passes": len(tr.passes(np.diag([0.5, 0.5, 1.0, 1.0]))), "describe": _describe(tr)}  # fmt: skip
    print(json.dumps(result))


def _describe(tr: Translator) -> str:
    dc = tr.config.data
    planes = "+".join(dc.planes) if dc.planes else f"axis {dc.slice_axis}"
    return f"{planes}, context {dc.context}, TTA {'on' if tr.tta else 'off'}, {tr.fusion}"


def run_child(mode: str, src: Path, out: Path, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--src", str(src), "--out", str(out),
           "--batch-size", str(args.batch_size), "--device", args.device, "--threads", str(args.threads),
           "--generator", args.generator]  # fmt: skip
    if args.checkpoint is not None:
        cmd += ["--checkpoint", str(args.checkpoint)]
    if args.planes is not None:
        cmd += ["--planes", args.planes]
    if args.context is not None:
        cmd += ["--context", str(args.context)]
    if args.tta is not None:
        cmd += ["--tta" if args.tta else "--no-tta"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"{mode} child failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------------------------------
# the synthetic source
# --------------------------------------------------------------------------------------------------------------------
def synthetic_volume(size: int, n_slices: int, seed: int = 0) -> np.ndarray:
    """(size, size, n_slices) float32 'MR-like' values: a smooth random field in an ellipsoidal body, plus noise."""
    rng = np.random.default_rng(seed)
    vol = np.empty((size, size, n_slices), np.float32)
    x = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    xx, yy = x[:, None], x[None, :]
    waves = [(rng.uniform(0.5, 4.0, 3), rng.uniform(0, 2 * np.pi), rng.uniform(40, 120)) for _ in range(6)]
    for k in range(n_slices):
        z = np.float32(-1.0 + 2.0 * k / max(n_slices - 1, 1))
        body = (xx / 0.8) ** 2 + (yy / 0.65) ** 2 + (z / 1.1) ** 2 < 1.0
        field = np.full((size, size), 400.0, np.float32)
        for (kx, ky, kz), phase, amp in waves:
            field += np.float32(amp) * np.cos(np.float32(kx) * np.pi * xx + np.float32(ky) * np.pi * yy + np.float32(kz * np.pi * z + phase))
        field += rng.normal(0.0, 15.0, (size, size)).astype(np.float32)
        vol[:, :, k] = np.where(body, field, 0.0)
    return vol


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512, help="in-plane voxels per side")
    parser.add_argument("--slices", type=int, default=300, help="slices (along the model's slice axis, 2)")
    parser.add_argument("--batch-size", type=int, default=16, help="slices per forward pass")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--checkpoint", type=Path, default=None, help="a paired checkpoint (default: random demo model)")
    parser.add_argument("--gzip", action="store_true", help="source and outputs as .nii.gz (level 9) instead of .nii")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    parser.add_argument("--generator", default="unet", help="generator of the random model (a network registry name)")
    parser.add_argument("--planes", default=None, help="default row: planes, e.g. axial,coronal,sagittal ('' = one axis)")
    parser.add_argument("--context", type=int, default=None, help="default row: neighbouring slices on each side")
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None, help="default row: flip TTA")
    parser.add_argument("--child", choices=["streaming", "baseline", "default"], help=argparse.SUPPRESS)
    parser.add_argument("--src", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        child(args)
        return

    from rich.console import Console
    from rich.table import Table

    console = Console()
    suffix = ".nii.gz" if args.gzip else ".nii"
    volume_mib = args.size * args.size * args.slices * 4 / MIB
    with tempfile.TemporaryDirectory(prefix="pix2gan-bench-") as tmp:
        src, out_s, out_b, out_d = (Path(tmp) / f"{n}{suffix}" for n in ("source", "streaming", "baseline", "default"))
        t0 = time.perf_counter()
        vol = synthetic_volume(args.size, args.slices)
        affine = np.diag([0.5, 0.5, 1.0, 1.0])
        image = nib.Nifti1Image(vol, affine)
        image.header.set_qform(affine, code=1)
        image.header.set_sform(affine, code=1)
        nib.save(image, src)
        del vol, image
        console.print(
            f"source {args.size} x {args.size} x {args.slices} float32 ({volume_mib:,.0f} MiB) written as {suffix} "
            f"in {time.perf_counter() - t0:.1f} s; torch {torch.__version__}, batch size {args.batch_size}, "
            f"device {args.device}",
            highlight=False,
        )
        base = run_child("baseline", src, out_b, args)
        stream = run_child("streaming", src, out_s, args)
        default = run_child("default", src, out_d, args) if args.checkpoint is None else None
        a, b = nib.load(out_s).get_fdata(dtype=np.float32), nib.load(out_b).get_fdata(dtype=np.float32)
        max_diff = float(np.abs(a - b).max())
        del a, b

    model_mib = stream["model_mib"]
    bound = 3 * volume_mib + model_mib
    table = Table(title=f"translate {args.size} x {args.size} x {args.slices}: volume {volume_mib:,.0f} MiB, model "
                        f"{model_mib:.1f} MiB, bound 3 x volume + model = {bound:,.0f} MiB")  # fmt: skip
    for col in ("method", "RSS growth", "/ volume", "bound", "wall s", "slices/s", "speed vs baseline", "time vs one plane"):
        table.add_column(col, justify="left" if col == "method" else "right")
    rows = [("baseline", base, bound), ("streaming (one plane)", stream, bound)]
    if default is not None:
        rows.append((f"default ({default['passes']} passes)", default, 4 * volume_mib + model_mib))
    for name, r, limit in rows:
        table.add_row(
            name,
            f"{r['growth_mib']:,.0f} MiB",
            f"{r['growth_mib'] / volume_mib:.2f}x",
            f"{'[green]PASS' if r['growth_mib'] < limit else '[red]FAIL'}[/] {limit / volume_mib:.0f}x",
            f"{r['wall_s']:.1f}",
            f"{args.slices / r['wall_s']:.1f}",
            f"{base['wall_s'] / r['wall_s']:.2f}x",
            f"{r['wall_s'] / stream['wall_s']:.2f}x",
        )
    console.print(table)
    console.print(
        f"device {stream['device']}, {stream['threads']} threads. RSS after imports + model load: baseline "
        f"{base['base_mib']:,.0f} MiB, streaming {stream['base_mib']:,.0f} MiB"
        f"{'' if stream['exact_peak'] else ' (peak not resettable here: growth includes start-up)'}. "
        f"max |streaming - baseline| = {max_diff:.3g}. speed streaming / baseline = {base['wall_s'] / stream['wall_s']:.2f}x",
        highlight=False,
    )
    if default is not None:
        console.print(f"default inference ({default['describe']}): {default['wall_s']:.1f} s ({default['wall_s'] / stream['wall_s']:.2f}x one plane), "
                      f"RSS growth {default['growth_mib'] / volume_mib:.2f}x the volume (bound 4x + model)", highlight=False)
    if stream["growth_mib"] >= bound or max_diff > 1e-3:
        sys.exit(1)
    if default is not None and default["growth_mib"] >= 4 * volume_mib + model_mib:
        sys.exit(1)


if __name__ == "__main__":
    main()
