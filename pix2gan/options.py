"""``pix2gan train``'s options as flat names, mapped onto the sections of :class:`~pix2gan.config.RunConfig`.

The command line has no defaults of its own: an option the user did not give is None, and :func:`run_config` leaves
the field at the library's default for the mode. :func:`option_default` tells the help text what that default is.

Example:
    >>> cfg = run_config("class", filters=16, epochs=3)
    >>> (cfg.gan.gen_filters, cfg.model.base_filters, cfg.train.epochs, cfg.train.batch_size)
    (16, 16, 3, 32)
"""

from __future__ import annotations

import enum
import functools
from pathlib import Path
from typing import Any

from pix2gan.config import (
    TORCHVISION_SETS,
    DataConfig,
    GanModelConfig,
    InferConfig,
    Mode,
    ModelConfig,
    RunConfig,
    TrainConfig,
)

__all__ = ["OPTIONS", "RECOMMENDED", "REGRESSION_LR", "run_config", "apply_options", "resolve_root", "option_default",
           "default_help", "bundled_samples"]  # fmt: skip


# option name of `pix2gan train` -> (section, field) it sets; options naming a network setting appear once per
# network family and go to the family of the run's mode (see RunConfig.from_options)
OPTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "data": (("data", "root"),),
    "src": (("data", "src"),),
    "dst": (("data", "dst"),),
    "mask": (("data", "mask"),),
    "slice_axis": (("data", "slice_axis"),),
    "planes": (("data", "planes"),),
    "context": (("data", "context"),),
    "val_fraction": (("data", "val_fraction"),),
    "test_fraction": (("data", "test_fraction"),),
    "split_seed": (("data", "split_seed"),),
    "labels": (("data", "labels"),),
    "data_root": (("data", "data_root"),),
    "download": (("data", "download"),),
    "generator": (("model", "generator"), ("gan", "generator")),
    "discriminator": (("model", "discriminator"), ("gan", "discriminator")),
    "depth": (("model", "depth"),),
    "filters": (("model", "base_filters"), ("gan", "gen_filters")),
    "disc_filters": (("model", "disc_filters"), ("gan", "disc_filters")),
    "disc_layers": (("model", "disc_layers"),),
    "norm": (("model", "norm"),),
    "dropout": (("model", "dropout"),),
    "latent_dim": (("gan", "latent_dim"),),
    "channels": (("gan", "channels"),),
    "embed_dim": (("gan", "embed_dim"),),
    "image_size": (("train", "image_size"), ("gan", "image_size")),
    "epochs": (("train", "epochs"),),
    "batch_size": (("train", "batch_size"),),
    "lr": (("train", "lr"),),
    "lr_d": (("train", "lr_d"),),
    "beta1": (),
    "beta2": (),
    "lambda_l1": (("train", "lambda_l1"),),
    "mask_weight": (("train", "mask_weight"),),
    "lambda_ssim": (("train", "lambda_ssim"),),
    "gan_loss": (("train", "gan_loss"),),
    "seed": (("train", "seed"),),
    "flip": (("train", "flip"),),
    "workers": (("train", "num_workers"),),
    "device": (("train", "device"),),
    "threads": (("train", "threads"),),
    "d_steps": (("train", "d_steps"),),
    "label_smoothing": (("train", "label_smoothing"),),
    "augment": (("train", "augment"),),
    "checkpoint_every": (("train", "checkpoint_every"),),
    "checkpoint_minutes": (("train", "checkpoint_minutes"),),
    "keep_last": (("train", "keep_last"),),
    "max_nonfinite": (("train", "max_nonfinite"),),
    "precision": (("train", "precision"),),
    "channels_last": (("train", "channels_last"),),
    "compile": (("train", "compile"),),
    "device_crop": (("train", "device_crop"),),
    "tensorboard": (("train", "tensorboard"),),
    "fusion": (("infer", "fusion"),),
    "tta": (("infer", "tta"),),
}


# pix2gan's recommendations beyond the dataclasses' pix2pix defaults (a config built field by field stays pix2pix):
# chosen by bench/quality.py at an equal training time on phantoms (docs/model-card.md). Pure regression with
# 2 neighbouring slices on each side, averaged with its left-right mirrored prediction at inference; a step without
# a discriminator is faster, so 150 epochs take about the time 100 epochs of pix2pix took.
RECOMMENDED: dict[Mode, dict[str, Any]] = {Mode.PAIRED: {"gan_loss": "none", "context": 2, "tta": True, "epochs": 150}}
REGRESSION_LR = 1e-3  # the learning rate without an adversarial term (pix2pix's 2e-4 stays with one)


def option_default(name: str, mode: Mode | str = Mode.PAIRED) -> Any:
    """The value option ``name`` takes when it is not given, in ``mode`` (for help texts).

    Example:
        >>> option_default("epochs", "paired"), option_default("epochs", "class"), option_default("filters", "noise")
        (150, 200, 32)
    """
    if name == "data":
        return "the bundled samples/"
    mode = Mode(mode)
    cfg = _defaults(mode)
    if name in ("beta1", "beta2"):
        return cfg.train.betas[name == "beta2"]
    for section, key in _targets(name, mode):
        value = getattr(getattr(cfg, section), key)
        return value.value if isinstance(value, enum.Enum) else value
    return None


@functools.cache
def _defaults(mode: Mode) -> RunConfig:
    """The configuration of ``mode`` with no option given (read only: the help texts ask it ~100 times)."""
    return run_config(mode)


def _targets(name: str, mode: Mode) -> list[tuple[str, str]]:
    """The (section, field) pairs option ``name`` sets in ``mode``: network options go to the mode's family only."""
    paired = mode == Mode.PAIRED
    return [(s, k) for s, k in OPTIONS[name] if s not in ("model", "gan") or (s == "model") == paired]


