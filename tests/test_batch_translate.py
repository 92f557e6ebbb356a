"""Many volumes: a corrupt file is reported and skipped, the others are written, and ``--nproc 2`` (two spawned CPU
workers) writes the same bytes as one process. A worker that dies fails the command with one line, not a hang."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from pix2gan.errors import InputError
from pix2gan.infer.batch import BatchResult, WorkerError, translate_many
from pix2gan_cli.app import app

GOOD = ["a.nii.gz", "b.nii.gz", "c.nii.gz", "d.nii.gz"]


@pytest.fixture(scope="module")
def scans(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four good T1 volumes and one truncated ``bad.nii.gz`` (sorted among them, so the good ones come after it)."""
    folder = tmp_path_factory.mktemp("batch") / "scans"
    folder.mkdir()
    for name, subject in zip(GOOD, ("sub-001", "sub-002", "sub-003", "sub-004"), strict=True):
        shutil.copy(tiny_data / subject / "t1.nii.gz", folder / name)
    whole = (tiny_data / "sub-005" / "t1.nii.gz").read_bytes()
    (folder / "bad.nii.gz").write_bytes(whole[: len(whole) // 2])
    return folder


def _translate(scans: Path, run: Path, out: Path, *extra: str):
    args = ["translate", str(scans), "--run", str(run), "-o", str(out), "--device", "cpu", *extra]
    return CliRunner().invoke(app, args)


def _check(stdout: str, stderr: str, out: Path, scans: Path) -> str:
    """The bad file named in one error line and not written; the four others written; returns the summary line."""
    assert "Traceback" not in stdout + stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "bad.nii.gz" in errors[0] and "truncated or corrupt" in errors[0], stderr
    (summary,) = [line for line in stderr.splitlines() if line.startswith("translated ")]
    assert summary.startswith("translated 4 volume(s) with "), summary
    assert summary.endswith(f", 1 failed: {scans / 'bad.nii.gz'}"), summary
    assert sorted(p.name for p in out.iterdir()) == GOOD  # nothing else: no bad output, no temporary file
    assert sorted(line.split(" -> ")[0] for line in stdout.splitlines()) == [str(scans / n) for n in GOOD]
    return summary


@pytest.fixture(scope="module")
def one_process(scans: Path, tiny_run: Path, tmp_path_factory: pytest.TempPathFactory):
    """The folder translated by one process: (the CLI's result, the output folder)."""
    out = tmp_path_factory.mktemp("one") / "out"
    return _translate(scans, tiny_run, out), out


def test_a_corrupt_file_does_not_stop_the_folder(scans, one_process):
    result, out = one_process
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    summary = _check(result.stdout, result.stderr, out, scans)
    assert " (t1 -> ct, axis 2, cpu) in " in summary, summary


def test_two_workers_write_the_same_bytes_as_one_process(scans, tiny_run, one_process, tmp_path):
    result = _translate(scans, tiny_run, tmp_path / "two", "--nproc", "2")
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "2 processes on cpu" in _check(result.stdout, result.stderr, tmp_path / "two", scans)
    for name in GOOD:
        assert (one_process[1] / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


def test_one_bad_volume_alone_is_still_one_line(scans, tiny_run, tmp_path):
    """A single input keeps the one-line contract of every user error: no summary, exit 2."""
    result = CliRunner().invoke(app, ["translate", str(scans / "bad.nii.gz"), "--run", str(tiny_run), "-o",
                                      str(tmp_path / "o.nii.gz"), "--device", "cpu"])  # fmt: skip
    assert result.exit_code == 2 and result.stdout == "", result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and "bad.nii.gz" in result.stderr
    assert not (tmp_path / "o.nii.gz").exists()


class _Failing:
    """An ensemble whose translate_file fails with an input error for ``bad.nii.gz`` and writes the others."""

    class _Member:
        device = "cpu"

    members = [_Member()]

    def translate_file(self, in_path: Path, out_path: Path, **options: object) -> Path:
        if in_path.name == "bad.nii.gz":
            raise InputError(f"{out_path.parent}: cannot write here (no space left on device)")
        out_path.write_bytes(b"result")
        return out_path


def test_a_failed_volume_is_recorded_and_the_others_go_on(tmp_path):
    """(That a failed volume leaves no file behind, its data files and _std map included, is translate_file's
    promise: tests/test_outputs.py.)"""
    plan = [(tmp_path / "bad.nii.gz", tmp_path / "out" / "bad.nii.gz"), (tmp_path / "a.nii.gz", tmp_path / "out" / "a.nii.gz")]
    (tmp_path / "out").mkdir()
    seen = []
    result = translate_many(plan, {}, ensemble=_Failing(), uncertainty=True, on_result=seen.append)  # type: ignore[arg-type]
    assert isinstance(result, BatchResult) and [r.input.name for r in result.translated] == ["a.nii.gz"]
    (failed,) = result.failed
    assert failed.error == f"{tmp_path / 'bad.nii.gz'}: {tmp_path / 'out'}: cannot write here (no space left on device)"
    assert len(seen) == 2 and result.failure_summary() == f", 1 failed: {tmp_path / 'bad.nii.gz'}"
    with pytest.raises(InputError, match="cannot write here"):  # keep_going=False: the first error is raised
        translate_many(plan[:1], {}, ensemble=_Failing(), uncertainty=True, keep_going=False)  # type: ignore[arg-type]


_LOADERS = '''
import os


def die(**spec):
    """A worker killed while loading its model (as the kernel's out-of-memory killer would)."""
    os._exit(9)


def fail(**spec):
    """A worker whose model does not fit (not an input error: it stops everything)."""
    raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")


class _BuggyOnFirst:
    """Fails with a bug on volume 0 (the first taken); writes each other volume only once that has failed."""

    class _Member:
        device = "cpu"

    members = [_Member()]

    def translate_file(self, in_path, out_path, **options):
        import time

        failed = in_path.with_name("failed")
        if in_path.name.startswith("0"):
            failed.touch()
            raise RuntimeError("a bug")
        for _ in range(200):
            if failed.exists():
                break
            time.sleep(0.05)
        time.sleep(0.5)
        out_path.write_bytes(b"ct")
        return out_path


def buggy_on_first(**spec):
    return _BuggyOnFirst()


def killed_while_writing(**spec):
    """The real models, in a worker killed halfway through writing its first output file."""
    import contextlib

    import pix2gan.io.nifti as nifti
    from pix2gan.infer.translate import load_ensemble

    real = nifti.atomic_path

    @contextlib.contextmanager
    def dying(path, **options):
        with real(path, **options) as tmp:
            tmp.write_bytes(b"half a volume")
            os._exit(9)
            yield tmp

    nifti.atomic_path = dying
    return load_ensemble(**spec)
'''


@pytest.mark.parametrize(("loader", "message"), [
    ("die", r"^a worker process died \(killed, or out of memory\?\) after 0 of 2 volume\(s\)"),
    ("fail", r"0\.nii\.gz: RuntimeError: CUDA out of memory\. Tried .* \(worker on cpu\); stopped after 0 of 2"),
])  # fmt: skip
def test_a_failing_worker_stops_everything_with_one_line(loader, message, tmp_path, monkeypatch):
    (tmp_path / "loaders.py").write_text(_LOADERS)
    monkeypatch.syspath_prepend(str(tmp_path))  # spawned workers get this sys.path, so they import the loader too
    import loaders

    plan = [(tmp_path / f"{i}.nii.gz", tmp_path / f"{i}_ct.nii.gz") for i in range(2)]
    with pytest.raises(WorkerError, match=message):
        translate_many(plan, {"device": "cpu"}, nproc=2, loader=getattr(loaders, loader))


@pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="torch built without gloo")
def test_torchrun_ranks_share_the_folder_and_rank_0_reports(scans, tiny_run, one_process, tmp_path):
    """``torchrun --nproc-per-node 2 -m pix2gan_cli.app -- translate``: rank r takes every other volume, rank 0
    prints the one summary (with the corrupt file, gathered over gloo) and exits 2, so torchrun fails."""
    out = tmp_path / "ranks"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m",
               "pix2gan_cli.app", "--", "translate", str(scans), "--run", str(tiny_run), "-o", str(out), "--device",
               "cpu"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "300"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode != 0 and "exitcode  : 2" in done.stderr, done.stderr[-3000:]
    stderr = "\n".join(line for line in done.stderr.splitlines() if line.startswith(("error: ", "translated ")))
    assert "2 processes on cpu" in _check(done.stdout, stderr, out, scans)
    for name in GOOD:
        assert (one_process[1] / name).read_bytes() == (out / name).read_bytes(), name


def test_volumes_finished_after_a_worker_error_are_reported(tmp_path, monkeypatch):
    """A bug on volume 0 in one worker: the volumes the other worker was translating finish, and each written one is
    passed to on_result and counted in the error (before: the error came first and they were never reported)."""
    (tmp_path / "loaders.py").write_text(_LOADERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    import loaders

    plan = [(tmp_path / f"{i}.nii.gz", tmp_path / f"{i}_ct.nii.gz") for i in range(3)]
    seen = []
    with pytest.raises(WorkerError) as caught:
        translate_many(plan, {"device": "cpu"}, nproc=2, loader=loaders.buggy_on_first, on_result=seen.append)
    written = sorted(out for _, out in plan if out.exists())
    assert written and sorted(r.output for r in seen) == written  # each volume written has its line
    assert sorted(r.output for r in caught.value.results) == written
    assert str(caught.value) == (f"{tmp_path / '0.nii.gz'}: RuntimeError: a bug (worker on cpu); stopped after "
                                 f"{len(written)} of 3 volume(s)")  # fmt: skip


def test_a_killed_worker_leaves_no_hidden_file_and_exits_1(scans, tiny_run, tmp_path, monkeypatch):
    """``translate --nproc 2`` whose workers are killed while writing: one error line, exit code 1, and nothing left
    in the output folder, hidden staging files included (before: ``.a.nii.gz.XXXX.nii.gz`` stayed)."""
    import pix2gan.infer.batch as batch

    (tmp_path / "loaders.py").write_text(_LOADERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    import loaders

    real = batch.translate_many
    monkeypatch.setattr(batch, "translate_many", lambda *a, **k: real(*a, **k, loader=loaders.killed_while_writing))
    result = _translate(scans, tiny_run, tmp_path / "out", "--nproc", "2")
    assert result.exit_code == 1, (result.output, result.exception)
    assert result.stderr.startswith("error: a worker process died (killed, or out of memory?) after 0 of 5 volume(s)")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []
