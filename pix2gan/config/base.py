"""What every configuration section shares: the choices (enums and name lists) and the JSON round trip.

Example:
    >>> GanLoss("none").value, Mode("class") == "class"
    ('none', True)
"""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["TORCHVISION_SETS", "PLANES", "FUSIONS", "Mode", "Norm", "GanLoss", "IntensityKind", "to_dict"]


TORCHVISION_SETS = ("mnist", "fashion-mnist", "cifar10")  # names --data takes in noise/class modes, not folders
PLANES = ("axial", "coronal", "sagittal")  # anatomical slice planes, found in each volume from its affine
FUSIONS = ("mean", "median")  # how the predictions of several planes, flips and models are combined


class Mode(enum.StrEnum):
    """What the generator maps from: a paired source image (pix2pix), noise (DCGAN), noise and a class (CGAN), or an
    unpaired source image (CycleGAN: two generators, no target registered to the source).

    Example:
        >>> Mode.UNPAIRED.translates, Mode.NOISE.translates
        (True, False)
    """

    PAIRED = "paired"
    NOISE = "noise"
    CLASS = "class"
    UNPAIRED = "unpaired"

    @property
    def translates(self) -> bool:
        """An image-to-image mode (paired or unpaired): its networks are ``model``'s, its data subject folders."""
        return self in (Mode.PAIRED, Mode.UNPAIRED)


class Norm(enum.StrEnum):
    """Normalisation layer used inside the generator and discriminator."""

    BATCH = "batch"
    INSTANCE = "instance"


class GanLoss(enum.StrEnum):
    """Adversarial objective: ``lsgan`` least squares (Mao et al.), ``vanilla`` BCE with logits (Goodfellow et al.),
    ``hinge`` (Lim & Ye; SAGAN, BigGAN); ``none``: no adversarial term, pure regression (paired mode only)."""

    LSGAN = "lsgan"
    VANILLA = "vanilla"
    HINGE = "hinge"
    NONE = "none"


class IntensityKind(enum.StrEnum):
    """How a modality is mapped to the network's [-1, 1] range.

    ``hu``: a fixed Hounsfield window (CT), identical for every volume.
    ``percentile``: per-volume robust min/max (MR), whose scale is arbitrary between scanners.
    """

    HU = "hu"
    PERCENTILE = "percentile"


T = TypeVar("T")


def to_dict(obj: Any) -> dict[str, Any]:
    """Return a JSON-ready dict of a config dataclass (enums as their values, paths as strings)."""

    def convert(value: Any) -> Any:
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        return value

    return {f.name: convert(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


class _FromDict:
    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        """Build the config from a dict as written by :func:`to_dict`; unknown keys are an error."""
        names = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(data) - set(names)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}")
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            kwargs[name] = tuple(value) if isinstance(value, list) else value
        return cls(**kwargs)


def _check_enum(owner: str, name: str, value: Any, kind: type[enum.StrEnum]) -> enum.StrEnum:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(k.value for k in kind)
        raise ValueError(f"{owner}.{name}: {value!r} is not one of {choices}") from None

