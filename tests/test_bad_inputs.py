"""Every bad input to every command, in one table: exit code 2, one ``error:`` line naming the file or option.

Each case builds its defect in a fresh temporary folder and runs the CLI in-process. Whatever the case, the answer
is the same contract: exit code 2; stderr is exactly one line, ``error: ...``, naming the offending file or option;
no traceback; nothing on stdout; and nothing written or replaced (the watched files and folders are byte- and
mtime-identical afterwards: no run folder, no output volume, no temporary file left behind, no overwrite).

Decisions documented here:

* Images with transparent pixels (RGBA, LA, or a palette with a transparent entry) are refused, naming the file:
  dropping the alpha would silently show the colours hidden under it. A fully opaque alpha channel is dropped, and
  grayscale images among RGB ones are replicated to three channels (a lossless, well-defined conversion).
* Out-of-range option values (``--epochs 0``) are Click usage errors; the CLI prints them as one ``error:`` line
  like every other user error, not Click's multi-line usage box.
* Two checkpoint cases are strict expected failures until ``load_checkpoint`` verifies the archive's CRC-32s: damaged
  weights load silently (and translate into garbage), and a damaged index is reported as "may be malicious".
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from helpers import write_nifti
from pix2gan_cli.app import app

TINY = ["--epochs", "1", "--depth", "3", "--filters", "4", "--disc-filters", "4", "--disc-layers", "2",
        "--image-size", "32", "--batch-size", "4", "--no-progress", "--device", "cpu"]  # fmt: skip
TINY_GAN = ["--epochs", "1", "--image-size", "28", "--filters", "4", "--disc-filters", "4", "--latent-dim", "8",
            "--embed-dim", "4", "--batch-size", "4", "--no-progress", "--device", "cpu"]  # fmt: skip


# --- shared fixtures -------------------------------------------------------------------------------------------------


def _image_folder(root: Path, classes: tuple[str, ...] = ("a", "b"), n: int = 4, mode: str = "RGB") -> Path:
    """``n`` small random images per class subfolder (no subfolder when ``classes`` is empty)."""
    rng = np.random.default_rng(0)
    for name in classes or ("",):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            shape = (28, 28, 3) if mode == "RGB" else (28, 28)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def class_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A class-mode run (2 classes of 28 x 28 gray images, 1 epoch), for checkpoint-of-another-mode and --label."""
    from pix2gan.config import DataConfig, GanModelConfig, Mode, RunConfig, TrainConfig
    from pix2gan.train import fit

    data = _image_folder(tmp_path_factory.mktemp("shapes") / "shapes", mode="L")
    run = tmp_path_factory.mktemp("gan") / "class"
    cfg = RunConfig(
        data=DataConfig(root=str(data)),
        train=TrainConfig(mode=Mode.CLASS, epochs=1, batch_size=4, device="cpu"),
        gan=GanModelConfig(image_size=28, gen_filters=4, disc_filters=4, latent_dim=8, embed_dim=4),
    )
    fit(cfg, run, progress=False)
    return run


@dataclass
class Env:
    """What a case may use: its own temporary folder and the shared data, runs and fixtures."""

    tmp: Path
    request: pytest.FixtureRequest

    def fixture(self, name: str) -> Path:
        return self.request.getfixturevalue(name)

    def folder(self, name: str) -> Path:
        path = self.tmp / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def data(self) -> Path:
        """A private copy of the tiny phantom data (5 subjects of 32 x 32 x 9), to damage."""
        return Path(shutil.copytree(self.fixture("tiny_data"), self.tmp / "data"))

    def scan(self, name: str = "scan.nii.gz") -> Path:
        """A copy of a good T1 volume under ``in/``."""
        return Path(shutil.copy(self.fixture("tiny_data") / "sub-001" / "t1.nii.gz", self.folder("in") / name))

    def translate(self, source: Path, *extra: str | Path, out: Path | None = None) -> list[str | Path]:
        out = out if out is not None else self.folder("out") / "o.nii.gz"
        return ["translate", source, "--run", self.fixture("tiny_run"), "-o", out, "--device", "cpu", *extra]

    def train(self, data: Path, *extra: str | Path) -> list[str | Path]:
        return ["train", "--data", data, "--run-dir", self.folder("runs") / "r", *TINY, *extra]

    def train_gan(self, mode: str, data: Path, *extra: str | Path) -> list[str | Path]:
        return ["train", "--mode", mode, "--data", data, "--run-dir", self.folder("runs") / "r", *TINY_GAN, *extra]


