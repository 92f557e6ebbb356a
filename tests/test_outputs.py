"""Outputs through ``pix2gan translate``: every file of a volume (the prediction, its ``_std`` map, the data files of
detached ``.mhd`` / ``.nhdr`` headers) appears together or not at all, is checked for existence before any work, and
an old result replaced with ``--overwrite`` is kept when the new one fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import pix2gan.infer.translate as translate_module
from pix2gan.errors import InputError
from pix2gan.infer.outputs import output_files, plan_outputs
from pix2gan.io import load_volume, save_like
from pix2gan.io.atomic import discard_staging, staged, staging_folders
from pix2gan_cli.app import app

DETACHED = {".mhd": ".zraw", ".nhdr": ".raw.gz"}


def _scans(tiny_data: Path, folder: Path, suffix: str, names: tuple[str, ...] = ("a", "b")) -> Path:
    """T1 volumes of the tiny phantoms as ``<name><suffix>`` in ``folder``."""
    folder.mkdir(parents=True)
    for i, name in enumerate(names):
        source = load_volume(tiny_data / f"sub-00{i + 1}" / "t1.nii.gz")
        save_like(folder / f"{name}{suffix}", source.data, source)
    return folder


def _fail_std_of(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the ``_std`` map of input ``name`` fail once written (as a full disk would at its last fsync)."""
    real = translate_module.save_like

    def save_like_then_fail(path: Path, data, template, **options) -> None:  # noqa: ANN001
        real(path, data, template, **options)
        if "_std" in Path(path).name and template.path.name.startswith(name):
            raise InputError(f"{path}: cannot write (no space left on device)")

    monkeypatch.setattr(translate_module, "save_like", save_like_then_fail)


def _translate(*args: object):
    return CliRunner().invoke(app, ["translate", *map(str, args), "--device", "cpu"])


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("suffix", [".mhd", ".nhdr"])
def test_a_failed_detached_volume_leaves_no_data_file(tmp_path, tiny_data, tiny_run, suffix, monkeypatch):
    """One volume whose ``_std`` map fails: one error line, and nothing in the output folder (before: the
    prediction's data file stayed, its header removed)."""
    scans = _scans(tiny_data, tmp_path / "in", suffix, ("a",))
    _fail_std_of("a", monkeypatch)
    result = _translate(scans / f"a{suffix}", "--run", tiny_run, "-o", tmp_path / "out" / f"ct{suffix}", "--uncertainty")
    assert result.exit_code == 2 and "no space left on device" in result.stderr, result.output
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("suffix", [".mhd", ".nhdr"])
def test_overwrite_keeps_the_old_result_of_a_volume_that_fails(tmp_path, tiny_data, tiny_run, suffix, monkeypatch):
    """A folder translated again with ``--overwrite`` where b's ``_std`` map fails: a is written, b's earlier result
    (header, data file and std map) is kept byte for byte, and nothing else is left (before: b's files were removed)."""
    scans = _scans(tiny_data, tmp_path / "in", suffix)
    out = tmp_path / "out"
    first = _translate(scans, "--run", tiny_run, "-o", out, "--uncertainty")
    assert first.exit_code == 0, first.output
    names = sorted(p.name for v in ("a", "b") for p in output_files(out / f"{v}{suffix}", uncertainty=True))
    assert sorted(_contents(out)) == names  # e.g. a.mhd, a.zraw, a_std.mhd, a_std.zraw, b...
    (out / f"a{DETACHED[suffix]}").write_bytes(b"old a")  # to see that a is replaced
    before = _contents(out)
    _fail_std_of("b", monkeypatch)
    again = _translate(scans, "--run", tiny_run, "-o", out, "--uncertainty", "--overwrite")
    assert again.exit_code == 2 and "no space left on device" in again.stderr, again.output
    after = _contents(out)
    assert sorted(after) == names
    assert {n: after[n] for n in names if n.startswith("b")} == {n: before[n] for n in names if n.startswith("b")}
    assert after[f"a{DETACHED[suffix]}"] != b"old a"
    assert load_volume(out / f"a{suffix}").shape == (32, 32, 9)


