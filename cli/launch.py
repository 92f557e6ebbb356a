"""``pix2gan train --nproc N``: the same command again under ``torchrun --standalone --nproc-per-node N``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer
from rich.console import Console

__all__ = ["launch_torchrun", "without_option"]


def launch_torchrun(nproc: int, run_dir: Path | None, resume: Path | None, err: Console) -> None:
    """``pix2gan train --nproc N ...``: the same command under ``torchrun --standalone --nproc-per-node N``."""
    args = without_option(sys.argv[1:], "--nproc")
    if resume is None and "--run-dir" not in args:  # one name for every rank (a timestamp could differ between them)
        args += ["--run-dir", str(run_dir)]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "pix2gan_cli.app", *args]  # fmt: skip
    err.print(f"launching {nproc} DDP processes: torchrun --standalone --nproc-per-node={nproc} -m pix2gan_cli.app "
              f"{' '.join(args)}", highlight=False, soft_wrap=True)  # fmt: skip
    code = subprocess.call(command)
    if code:
        raise typer.Exit(code)


def without_option(argv: list[str], name: str) -> list[str]:
    """``argv`` without ``name VALUE`` / ``name=VALUE``.

    Example:
        >>> without_option(["train", "--nproc", "2", "--epochs", "3", "--nproc=4"], "--nproc")
        ['train', '--epochs', '3']
    """
    out, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
        elif a == name:
            skip = i + 1 < len(argv)
        elif not a.startswith(name + "="):
            out.append(a)
    return out
