"""Typed configuration: what a run needs, saved as JSON in the run folder and inside every checkpoint.

Each dataclass round-trips through :func:`to_dict` / ``from_dict`` so that a checkpoint carries everything needed
to rebuild the generator and map its output back to physical units, and nothing has to be unpickled.

The sections live one per module: ``base.py`` (choices and the JSON round trip), ``data.py``, ``networks.py``
(paired and GAN networks), ``training.py`` (optimisation and inference recommendations); this module holds the
whole, :class:`RunConfig`, and re-exports every name; ``flat.py`` maps ``pix2gan train``'s flat option names onto the
sections (:meth:`RunConfig.from_options`). ``files.py`` reads ``pix2gan train --config`` files (imported on its own).

Example:
    >>> cfg = ModelConfig(depth=6, base_filters=16)
    >>> ModelConfig.from_dict(to_dict(cfg)) == cfg
    True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from pix2gan.config.base import FUSIONS, PLANES, TORCHVISION_SETS, GanLoss, IntensityKind, Mode, Norm, to_dict
from pix2gan.config.data import DataConfig, image_folder_names
from pix2gan.config.flat import option_sections, override_sections
from pix2gan.config.networks import GanModelConfig, ModelConfig
from pix2gan.config.training import MODE_DEFAULTS, InferConfig, TrainConfig

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
    "image_folder_names",
    "ModelConfig",
    "TrainConfig",
    "InferConfig",
    "PLANES",
    "FUSIONS",
    "to_dict",
]


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

    def __post_init__(self) -> None:
        if len(self.data.sources) > 1 and self.mode != Mode.PAIRED:
            raise ValueError(f"--src {self.data.src}: several sources are a paired-mode model (many-to-one); "
                             f"--mode {self.mode.value} takes one")  # fmt: skip
        if self.data.data_b is not None:  # two folders of 2-D images: an unpaired run's data, sliced from nothing
            if self.mode != Mode.UNPAIRED:
                raise ValueError(f"--data-b (image folder B) goes with --mode unpaired, not --mode {self.mode.value}")
            if self.data.context or self.data.planes:
                raise ValueError("--context and --planes slice volumes; two image folders (--data-b) take neither")

    @property
    def generator_model(self) -> ModelConfig:
        """The paired generator's architecture: ``model`` with one input channel per slice of each source's 2.5-D
        stack, and one availability channel per source for a model trained with input dropout
        (:class:`pix2gan.data.sources.SourceLayout`).

        Example:
            >>> RunConfig.from_options("paired", src="t1,zte", context=1, input_dropout=0.5).generator_model.in_channels
            8
        """
        d = self.data
        stacks = self.model.in_channels * (2 * d.context + 1) * len(d.sources)
        return dataclasses.replace(self.model, in_channels=stacks + (len(d.sources) if d.optional_sources else 0))

    @property
    def discriminator_model(self) -> ModelConfig:
        """The paired discriminator's input: the centre slice of every source (``model.in_channels`` each) with the
        target (``model.out_channels``); ``model`` itself for one source."""
        return dataclasses.replace(self.model, in_channels=self.model.in_channels * len(self.data.sources))

    @property
    def mode(self) -> Mode:
        return self.train.mode

    @property
    def nets(self) -> ModelConfig | GanModelConfig:
        """The section of the networks this run's mode uses."""
        return self.model if self.mode.translates else self.gan

    def run_name(self) -> str:
        """Short name of the run (``t1-ct`` style for paired runs, the mode otherwise) for default run folders."""
        return f"{'+'.join(self.data.sources)}2{self.data.dst}" if self.mode.translates else self.mode.value

    @classmethod
    def from_options(cls, mode: Mode | str = Mode.PAIRED, **options: Any) -> RunConfig:
        """A configuration from flat option names (those of ``pix2gan train``); None values mean "the default".

        See :func:`pix2gan.config.flat.option_sections`.

        Raises:
            ValueError: an unknown mode, option or value.
        """
        return cls(**option_sections(mode, **options))

    def with_options(self, **options: Any) -> RunConfig:
        """This configuration with the options given (not None) set as :meth:`from_options` sets them, on top of its
        values rather than the defaults: no recommendations, no learning-rate rule (``train --config
        RUN/config.json --epochs 9``). A new ``src`` / ``dst`` takes the normalisation of its modality's name.

        Example:
            >>> cfg = RunConfig.from_options("paired", src="t1", dst="ct").with_options(dst="t2", epochs=3, beta2=0.99)
            >>> (cfg.data.dst, cfg.data.dst_intensity.value, cfg.train.epochs, cfg.train.lr, cfg.train.betas)
            ('t2', 'percentile', 3, 0.001, (0.5, 0.99))

        Raises:
            ValueError: an unknown option or value.
        """
        return RunConfig.from_dict(override_sections(self.to_dict(), self.mode, **options))

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