@dataclass
class Case:
    """Command line, texts the error line must contain, and the paths that must come out of it unchanged."""

    args: list[str | Path]
    needles: tuple[str, ...]
    watch: list[Path] = field(default_factory=list)


Builder = Callable[[Env], Case]
CASES: dict[str, Builder] = {}
MARKS: dict[str, pytest.MarkDecorator] = {}


def case(name: str, mark: pytest.MarkDecorator | None = None) -> Callable[[Builder], Builder]:
    """Register the decorated builder as case ``name`` (with an optional pytest mark)."""

    def register(build: Builder) -> Builder:
        assert name not in CASES, name
        CASES[name] = build
        if mark is not None:
            MARKS[name] = mark
        return build

    return register


def _translate_case(env: Env, source: Path, *needles: str) -> Case:
    """Translate ``source`` into an empty out/ folder that must stay empty."""
    return Case(env.translate(source), (source.name, *needles), [env.folder("out")])


def _train_case(env: Env, data: Path, *needles: str, extra: tuple[str, ...] = ()) -> Case:
    """Train into runs/r; runs/ must stay empty (no run folder, no config.json, no temporary file)."""
    return Case(env.train(data, *extra), needles, [env.folder("runs")])


# --- NIfTI files that are not 3-D volumes of finite numbers ---------------------------------------------------------


@case("translate-truncated-nii-gz")
def _(env: Env) -> Case:
    path = env.scan("trunc.nii.gz")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return _translate_case(env, path, "truncated or corrupt")


@case("train-truncated-nii-gz-header")
def _(env: Env) -> Case:
    data = env.data()
    path = data / "sub-002" / "t1.nii.gz"  # a training subject (the test subject, sub-003, is not read by train)
    path.write_bytes(path.read_bytes()[:40])  # the gzip stream ends inside the 348-byte header
    return _train_case(env, data, "sub-002/t1.nii.gz: not a readable NIfTI")


@case("train-wrong-magic")
def _(env: Env) -> Case:
    data = env.data()
    path = data / "sub-002" / "t1.nii.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    assert raw[344:348] == b"n+1\0"
    raw[344:348] = b"xyz\0"  # a well-formed header but for its magic string
    path.write_bytes(gzip.compress(bytes(raw)))
    return _train_case(env, data, "sub-002/t1.nii.gz: not a readable NIfTI")


@case("translate-empty-file")
def _(env: Env) -> Case:
    path = env.folder("in") / "empty.nii.gz"
    path.touch()
    return _translate_case(env, path, "empty file (0 bytes)")


@case("translate-text-named-nii-gz")
def _(env: Env) -> Case:
    path = env.folder("in") / "notes.nii.gz"
    path.write_text("subject 1: T1 acquired 2024-01-01\n")
    return _translate_case(env, path, "not a readable NIfTI")


@case("train-4d-volume")
def _(env: Env) -> Case:
    data = env.data()
    write_nifti(data / "sub-002" / "t1.nii.gz", np.ones((32, 32, 9, 2), np.float32))
    return _train_case(env, data, "sub-002/t1.nii.gz: volume is 4-D")


@case("translate-4d-volume")
def _(env: Env) -> Case:
    path = write_nifti(env.folder("in") / "fmri.nii.gz", np.ones((32, 32, 9, 3), np.float32))
    return _translate_case(env, path, "volume is 4-D")


@case("translate-2d-volume")
def _(env: Env) -> Case:
    path = write_nifti(env.folder("in") / "slice.nii.gz", np.ones((32, 32), np.float32))
    return _translate_case(env, path, "volume is 2-D")