def bundled_samples() -> Path:
    """The phantoms shipped in the source tree's ``samples/`` folder (``./samples`` when pix2gan is installed elsewhere)."""
    here = Path(__file__).resolve().parent.parent / "samples"
    return here if here.is_dir() else Path("samples")


def run_config(mode: Mode | str = Mode.PAIRED, **options: Any) -> RunConfig:
    """A configuration from flat option names (those of ``pix2gan train``); None values mean "the default".

    Options that name a network setting go to the section of the mode (``filters`` is the U-Net's ``ngf`` in
    paired mode and the DCGAN's in noise/class modes). Options not given take :data:`RECOMMENDED` for the mode, then
    the dataclasses' defaults; without a GAN term the learning rate is :data:`REGRESSION_LR` unless ``lr`` is given. ``data`` defaults to the bundled phantoms; folders are made
    absolute so a run can be resumed from anywhere.

    Raises:
        ValueError: an unknown mode, option or value.
    """
    try:
        mode = Mode(mode)
    except ValueError:
        raise ValueError(f"--mode {mode!r} is not one of {', '.join(m.value for m in Mode)}") from None
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)}")
    given = {**RECOMMENDED.get(mode, {}), **given}
    if "lr" not in given and str(given.get("gan_loss", "")) == "none":
        given["lr"] = REGRESSION_LR
    sections: dict[str, dict[str, Any]] = {"data": {}, "model": {}, "train": {"mode": mode}, "gan": {}, "infer": {}}
    for name, value in given.items():
        for section, key in _targets(name, mode):
            sections[section][key] = value
    if "beta1" in given or "beta2" in given:  # each overrides one of the pair
        default = TrainConfig.__dataclass_fields__["betas"].default
        sections["train"]["betas"] = (given.get("beta1", default[0]), given.get("beta2", default[1]))
    data = sections["data"]
    data["root"] = resolve_root(data.get("root", bundled_samples()), mode)
    if data.get("mask") == "":
        data["mask"] = None
    return RunConfig(data=DataConfig(**data), model=ModelConfig(**sections["model"]),
                     train=TrainConfig(**sections["train"]), gan=GanModelConfig(**sections["gan"]),
                     infer=InferConfig(**sections["infer"]))  # fmt: skip


def apply_options(cfg: RunConfig, **options: Any) -> RunConfig:
    """``cfg`` with the options given (not None) set as :func:`run_config` sets them, on top of ``cfg``'s values
    rather than the defaults: no recommendations, no learning-rate rule (``train --config RUN/config.json --epochs 9``).

    A new ``src`` / ``dst`` takes the normalisation of its modality's name, as in a new run.

    Example:
        >>> cfg = apply_options(run_config("paired", src="t1", dst="ct"), dst="t2", epochs=3, beta2=0.99)
        >>> (cfg.data.dst, cfg.data.dst_intensity.value, cfg.train.epochs, cfg.train.lr, cfg.train.betas)
        ('t2', 'percentile', 3, 0.001, (0.5, 0.99))

    Raises:
        ValueError: an unknown option or value.
    """
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)}")
    sections = cfg.to_dict()
    for name, value in given.items():
        for section, key in _targets(name, cfg.mode):
            sections[section][key] = value
    if "beta1" in given or "beta2" in given:
        beta1, beta2 = cfg.train.betas
        sections["train"]["betas"] = (given.get("beta1", beta1), given.get("beta2", beta2))
    for name in ("src", "dst"):
        if name in given:
            sections["data"][f"{name}_intensity"] = None  # from the new modality's name
    if "data" in given:
        sections["data"]["root"] = resolve_root(given["data"], cfg.mode)
    if sections["data"]["mask"] == "":
        sections["data"]["mask"] = None
    return RunConfig.from_dict(sections)


def resolve_root(root: str | Path, mode: Mode | str) -> str:
    """The data folder as stored in a run's config: absolute (a run resumes from anywhere); in noise and class
    modes a torchvision data set's name stays a name.

    Example:
        >>> resolve_root("mnist", "noise"), Path(resolve_root("mnist", "paired")).is_absolute()
        ('mnist', True)
    """
    root = str(root)
    return root if Mode(mode) != Mode.PAIRED and root in TORCHVISION_SETS else str(Path(root).resolve())


# options only the paired mode reads, and options only the noise/class modes read (for the help text)
PAIRED_ONLY = {"depth", "disc_layers", "norm", "dropout", "src", "dst", "mask", "slice_axis", "val_fraction",
               "test_fraction", "split_seed", "lambda_l1", "flip", "device_crop", "planes", "context", "mask_weight",
               "lambda_ssim", "fusion", "tta"}  # fmt: skip
GAN_ONLY = {"latent_dim", "embed_dim", "d_steps", "label_smoothing", "augment"}


def default_help(name: str) -> str:
    """``[default: ...]`` for option ``name``: the library's default, per mode family where they differ.

    Example:
        >>> default_help("epochs"), default_help("flip"), default_help("latent_dim")
        ('[default: 150 paired, 200 noise/class]', '[default: on]', '[default: 64]')
    """

    def text(value: Any) -> str:
        return {True: "on", False: "off"}.get(value, str(value)) if isinstance(value, bool) else str(value)

    paired, gan = option_default(name, Mode.PAIRED), option_default(name, Mode.NOISE)
    if name in PAIRED_ONLY or paired == gan:
        return f"[default: {text(paired)}]"
    if name in GAN_ONLY:
        return f"[default: {text(gan)}]"
    return f"[default: {text(paired)} paired, {text(gan)} noise/class]"
