"""Prove that a refactor kept training bit-identical: same short trainings on two revisions, same checkpoints.

Runs the same CPU trainings (``--threads 1 --device cpu``, one seed) with the code of a base revision and with the
code of the working tree (or a second revision), each in a fresh subprocess, on the very same data, then compares
the two ``checkpoints/latest.pt`` files tensor by tensor with ``torch.equal``: the generator, the discriminator and,
when present, the optimiser (``opt_g``/``opt_d``) and scheduler states and the saved RNG states.

* paired: ``train --src t1 --dst ct --epochs 2`` on the bundled ``samples/`` (all else default);
* class: ``train --mode class --epochs 2 --image-size 28 --batch-size 16`` on a small digit folder, written once
  with the base revision's ``write_digit_folder``.

Each revision runs from its own tree whatever package the environment has installed: a detached git worktree (in
the temp folder, reused when it exists) on ``PYTHONPATH``, plus a shim folder whose ``pix2gan_cli`` links to the
tree's ``cli/``; the imports are checked before training. Exit status 0 when every run is bit-identical, 1 when a
tensor differs, 2 when a run fails.

Usage::

    python bench/bit_identical.py [--base 3a50455] [--head REV] [--runs paired class] [--epochs 2] [--keep]
                                  [--head-options "--gan-loss lsgan ..."]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(tempfile.gettempdir()) / "pix2gan-bit-identical"
COMPARED = ("generator", "discriminator", "opt_g", "opt_d", "sched_g", "sched_d", "rng")


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True).stdout.strip()


def worktree(rev: str) -> tuple[Path, str]:
    """A detached worktree of ``rev`` under the temp folder (created, or reused when it is clean at that commit)."""
    sha = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    path = CACHE / f"worktree-{sha[:12]}"
    reuse = (path / ".git").exists() and git("-C", str(path), "rev-parse", "HEAD") == sha
    if not reuse or git("-C", str(path), "status", "--porcelain", "--untracked-files=no"):
        shutil.rmtree(path, ignore_errors=True)
        git("worktree", "add", "--force", "--detach", str(path), sha)
    return path, f"{rev} ({sha[:9]})"


def tree_env(root: Path, name: str) -> dict[str, str]:
    """Environment whose ``pix2gan`` is ``root/pix2gan`` and whose ``pix2gan_cli`` is ``root/cli``."""
    shim = CACHE / "shims" / name
    shim.mkdir(parents=True, exist_ok=True)
    link = shim / "pix2gan_cli"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(root / "cli", target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=f"{root}{os.pathsep}{shim}", PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1")
    return env


def python(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, *args], cwd=root, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"python {' '.join(args)[:120]} failed in {root} (exit {proc.returncode}):\n{tail}")
    return proc


def check_imports(root: Path, env: dict[str, str]) -> None:
    code = "import os, pix2gan as p, pix2gan_cli as c; print(*(os.path.realpath(m.__file__) for m in (p, c)))"
    files = python(root, env, "-c", code).stdout.split()
    if not all(Path(f).is_relative_to(root.resolve()) for f in files):
        raise RuntimeError(f"imports do not resolve to {root}: {files}")


def train(root: Path, env: dict[str, str], args: list[str], run_dir: Path, seed: int, extra: list[str]) -> float:
    """One training in a fresh subprocess; returns its wall time in seconds."""
    start = time.perf_counter()
    python(root, env, "-m", "pix2gan_cli.app", "train", *args, *extra, "--run-dir", str(run_dir), "--seed", str(seed),
           "--threads", "1", "--device", "cpu", "--no-progress")  # fmt: skip
    return time.perf_counter() - start


def flatten(obj: Any, prefix: str) -> dict[str, Any]:
    """Nested dicts / lists of a checkpoint entry as ``{dotted.name: leaf}``."""
    if isinstance(obj, dict):
        return {k: v for key, val in obj.items() for k, v in flatten(val, f"{prefix}.{key}").items()}
    if isinstance(obj, (list, tuple)):
        return {k: v for i, val in enumerate(obj) for k, v in flatten(val, f"{prefix}.{i}").items()}
    return {prefix: obj}


def difference(a: Any, b: Any) -> str | None:
    """None when ``a`` and ``b`` are identical, else a short description of how they differ."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.dtype != b.dtype or a.shape != b.shape:
            return f"{a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}"
        if torch.equal(a, b):
            return None
        if a.is_floating_point() or a.is_complex():
            return f"max abs difference {(a.double() - b.double()).abs().max().item():.3g}"
        return f"{int((a != b).sum())} of {a.numel()} elements differ"
    return None if type(a) is type(b) and a == b else f"{a!r} vs {b!r}"