@case("translate-zero-size-axis")
def _(env: Env) -> Case:
    path = write_nifti(env.folder("in") / "hollow.nii.gz", np.ones((32, 0, 9), np.float32))
    return _translate_case(env, path, "zero-size axis")


@case("train-nan-voxels")
def _(env: Env) -> Case:
    data = env.data()
    ct = nib.load(data / "sub-004" / "ct.nii.gz")
    arr = ct.get_fdata().astype(np.float32)
    arr[5, 6, 7] = np.nan
    write_nifti(data / "sub-004" / "ct.nii.gz", arr, ct.affine)
    return _train_case(env, data, "sub-004/ct.nii.gz: 1 voxel(s) are NaN or Inf")


@case("translate-inf-voxels")
def _(env: Env) -> Case:
    arr = np.random.default_rng(0).random((32, 32, 9), dtype=np.float32)
    arr[0, 0, :2] = [np.inf, -np.inf]
    path = write_nifti(env.folder("in") / "inf.nii.gz", arr)
    return _translate_case(env, path, "2 voxel(s) are NaN or Inf")


@case("translate-constant-volume")
def _(env: Env) -> Case:
    path = write_nifti(env.folder("in") / "flat.nii.gz", np.full((32, 32, 9), 300.0, np.float32))
    return _translate_case(env, path, "constant")


@case("train-constant-volume")
def _(env: Env) -> Case:
    data = env.data()
    affine = nib.load(data / "sub-001" / "ct.nii.gz").affine
    write_nifti(data / "sub-001" / "t1.nii.gz", np.full((32, 32, 9), 7, np.int16), affine)
    return _train_case(env, data, "sub-001/t1.nii.gz:", "constant")


# --- MetaImage and NRRD files (SimpleITK) ---------------------------------------------------------------------------


def _write_itk(path: Path, array: np.ndarray, *, vector: bool = False, compress: bool = False) -> Path:
    """``array`` ([z, y, x] or [t, z, y, x]) as an ITK image file; ``vector``: its last axis as pixel components."""
    import SimpleITK as sitk

    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(array, isVector=vector), str(path), compress)
    return path


@case("translate-mha-4d")
def _(env: Env) -> Case:
    path = _write_itk(env.folder("in") / "dynamic.mha", np.ones((3, 9, 32, 32), np.float32))
    return _translate_case(env, path, "volume is 4-D")


@case("translate-mha-vector-pixels")
def _(env: Env) -> Case:
    path = _write_itk(env.folder("in") / "field.mha", np.ones((9, 32, 32, 3), np.float32), vector=True)
    return _translate_case(env, path, "vector pixels (3 components per voxel)")


@case("translate-mhd-raw-missing")
def _(env: Env) -> Case:
    path = _write_itk(env.folder("in") / "scan.mhd", np.ones((9, 32, 32), np.int16))
    (path.parent / "scan.raw").unlink()
    return _translate_case(env, path, "its data file scan.raw is missing")


@case("translate-mhd-raw-short")
def _(env: Env) -> Case:
    path = _write_itk(env.folder("in") / "scan.mhd", np.ones((9, 32, 32), np.int16))
    raw = path.parent / "scan.raw"
    raw.write_bytes(raw.read_bytes()[:1000])
    return _translate_case(env, path, "its data file scan.raw is short (1000 bytes, 18432 expected)")


@case("translate-nrrd-truncated")
def _(env: Env) -> Case:
    path = _write_itk(env.folder("in") / "scan.nrrd", np.arange(9 * 32 * 32, dtype=np.int16).reshape(9, 32, 32), compress=True)
    path.write_bytes(path.read_bytes()[:-600])
    return _translate_case(env, path, "scan.nrrd: cannot read the voxel data")


@case("train-mha-2d-volume")
def _(env: Env) -> Case:
    data = env.data()
    (data / "sub-002" / "t1.nii.gz").unlink()
    _write_itk(data / "sub-002" / "t1.mha", np.ones((32, 32), np.float32))
    return _train_case(env, data, "sub-002/t1.mha: volume is 2-D")


