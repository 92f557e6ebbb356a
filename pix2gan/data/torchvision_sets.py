"""MNIST, Fashion-MNIST and CIFAR-10 through torchvision, imported only when asked for and never downloaded unless
``download=True``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pix2gan.data.imageset import TORCHVISION_SETS, ImageSet, _check_size, _reason
from pix2gan.errors import InputError

__all__ = ["load_torchvision"]


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
