"""Image data sources for the noise (DCGAN) and class-conditional (CGAN) modes, all as one :class:`ImageSet`.

* an image folder: PNG, JPEG or BMP files; with classes, one subfolder per class (``root/<class>/*.png``);
* 2-D slices of NIfTI volumes in the subject layout (``root/<subject>/<modality>.nii.gz``), optionally labelled by
  anatomical level or by a per-subject CSV;
* the torchvision data sets ``mnist``, ``fashion-mnist`` and ``cifar10`` (torchvision imported only when asked for;
  never downloaded unless ``download=True``).

Every file is decoded exactly once into an in-memory ``(N, C, S, S)`` float32 tensor in [-1, 1], so training only
indexes memory. Every problem with the inputs is an :class:`~pix2gan.volumes.InputError` naming the file or folder.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for name, value in (("cat", 40), ("dog", 200)):
    ...         (Path(tmp) / name).mkdir()
    ...         Image.new("L", (40, 30), value).save(Path(tmp) / name / "a.png")
    ...     data = load_images(tmp, image_size=16, labelled=True)
    >>> data.images.shape, data.labels.tolist(), data.class_names, data.num_classes
    (torch.Size([2, 1, 16, 16]), [0, 1], ['cat', 'dog'], 2)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pix2gan.errors import InputError

if TYPE_CHECKING:
    from pix2gan.config import RunConfig

__all__ = [
    "IMAGE_SUFFIXES",
    "LEVEL_CLASSES",
    "TORCHVISION_SETS",
    "ImageSet",
    "load_image_folder",
    "load_images",
    "images_for_run",
    "load_nifti_slices",
    "load_torchvision",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
TORCHVISION_SETS = ("mnist", "fashion-mnist", "cifar10")
LEVEL_CLASSES = ["lower", "middle", "upper"]
_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as Pillow's RGB -> L


@dataclass
class ImageSet:
    """Images decoded into memory, with optional integer class labels.

    Args:
        images: (N, C, S, S) float32 in [-1, 1], C = 1 (grayscale) or 3 (RGB).
        labels: (N,) int64 class indices into ``class_names``, or ``None`` when unlabelled.
        class_names: name of each class (empty when unlabelled).
        source: where the images came from (a folder, ``nifti:<root>:<modality>`` or ``torchvision:<name>``).

    Example:
        >>> s = ImageSet(torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 1, 0]), ["a", "b"], "demo")
        >>> len(s), s.num_classes, s.channels, s.image_size
        (4, 2, 1, 8)
        >>> ImageSet(torch.zeros(2, 3, 8, 8), None, [], "demo").num_classes
        0
    """

    images: torch.Tensor  # (N, C, S, S) float32 in [-1, 1]
    labels: torch.Tensor | None  # (N,) int64
    class_names: list[str] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        """Number of classes; 0 when unlabelled."""
        return 0 if self.labels is None else len(self.class_names)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])


# --- shared helpers --------------------------------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _check_size(image_size: int) -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
    return int(image_size)


def _check_channels(channels: int | None, where: object) -> None:
    if channels not in (None, 1, 3):
        raise InputError(f"{where}: channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")


def _convert_channels(images: torch.Tensor, channels: int | None) -> torch.Tensor:
    """(N, C, H, W) with C in {1, 3} -> ``channels`` (luminance for RGB -> gray, replication for gray -> RGB)."""
    if channels is None or images.shape[1] == channels:
        return images
    if channels == 1:
        weights = torch.tensor(_LUMA, dtype=images.dtype).view(1, 3, 1, 1)
        return (images * weights).sum(1, keepdim=True)
    return images.expand(-1, 3, -1, -1).contiguous()


def _sort_key(name: str) -> tuple[int, Any]:
    """Integer names numerically (2 before 10), then everything else alphabetically."""
    return (0, int(name)) if name.lstrip("-").isdigit() else (1, name)


# --- image folders ---------------------------------------------------------------------------------------------


def _is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _image_files(folder: Path) -> list[Path]:
    """Image files under ``folder`` at any depth, skipping hidden files and folders, in sorted path order."""
    files = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).parts
        if any(part.startswith(".") for part in rel):
            continue
        if _is_image_file(path):
            files.append(path)
    return files


def _decode(path: Path, image_size: int) -> np.ndarray:
    """Read one image file, centre-crop it to a square and resize it: (S, S) or (S, S, 3) float32 in [0, 1].

    An alpha channel (or a transparent palette entry) is dropped when every pixel is opaque; an image with
    transparent pixels is refused, since dropping the alpha would show whatever colour hides under them.

    Raises:
        InputError: the file cannot be decoded (not an image, truncated, corrupt), or it has transparent pixels.
    """
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            if _has_transparency(img):
                bands = len(img.getbands())
                raise InputError(
                    f"{path}: image has transparent pixels (mode {img.mode}, {bands} channel{'s' * (bands != 1)}); "
                    "only grayscale or RGB images are used and the alpha would be dropped: flatten it onto a background"
                )
            if img.mode in _GRAY_MODES:
                if img.mode in ("1", "L", "LA", "La"):
                    img = img.convert("L")
                    scale = 255.0
                else:  # 16-bit or float grayscale: resize in float so no precision is lost
                    raw = np.asarray(img)
                    if raw.dtype.kind == "f":
                        scale = 1.0
                    elif raw.dtype.itemsize == 2:  # I;16*: 16-bit samples
                        scale = 65535.0
                    else:  # mode I (int32) holds 16-bit PNGs in older Pillow, or 8-bit values
                        scale = 255.0 if int(raw.max(initial=0)) <= 255 else 65535.0
                    img = Image.fromarray(raw.astype(np.float32))  # mode F
            else:  # RGB, RGBA, P, CMYK, YCbCr, ...: colour (alpha is dropped)
                img = img.convert("RGB")
                scale = 255.0
            width, height = img.size
            side = min(width, height)
            left, top = (width - side) // 2, (height - side) // 2
            img = img.crop((left, top, left + side, top + side))
            if side != image_size:
                # bicubic with Pillow's support widened by the scale factor, i.e. antialiased when shrinking
                img = img.resize((image_size, image_size), Image.Resampling.BICUBIC)
            out = np.asarray(img, dtype=np.float32) / np.float32(scale)  # (S, S) or (S, S, 3)
    except InputError:
        raise
    except Exception as exc:  # Pillow raises UnidentifiedImageError, OSError (truncated), SyntaxError, ValueError...
        raise InputError(f"{path}: cannot read image ({_reason(exc)})") from None
    return np.clip(out, 0.0, 1.0)


def _has_transparency(img: Any) -> bool:
    """True when an alpha channel or a transparency key of a ``PIL.Image`` hides at least one pixel."""
    if "A" not in img.getbands() and "a" not in img.getbands() and "transparency" not in img.info:
        return False
    return img.convert("RGBA").getchannel("A").getextrema()[0] < 255


def _to_tensor(arrays: list[np.ndarray], channels: int | None) -> torch.Tensor:
    """Decoded [0, 1] arrays -> (N, C, S, S) float32 in [-1, 1]; C from ``channels`` or 1 if all are grayscale."""
    gray = all(a.ndim == 2 for a in arrays)
    target = channels if channels is not None else (1 if gray else 3)
    size = arrays[0].shape[0]
    out = torch.empty((len(arrays), target, size, size), dtype=torch.float32)  # (N, C, S, S)
    for i, a in enumerate(arrays):
        x = torch.from_numpy(a)
        x = x.unsqueeze(0) if x.ndim == 2 else x.permute(2, 0, 1)  # (C, S, S)
        out[i] = _convert_channels(x.unsqueeze(0), target)[0]
    return out.mul_(2.0).sub_(1.0).clamp_(-1.0, 1.0)


def load_image_folder(
    root: str | Path, *, image_size: int, channels: int | None = None, labelled: bool
) -> ImageSet:
    """Read every PNG, JPEG and BMP image of a folder once, as square ``image_size`` tensors in [-1, 1].

    Each image is centre-cropped to a square and resized with Pillow's antialiased bicubic filter.

    Args:
        root: the folder. With ``labelled``, it holds one subfolder per class (images at any depth inside each);
            without, every image at any depth is used.
        image_size: side of the output images in pixels.
        channels: 1 or 3 to convert every image to grayscale (luminance) or RGB; ``None`` keeps grayscale when every
            file is grayscale (Pillow modes 1, L, LA, I, I;16, F) and uses RGB otherwise (grayscale files among RGB
            ones are replicated to 3 channels). A fully opaque alpha channel is dropped.
        labelled: read class labels from the subfolder names (sorted; integer names numerically).

    Returns:
        An :class:`ImageSet` with ``source`` set to the folder.

    Raises:
        InputError: missing folder; no images; fewer than 2 class subfolders or an empty one (``labelled``); a file
            that cannot be decoded or has transparent pixels; ``channels`` other than 1 or 3.

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     Image.new("RGB", (20, 20), (255, 0, 0)).save(Path(tmp) / "red.png")
        ...     s = load_image_folder(tmp, image_size=8, labelled=False)
        >>> s.images.shape, s.labels, s.images[0, :, 0, 0].tolist()
        (torch.Size([1, 3, 8, 8]), None, [1.0, -1.0, -1.0])
    """
    root = Path(root)
    image_size = _check_size(image_size)
    _check_channels(channels, root)
    if not root.exists():
        raise InputError(f"{root}: data folder not found")
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    kinds = "PNG, JPEG or BMP"
    if labelled:
        classes = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                         key=lambda p: _sort_key(p.name))  # fmt: skip
        files_per_class = [_image_files(c) for c in classes]
        if len(classes) < 2:
            found = ", ".join(repr(c.name) for c in classes)
            raise InputError(
                f"{root}: needs at least 2 class subfolders, found {len(classes)}{': ' + found if found else ''} "
                f"(expected {root}/<class>/<image>)"
            )
        for folder, files in zip(classes, files_per_class, strict=True):
            if not files:
                raise InputError(f"{folder}: class folder holds no {kinds} images")
        files = [f for fs in files_per_class for f in fs]
        labels = torch.tensor([i for i, fs in enumerate(files_per_class) for _ in fs], dtype=torch.int64)
        class_names = [c.name for c in classes]
    else:
        files = _image_files(root)
        labels, class_names = None, []
        if not files:
            raise InputError(f"{root}: no {kinds} images found")
    arrays = [_decode(f, image_size) for f in files]  # decoded once: this is the cache
    return ImageSet(_to_tensor(arrays, channels), labels, class_names, str(root))


# --- NIfTI slices ----------------------------------------------------------------------------------------------


def _read_label_csv(path: Path) -> dict[str, str]:
    """``subject,label`` rows -> {subject: label}."""
    if not path.is_file():
        raise InputError(f"{path}: labels file not found (expected 'level' or a CSV with header subject,label)")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read the labels CSV ({_reason(exc)})") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if header[:2] != ["subject", "label"]:
        raise InputError(f"{path}: expected the header 'subject,label', found {','.join(header) or 'an empty file'!r}")
    table: dict[str, str] = {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise InputError(f"{path}: line {line} needs a subject and a label, got {','.join(row)!r}")
        subject, label = row[0].strip(), row[1].strip()
        if table.get(subject, label) != label:
            raise InputError(f"{path}: subject {subject!r} has two labels, {table[subject]!r} and {label!r}")
        table[subject] = label
    return table


def _slice_direction(affine: np.ndarray, axis: int) -> int:
    """+1 when increasing index along ``axis`` moves superior (RAS z grows), -1 when it moves inferior."""
    return -1 if float(affine[2, axis]) < 0 else 1


def _resize_slices(slices: np.ndarray, spacing: tuple[float, float], image_size: int) -> torch.Tensor:
    """(N, H, W) in [-1, 1] -> (N, 1, S, S): keep the physical aspect ratio, pad with background (-1) to a square."""
    h, w = slices.shape[1:]
    extent_h, extent_w = h * spacing[0], w * spacing[1]
    longest = max(extent_h, extent_w)
    out_h = max(1, round(image_size * extent_h / longest))
    out_w = max(1, round(image_size * extent_w / longest))
    x = torch.from_numpy(np.ascontiguousarray(slices, dtype=np.float32)).unsqueeze(1)  # (N, 1, H, W)
    if (out_h, out_w) != (h, w):
        x = F.interpolate(x, size=(out_h, out_w), mode="bilinear", antialias=True, align_corners=False)
    ph, pw = image_size - out_h, image_size - out_w
    if ph or pw:
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=-1.0)
    return x.clamp_(-1.0, 1.0)


def load_nifti_slices(
    root: str | Path,
    modality: str,
    *,
    image_size: int,
    slice_axis: int = 2,
    min_foreground: float = 0.05,
    labels: str | None = None,
) -> ImageSet:
    """2-D slices of one modality of every subject, normalised per modality and resized to ``image_size``.

    Each volume is decoded once and normalised to [-1, 1] like the paired mode (HU window for CT, per-volume
    percentiles for MR). Slices whose fraction of voxels above -0.9 is below ``min_foreground`` (air, the empty ends
    of the stack) are skipped. Each slice is resized with antialiased bilinear interpolation keeping its physical
    aspect ratio (voxel spacing from the affine) and padded with background to a square.

    Args:
        root: data folder in the subject layout ``root/<subject>/<modality>.nii[.gz]``.
        modality: which file of each subject, e.g. ``t1`` or ``ct``.
        image_size: side of the output images in pixels.
        slice_axis: array axis to slice along (2 = axial for RAS-ordered volumes).
        min_foreground: smallest fraction of foreground voxels for a slice to be used, in [0, 1].
        labels: ``None`` (unlabelled); ``"level"``: the slice's anatomical level within the volume's used slices,
            ``lower`` / ``middle`` / ``upper`` thirds from inferior to superior (by the affine; index order when the
            slice axis has no superior component); or a CSV file with header ``subject,label`` giving each
            subject's class (class names sorted, integer names numerically).

    Returns:
        An :class:`ImageSet` of (N, 1, S, S) slices with ``source`` ``nifti:<root>:<modality>``.

    Raises:
        InputError: no subjects, unknown modality, unreadable or constant volumes, no slice with enough foreground,
            a bad labels CSV or a subject missing from it, fewer than 2 classes.
    """
    from pix2gan.config import DataConfig
    from pix2gan.data.intensity import IntensityMap
    from pix2gan.data.subjects import find_subjects
    from pix2gan.io import load_volume

    root = Path(root)
    image_size = _check_size(image_size)
    if slice_axis not in (0, 1, 2):
        raise ValueError(f"slice_axis must be 0, 1 or 2, got {slice_axis!r}")
    if not 0.0 <= min_foreground <= 1.0:
        raise ValueError(f"min_foreground must be in [0, 1], got {min_foreground!r}")
    table: dict[str, str] | None = None
    if labels is not None and labels != "level":
        table = _read_label_csv(Path(labels))
    subjects = find_subjects(root, [modality])
    if table is not None:
        for s in subjects:
            if s.id not in table:
                raise InputError(f"{labels}: no label for subject {s.id!r} of {root}")
        class_names = sorted({table[s.id] for s in subjects}, key=_sort_key)
        if len(class_names) < 2:
            raise InputError(f"{labels}: needs at least 2 classes among the subjects of {root}, found {class_names}")
    else:
        class_names = list(LEVEL_CLASSES) if labels == "level" else []

    imap = IntensityMap(DataConfig.default_intensity(modality))
    chunks: list[torch.Tensor] = []
    label_chunks: list[np.ndarray] = []
    for subject in subjects:
        volume = load_volume(subject.files[modality])
        try:
            scale = imap.scale_of(volume.data)
        except ValueError as exc:
            raise InputError(f"{volume.path}: cannot normalise ({_reason(exc)})") from None
        norm = np.moveaxis(imap.forward(volume.data, scale), slice_axis, 0)  # (N, H, W) in [-1, 1]
        foreground = (norm > -0.9).mean(axis=(1, 2))
        keep = np.flatnonzero(foreground >= min_foreground)
        if keep.size == 0:
            continue
        spacing = np.linalg.norm(volume.affine[:3, :3], axis=0)  # mm per voxel along each array axis
        in_plane = tuple(float(s) for i, s in enumerate(spacing) if i != slice_axis)
        chunks.append(_resize_slices(norm[keep], in_plane, image_size))  # type: ignore[arg-type]
        if labels == "level":
            first, last = int(keep[0]), int(keep[-1])
            position = (keep - first + 0.5) / (last - first + 1)  # slice centre in (0, 1) along the index
            if _slice_direction(volume.affine, slice_axis) < 0:
                position = 1.0 - position
            label_chunks.append(np.minimum((position * 3).astype(np.int64), 2))
        elif table is not None:
            label_chunks.append(np.full(keep.size, class_names.index(table[subject.id]), dtype=np.int64))
    if not chunks:
        raise InputError(f"{root}: no {modality} slice has at least {min_foreground:.0%} foreground (values above -0.9)")
    images = torch.cat(chunks)
    label_tensor = torch.from_numpy(np.concatenate(label_chunks)) if labels is not None else None
    return ImageSet(images, label_tensor, class_names, f"nifti:{root}:{modality}")


# --- torchvision data sets -------------------------------------------------------------------------------------


def load_torchvision(
    name: str, root: str | Path, *, image_size: int, train: bool = True, download: bool = False
) -> ImageSet:
    """MNIST, Fashion-MNIST or CIFAR-10 through torchvision, imported only here; downloaded only if ``download``.

    Args:
        name: ``mnist``, ``fashion-mnist`` or ``cifar10``.
        root: folder holding (or receiving) the data set files, as torchvision lays them out.
        image_size: side of the output images (antialiased bilinear resize from 28 or 32).
        train: the training split (else the test split).
        download: allow torchvision to download the files into ``root``.

    Returns:
        An :class:`ImageSet` with labels and class names from the data set: (N, 1, S, S) for MNIST and
        Fashion-MNIST, (N, 3, S, S) for CIFAR-10; ``source`` ``torchvision:<name>``.

    Raises:
        InputError: unknown name; torchvision missing or broken; the files are not under ``root`` (and no download).
    """
    key = name.lower()
    if key not in TORCHVISION_SETS:
        raise InputError(f"{name}: unknown data set; choose one of {', '.join(TORCHVISION_SETS)} or an image folder")
    image_size = _check_size(image_size)
    try:
        import torchvision.datasets as tv_datasets  # lazy: heavy, optional, and tied to one torch build
    except Exception as exc:  # ImportError, or RuntimeError/OSError from a build that does not match torch
        raise InputError(
            f"{name}: needs torchvision, which could not be imported ({_reason(exc)}); "
            "install a torchvision build matching your torch, or use an image folder instead"
        ) from None
    root = Path(root)
    try:
        cls = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "cifar10": "CIFAR10"}[key]
        dataset = getattr(tv_datasets, cls)(root=str(root), train=train, download=download)
        raw = dataset.data
        targets = dataset.targets
        classes = [str(c) for c in dataset.classes]
    except Exception as exc:  # RuntimeError "Dataset not found", checksum or network errors, ...
        if download:
            raise InputError(f"{root}: could not download {name} ({_reason(exc)})") from None
        raise InputError(f"{root}: {name} files not found; place the {name} data set there or pass --download") from None
    pixels = torch.as_tensor(np.asarray(raw))  # (N, H, W) uint8 for MNIST, (N, H, W, 3) for CIFAR-10
    pixels = pixels.unsqueeze(1) if pixels.ndim == 3 else pixels.permute(0, 3, 1, 2)  # (N, C, H, W)
    n, c = int(pixels.shape[0]), int(pixels.shape[1])
    images = torch.empty((n, c, image_size, image_size), dtype=torch.float32)
    for start in range(0, n, 4096):  # in chunks: a float copy of all of CIFAR-10 at once would double the memory
        x = pixels[start : start + 4096].float().div_(127.5).sub_(1.0)
        if tuple(x.shape[-2:]) != (image_size, image_size):
            x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
        images[start : start + 4096] = x.clamp_(-1.0, 1.0)
    labels = torch.as_tensor(np.asarray(targets), dtype=torch.int64)
    return ImageSet(images, labels, classes, f"torchvision:{key}")


# --- one entry point -------------------------------------------------------------------------------------------


def load_images(
    spec: str | Path,
    *,
    image_size: int,
    labelled: bool,
    data_root: str | Path | None = None,
    src: str | None = None,
    labels: str | None = None,
    download: bool = False,
    channels: int | None = None,
) -> ImageSet:
    """Load images for the noise and class modes from a data set name or a folder.

    * ``mnist``, ``fashion-mnist``, ``cifar10`` (exactly these strings; write ``./mnist`` for a folder of that
      name): torchvision, files under ``data_root`` (default ``data``);
    * a folder of subject folders holding NIfTI files (``root/*/*.nii*``): slices of modality ``src``; with
      ``labelled``, classes from ``labels`` (``level`` when not given, or a CSV ``subject,label``);
    * any other folder: an image folder (classes from its subfolders when ``labelled``).

    Args:
        spec: data set name or folder.
        image_size: side of the output images.
        labelled: return class labels (class-conditional mode); otherwise ``labels`` is ``None``.
        data_root: where the torchvision data sets live.
        src: the modality to slice, for NIfTI data (e.g. ``t1``); ignored for other sources.
        labels: NIfTI class labels: ``level`` or a CSV path. Refused for other sources, whose classes are fixed.
        download: let torchvision download its data set.
        channels: convert to 1 (grayscale) or 3 (RGB) channels; ``None`` keeps the source's.

    Returns:
        An :class:`ImageSet`.

    Raises:
        InputError: a missing path, a NIfTI folder without ``src``, ``labels`` for a non-NIfTI source, and every
            error of the loader picked.

    Example:
        >>> load_images("/no/such/folder", image_size=32, labelled=False)
        Traceback (most recent call last):
        ...
        pix2gan.errors.InputError: /no/such/folder: data folder not found
    """
    spec = str(spec)
    _check_channels(channels, spec)
    if spec.lower() in TORCHVISION_SETS:
        if labels is not None:
            raise InputError(f"{labels}: --labels applies to NIfTI data; {spec} has its own classes")
        data = load_torchvision(spec, Path(data_root) if data_root is not None else Path("data"),
                                image_size=image_size, download=download)  # fmt: skip
        if not labelled:
            data.labels, data.class_names = None, []
        data.images = _convert_channels(data.images, channels)
        return data
    root = Path(spec)
    if not root.exists():
        raise InputError(f"{root}: data folder not found")
    if not root.is_dir():
        raise InputError(f"{root}: not a folder (expected an image folder, a NIfTI data folder, or one of "
                         f"{', '.join(TORCHVISION_SETS)})")  # fmt: skip
    if any(p.name.endswith((".nii", ".nii.gz")) for p in root.glob("*/*.nii*")):
        if not src:
            raise InputError(f"{root}: holds NIfTI subjects; pass --src MODALITY to pick the volumes to slice")
        data = load_nifti_slices(root, src, image_size=image_size, labels=(labels or "level") if labelled else None)
        data.images = _convert_channels(data.images, channels)
        return data
    if labels is not None:
        raise InputError(f"{labels}: --labels applies to NIfTI data; image folders take classes from subfolders")
    return load_image_folder(root, image_size=image_size, channels=channels, labelled=labelled)


def images_for_run(cfg: RunConfig, *, download: bool | None = None) -> ImageSet:
    """The images a noise- or class-mode run trains on (and is evaluated against), as its config describes them."""
    from pix2gan.config import Mode

    dc = cfg.data
    return load_images(
        dc.root,
        image_size=cfg.gan.image_size,
        labelled=cfg.train.mode == Mode.CLASS,
        data_root=dc.data_root,
        src=dc.src,
        labels=dc.labels,
        download=dc.download if download is None else download,
        channels=cfg.gan.channels or None,
    )