@case("train-modality-in-two-formats")
def _(env: Env) -> Case:
    data = env.data()
    _write_itk(data / "sub-002" / "t1.mha", np.ones((9, 32, 32), np.float32))
    return _train_case(env, data, "sub-002: t1 is there twice (t1.mha and t1.nii.gz)")


# --- DICOM series (a folder of slice files) --------------------------------------------------------------------------


def _series(env: Env, name: str = "series", **damage: object) -> Path:
    """The good T1 volume as an MR DICOM series in ``in/<name>/``, damaged as asked (see ``dicom_series``)."""
    from dicom_series import write_series

    from pix2gan.io import load_volume

    volume = load_volume(env.fixture("tiny_data") / "sub-001" / "t1.nii.gz")
    folder = env.folder("in") / name
    write_series(folder, volume.data, volume.affine, modality="MR", **damage)  # type: ignore[arg-type]
    return folder


@case("translate-dicom-several-series")
def _(env: Env) -> Case:
    folder = _series(env, series_uid="1.2.826.0.1.3680043.8.498.1")
    _series(env, series_uid="1.2.826.0.1.3680043.8.498.2", prefix="b")
    return _translate_case(env, folder, "holds 2 DICOM series", "1.2.826.0.1.3680043.8.498.2", "--series UID")


@case("translate-dicom-unknown-series")
def _(env: Env) -> Case:
    folder = _series(env)
    return Case(env.translate(folder, "--series", "1.2.3.4"), ("series: no series 1.2.3.4 here",), [env.folder("out")])


@case("translate-dicom-missing-slice")
def _(env: Env) -> Case:
    return _translate_case(env, _series(env, drop=4), "uneven slice spacing", "a missing slice?")


@case("translate-dicom-duplicated-slice")
def _(env: Env) -> Case:
    return _translate_case(env, _series(env, duplicate=3), "duplicated slice", "lie at the same position")


@case("translate-dicom-localiser")
def _(env: Env) -> Case:
    return _translate_case(env, _series(env, localiser=True), "mixed orientations", "scout.dcm", "localiser")


@case("translate-dicom-undecodable-syntax")
def _(env: Env) -> Case:
    from dicom_series import HTJ2KLossless

    return _translate_case(env, _series(env, transfer_syntax=HTJ2KLossless), "High-Throughput JPEG 2000", "cannot be decoded here")


@case("translate-dicom-truncated-file")
def _(env: Env) -> Case:
    folder = _series(env)
    victim = sorted(folder.iterdir())[2]
    victim.write_bytes(victim.read_bytes()[:-100])
    return _translate_case(env, folder, f"file {victim.name} is truncated")


@case("train-dicom-subject-missing-slice")
def _(env: Env) -> Case:
    from dicom_series import write_series

    from pix2gan.io import load_volume

    data = env.data()
    volume = load_volume(data / "sub-002" / "t1.nii.gz")
    (data / "sub-002" / "t1.nii.gz").unlink()
    write_series(data / "sub-002" / "t1", volume.data, volume.affine, modality="MR", drop=5)
    return _train_case(env, data, "sub-002/t1: uneven slice spacing")


# --- paired data sets: subjects that do not fit together ------------------------------------------------------------


@case("train-shape-mismatch")
def _(env: Env) -> Case:
    data = env.data()
    affine = nib.load(data / "sub-002" / "ct.nii.gz").affine
    write_nifti(data / "sub-002" / "ct.nii.gz", np.zeros((32, 32, 5), np.int16), affine)
    return _train_case(env, data, "sub-002/ct.nii.gz: shape (32, 32, 5) differs")


@case("train-affine-mismatch")
def _(env: Env) -> Case:
    data = env.data()
    ct = nib.load(data / "sub-002" / "ct.nii.gz")
    affine = ct.affine.copy()
    affine[0, 3] += 5.0  # shifted 5 mm: same shape, another grid
    write_nifti(data / "sub-002" / "ct.nii.gz", np.asarray(ct.dataobj), affine)
    return _train_case(env, data, "sub-002/ct.nii.gz: affine differs")


@case("train-missing-modality")
def _(env: Env) -> Case:
    data = env.data()
    (data / "sub-005" / "ct.nii.gz").unlink()
    return _train_case(env, data, "sub-005: subject has no ct.nii.gz")


