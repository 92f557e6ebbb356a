"""Typed configuration: what a run needs, saved as JSON in the run folder and inside every checkpoint.

Each dataclass round-trips through :func:`to_dict` / ``from_dict`` so that a checkpoint carries everything needed
to rebuild the generator and map its output back to physical units, and nothing has to be unpickled.

Example:
    >>> cfg = ModelConfig(depth=6, base_filters=16)
    >>> ModelConfig.from_dict(to_dict(cfg)) == cfg
    True
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "RunConfig",
    "MODE_DEFAULTS",
    "TORCHVISION_SETS",
    "Mode",
    "Norm",
    "GanLoss",
    "GanModelConfig",
    "IntensityKind",
    "DataConfig",
    "ModelConfig",
    "TrainConfig",
    "InferConfig",
    "PLANES",
    "FUSIONS",
    "to_dict",
]


TORCHVISION_SETS = ("mnist", "fashion-mnist", "cifar10")  # names --data takes in noise/class modes, not folders
PLANES = ("axial", "coronal", "sagittal")  # anatomical slice planes, found in each volume from its affine
FUSIONS = ("mean", "median")  # how the predictions of several planes, flips and models are combined


class Mode(enum.StrEnum):
    """What the generator maps from: a paired source image (pix2pix), noise (DCGAN), or noise and a class (CGAN)."""

    PAIRED = "paired"
    NOISE = "noise"
    CLASS = "class"


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


@dataclass
class DataConfig(_FromDict):
    """Where the paired data lives and how slices are made from it.

    Args:
        root: folder holding one sub-folder per subject with ``<modality>.nii[.gz]`` files.
        src: source modality name (network input), e.g. ``t1``.
        dst: target modality name (network output), e.g. ``ct``.
        mask: optional body-mask modality name; used for metrics and to skip empty slices.
        slice_axis: array axis the volume is sliced along (2 = axial for RAS-ordered scans); the one-plane case.
        planes: anatomical planes to slice along (any of ``axial``, ``coronal``, ``sagittal``), each found in every
            volume from its affine; empty: the one array axis ``slice_axis``. One model learns all planes; slices
            keep their voxels (no resampling: non-square slices are padded), so outputs stay on the input's grid.
        context: neighbouring slices on each side fed to the generator as extra channels (2.5-D; 0 = 2-D pix2pix).
            Neighbours beyond the volume's ends repeat the end slice.
        src_intensity / dst_intensity: normalisation of each modality (``hu`` or ``percentile``); default from the
            modality's name: CT-like names (``ct``, ``cbct``, ``sct``) get the HU window, others percentiles.
        percentiles: lower/upper percentiles for ``percentile`` normalisation.
        hu_window: clip window in HU for ``hu`` normalisation (SynthRAD: [-1024, 3000]).
        val_fraction / test_fraction: share of subjects held out (at least one each when there are >= 3).
        split_seed: seed of the deterministic subject split.
        min_foreground: slices whose mask covers less than this fraction are not used for training.
        labels: noise/class modes on NIfTI data: ``level`` (anatomical level of the slice) or a CSV ``subject,label``.
        data_root: where torchvision data sets (``mnist``, ``fashion-mnist``, ``cifar10``) live.
        download: let torchvision download its data set (never implied).
    """

    root: str = "samples"
    src: str = "t1"
    dst: str = "ct"
    mask: str | None = "mask"
    slice_axis: int = 2
    planes: tuple[str, ...] = ()
    context: int = 0
    src_intensity: IntensityKind | None = None  # None: from the modality's name (default_intensity)
    dst_intensity: IntensityKind | None = None
    percentiles: tuple[float, float] = (0.5, 99.5)
    hu_window: tuple[float, float] = (-1024.0, 3000.0)
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    split_seed: int = 0
    min_foreground: float = 0.01
    labels: str | None = None
    data_root: str | None = None
    download: bool = False

    def __post_init__(self) -> None:
        if self.src_intensity is None:
            self.src_intensity = self.default_intensity(self.src)
        if self.dst_intensity is None:
            self.dst_intensity = self.default_intensity(self.dst)
        self.src_intensity = _check_enum("DataConfig", "src_intensity", self.src_intensity, IntensityKind)
        self.dst_intensity = _check_enum("DataConfig", "dst_intensity", self.dst_intensity, IntensityKind)
        self.percentiles = tuple(float(p) for p in self.percentiles)  # type: ignore[assignment]
        self.hu_window = tuple(float(p) for p in self.hu_window)  # type: ignore[assignment]
        if self.slice_axis not in (0, 1, 2):
            raise ValueError(f"DataConfig.slice_axis must be 0, 1 or 2, got {self.slice_axis}")
        self.planes = tuple(str(p).lower() for p in self.planes)
        for plane in self.planes:
            if plane not in PLANES:
                raise ValueError(f"DataConfig.planes: {plane!r} is not one of {', '.join(PLANES)}")
        if len(set(self.planes)) != len(self.planes):
            raise ValueError(f"DataConfig.planes: a plane is named twice in {', '.join(self.planes)}")
        if not 0 <= self.context <= 16:
            raise ValueError(f"DataConfig.context must be in [0, 16], got {self.context}")
        lo, hi = self.percentiles
        if not 0.0 <= lo < hi <= 100.0:
            raise ValueError(f"DataConfig.percentiles must satisfy 0 <= lo < hi <= 100, got {self.percentiles}")
        if not self.hu_window[0] < self.hu_window[1]:
            raise ValueError(f"DataConfig.hu_window must be increasing, got {self.hu_window}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"DataConfig.{name} must be in [0, 1), got {value}")

    @staticmethod
    def default_intensity(modality: str) -> IntensityKind:
        """CT-like modalities get the HU window, everything else per-volume percentiles."""
        return IntensityKind.HU if modality.lower() in {"ct", "cbct", "sct"} else IntensityKind.PERCENTILE


@dataclass
class ModelConfig(_FromDict):
    """Generator and discriminator architecture.

    Args:
        generator: generator architecture, a name in :func:`pix2gan.nets.generator_names` (``unet``, ``resnet9``, ...).
        discriminator: discriminator architecture (``patchgan``).
        in_channels / out_channels: channels of the source and target images.
        depth: number of U-Net down-sampling steps; U-Net inputs must be multiples of ``2 ** depth`` (8 = unet_256).
        base_filters: filters of the first U-Net level (``ngf``), doubled per level up to 8x.
        norm: ``batch`` (pix2pix) or ``instance``.
        dropout: dropout 0.5 in the deepest decoder levels, as in pix2pix.
        disc_filters: filters of the first PatchGAN layer (``ndf``).
        disc_layers: strided PatchGAN layers; 3 gives the 70x70 receptive field.
    """

    # demo-sized defaults: ~1 M generator parameters that train in ~5 minutes on 2 CPU cores;
    # pix2pix's unet_256 is depth=8, base_filters=64, disc_filters=64
    generator: str = "unet"
    discriminator: str = "patchgan"
    in_channels: int = 1
    out_channels: int = 1
    depth: int = 5
    base_filters: int = 16
    norm: Norm = Norm.BATCH
    dropout: bool = True
    disc_filters: int = 8
    disc_layers: int = 3

    def __post_init__(self) -> None:
        self.norm = _check_enum("ModelConfig", "norm", self.norm, Norm)  # type: ignore[assignment]
        for name in ("in_channels", "out_channels", "base_filters", "disc_filters"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 2 <= self.depth <= 10:
            raise ValueError(f"ModelConfig.depth must be in [2, 10], got {self.depth}")
        if not 1 <= self.disc_layers <= 6:
            raise ValueError(f"ModelConfig.disc_layers must be in [1, 6], got {self.disc_layers}")


@dataclass
class GanModelConfig(_FromDict):
    """Noise-to-image (DCGAN) and class-conditional (CGAN) networks.

    Args:
        generator: generator architecture (``dcgan``: DCGAN, conditioned by a label embedding in class mode; ``mlp``).
        discriminator: discriminator architecture (``dcgan``: DCGAN, a projection discriminator in class mode; ``mlp``).
        latent_dim: size of the noise vector z.
        channels: image channels (1 grayscale, 3 RGB); 0, the default, takes them from the data when training
            starts (the checkpoint records the number). Networks are built with 1 or 3.
        image_size: side of the square images: 28, 32, 64 or 128.
        gen_filters: filters of the generator's last (highest-resolution) transposed convolution (DCGAN ``ngf``).
        disc_filters: filters of the discriminator's first convolution (DCGAN ``ndf``).
        num_classes: classes for the conditional mode (0 = unconditional).
        embed_dim: size of the learned label embedding concatenated with z in the conditional generator.
    """

    generator: str = "dcgan"
    discriminator: str = "dcgan"
    latent_dim: int = 64
    channels: int = 0
    image_size: int = 32
    gen_filters: int = 32
    disc_filters: int = 32
    num_classes: int = 0
    embed_dim: int = 32

    def __post_init__(self) -> None:
        if self.image_size not in (28, 32, 64, 128):
            raise ValueError(f"GanModelConfig.image_size must be 28, 32, 64 or 128, got {self.image_size}")
        if self.channels not in (0, 1, 3):
            raise ValueError(f"GanModelConfig.channels must be 1 or 3 (0: from the data), got {self.channels}")
        for name in ("latent_dim", "gen_filters", "disc_filters", "embed_dim"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"GanModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_classes < 0 or self.num_classes == 1:
            raise ValueError(f"GanModelConfig.num_classes must be 0 (unconditional) or >= 2, got {self.num_classes}")


# defaults that differ between modes: pix2pix's (demo-sized crops) for paired runs, DCGAN-sized for GANs
MODE_DEFAULTS: dict[Mode, dict[str, int]] = {
    Mode.PAIRED: {"epochs": 100, "batch_size": 4, "image_size": 64},
    Mode.NOISE: {"epochs": 200, "batch_size": 32, "image_size": 32},
    Mode.CLASS: {"epochs": 200, "batch_size": 32, "image_size": 32},
}


@dataclass
class TrainConfig(_FromDict):
    """Optimisation settings (pix2pix defaults) and run bookkeeping.

    ``epochs``, ``batch_size`` and ``image_size`` left at None take the defaults of the mode (:data:`MODE_DEFAULTS`):
    pix2pix's for paired runs, DCGAN-sized ones for noise and class runs.

    Args:
        mode: training mode (``paired``, ``noise`` or ``class``).
        epochs: epochs in total; the learning rate decays linearly to 0 over the second half.
        batch_size: slices (images) per step.
        image_size: paired: side of the square random crop fed to the networks (a multiple of the generator's padding
            multiple); noise/class: mirrors ``GanModelConfig.image_size``.
        lr: Adam learning rate for both networks (2e-4).
        betas: Adam betas ((0.5, 0.999)).
        lambda_l1: weight of the L1 reconstruction term (100).
        mask_weight: paired: weight of the body-mask voxels in the L1 term (e.g. 0.95; the voxels outside get
            1 - mask_weight); None: every voxel counts the same.
        lambda_ssim: paired: weight of an SSIM term (kornia's ``ssim_loss``, (1 - SSIM) / 2, 11-pixel window); 0: off.
        gan_loss: ``lsgan``, ``vanilla``, ``hinge``, or ``none`` (paired only: no discriminator, pure regression).
        init_gain: std of the N(0, gain) weight initialisation (0.02).
        seed: seed of weights, crops and batch order.
        flip: random left-right flips of training pairs.
        num_workers: DataLoader worker processes (0 = main process; the slice cache makes fetching cheap).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda[:N]``.
        threads: torch intra-op threads on CPU (0 = torch's default).
        panel_slices: validation slices drawn in the per-epoch PNG panel.
        d_steps: discriminator updates per generator update (noise and class modes).
        label_smoothing: one-sided label smoothing: real label = 1 - label_smoothing (noise and class modes).
        augment: differentiable augmentation of the discriminator's inputs (noise and class modes; DiffAugment).
        lr_d: discriminator learning rate when it should differ from ``lr`` (two time-scale update rule).
        checkpoint_every: also save a checkpoint every this many steps (0 = only at the end of each epoch).
        checkpoint_minutes: also save one when this many minutes passed since the last save (0 = never).
        keep_last: step checkpoints to keep besides ``latest`` and ``best``.
        max_nonfinite: stop after this many steps in a row with a non-finite loss (each one is skipped).
        precision: ``auto`` (bf16 on GPUs that have it, else fp32), ``fp32``, ``bf16`` or ``fp16`` (with a gradient
            scaler): the autocast dtype of the forward passes; weights and optimiser states stay fp32.
        channels_last: networks and batches in channels-last memory format (faster convolutions on GPUs).
        compile: ``torch.compile`` the networks for training.
        device_crop: paired random crops and flips on the device (kornia) instead of in the data set; None = on CUDA.
    """

    mode: Mode = Mode.PAIRED
    epochs: int | None = None
    batch_size: int | None = None
    image_size: int | None = None
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    lambda_l1: float = 100.0
    mask_weight: float | None = None
    lambda_ssim: float = 0.0
    gan_loss: GanLoss = GanLoss.LSGAN
    init_gain: float = 0.02
    seed: int = 0
    flip: bool = True
    num_workers: int = 0
    device: str = "auto"
    threads: int = 0
    panel_slices: int = 3
    d_steps: int = 1
    label_smoothing: float = 0.0
    augment: bool = True
    lr_d: float | None = None
    checkpoint_every: int = 0
    checkpoint_minutes: float = 30.0
    keep_last: int = 3
    max_nonfinite: int = 20
    precision: str = "auto"
    channels_last: bool = False
    compile: bool = False
    device_crop: bool | None = None

    def __post_init__(self) -> None:
        self.mode = _check_enum("TrainConfig", "mode", self.mode, Mode)  # type: ignore[assignment]
        for name, value in MODE_DEFAULTS[self.mode].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        self.gan_loss = _check_enum("TrainConfig", "gan_loss", self.gan_loss, GanLoss)  # type: ignore[assignment]
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]
        for name in ("epochs", "batch_size", "image_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or (self.lr_d is not None and self.lr_d <= 0):
            raise ValueError(f"TrainConfig.lr and lr_d must be > 0, got {self.lr} and {self.lr_d}")
        if self.lambda_l1 < 0 or self.lambda_ssim < 0:
            raise ValueError(f"TrainConfig.lambda_l1 and lambda_ssim must be >= 0, got {self.lambda_l1}, {self.lambda_ssim}")
        if self.mask_weight is not None and not 0.0 < self.mask_weight <= 1.0:
            raise ValueError(f"TrainConfig.mask_weight must be in (0, 1], got {self.mask_weight}")
        if self.gan_loss == GanLoss.NONE and self.mode != Mode.PAIRED:
            raise ValueError("--gan-loss none is for paired runs (noise and class modes are adversarial by nature)")
        if self.num_workers < 0 or self.threads < 0:
            raise ValueError("TrainConfig.num_workers and threads must be >= 0")
        if self.d_steps < 1:
            raise ValueError(f"TrainConfig.d_steps must be >= 1, got {self.d_steps}")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ValueError(f"TrainConfig.label_smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if self.checkpoint_every < 0 or self.checkpoint_minutes < 0:
            raise ValueError("TrainConfig.checkpoint_every and checkpoint_minutes must be >= 0")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"TrainConfig.precision must be auto, fp32, bf16 or fp16, got {self.precision!r}")
        if self.keep_last < 1 or self.max_nonfinite < 1:
            raise ValueError(f"TrainConfig.keep_last and max_nonfinite must be >= 1, got {self.keep_last}, {self.max_nonfinite}")


@dataclass
class InferConfig(_FromDict):
    """How a paired model is best used at inference, stored with it so ``translate`` needs no flags.

    Args:
        fusion: how predictions of several planes, flips and ensemble members are combined: ``mean`` or ``median``
            (the median holds one volume per prediction in memory).
        tta: test-time augmentation: also predict the left-right mirrored volume and average (2x the time).
    """

    fusion: str = "mean"
    tta: bool = False

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"InferConfig.fusion must be one of {', '.join(FUSIONS)}, got {self.fusion!r}")


@dataclass
class RunConfig:
    """Everything a run was started with; ``config.json`` in the run folder and a JSON string in every checkpoint.

    ``model`` holds the paired networks (generator and PatchGAN), ``gan`` the noise/class networks; ``train.mode``
    says which of them a run uses. Build one from flat option names (as the CLI does) with :meth:`from_options`, so
    Python callers and the command line get the same defaults.

    Example:
        >>> cfg = RunConfig.from_options("noise")
        >>> (cfg.mode.value, cfg.train.epochs, cfg.train.batch_size, cfg.gan.image_size)
        ('noise', 200, 32, 32)
        >>> RunConfig.from_options("paired", src="t1", dst="ct", filters=32).model.base_filters
        32
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    gan: GanModelConfig = field(default_factory=GanModelConfig)
    infer: InferConfig = field(default_factory=InferConfig)

    @property
    def generator_model(self) -> ModelConfig:
        """The paired generator's architecture: ``model`` with one input channel per slice of the 2.5-D stack."""
        return dataclasses.replace(self.model, in_channels=self.model.in_channels * (2 * self.data.context + 1))

    @property
    def mode(self) -> Mode:
        return self.train.mode

    @property
    def nets(self) -> ModelConfig | GanModelConfig:
        """The section of the networks this run's mode uses."""
        return self.model if self.mode == Mode.PAIRED else self.gan

    def run_name(self) -> str:
        """Short name of the run (``t1-ct`` style for paired runs, the mode otherwise) for default run folders."""
        return f"{self.data.src}2{self.data.dst}" if self.mode == Mode.PAIRED else self.mode.value

    @classmethod
    def from_options(cls, mode: Mode | str = Mode.PAIRED, **options: Any) -> RunConfig:
        """A configuration from flat option names (those of ``pix2gan train``); None values mean "the default".

        See :func:`pix2gan.options.run_config`.
        """
        from pix2gan.options import run_config  # the option table builds on this module

        return run_config(mode, **options)

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": to_dict(self.data),
            "model": to_dict(self.model),
            "train": to_dict(self.train),
            "gan": to_dict(self.gan),
            "infer": to_dict(self.infer),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Rebuild from :meth:`to_dict`'s output; configs written before a field existed get its default, which is
        what they trained (``unet`` / ``patchgan``, ``dcgan``, one plane, no context, mean fusion without TTA)."""
        return cls(
            data=DataConfig.from_dict(data["data"]),
            model=ModelConfig.from_dict(data["model"]),
            train=TrainConfig.from_dict(data["train"]),
            gan=GanModelConfig.from_dict(data.get("gan", {})),
            infer=InferConfig.from_dict(data.get("infer", {})),
        )
