"""What an exported generator carries besides its weights: everything ``translate`` needs to use it as trained.

An export (:mod:`pix2gan.infer.export`) stores flat string properties: ONNX ``metadata_props``, and the same
dictionary as ``pix2gan.json`` among the extra files of a ``.pt2`` archive. Every key starts with ``pix2gan.``;
values are strings, JSON where structured:

* ``pix2gan.format``: ``pix2gan-export``; ``pix2gan.format_version``: ``1`` (a loader refuses a newer one);
* ``pix2gan.version``: the pix2gan version that wrote it (another major version is refused);
* ``pix2gan.config``: the run's :class:`~pix2gan.config.RunConfig` as JSON (modalities, slice axis / planes,
  context K, architecture; ``infer``: the recommended TTA and fusion);
* ``pix2gan.intensity``: ``{"src": map, "dst": map}``, the checkpoint's intensity maps
  (:meth:`~pix2gan.data.intensity.IntensityMap.to_dict`: kind, HU window, percentiles, and the reference scale a
  percentile output is mapped back with);
* ``pix2gan.padding_multiple``: the input's height and width must be multiples of it (pad with -1, crop back);
* ``pix2gan.input`` / ``pix2gan.output``: name, layout, dtype, shape and range of the network's tensors; a
  many-to-one model's input also names its channels in order (``channel_names``: ``t1[k-1]``, ..., ``zte[k+1]``,
  ``available:t1``, ``available:zte``), its ``sources`` in channel order with each one's ``blocks`` (channel range
  ``[start, stop)``), the ``context`` K, the ``availability`` channels (a model trained with ``--input-dropout``: 1
  where the source is given, 0 where it is missing and its channels are zero-filled) and ``optional`` (whether any
  non-empty subset of the sources may be given); its ``pix2gan.intensity`` has ``sources``, each source's map by
  name (the first one's is ``src``). One source: the same properties as before (an export without ``sources``
  is a one-source model);
* ``pix2gan.source``: the checkpoint it came from (file name, epoch, step, realism, and ``generator``: ``G`` of a
  paired run, ``G_ab`` or ``G_ba`` of an unpaired one, whose ``config`` and ``intensity`` are then those of its
  direction: src -> dst swapped for G_ba); ``pix2gan.exporter``: how it was made (torch version, ``torch.export``,
  ONNX opset).

A generator of a run trained on two image folders (``config.data.data_b`` set) has no intensity maps
(``pix2gan.intensity`` is ``{"src": null, "dst": null}``): its images map [0, 1] to [-1, 1] linearly, and
:meth:`pix2gan.infer.images.ImageTranslator.from_exported` uses it as the checkpoint's.

Example:
    >>> from pix2gan.data.intensity import intensity_maps
    >>> cfg = RunConfig()
    >>> meta = ExportMetadata(cfg, *intensity_maps(cfg.data), multiple=32)
    >>> props = meta.to_props()
    >>> props["pix2gan.padding_multiple"], json.loads(props["pix2gan.input"])["shape"]
    ('32', ['batch', 1, 'height', 'width'])
    >>> ExportMetadata.from_props("model.onnx", props) == meta
    True
    >>> ExportMetadata.from_props("model.onnx", {})
    Traceback (most recent call last):
    pix2gan.errors.InputError: model.onnx: not a pix2gan export (no pix2gan metadata)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pix2gan
from pix2gan.config import RunConfig
from pix2gan.data.intensity import IntensityMap, source_maps
from pix2gan.data.sources import SourceLayout
from pix2gan.errors import InputError

__all__ = ["EXPORT_FORMAT", "EXPORT_FORMAT_VERSION", "INPUT_NAME", "OUTPUT_NAME", "ExportMetadata"]

EXPORT_FORMAT = "pix2gan-export"
EXPORT_FORMAT_VERSION = 1
INPUT_NAME, OUTPUT_NAME = "input", "output"
_KEYS = ("format", "format_version", "version", "config", "intensity", "padding_multiple", "input", "output")


@dataclass(frozen=True)
class ExportMetadata:
    """The configuration, intensity maps and shape rule of an exported generator (paired, or one direction of an
    unpaired run).

    Args:
        config: the run's configuration (as in its checkpoint; for an unpaired run's G_ba
            :func:`~pix2gan.nets.cycle.reversed_config` of it).
        src_map / dst_map: the intensity maps of the generator's input and output (``dst_map`` with its reference
            scale); None for a run trained on two image folders.
        multiple: the generator's padding multiple (:func:`pix2gan.nets.padding_multiple`).
        version: the pix2gan version that exported it.
        source: where it came from (checkpoint file name, epoch, step, realism, which generator).
        exporter: how it was made (torch version, opset).
    """

    config: RunConfig
    src_map: IntensityMap | None
    dst_map: IntensityMap | None
    multiple: int
    version: str = pix2gan.__version__
    source: dict[str, Any] = field(default_factory=dict, compare=False)
    exporter: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def in_channels(self) -> int:
        """2K + 1 slices (times the modality's channels) of each source per input, and one availability channel per
        source of a model trained with input dropout."""
        return self.config.generator_model.in_channels

    @property
    def layout(self) -> SourceLayout:
        """The generator's input layout: the sources in channel order, their stacks, the availability channels."""
        return SourceLayout.of(self.config)

    @property
    def source_maps(self) -> dict[str, IntensityMap]:
        """Each source's intensity map by name, in channel order (the first is :attr:`src_map`); empty for a run
        on two image folders."""
        if self.src_map is None:
            return {}
        return source_maps(self.config.data, self.src_map)

    @property
    def out_channels(self) -> int:
        return self.config.generator_model.out_channels

    def shape_rule(self) -> str:
        """The tensors' shapes in words, e.g. ``input (batch, 5, 8h, 8w) float32 in [-1, 1] -> output (batch, 1, 8h, 8w)``."""
        m = self.multiple
        return (f"{INPUT_NAME} (batch, {self.in_channels}, {m}h, {m}w) float32 in [-1, 1] -> "
                f"{OUTPUT_NAME} (batch, {self.out_channels}, {m}h, {m}w)")  # fmt: skip

    def describe(self) -> str:
        """One line: modalities, architecture, slicing and the recommended inference."""
        dc, infer = self.config.data, self.config.infer
        planes = "+".join(dc.planes) if dc.planes else f"axis {dc.slice_axis}"
        which = self.source.get("generator")
        if self.src_map is None or self.dst_map is None:  # (two image folders)
            return (f"{dc.src} -> {dc.dst} ({which} of an unpaired run on two image folders), "
                    f"{self.config.model.generator}, {self.in_channels} -> {self.out_channels} channels, images "
                    f"resized so their shorter side is {self.config.train.image_size}; pix2gan {self.version}")  # fmt: skip
        of_run = f" ({which} of an unpaired run)" if which in ("G_ab", "G_ba") else ""
        if len(dc.sources) > 1:  # many-to-one: the inputs in channel order, and which may be missing
            layout = self.layout
            inputs = [*(layout.stack_label(n) for n in dc.sources), *layout.availability_names]
            missing = "any non-empty subset, missing ones zero-filled" if dc.optional_sources else "all needed"
            return (f"{' + '.join(dc.sources)} -> {dc.dst}, inputs: {', '.join(inputs)} ({missing}), "
                    f"{self.config.model.generator}, {planes}, {'flip TTA, ' if infer.tta else ''}{infer.fusion} "
                    f"fusion; intensity {', '.join(f'{n} {_words(m)}' for n, m in self.source_maps.items())} -> "
                    f"{_words(self.dst_map)}; pix2gan {self.version}")  # fmt: skip
        return (f"{dc.src} -> {dc.dst}{of_run}, {self.config.model.generator}, {planes}, {2 * dc.context + 1}-slice input, "
                f"{'flip TTA, ' if infer.tta else ''}{infer.fusion} fusion; intensity {_words(self.src_map)} -> "
                f"{_words(self.dst_map)}; pix2gan {self.version}")  # fmt: skip

    def to_props(self) -> dict[str, str]:
        """The flat ``pix2gan.*`` string properties stored in the file."""
        dc = self.config.data
        tensor = {"layout": "NCHW", "dtype": "float32", "range": [-1.0, 1.0]}
        channels = (f"slices k-{dc.context} .. k+{dc.context} along the slice axis (ends repeated), {dc.src} mapped to "
                    f"[-1, 1] by intensity.src", f"slice k of {dc.dst}, mapped back to physical units by intensity.dst")
        if self.src_map is None or self.dst_map is None:  # (two image folders: no intensity maps)
            channels = (f"a {dc.src} image (1: luminance, 3: RGB), pixels [0, 1] mapped to [-1, 1], resized so its "
                        f"shorter side is {self.config.train.image_size}", f"the {dc.dst} image, [-1, 1] to [0, 255]")
        props: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "format_version": str(EXPORT_FORMAT_VERSION),
            "version": self.version,
            "config": self.config.to_dict(),
            "intensity": {"src": _map_dict(self.src_map), "dst": _map_dict(self.dst_map)},
            "padding_multiple": str(self.multiple),
            "input": {"name": INPUT_NAME, **tensor, "shape": ["batch", self.in_channels, "height", "width"],
                      "channels": channels[0],
                      "rule": f"height and width multiples of {self.multiple}: pad with -1 and crop the output back"},
            "output": {"name": OUTPUT_NAME, **tensor, "shape": ["batch", self.out_channels, "height", "width"],
                       "channels": channels[1]},
            "source": self.source,
            "exporter": self.exporter,
        }  # fmt: skip
        if len(dc.sources) > 1:  # many-to-one: the channels named in order, each source's map
            layout = self.layout
            props["input"]["channels"] = (f"each source's slices k-{dc.context} .. k+{dc.context} along the slice axis "
                                          f"(ends repeated), mapped to [-1, 1] by its own map (intensity.sources)"
                                          + (", then one availability channel per source (1 given, 0 missing: "
                                             "its slices zero-filled)" if layout.optional else ""))  # fmt: skip
            props["input"] |= {"sources": list(dc.sources), "context": dc.context,
                               "blocks": {n: [layout.block(n).start, layout.block(n).stop] for n in dc.sources},
                               "availability": layout.availability_names, "optional": layout.optional,
                               "channel_names": layout.channel_names(),
                               "rule": f"height and width multiples of {self.multiple}: pad each source's slices with "
                                       f"-1" + (", then zero a missing source's channels and set the availability "
                                                "channels (1 given, 0 missing) over the whole padded slice"
                                                if layout.optional else "") + "; crop the output back"}  # fmt: skip
            props["intensity"]["sources"] = {n: m.to_dict() for n, m in self.source_maps.items()}
        return {f"pix2gan.{k}": v if isinstance(v, str) else json.dumps(v) for k, v in props.items()}

    @classmethod
    def from_props(cls, path: str | Path, props: dict[str, str]) -> ExportMetadata:
        """Parse and check the properties of the file at ``path``.

        Raises:
            InputError: naming ``path``: no pix2gan metadata, a newer export format, another pix2gan major version,
                or damaged values.
        """
        if props.get("pix2gan.format") != EXPORT_FORMAT:
            raise InputError(f"{path}: not a pix2gan export (no pix2gan metadata)")
        missing = [k for k in _KEYS if f"pix2gan.{k}" not in props]
        if missing:
            raise InputError(f"{path}: incomplete pix2gan metadata (missing {', '.join(missing)})")
        version = props["pix2gan.version"]
        if version.split(".")[0] != pix2gan.__version__.split(".")[0]:
            raise InputError(f"{path}: exported by pix2gan {version}, another major version than this pix2gan "
                             f"{pix2gan.__version__}; export it again with this version")  # fmt: skip
        try:
            fmt = int(props["pix2gan.format_version"])
            if fmt > EXPORT_FORMAT_VERSION:
                raise InputError(f"{path}: export format {fmt} is newer than this pix2gan understands "
                                 f"({EXPORT_FORMAT_VERSION}); upgrade")  # fmt: skip
            config = RunConfig.from_dict(json.loads(props["pix2gan.config"]))
            intensity = json.loads(props["pix2gan.intensity"])
            images = config.data.data_b is not None and intensity == {"src": None, "dst": None}  # (two image folders)
            src_map, dst_map = ((None, None) if images
                                else (IntensityMap.from_dict(intensity[k]) for k in ("src", "dst")))  # fmt: skip
            multiple = int(props["pix2gan.padding_multiple"])
            tensor_in = json.loads(props["pix2gan.input"])
            names = tensor_in["name"], json.loads(props["pix2gan.output"])["name"]
            listed = tuple(tensor_in.get("sources", config.data.sources))  # (one-source exports list none)
            source = json.loads(props.get("pix2gan.source", "{}"))
            exporter = json.loads(props.get("pix2gan.exporter", "{}"))
        except InputError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}: damaged pix2gan metadata ({type(exc).__name__}: {exc})") from None
        if multiple < 1 or names != (INPUT_NAME, OUTPUT_NAME):
            raise InputError(f"{path}: damaged pix2gan metadata (padding multiple {multiple}, tensors {names})")
        if listed != config.data.sources:
            raise InputError(f"{path}: damaged pix2gan metadata (input sources {', '.join(map(str, listed))}, "
                             f"configuration {config.data.src})")  # fmt: skip
        return cls(config, src_map, dst_map, multiple, version, source, exporter)


def _map_dict(imap: IntensityMap | None) -> dict[str, Any] | None:
    return None if imap is None else imap.to_dict()


def _words(imap: IntensityMap) -> str:
    """An intensity map in a few words: its HU window, or its percentiles (and reference scale)."""
    if imap.kind == "hu":
        return f"HU [{imap.window[0]:g}, {imap.window[1]:g}]"
    ref = "" if imap.reference is None else f", reference [{imap.reference[0]:.4g}, {imap.reference[1]:.4g}]"
    return f"percentiles {imap.percentiles[0]:g}/{imap.percentiles[1]:g}{ref}"