@case("train-unknown-modality")
def _(env: Env) -> Case:
    return _train_case(env, env.fixture("tiny_data"), "unknown modality 'xx'", extra=("--dst", "xx"))


@case("train-empty-data-folder")
def _(env: Env) -> Case:
    return _train_case(env, env.folder("nothing"), "nothing: no subject folders")


@case("train-nonexistent-data-folder")
def _(env: Env) -> Case:
    return _train_case(env, env.tmp / "nowhere", "nowhere: data folder not found")


@case("translate-nonexistent-input")
def _(env: Env) -> Case:
    return _translate_case(env, env.tmp / "nowhere.nii.gz", "file not found")


# --- outputs: never overwrite, never half-write ---------------------------------------------------------------------


@case("translate-existing-output")
def _(env: Env) -> Case:
    out = env.folder("out") / "o.nii.gz"
    out.write_bytes(b"an earlier result")
    return Case(env.translate(env.scan()), ("o.nii.gz: already exists", "--overwrite"), [env.folder("out")])


@case("translate-output-below-a-file")
def _(env: Env) -> Case:
    blocker = env.folder("out") / "report.txt"
    blocker.write_text("a regular file where a folder would go\n")
    out = blocker / "o.nii.gz"
    return Case(env.translate(env.scan(), out=out), (f"{blocker}: exists and is not a folder",), [env.folder("out")])


@case("translate-read-only-output-folder")
def _(env: Env) -> Case:
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; covered by translate-output-below-a-file")
    ro = env.folder("ro")
    ro.chmod(0o500)
    env.request.addfinalizer(lambda: ro.chmod(0o700))
    return Case(env.translate(env.scan(), out=ro / "o.nii.gz"), ("ro: folder is not writable",), [ro])


@case("sample-existing-output")
def _(env: Env) -> Case:
    run = env.fixture("class_run")
    out = env.folder("out") / "grid.png"
    out.write_bytes(b"an earlier grid")
    return Case(["sample", "--run", run, "-o", out, "--device", "cpu"], ("grid.png: already exists",),
                [env.folder("out"), run])  # fmt: skip


@case("sample-paired-existing-output")
def _(env: Env) -> Case:
    run = env.fixture("tiny_run")
    out = env.folder("out") / "panels.png"
    out.write_bytes(b"earlier panels")
    return Case(["sample", "--run", run, "-o", out, "--device", "cpu"], ("panels.png: already exists",),
                [env.folder("out"), run])  # fmt: skip


@case("sample-output-below-a-file")
def _(env: Env) -> Case:
    run = env.fixture("class_run")
    blocker = env.folder("out") / "grid.png"
    blocker.write_bytes(b"not a folder")
    return Case(["sample", "--run", run, "-o", blocker / "g.png", "--device", "cpu"],
                (f"{blocker}: exists and is not a folder",), [env.folder("out"), run])  # fmt: skip


@case("samples-existing-subject")
def _(env: Env) -> Case:
    out = env.folder("phantoms")
    (out / "sub-001").mkdir()
    (out / "sub-001" / "t1.nii.gz").write_bytes(b"someone's real data")
    return Case(["samples", out, "--subjects", "2", "--size", "16"], ("sub-001: already exists", "--overwrite"), [out])


@case("samples-output-below-a-file")
def _(env: Env) -> Case:
    blocker = env.folder("out") / "phantoms.tar"
    blocker.write_bytes(b"an archive, not a folder")
    return Case(["samples", blocker / "data", "--subjects", "2", "--size", "16"], (f"{blocker} is a file",),
                [env.folder("out")])  # fmt: skip


@case("train-run-dir-below-a-file")
def _(env: Env) -> Case:
    blocker = env.folder("runs") / "notes.txt"
    blocker.write_text("not a folder\n")
    args = ["train", "--data", env.fixture("tiny_data"), "--run-dir", blocker / "r", *TINY]
    return Case(args, ("notes.txt",), [env.folder("runs")])


