"""``pix2gan train``'s options as flat names, mapped onto the sections of :class:`~pix2gan.config.RunConfig`.

:data:`OPTIONS` is the table (option name -> the fields it sets); :func:`option_sections` builds the sections of a
new configuration from options (:meth:`RunConfig.from_options <pix2gan.config.RunConfig.from_options>`), and
:func:`override_sections` sets options on a saved one (:meth:`RunConfig.with_options
<pix2gan.config.RunConfig.with_options>`). This module builds on the section modules only, so the configuration
package needs nothing above it; :mod:`pix2gan.options` adds what the help texts need.

Example:
    >>> sections = option_sections("class", filters=16, epochs=3)
    >>> (sections["gan"].gen_filters, sections["train"].epochs, sections["train"].batch_size)
    (16, 3, 32)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pix2gan.config.base import TORCHVISION_SETS, Mode
from pix2gan.config.data import DataConfig, image_folder_names
from pix2gan.config.networks import GanModelConfig, ModelConfig
from pix2gan.config.training import InferConfig, TrainConfig, warmup_epochs_of

__all__ = ["OPTIONS", "RECOMMENDED", "REGRESSION_LR", "option_sections", "override_sections", "option_targets",
           "resolve_root", "bundled_samples"]  # fmt: skip


# option name of `pix2gan train` -> (section, field) it sets; options naming a network setting appear once per
# network family and go to the family of the run's mode (see option_targets)
OPTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "data": (("data", "root"),),
    "src": (("data", "src"),),
    "dst": (("data", "dst"),),
    "mask": (("data", "mask"),),
    "slice_axis": (("data", "slice_axis"),),
    "planes": (("data", "planes"),),
    "context": (("data", "context"),),
    "input_dropout": (("data", "input_dropout"),),
    "val_fraction": (("data", "val_fraction"),),
    "test_fraction": (("data", "test_fraction"),),
    "split_seed": (("data", "split_seed"),),
    "labels": (("data", "labels"),),
    "data_root": (("data", "data_root"),),
    "download": (("data", "download"),),
    "data_b": (("data", "data_b"),),
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
    "minutes": (("train", "minutes"),),
    "batch_size": (("train", "batch_size"),),
    "lr": (("train", "lr"),),
    "lr_d": (("train", "lr_d"),),
    "lr_gan": (("train", "lr_gan"),),
    "beta1": (),
    "beta2": (),
    "lambda_l1": (("train", "lambda_l1"),),
    "mask_weight": (("train", "mask_weight"),),
    "lambda_ssim": (("train", "lambda_ssim"),),
    "gan_loss": (("train", "gan_loss"),),
    "gan_warmup": (("train", "gan_warmup"),),
    "lambda_cycle": (("train", "lambda_cycle"),),
    "lambda_identity": (("train", "lambda_identity"),),
    "pool_size": (("train", "pool_size"),),
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
    "realism": (("infer", "realism"),),
}


# pix2gan's recommendations beyond the dataclasses' pix2pix defaults (a config built field by field stays pix2pix):
# chosen by bench/quality.py at an equal training time on phantoms (docs/model-card.md). The conditional GAN, U-Net
# and PatchGAN with LSGAN + L1, after a regression warm-up of 3/4 of the epochs (G at the regression's lr 1e-3, D
# at pix2pix's 2e-4: the warm-up's rule in option_sections), with the L1 weighted 10 (not pix2pix's 100) so the
# adversarial term counts; 2 neighbouring slices on each side, averaged with the left-right mirrored prediction at
# inference. Regression epochs are faster than adversarial ones, so 150 epochs take about the time 115 of pix2pix.
RECOMMENDED: dict[Mode, dict[str, Any]] = {
    Mode.PAIRED: {"gan_loss": "lsgan", "gan_warmup": 0.75, "lambda_l1": 10.0, "context": 2, "tta": True, "epochs": 150},
    # CycleGAN's published settings (Zhu et al. 2017): ResNet-9 with instance norm and no dropout, batch 1
    Mode.UNPAIRED: {"generator": "resnet9", "norm": "instance", "dropout": False},
}
REGRESSION_LR = 1e-3  # the learning rate without an adversarial term (pix2pix's 2e-4 stays with one)
# the recommendations that belong to the warm-up: dropped together when the options given rule the warm-up out
WARMUP_SETTINGS = ("gan_warmup", "lr_gan", "realism", "lambda_l1")


def option_targets(name: str, mode: Mode) -> list[tuple[str, str]]:
    """The (section, field) pairs option ``name`` sets in ``mode``: network options go to the mode's family only.

    Example:
        >>> option_targets("filters", Mode.PAIRED), option_targets("filters", Mode.NOISE)
        ([('model', 'base_filters')], [('gan', 'gen_filters')])
    """
    paired = Mode(mode).translates
    return [(s, k) for s, k in OPTIONS[name] if s not in ("model", "gan") or (s == "model") == paired]


def bundled_samples() -> Path:
    """The phantoms shipped in the source tree's ``samples/`` folder (``./samples`` when pix2gan is installed elsewhere)."""
    here = Path(__file__).resolve().parents[2] / "samples"
    return here if here.is_dir() else Path("samples")


