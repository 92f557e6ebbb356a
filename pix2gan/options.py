"""``pix2gan train``'s options as flat names: the names callers import, and the defaults the help texts show.

The option table and the rules that build a configuration from it live in :mod:`pix2gan.config.flat` (so that
:meth:`RunConfig.from_options <pix2gan.config.RunConfig.from_options>` needs nothing above the configuration
package); this module re-exports them. The command line has no defaults of its own: an option the user did not give
is None, and :func:`run_config` leaves the field at the library's default for the mode. :func:`option_default` tells
the help text what that default is.

Example:
    >>> cfg = run_config("class", filters=16, epochs=3)
    >>> (cfg.gan.gen_filters, cfg.model.base_filters, cfg.train.epochs, cfg.train.batch_size)
    (16, 16, 3, 32)
"""

from __future__ import annotations

import enum
import functools
from typing import Any

from pix2gan.config import Mode, RunConfig
from pix2gan.config.flat import OPTIONS, RECOMMENDED, REGRESSION_LR, bundled_samples, option_targets, resolve_root

__all__ = ["OPTIONS", "RECOMMENDED", "REGRESSION_LR", "run_config", "apply_options", "resolve_root", "option_default",
           "default_help", "bundled_samples"]  # fmt: skip


def run_config(mode: Mode | str = Mode.PAIRED, **options: Any) -> RunConfig:
    """A configuration from flat option names (those of ``pix2gan train``); None values mean "the default": the same
    as :meth:`RunConfig.from_options <pix2gan.config.RunConfig.from_options>`.

    Raises:
        ValueError: an unknown mode, option or value.
    """
    return RunConfig.from_options(mode, **options)


def apply_options(cfg: RunConfig, **options: Any) -> RunConfig:
    """``cfg`` with the options given (not None) set on top of its values (:meth:`RunConfig.with_options
    <pix2gan.config.RunConfig.with_options>`).

    Example:
        >>> cfg = apply_options(run_config("paired", src="t1", dst="ct"), dst="t2", epochs=3, beta2=0.99)
        >>> (cfg.data.dst, cfg.data.dst_intensity.value, cfg.train.epochs, cfg.train.lr, cfg.train.betas)
        ('t2', 'percentile', 3, 0.001, (0.5, 0.99))

    Raises:
        ValueError: an unknown option or value.
    """
    return cfg.with_options(**options)


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
    for section, key in option_targets(name, mode):
        value = getattr(getattr(cfg, section), key)
        return value.value if isinstance(value, enum.Enum) else value
    return None


@functools.cache
def _defaults(mode: Mode) -> RunConfig:
    """The configuration of ``mode`` with no option given (read only: the help texts ask it ~100 times)."""
    return run_config(mode)


# options only the paired mode reads, and options only the noise/class modes read (for the help text)
PAIRED_ONLY = {"depth", "disc_layers", "norm", "dropout", "src", "dst", "mask", "slice_axis", "val_fraction",
               "test_fraction", "split_seed", "lambda_l1", "flip", "device_crop", "planes", "context", "mask_weight",
               "lambda_ssim", "fusion", "tta", "gan_warmup", "lr_gan", "realism"}  # fmt: skip
GAN_ONLY = {"latent_dim", "embed_dim", "d_steps", "label_smoothing", "augment"}
# paired options an unpaired run does not read (its defaults there say nothing)
UNPAIRED_UNUSED = {"lambda_l1", "gan_warmup", "lr_gan", "realism", "mask_weight", "lambda_ssim"}


def default_help(name: str) -> str:
    """``[default: ...]`` for option ``name``: the library's default, per mode family where they differ.

    Example:
        >>> default_help("epochs"), default_help("flip"), default_help("latent_dim")
        ('[default: 150 paired, 40 unpaired, 200 noise/class]', '[default: on]', '[default: 64]')
        >>> default_help("norm"), default_help("lambda_l1")
        ('[default: batch paired, instance unpaired]', '[default: 10.0]')
    """

    def text(value: Any) -> str:
        return {True: "on", False: "off"}.get(value, str(value)) if isinstance(value, bool) else str(value)

    paired, gan = option_default(name, Mode.PAIRED), option_default(name, Mode.NOISE)
    unpaired = None if name in GAN_ONLY | UNPAIRED_UNUSED else option_default(name, Mode.UNPAIRED)
    also = f" paired, {text(unpaired)} unpaired" if unpaired is not None and unpaired != paired else ""
    if name in PAIRED_ONLY or paired == gan:
        return f"[default: {text(paired)}{also}]"
    if name in GAN_ONLY:
        return f"[default: {text(gan)}]"
    return f"[default: {text(paired)}{also or ' paired'}, {text(gan)} noise/class]"