@case("eval-json-below-a-file")
def _(env: Env) -> Case:
    run = env.fixture("tiny_run")
    blocker = env.folder("out") / "metrics"
    blocker.write_text("not a folder\n")
    return Case(["eval", "--run", run, "--json", blocker / "m.json", "--device", "cpu"],
                (f"{blocker}: exists and is not a folder",), [env.folder("out"), run])  # fmt: skip


# --- checkpoints ----------------------------------------------------------------------------------------------------


def _checkpoint_case(env: Env, raw: bytes, *needles: str) -> Case:
    ckpt = env.folder("ckpt") / "model.pt"
    ckpt.write_bytes(raw)
    out = env.folder("out") / "o.nii.gz"
    args = ["translate", env.scan(), "--checkpoint", ckpt, "-o", out, "--device", "cpu"]
    return Case(args, ("model.pt:", *needles), [env.folder("out"), env.folder("ckpt")])


@case("translate-corrupt-checkpoint")
def _(env: Env) -> Case:
    raw = bytearray((env.fixture("tiny_run") / "checkpoints" / "latest.pt").read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 4000] = bytes(4000)  # zeros over tensor records and their zip headers
    return _checkpoint_case(env, bytes(raw), "corrupt")


@case("translate-checkpoint-with-damaged-index")
def _(env: Env) -> Case:
    raw = bytearray((env.fixture("tiny_run") / "checkpoints" / "latest.pt").read_bytes())
    raw[100:400] = b"\xff" * 300  # inside the pickled index (data.pkl, the archive's first record)
    return _checkpoint_case(env, bytes(raw), "corrupt")