def compare(base_ck: Path, head_ck: Path) -> tuple[str, list[str]]:
    """One summary line (tensors identical per entry) and the list of differences."""
    a, b = (torch.load(p, map_location="cpu", weights_only=True) for p in (base_ck, head_ck))
    parts, diffs = [], []
    for entry in COMPARED:
        if entry not in a and entry not in b:
            continue
        fa, fb = flatten(a.get(entry), entry), flatten(b.get(entry), entry)
        tensors = same = 0
        known = len(diffs)
        for name in sorted(fa.keys() | fb.keys()):
            if name not in fa or name not in fb:
                diffs.append(f"{name}: only in {'base' if name in fa else 'head'}")
                continue
            why = difference(fa[name], fb[name])
            if isinstance(fa[name], torch.Tensor):
                tensors += 1
                same += why is None
            if why is not None:
                diffs.append(f"{name}: {why}")
        other = "same" if len(diffs) == known else "DIFFERS"  # an entry without tensors (schedulers)
        parts.append(f"{entry} {same}/{tensors}" if tensors else f"{entry} {other}")
    return ", ".join(parts) + " (tensors identical)", diffs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="3a50455", help="Base revision. [default: 3a50455]")
    parser.add_argument("--head", default=None, help="Revision to compare with. [default: the working tree]")
    parser.add_argument("--runs", nargs="+", choices=["paired", "class"], default=["paired", "class"])
    parser.add_argument("--epochs", type=int, default=2, help="Epochs of every run. [default: 2]")
    parser.add_argument("--seed", type=int, default=0, help="--seed of every run. [default: 0]")
    parser.add_argument("--samples", type=Path, default=REPO / "samples", help="Paired data. [default: samples/]")
    parser.add_argument("--per-class", type=int, default=24, help="Digit images per class. [default: 24]")
    parser.add_argument("--keep", action="store_true", help="Keep the run folders (printed) instead of removing them.")
    parser.add_argument("--head-options", default="", help="Extra train options of the head's paired run only, e.g. "
                        "the base's defaults when the head changed them on purpose (\"--gan-loss lsgan --lambda-l1 100\").")
    opts = parser.parse_args()

    CACHE.mkdir(parents=True, exist_ok=True)
    base_root, base_label = worktree(opts.base)
    head_root, head_label = worktree(opts.head) if opts.head else (REPO, f"working tree ({REPO})")
    trees = {"base": (base_root, tree_env(base_root, "base")), "head": (head_root, tree_env(head_root, "head"))}
    print(f"base: {base_label}\nhead: {head_label}", flush=True)
    out = Path(tempfile.mkdtemp(prefix="runs-", dir=CACHE))
    status = 0
    try:
        for root, env in trees.values():
            check_imports(root, env)
        digits = out / "digits"
        if "class" in opts.runs:  # written once, by the base revision, for both sides
            code = (f"from pix2gan.data.digits import write_digit_folder; "
                    f"write_digit_folder({str(digits)!r}, per_class={opts.per_class}, size=28, seed=0)")  # fmt: skip
            python(base_root, trees["base"][1], "-c", code)
        epochs = ["--epochs", str(opts.epochs)]
        specs = {
            "paired": ["--src", "t1", "--dst", "ct", *epochs, "--data", str(opts.samples.resolve())],
            "class": ["--mode", "class", "--data", str(digits), *epochs, "--image-size", "28", "--batch-size", "16"],
        }
        for run in opts.runs:
            extra = {side: opts.head_options.split() if side == "head" and run == "paired" else [] for side in trees}
            seconds = {side: train(root, env, specs[run], out / side / run, opts.seed, extra[side])
                       for side, (root, env) in trees.items()}
            summary, diffs = compare(*(out / side / run / "checkpoints" / "latest.pt" for side in trees))
            verdict = "BIT-IDENTICAL" if not diffs else f"DIFFERENT ({len(diffs)} entries)"
            print(f"{run}: {summary} -> {verdict}  [base {seconds['base']:.1f} s, head {seconds['head']:.1f} s]")
            for line in diffs[:8]:
                print(f"    {line}")
            status = max(status, 1 if diffs else 0)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        status = 2
    finally:
        if opts.keep:
            print(f"run folders kept in {out}")
        else:
            shutil.rmtree(out, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