def _given(options: dict[str, Any]) -> dict[str, Any]:
    """The options given (not None); an unknown name is refused."""
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)}")
    return given


def option_sections(mode: Mode | str = Mode.PAIRED, **options: Any) -> dict[str, Any]:
    """The sections of a new configuration (``data``, ``model``, ``train``, ``gan``, ``infer``: the keywords of
    ``RunConfig``) from flat option names (those of ``pix2gan train``); None values mean "the default".

    Options that name a network setting go to the section of the mode (``filters`` is the U-Net's ``ngf`` in
    paired mode and the DCGAN's in noise/class modes). Options not given take :data:`RECOMMENDED` for the mode, then
    the dataclasses' defaults; without a GAN term, or with a warm-up (a regression until its switch), the learning
    rate is :data:`REGRESSION_LR` unless ``lr`` is given (the discriminator's then stays pix2pix's 2e-4).
    A ``gan_warmup`` above 0 needs a GAN term: without ``gan_loss`` it takes the dataclass's (pix2pix's ``lsgan``),
    not the recommended ``none``.
    ``data`` defaults to the bundled phantoms; folders are made absolute so a run can be resumed from anywhere.

    Raises:
        ValueError: an unknown mode, option or value.
    """
    try:
        mode = Mode(mode)
    except ValueError:
        raise ValueError(f"--mode {mode!r} is not one of {', '.join(m.value for m in Mode)}") from None
    recommended = _recommended(mode, _given(options))
    if options.get("gan_warmup") and "gan_loss" not in _given(options):  # a warm-up switches an adversarial term on
        recommended.pop("gan_loss", None)
    _check_budget(_given(options))
    if options.get("minutes") is not None:  # the run's length is settled from its measured epoch time
        recommended.pop("epochs", None)
    given = {**recommended, **_given(options)}
    if "lr" not in given and (str(given.get("gan_loss", "")) == "none" or given.get("gan_warmup")):
        given["lr"] = REGRESSION_LR  # (a warm-up is a regression: the generator's learning rate until the switch)
        if given.get("gan_warmup") and "lr_d" not in given:  # the discriminator keeps pix2pix's
            given["lr_d"] = TrainConfig.__dataclass_fields__["lr"].default
    sections: dict[str, dict[str, Any]] = {"data": {}, "model": {}, "train": {"mode": mode}, "gan": {}, "infer": {}}
    for name, value in given.items():
        for section, key in option_targets(name, mode):
            sections[section][key] = value
    if "beta1" in given or "beta2" in given:  # each overrides one of the pair
        default = TrainConfig.__dataclass_fields__["betas"].default
        sections["train"]["betas"] = (given.get("beta1", default[0]), given.get("beta2", default[1]))
    data = sections["data"]
    if data.get("data_b") is not None:  # two image folders: --data is A, and the folders name the domains
        if "root" not in data:
            raise ValueError("--data-b (image folder B) needs --data (image folder A, the sources)")
        data["data_b"] = str(Path(data["data_b"]).resolve())
        for key, name in zip(("src", "dst"), image_folder_names(data["root"], data["data_b"]), strict=True):
            data.setdefault(key, name)
    data["root"] = resolve_root(data.get("root", bundled_samples()), mode)
    if data.get("mask") == "":
        data["mask"] = None
    return {"data": DataConfig(**data), "model": ModelConfig(**sections["model"]),
            "train": TrainConfig(**sections["train"]), "gan": GanModelConfig(**sections["gan"]),
            "infer": InferConfig(**sections["infer"])}  # fmt: skip