@case("translate-checkpoint-with-damaged-weights")
def _(env: Env) -> Case:
    raw = bytearray((env.fixture("tiny_run") / "checkpoints" / "latest.pt").read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as archive:
        record = next(i for i in archive.infolist() if i.filename.endswith("/data/1"))  # generator weights
    at = record.header_offset  # local file header: 30 bytes, then the name and the (alignment) extra field
    start = at + 30 + sum(int.from_bytes(raw[i : i + 2], "little") for i in (at + 26, at + 28))
    raw[start : start + record.file_size] = b"\xff" * record.file_size  # NaN weights, archive structure intact
    return _checkpoint_case(env, bytes(raw), "corrupt")


@case("translate-truncated-checkpoint")
def _(env: Env) -> Case:
    raw = (env.fixture("tiny_run") / "checkpoints" / "latest.pt").read_bytes()
    return _checkpoint_case(env, raw[: len(raw) * 2 // 3], "truncated")


@case("translate-checkpoint-of-another-mode")
def _(env: Env) -> Case:
    run = env.fixture("class_run")
    args = ["translate", env.scan(), "--run", run, "-o", env.folder("out") / "o.nii.gz", "--device", "cpu"]
    return Case(args, ("latest.pt: checkpoint is from a class-mode run", "paired-mode"), [env.folder("out"), run])


@case("eval-run-without-checkpoints")
def _(env: Env) -> Case:
    run = env.folder("half-run")
    (run / "checkpoints").mkdir()
    (run / "config.json").write_text("{}\n")
    return Case(["eval", "--run", run, "--device", "cpu"], ("half-run: run folder has no checkpoints",), [run])


@case("sample-unknown-label")
def _(env: Env) -> Case:
    run = env.fixture("class_run")
    out = env.folder("out") / "g.png"
    return Case(["sample", "--run", run, "--label", "zebra", "-o", out, "--device", "cpu"],
                ("--label 'zebra' is not a class", "a, b"), [env.folder("out"), run])  # fmt: skip


# --- image folders (noise and class modes) --------------------------------------------------------------------------


@case("train-noise-corrupt-png")
def _(env: Env) -> Case:
    data = _image_folder(env.tmp / "images", classes=())
    good = (data / "1.png").read_bytes()
    (data / "2.png").write_bytes(good[: len(good) // 2])  # a PNG cut short
    return Case(env.train_gan("noise", data), ("2.png: cannot read image",), [env.folder("runs")])


@case("train-noise-rgba-png-among-rgb")
def _(env: Env) -> Case:
    data = _image_folder(env.tmp / "images", classes=())
    rgba = np.full((28, 28, 4), 200, np.uint8)
    rgba[:14, :, 3] = 0  # the top half is transparent
    Image.fromarray(rgba, "RGBA").save(data / "logo.png")
    return Case(env.train_gan("noise", data), ("logo.png: image has transparent pixels", "RGBA, 4 channels"),
                [env.folder("runs")])  # fmt: skip


@case("train-class-la-png-among-rgb")
def _(env: Env) -> Case:
    data = _image_folder(env.tmp / "images")
    la = np.zeros((28, 28, 2), np.uint8)
    la[..., 1] = 128  # half-transparent everywhere
    Image.fromarray(la, "LA").save(data / "b" / "ghost.png")
    return Case(env.train_gan("class", data), ("ghost.png: image has transparent pixels", "LA, 2 channels"),
                [env.folder("runs")])  # fmt: skip


@case("train-class-one-class")
def _(env: Env) -> Case:
    data = _image_folder(env.tmp / "images", classes=("cats",))
    return Case(env.train_gan("class", data), ("images: needs at least 2 class subfolders, found 1: 'cats'",),
                [env.folder("runs")])  # fmt: skip


# --- option values --------------------------------------------------------------------------------------------------


@case("train-paired-image-size-not-multiple")
def _(env: Env) -> Case:
    return _train_case(env, env.fixture("tiny_data"), "--image-size 20 is not a multiple of 8, the padding multiple of the unet generator",
                       extra=("--image-size", "20"))  # fmt: skip


@case("train-noise-image-size-not-allowed")
def _(env: Env) -> Case:
    data = _image_folder(env.tmp / "images", classes=())
    return Case(env.train_gan("noise", data, "--image-size", "48"), ("image_size must be 28, 32, 64 or 128", "48"),
                [env.folder("runs")])  # fmt: skip


@case("train-epochs-zero")
def _(env: Env) -> Case:
    return _train_case(env, env.fixture("tiny_data"), "'--epochs'", extra=("--epochs", "0"))


@case("train-val-fraction-out-of-range")
def _(env: Env) -> Case:
    return _train_case(env, env.fixture("tiny_data"), "'--val-fraction'", "0.9", extra=("--val-fraction", "1.5"))


@case("translate-batch-size-not-a-number")
def _(env: Env) -> Case:
    return Case(env.translate(env.scan(), "--batch-size", "many"), ("'--batch-size'", "integer"), [env.folder("out")])


# --- the test -------------------------------------------------------------------------------------------------------


def _snapshot(paths: list[Path]) -> dict[str, object]:
    """Every file under ``paths`` with its bytes and mtime; folders and missing paths as markers."""
    state: dict[str, object] = {}
    for root in paths:
        for path in [root, *(sorted(root.rglob("*")) if root.is_dir() else [])]:
            if path.is_dir():
                state[str(path)] = "folder"
            elif path.exists():
                state[str(path)] = (path.read_bytes(), path.stat().st_mtime_ns)
            else:
                state[str(path)] = None
    return state


assert len(CASES) >= 24
assert all(any(n.startswith(f"{c}-") for n in CASES) for c in ("train", "translate", "eval", "sample", "samples"))


@pytest.mark.parametrize("name", [pytest.param(name, marks=MARKS.get(name, ())) for name in CASES])
def test_bad_input(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    c = CASES[name](Env(tmp_path, request))
    before = _snapshot(c.watch)
    with warnings.catch_warnings(record=True) as caught:  # a warning would be more lines on a real stderr
        warnings.simplefilter("always")
        result = CliRunner().invoke(app, [str(a) for a in c.args])
    assert "Traceback" not in result.output, result.output
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.stdout == "", result.output
    line = result.stderr.rstrip("\n")
    assert line.strip() and "\n" not in line, f"expected one line on stderr, got:\n{result.stderr}"
    assert line.startswith("error: "), line
    for needle in c.needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    assert _snapshot(c.watch) == before, "files were written, replaced or left behind"
    assert not [str(w.message) for w in caught], [str(w.message) for w in caught]