@pytest.mark.parametrize("suffix", [".mhd", ".nhdr"])
def test_an_existing_data_file_is_refused_without_overwrite(tmp_path, tiny_data, tiny_run, suffix):
    """Only ``ct.zraw`` (``ct.raw.gz``) exists: refused before any work, naming it, and left as it was (before: it
    was replaced); with ``--overwrite`` it is replaced."""
    scans = _scans(tiny_data, tmp_path / "in", suffix, ("a",))
    data = tmp_path / "out" / f"ct{DETACHED[suffix]}"
    data.parent.mkdir()
    data.write_bytes(b"someone else's")
    result = _translate(scans / f"a{suffix}", "--run", tiny_run, "-o", tmp_path / "out" / f"ct{suffix}")
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {data}: already exists (use --overwrite to replace it)\n"
    assert _contents(tmp_path / "out") == {data.name: b"someone else's"}
    again = _translate(scans / f"a{suffix}", "--run", tiny_run, "-o", tmp_path / "out" / f"ct{suffix}", "--overwrite")
    assert again.exit_code == 0, again.output
    assert sorted(_contents(tmp_path / "out")) == sorted([f"ct{suffix}", data.name])


def test_a_std_output_clashing_with_another_output_is_refused(tmp_path):
    """``a`` and ``a_std`` in one folder with ``--uncertainty``: a's map would be a_std's prediction."""
    (tmp_path / "in").mkdir()
    for name in ("a.nii.gz", "a_std.nii.gz"):
        (tmp_path / "in" / name).write_bytes(b"x")
    with pytest.raises(InputError, match=r"a_std\.nii\.gz: output .*out/a_std\.nii\.gz would also be written for"):
        plan_outputs([tmp_path / "in"], tmp_path / "out", src="t1", dst="ct", uncertainty=True)


def test_a_swap_that_fails_halfway_puts_the_old_files_back(tmp_path, monkeypatch):
    """The second file of a result cannot be moved in: the first goes back to its old version, the staging folder
    goes, and a leftover staging folder of a killed writer is cleaned with the old file restored."""
    (tmp_path / "a_std.nii.gz").write_bytes(b"old std")
    (tmp_path / "a.nii.gz").write_bytes(b"old")
    real = os.replace

    def replace(src, dst) -> None:  # noqa: ANN001
        if Path(dst).name == "a.nii.gz":
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="No space"), staged([tmp_path / "a_std.nii.gz", tmp_path / "a.nii.gz"], overwrite=True) as stage:
        stage.path(tmp_path / "a_std.nii.gz").write_bytes(b"new std")
        stage.path(tmp_path / "a.nii.gz").write_bytes(b"new")
    monkeypatch.undo()
    assert _contents(tmp_path) == {"a.nii.gz": b"old", "a_std.nii.gz": b"old std"}
    with pytest.raises(InputError, match=r"a\.nii\.gz: already exists"), staged([tmp_path / "a.nii.gz"], overwrite=False) as stage:
        stage.path(tmp_path / "a.nii.gz").write_bytes(b"new")
    assert _contents(tmp_path) == {"a.nii.gz": b"old", "a_std.nii.gz": b"old std"}
    # a writer killed between moving an old series folder aside and moving the new one in
    (tmp_path / "series").mkdir()
    (tmp_path / "series" / "IM1.dcm").write_bytes(b"old slice")
    root = tmp_path / ".series.pix2gan-partial-x"
    (root / ".replaced").mkdir(parents=True)
    (tmp_path / "series").rename(root / ".replaced" / "series")
    assert staging_folders(tmp_path / "series") == [root]
    discard_staging(root)
    assert _contents(tmp_path / "series") == {"IM1.dcm": b"old slice"} and not root.exists()


@pytest.mark.parametrize("name", ["CT.MHA", "CT.MHD", "CT.NHDR"])
def test_an_upper_case_itk_name_is_written_as_asked(tmp_path, tiny_data, name):
    """ITK writes ``CT.MHA`` as a detached ``CT.mhd`` + ``CT.zraw`` and ``CT.MHD`` as ``CT.mhd``: the output is the
    file asked for (with the data file :func:`output_files` names), and reads back."""
    source = load_volume(tiny_data / "sub-001" / "t1.nii.gz")
    save_like(tmp_path / name, source.data, source)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in output_files(tmp_path / name))
    assert load_volume(tmp_path / name).data.tobytes() == source.data.tobytes()
