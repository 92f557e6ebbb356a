"""Image data sources: image folders, NIfTI slices, torchvision (lazy), synthetic digits."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from helpers import write_nifti
from PIL import Image

from pix2gan import InputError
from pix2gan.data.digits import render_digits, write_digit_folder
from pix2gan.data.images import (
    LEVEL_CLASSES,
    ImageSet,
    load_image_folder,
    load_images,
    load_nifti_slices,
    load_torchvision,
)
from pix2gan.data.phantom import write_dataset


def _save(path: Path, array: np.ndarray, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)
    return path


def _gray(value: int, h: int = 20, w: int = 20) -> np.ndarray:
    return np.full((h, w), value, dtype=np.uint8)


def _rgb(color: tuple[int, int, int], h: int = 20, w: int = 20) -> np.ndarray:
    return np.broadcast_to(np.array(color, dtype=np.uint8), (h, w, 3)).copy()


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


# --- image folders ---------------------------------------------------------------------------------------------


def test_labelled_gray_folder(tmp_path: Path) -> None:
    _save(tmp_path / "b" / "x.png", _gray(255, 40, 30))
    _save(tmp_path / "b" / "y.png", _gray(255, 12, 12))
    _save(tmp_path / "a" / "z.png", _gray(0))
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    data = load_image_folder(tmp_path, image_size=16, labelled=True)
    assert isinstance(data, ImageSet) and len(data) == 3
    assert data.images.shape == (3, 1, 16, 16) and data.images.dtype == torch.float32
    assert data.class_names == ["a", "b"] and data.num_classes == 2
    assert data.labels is not None and data.labels.dtype == torch.int64
    assert data.labels.tolist() == [0, 1, 1]
    assert torch.allclose(data.images[0], torch.tensor(-1.0)) and torch.allclose(data.images[1:], torch.tensor(1.0))
    assert data.source == str(tmp_path)


def test_integer_class_names_sort_numerically(tmp_path: Path) -> None:
    for name in ("10", "2", "1"):
        _save(tmp_path / name / "0.png", _gray(100))
    assert load_image_folder(tmp_path, image_size=8, labelled=True).class_names == ["1", "2", "10"]


def test_rgb_folder_and_channel_conversion(tmp_path: Path) -> None:
    _save(tmp_path / "red" / "0.png", _rgb((255, 0, 0)))
    _save(tmp_path / "gray" / "0.png", _gray(128))
    data = load_image_folder(tmp_path, image_size=8, labelled=True)
    assert data.images.shape == (2, 3, 8, 8)  # one RGB file makes the whole set RGB
    assert data.class_names == ["gray", "red"]
    gray, red = data.images
    assert torch.allclose(gray[0], gray[1]) and torch.allclose(gray[1], gray[2])  # gray replicated
    assert red[:, 0, 0].tolist() == [1.0, -1.0, -1.0]
    one = load_image_folder(tmp_path, image_size=8, channels=1, labelled=True)
    assert one.images.shape == (2, 1, 8, 8)
    assert one.images[1, 0, 0, 0].item() == pytest.approx(0.299 * 2 - 1, abs=1e-5)  # luminance of pure red
    rgb = load_image_folder(tmp_path / "gray", image_size=8, channels=3, labelled=False)
    assert rgb.images.shape == (1, 3, 8, 8) and rgb.labels is None and rgb.num_classes == 0


@pytest.mark.parametrize("image_size", [8, 28, 64])
def test_center_crop_resize_and_range(tmp_path: Path, image_size: int) -> None:
    wide = np.zeros((30, 90), dtype=np.uint8)
    wide[:, 30:60] = 255  # only the central square is white: centre-cropping keeps just that
    _save(tmp_path / "wide.png", wide)
    noise = np.random.default_rng(0).integers(0, 256, (50, 37, 3), dtype=np.uint8)
    _save(tmp_path / "sub" / "noise.jpg", noise)
    data = load_image_folder(tmp_path, image_size=image_size, labelled=False)
    assert data.images.shape == (2, 3, image_size, image_size)
    assert data.images.min() >= -1.0 and data.images.max() <= 1.0
    assert data.source == str(tmp_path)
    first = data.images[1]  # sorted paths: sub/noise.jpg < wide.png
    assert torch.allclose(first, torch.ones_like(first), atol=1e-3)


def test_modes_and_formats(tmp_path: Path) -> None:
    _save(tmp_path / "a.BMP", _gray(255), fmt="BMP")  # suffixes in any case
    _save(tmp_path / "b.png", np.full((20, 20), 65535, dtype=np.uint16))  # 16-bit grayscale
    Image.fromarray(_gray(0)).convert("LA").save(tmp_path / "c.png")
    Image.fromarray(_gray(255)).convert("1").save(tmp_path / "d.png")
    _save(tmp_path / ".hidden" / "e.png", _rgb((1, 2, 3)))  # hidden folders are skipped
    data = load_image_folder(tmp_path, image_size=4, labelled=False)
    assert data.images.shape == (4, 1, 4, 4)  # all grayscale: one channel
    assert data.images[:, 0, 0, 0].tolist() == [1.0, 1.0, -1.0, 1.0]
    Image.new("RGBA", (10, 10), (0, 0, 255, 255)).save(tmp_path / "f.png")
    data = load_image_folder(tmp_path, image_size=4, labelled=False)
    assert data.images.shape == (5, 3, 4, 4)
    assert data.images[4, :, 0, 0].tolist() == [-1.0, -1.0, 1.0]  # opaque alpha dropped (transparent: refused)


def test_one_class_folder_is_refused(tmp_path: Path) -> None:
    _save(tmp_path / "x" / "0.png", _gray(10))
    _save(tmp_path / "loose.png", _gray(10))
    with pytest.raises(InputError) as exc:
        load_image_folder(tmp_path, image_size=8, labelled=True)
    message = _one_line(exc)
    assert str(tmp_path) in message and "needs at least 2 class subfolders, found 1: 'x'" in message
    assert len(load_image_folder(tmp_path, image_size=8, labelled=False)) == 2


def test_empty_class_folder_is_refused(tmp_path: Path) -> None:
    _save(tmp_path / "a" / "0.png", _gray(10))
    (tmp_path / "b").mkdir()
    with pytest.raises(InputError, match="class folder holds no") as exc:
        load_image_folder(tmp_path, image_size=8, labelled=True)
    assert str(tmp_path / "b") in _one_line(exc)


@pytest.mark.parametrize("labelled", [False, True])
def test_empty_folder_is_refused(tmp_path: Path, labelled: bool) -> None:
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(InputError) as exc:
        load_image_folder(tmp_path, image_size=8, labelled=labelled)
    assert str(tmp_path) in _one_line(exc)


@pytest.mark.parametrize("kind", ["garbage", "truncated", "empty"])
def test_corrupt_image_names_the_file(tmp_path: Path, kind: str) -> None:
    _save(tmp_path / "good.png", _gray(50))
    bad = tmp_path / "bad.png"
    if kind == "garbage":
        bad.write_bytes(b"this is not a png at all")
    elif kind == "truncated":
        _save(bad, np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8))
        bad.write_bytes(bad.read_bytes()[:300])
    else:
        bad.write_bytes(b"")
    with pytest.raises(InputError, match="cannot read image") as exc:
        load_image_folder(tmp_path, image_size=8, labelled=False)
    assert _one_line(exc).startswith(f"{bad}: ")


@pytest.mark.parametrize("channels", [0, 2, 4])
def test_bad_channel_count(tmp_path: Path, channels: int) -> None:
    _save(tmp_path / "a.png", _gray(50))
    with pytest.raises(InputError, match="channels must be 1") as exc:
        load_image_folder(tmp_path, image_size=8, channels=channels, labelled=False)
    assert str(tmp_path) in _one_line(exc)
    with pytest.raises(InputError, match="channels must be 1"):
        load_images(str(tmp_path), image_size=8, labelled=False, channels=channels)


def test_missing_folder_and_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="data folder not found"):
        load_images(str(tmp_path / "nope"), image_size=8, labelled=False)
    with pytest.raises(InputError, match="data folder not found"):
        load_image_folder(tmp_path / "nope", image_size=8, labelled=False)
    file = _save(tmp_path / "a.png", _gray(1))
    with pytest.raises(InputError, match="not a folder"):
        load_images(str(file), image_size=8, labelled=False)


def test_load_images_dispatches_to_image_folder(tmp_path: Path) -> None:
    _save(tmp_path / "a" / "0.png", _gray(10))
    _save(tmp_path / "b" / "0.png", _gray(200))
    data = load_images(str(tmp_path), image_size=16, labelled=True, src="t1")  # src is ignored for image folders
    assert data.class_names == ["a", "b"] and data.images.shape == (2, 1, 16, 16)
    assert load_images(str(tmp_path), image_size=16, labelled=False, channels=3).images.shape == (2, 3, 16, 16)
    with pytest.raises(InputError, match="--labels applies to NIfTI"):
        load_images(str(tmp_path), image_size=16, labelled=True, labels="level")


# --- NIfTI slices ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images") / "phantoms"
    write_dataset(root, n_subjects=3, size=32, seed=0)
    return root


@pytest.mark.parametrize("modality", ["t1", "ct"])
def test_nifti_slices_unlabelled(phantoms: Path, modality: str) -> None:
    data = load_nifti_slices(phantoms, modality, image_size=16)
    assert data.labels is None and data.num_classes == 0 and data.class_names == []
    assert data.images.shape[1:] == (1, 16, 16) and 3 <= len(data) <= 3 * 9
    assert data.images.dtype == torch.float32 and data.images.min() >= -1.0 and data.images.max() <= 1.0
    assert data.source == f"volumes:{phantoms}:{modality}"
    assert ((data.images > -0.9).float().mean(dim=(1, 2, 3)) > 0.02).all()  # empty slices were skipped


def test_nifti_min_foreground_and_axis(phantoms: Path) -> None:
    everything = load_nifti_slices(phantoms, "t1", image_size=16, min_foreground=0.0)
    assert len(everything) == 3 * 9
    sagittal = load_nifti_slices(phantoms, "t1", image_size=32, slice_axis=0)
    assert sagittal.images.shape[1:] == (1, 32, 32)
    # 240 mm x 144 mm keeps its aspect: rows above and below are background padding
    assert (sagittal.images[:, :, :, :3] == -1.0).all() and (sagittal.images[:, :, :, -3:] == -1.0).all()
    with pytest.raises(InputError, match="no t1 slice has at least 100% foreground") as exc:
        load_nifti_slices(phantoms, "t1", image_size=16, min_foreground=1.0)
    assert str(phantoms) in _one_line(exc)


def test_nifti_level_labels(phantoms: Path) -> None:
    data = load_nifti_slices(phantoms, "t1", image_size=16, labels="level")
    assert data.class_names == LEVEL_CLASSES == ["lower", "middle", "upper"] and data.num_classes == 3
    assert data.labels is not None and len(data.labels) == len(data)
    counts = torch.bincount(data.labels, minlength=3)
    assert (counts >= 3).all()  # every level present, roughly balanced
    # per subject, level never decreases with the slice index (RAS: index grows superior)
    assert (data.labels.view(3, -1).diff(dim=1) >= 0).all()
    # the lower third of the head is the widest part, the cap the smallest
    area = (data.images > -0.9).float().mean(dim=(1, 2, 3))
    assert area[data.labels == 0].mean() > area[data.labels == 2].mean()


def test_level_labels_follow_the_affine(tmp_path: Path) -> None:
    flipped = np.diag([1.0, 1.0, -2.0, 1.0])  # index grows towards inferior
    for i in range(2):
        write_nifti(tmp_path / f"s{i}" / "t1.nii.gz", np.random.default_rng(i).uniform(10, 20, (8, 8, 6)), flipped)
    data = load_nifti_slices(tmp_path, "t1", image_size=8, labels="level", min_foreground=0.0)
    assert data.labels is not None and data.labels[:6].tolist() == [2, 2, 1, 1, 0, 0]


def test_nifti_csv_labels(phantoms: Path, tmp_path: Path) -> None:
    table = tmp_path / "labels.csv"
    table.write_text("subject,label\nsub-001,healthy\nsub-002,lesion\nsub-003,healthy\nsub-999,other\n")
    data = load_nifti_slices(phantoms, "ct", image_size=16, labels=str(table))
    assert data.class_names == ["healthy", "lesion"] and data.num_classes == 2
    per_subject = data.labels.view(3, -1)  # type: ignore[union-attr]
    assert per_subject[:, 0].tolist() == [0, 1, 0] and (per_subject == per_subject[:, :1]).all()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("subject,label\nsub-001,a\nsub-002,b\n", "no label for subject 'sub-003'"),
        ("id,class\nsub-001,a\n", "expected the header 'subject,label'"),
        ("subject,label\nsub-001,a\nsub-002,a\nsub-003,a\n", "needs at least 2 classes"),
        ("subject,label\nsub-001,a\nsub-001,b\n", "two labels"),
    ],
)
def test_bad_csv_labels(phantoms: Path, tmp_path: Path, text: str, match: str) -> None:
    table = tmp_path / "labels.csv"
    table.write_text(text)
    with pytest.raises(InputError, match=match) as exc:
        load_nifti_slices(phantoms, "t1", image_size=16, labels=str(table))
    assert str(table) in _one_line(exc)


def test_missing_csv(phantoms: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="labels file not found"):
        load_nifti_slices(phantoms, "t1", image_size=16, labels=str(tmp_path / "none.csv"))


def test_load_images_dispatches_to_nifti(phantoms: Path) -> None:
    with pytest.raises(InputError, match="holds volume subjects; pass --src MODALITY") as exc:
        load_images(str(phantoms), image_size=16, labelled=False)
    assert str(phantoms) in _one_line(exc)
    with pytest.raises(InputError, match="unknown modality 'pd'"):
        load_images(str(phantoms), image_size=16, labelled=False, src="pd")
    plain = load_images(str(phantoms), image_size=16, labelled=False, src="t1", labels="level")
    assert plain.labels is None  # unlabelled mode ignores labels
    levels = load_images(str(phantoms), image_size=16, labelled=True, src="t1")  # level by default
    assert levels.class_names == LEVEL_CLASSES and levels.labels is not None
    rgb = load_images(str(phantoms), image_size=16, labelled=False, src="ct", channels=3)
    assert rgb.images.shape[1] == 3


# --- torchvision -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10"])
def test_torchvision_gives_one_clear_error(tmp_path: Path, name: str) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError) as exc:  # no torchvision here, or no files under an empty root
        load_images(name, image_size=32, labelled=True, data_root=empty)
    message = _one_line(exc)
    assert name in message
    assert "torchvision" in message or "files not found" in message
    assert list(empty.iterdir()) == []  # nothing was downloaded


def test_unknown_torchvision_name(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown data set"):
        load_torchvision("svhn", tmp_path, image_size=32)


class _FakeSet:
    """Stands in for a torchvision data set class: records its arguments, serves tiny arrays."""

    calls: ClassVar[list[dict]] = []
    present: ClassVar[bool] = True

    def __init__(self, root: str, train: bool, download: bool) -> None:
        type(self).calls.append({"root": root, "train": train, "download": download})
        if not (self.present or download):
            raise RuntimeError("Dataset not found. You can use download=True to download it")
        self.classes = ["zero", "one"]


class _FakeMNIST(_FakeSet):
    def __init__(self, root: str, train: bool, download: bool) -> None:
        super().__init__(root, train, download)
        self.data = torch.stack([torch.zeros(28, 28, dtype=torch.uint8), torch.full((28, 28), 255, dtype=torch.uint8)])
        self.targets = torch.tensor([0, 1])


class _FakeCIFAR(_FakeSet):
    def __init__(self, root: str, train: bool, download: bool) -> None:
        super().__init__(root, train, download)
        self.data = np.zeros((3, 32, 32, 3), dtype=np.uint8)
        self.data[1, ..., 0] = 255
        self.targets = [1, 0, 1]


@pytest.fixture
def fake_torchvision(monkeypatch: pytest.MonkeyPatch) -> type[_FakeSet]:
    datasets = types.ModuleType("torchvision.datasets")
    datasets.MNIST = datasets.FashionMNIST = _FakeMNIST  # type: ignore[attr-defined]
    datasets.CIFAR10 = _FakeCIFAR  # type: ignore[attr-defined]
    package = types.ModuleType("torchvision")
    package.datasets = datasets  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchvision", package)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)
    monkeypatch.setattr(_FakeSet, "calls", [])
    monkeypatch.setattr(_FakeSet, "present", True)
    return _FakeSet


def test_torchvision_conversion(fake_torchvision: type[_FakeSet], tmp_path: Path) -> None:
    mnist = load_torchvision("mnist", tmp_path, image_size=32)
    assert mnist.images.shape == (2, 1, 32, 32) and mnist.images.dtype == torch.float32
    assert mnist.images[0].max() == -1.0 and mnist.images[1].min() == 1.0
    assert mnist.labels.tolist() == [0, 1] and mnist.class_names == ["zero", "one"]  # type: ignore[union-attr]
    assert mnist.source == "torchvision:mnist"
    assert fake_torchvision.calls[-1] == {"root": str(tmp_path), "train": True, "download": False}
    cifar = load_images("cifar10", image_size=64, labelled=False, data_root=tmp_path)
    assert cifar.images.shape == (3, 3, 64, 64) and cifar.labels is None
    assert cifar.images[1, :, 5, 5].tolist() == [1.0, -1.0, -1.0]
    gray = load_images("fashion-mnist", image_size=28, labelled=True, data_root=tmp_path, channels=3)
    assert gray.images.shape == (2, 3, 28, 28) and gray.num_classes == 2


def test_torchvision_files_missing(fake_torchvision: type[_FakeSet], tmp_path: Path) -> None:
    fake_torchvision.present = False
    with pytest.raises(InputError) as exc:
        load_torchvision("cifar10", tmp_path, image_size=32)
    assert _one_line(exc) == (
        f"{tmp_path}: cifar10 files not found; place the cifar10 data set there or pass --download"
    )
    assert fake_torchvision.calls[-1]["download"] is False
    assert len(load_torchvision("cifar10", tmp_path, image_size=32, download=True)) == 3


def test_torchvision_import_failure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import raises ImportError
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    with pytest.raises(InputError) as exc:
        load_torchvision("mnist", tmp_path, image_size=28)
    message = _one_line(exc)
    assert message.startswith("mnist: needs torchvision, which could not be imported (")
    assert "install a torchvision build matching your torch" in message


# --- synthetic digits ------------------------------------------------------------------------------------------


def test_digits_deterministic_and_shaped() -> None:
    x, y = render_digits(3, size=32, seed=5)
    assert x.shape == (30, 32, 32) and x.dtype == np.uint8
    assert y.dtype == np.int64 and y.tolist() == [d for d in range(10) for _ in range(3)]
    x2, _ = render_digits(3, size=32, seed=5)
    assert np.array_equal(x, x2)
    assert not np.array_equal(x, render_digits(3, size=32, seed=6)[0])
    later, _ = render_digits(2, size=32, seed=5, start=1)  # sample n depends only on (seed, digit, n)
    assert np.array_equal(later[0], x[1]) and np.array_equal(later[1], x[2])
    assert render_digits(1, size=28)[0].shape == (10, 28, 28)
    # white on black, and samples of one digit differ from each other
    assert x.mean() < 80 and x.max() == 255 and not np.array_equal(x[0], x[1])


def test_digits_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="per_class"):
        render_digits(0)
    with pytest.raises(ValueError, match="size"):
        render_digits(1, size=4)


def test_digits_are_separable() -> None:
    train_x, train_y = render_digits(30, seed=0)
    test_x, test_y = render_digits(20, seed=0, start=30)  # 200 held-out samples

    def flat(a: np.ndarray) -> np.ndarray:
        return a.reshape(len(a), -1).astype(np.float32) / 255.0

    means = np.stack([flat(train_x)[train_y == d].mean(0) for d in range(10)])
    pred = ((flat(test_x)[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    assert (pred == test_y).mean() > 0.6


def test_digit_folder_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "digits"
    folders = write_digit_folder(out, per_class=3, size=32, seed=1)
    assert [f.name for f in folders] == [str(d) for d in range(10)]
    assert sorted(p.name for p in folders[4].iterdir()) == ["0000.png", "0001.png", "0002.png"]
    assert (out / "digits.json").is_file()
    data = load_images(str(out), image_size=32, labelled=True)
    assert data.class_names == [str(d) for d in range(10)] and data.images.shape == (30, 1, 32, 32)
    x, y = render_digits(3, size=32, seed=1)
    assert data.labels.tolist() == y.tolist()  # type: ignore[union-attr]
    assert torch.allclose(data.images[:, 0], torch.from_numpy(x).float() / 127.5 - 1.0, atol=1e-6)
    first = (folders[0] / "0000.png").read_bytes()
    with pytest.raises(FileExistsError, match="already exists") as exc:
        write_digit_folder(out, per_class=1)
    assert str(out / "0") in str(exc.value)
    write_digit_folder(out, per_class=1, size=32, seed=1, overwrite=True)
    assert sorted(p.name for p in folders[4].iterdir()) == ["0000.png"]  # the larger earlier draw is gone
    assert (folders[0] / "0000.png").read_bytes() == first  # same arguments, same bytes
