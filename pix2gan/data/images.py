"""Image data sources for the noise (DCGAN) and class-conditional (CGAN) modes, all as one :class:`ImageSet`.

* an image folder: PNG, JPEG or BMP files; with classes, one subfolder per class (``root/<class>/*.png``);
* 2-D slices of volumes in the subject layout (``root/<subject>/<modality>.nii.gz``, ``.mha``, ...), optionally labelled by
  anatomical level or by a per-subject CSV;
* the torchvision data sets ``mnist``, ``fashion-mnist`` and ``cifar10`` (torchvision imported only when asked for;
  never downloaded unless ``download=True``).

Every file is decoded exactly once into an in-memory ``(N, C, S, S)`` float32 tensor in [-1, 1], so training only
indexes memory. Every problem with the inputs is an :class:`~pix2gan.errors.InputError` naming the file or folder.
Volume slices are read in ``volume_slices.py``, torchvision sets in ``torchvision_sets.py``; both return the
:class:`~pix2gan.data.imageset.ImageSet` of ``imageset.py``.

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

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pix2gan.data.imageset import (
    LEVEL_CLASSES,
    TORCHVISION_SETS,
    ImageSet,
    _check_channels,
    _check_size,
    _convert_channels,
    _reason,
    _sort_key,
)
from pix2gan.data.volume_slices import load_volume_slices
from pix2gan.data.torchvision_sets import load_torchvision
from pix2gan.errors import InputError
from pix2gan.io.volume import format_of, is_dicom_folder

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
    "load_volume_slices",
    "load_torchvision",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
load_nifti_slices = load_volume_slices  # its name before it read every volume format (pix2gan 0.1)
_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


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


def _decode(path: Path, image_size: int | None) -> np.ndarray:
    """Read one image file, centre-crop it to a square and resize it: (S, S) or (S, S, 3) float32 in [0, 1]; with
    ``image_size`` None as it is, (H, W) or (H, W, 3).

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
            if image_size is not None:
                img = img.crop((left, top, left + side, top + side))
            if image_size is not None and side != image_size:
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
    if any(format_of(p) is not None or is_dicom_folder(p) for p in root.glob("*/*")):
        if not src:
            raise InputError(f"{root}: holds volume subjects; pass --src MODALITY to pick the volumes to slice")
        data = load_volume_slices(root, src, image_size=image_size, labels=(labels or "level") if labelled else None)
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