def override_sections(sections: dict[str, dict[str, Any]], mode: Mode, **options: Any) -> dict[str, dict[str, Any]]:
    """A saved configuration's sections (``RunConfig.to_dict``) with the options given (not None) set as
    :func:`option_sections` sets them, on top of the saved values rather than the defaults: no recommendations, no
    learning-rate rule. A new ``src`` / ``dst`` takes the normalisation of its modality's name, as in a new run.

    Raises:
        ValueError: an unknown option.
    """
    given = _check_budget(_given(options))
    sections = {name: dict(fields) for name, fields in sections.items()}
    if given.keys() & {"minutes", "epochs", "gan_warmup"}:  # a new length: by time (settled again) or by epochs
        sections["train"].update(gan_warmup_epochs=None)
        if given.keys() & {"minutes", "epochs"}:
            sections["train"].update(epochs=None, minutes=None)
    for name, value in given.items():
        for section, key in option_targets(name, mode):
            sections[section][key] = value
    if "beta1" in given or "beta2" in given:
        beta1, beta2 = sections["train"]["betas"]
        sections["train"]["betas"] = (given.get("beta1", beta1), given.get("beta2", beta2))
    for name in ("src", "dst"):
        if name in given:
            sections["data"][f"{name}_intensity"] = None  # from the new modality's name
    if "src" in given:
        sections["data"]["src_intensities"] = ()
    if "data" in given:
        sections["data"]["root"] = resolve_root(given["data"], mode)
    if given.get("data_b") is not None:
        sections["data"]["data_b"] = str(Path(given["data_b"]).resolve())
    if sections["data"]["mask"] == "":
        sections["data"]["mask"] = None
    return sections


def _recommended(mode: Mode, given: dict[str, Any]) -> dict[str, Any]:
    """:data:`RECOMMENDED` for ``mode`` less what the options ``given`` rule out: the warm-up's settings
    (:data:`WARMUP_SETTINGS`) when they switch the warm-up or the GAN term off, or give fewer epochs than a warm-up
    needs (a 1-epoch run then trains the adversarial objective from its first step).

    Example:
        >>> all(k not in _recommended(Mode.PAIRED, {"gan_loss": "none"}) for k in WARMUP_SETTINGS)
        True
    """
    recommended = dict(RECOMMENDED.get(mode, {}))
    if not recommended.get("gan_warmup"):
        return recommended
    epochs, warmup = given.get("epochs"), given.get("gan_warmup", recommended["gan_warmup"])
    no_gan = str(given.get("gan_loss", recommended.get("gan_loss"))) == "none"
    too_short = "gan_warmup" not in given and epochs is not None and not 1 <= warmup_epochs_of(warmup, epochs) < epochs
    if no_gan or not warmup or too_short:
        for key in WARMUP_SETTINGS:
            recommended.pop(key, None)
    return recommended


def _check_budget(given: dict[str, Any]) -> dict[str, Any]:
    """``minutes`` and ``epochs`` are two ways to say how long to train: refuse both at once."""
    if "minutes" in given and "epochs" in given:
        raise ValueError("--minutes and --epochs both set the length of the run; give one of them")
    return given


def resolve_root(root: str | Path, mode: Mode | str) -> str:
    """The data folder as stored in a run's config: absolute (a run resumes from anywhere); in noise and class
    modes a torchvision data set's name stays a name.

    Example:
        >>> resolve_root("mnist", "noise"), Path(resolve_root("mnist", "paired")).is_absolute()
        ('mnist', True)
    """
    root = str(root)
    return root if not Mode(mode).translates and root in TORCHVISION_SETS else str(Path(root).resolve())
