"""Test helpers importable from every test module (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

SUBPROCESS_TIMEOUT = 300  # seconds a torchrun or CLI subprocess may take before its whole process group is killed

# pix2gan's CLI under torchrun, every rank writing its pid and, after training, the weights it ended with (so a test
# can compare the ranks): ``python driver.py OUT <pix2gan arguments>``
RANK_WEIGHTS_DRIVER = textwrap.dedent(
    """
    import os, sys
    import torch
    import pix2gan.train as train
    out = sys.argv.pop(1)
    open(os.path.join(out, f"pid{os.environ.get('RANK', '0')}"), "w").write(str(os.getpid()))
    real_fit = train.fit
    def fit(*args, **kwargs):
        result = real_fit(*args, **kwargs)
        state = {"g": result.generator.state_dict(), "d": result.discriminator.state_dict()}
        torch.save(state, os.path.join(out, f"rank{os.environ.get('RANK', '0')}.pt"))
        return result
    train.fit = fit
    from pix2gan_cli.app import app
    app(sys.argv[1:], prog_name="pix2gan")
    """
)


def run_in_session(command: list[str], timeout: float = SUBPROCESS_TIMEOUT) -> subprocess.CompletedProcess:
    """``command`` (one thread per process, a wide terminal) in a session of its own; past ``timeout`` its whole
    process group (torchrun and every rank) is killed and the test fails instead of hanging."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(command[:6])} ... did not finish within {timeout} s:\n{err[-3000:]}")
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def torchrun(folder: Path, nproc: int, args: list) -> subprocess.CompletedProcess:
    """pix2gan's CLI with ``args`` on ``nproc`` ranks under torchrun (:data:`RANK_WEIGHTS_DRIVER` written to
    ``folder/driver.py``); each rank's pid and final weights land in ``folder/weights{nproc}/`` (``pid{R}``,
    ``rank{R}.pt``)."""
    driver, weights = folder / "driver.py", folder / f"weights{nproc}"
    driver.write_text(RANK_WEIGHTS_DRIVER)
    weights.mkdir(parents=True, exist_ok=True)
    return run_in_session([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                           str(driver), str(weights), *map(str, args)])  # fmt: skip


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None, **header: object) -> Path:
    """Write a NIfTI file with optional header tweaks (``slope``, ``inter``, ``qform_code``, ``sform_code``)."""
    affine = np.eye(4) if affine is None else affine
    img = nib.Nifti1Image(data, affine)
    img.header.set_qform(affine, code=int(header.get("qform_code", 1)))
    img.header.set_sform(affine, code=int(header.get("sform_code", 1)))
    if "slope" in header:
        img.header.set_slope_inter(header["slope"], header.get("inter", 0.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)
    return path


def oblique_affine(spacing=(0.9, 1.1, 3.0), angles=(0.3, -0.2, 0.15), origin=(-90.5, 101.25, -40.0)) -> np.ndarray:
    """A rotated, anisotropic voxel-to-mm affine."""
    a, b, c = angles
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ ry @ rx @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


def final_state(run: Path) -> dict:
    """What must be bit-identical between two trainings: the networks, optimisers, schedulers, step and epoch of the
    run's ``latest.pt``, and the regression snapshot of a ``--gan-warmup`` run."""
    import torch

    from pix2gan.runs import RunLayout

    raw = torch.load(RunLayout(run).latest, weights_only=True)
    keys = ("generator", "discriminator", "opt_g", "opt_d", "sched_g", "sched_d", "step", "epoch", "generator_regression")
    return {k: raw[k] for k in keys if k in raw}  # (a --gan-warmup run's regression snapshot too)


def run_at_step(run: Path, dest: Path, step: int) -> Path:
    """``dest``: a copy of the training ``run`` (saved with ``--checkpoint-every 1``) as it stood after ``step``: its
    files without checkpoints, panels or report, and its checkpoints of steps 1 to ``step``."""
    import shutil

    from pix2gan.runs import RunLayout

    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("checkpoints", "report.html", "*.png"))
    (dest / "checkpoints").mkdir()
    for k in range(1, step + 1):
        shutil.copy(RunLayout(run).checkpoints / f"step_{k:08d}.pt", dest / "checkpoints")
    return dest


def assert_identical(a, b, where: str = "") -> None:  # noqa: ANN001
    """``a`` and ``b`` equal bit for bit: tensors by ``torch.equal`` (and dtype, shape), containers recursively."""
    import torch

    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_identical(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_one_clear_line(result, needle: str) -> None:  # noqa: ANN001
    """A CLI result (typer's CliRunner) that is a user error: exit code 2, one ``error:`` line holding ``needle``, no
    traceback."""
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    assert text.startswith("error:") and needle in text, text


def csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file with a header (a run's ``log.csv`` or ``epochs.csv``)."""
    with open(path) as fh:
        return list(csv.DictReader(fh))


# networks and batches of a few seconds a row, for the benchmarks' end-to-end tests
TINY_NETS = {"depth": 3, "filters": 4, "disc_filters": 4, "disc_layers": 2, "image_size": 32, "batch_size": 4}


def load_bench(name: str):  # noqa: ANN201
    """The benchmark script ``bench/<name>.py`` as a module (``bench_<name>``), its folder importable (the scripts
    import one another: ``import quality``)."""
    import importlib.util

    root = Path(__file__).resolve().parent.parent
    if str(root / "bench") not in sys.path:
        sys.path.insert(0, str(root / "bench"))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", root / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (its dataclasses look their module up)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module
