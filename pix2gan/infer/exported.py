"""An exported generator (``.onnx`` or ``.pt2``, :mod:`pix2gan.infer.export`) loaded back as a generator module.

:func:`load_exported` reads the file's pix2gan metadata (the run's configuration, intensity maps, padding multiple),
refuses anything else with one line naming the file, and wraps the model in a small ``nn.Module``: a float32
(B, C, H, W) tensor in, the same out. :meth:`pix2gan.infer.translate.Translator.from_exported` hands that module to
the one streaming path of :mod:`pix2gan.infer.stream`, so an exported model translates exactly like its checkpoint
(padding, context, planes, test-time flips, fusion, geometry, output formats).

* ``.onnx`` runs in onnxruntime (``pip install 'pix2gan[onnx]'``): the CUDA execution provider when the device is
  CUDA and onnxruntime has it, else the CPU one. Reading an ONNX file runs no code of the file's.
* ``.pt2`` runs as a ``torch.export`` program (``torch.export.load``). Loading a .pt2 runs the saved program: load
  only files you trust. Its metadata is read and checked from the archive before it is loaded.

Example:
    >>> load_exported("model.pt")
    Traceback (most recent call last):
    pix2gan.errors.InputError: model.pt: not an exported model (.onnx or .pt2); a checkpoint goes to --checkpoint
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pix2gan.device import resolve_device
from pix2gan.errors import InputError
from pix2gan.infer.export_metadata import INPUT_NAME, OUTPUT_NAME, ExportMetadata

__all__ = ["ExportedModel", "OnnxGenerator", "ProgramGenerator", "load_exported", "read_pt2_metadata"]

log = logging.getLogger("pix2gan")
_PT2_METADATA = "pix2gan.json"


class _Frozen(nn.Module):
    """A module around a fixed inference program: ``train()`` / ``eval()`` only set the flag (the program is
    always in inference mode) and there are no parameters to move."""

    def train(self, mode: bool = True) -> _Frozen:
        self.training = mode
        return self


class OnnxGenerator(_Frozen):
    """An onnxruntime session as a generator: (B, C, H, W) torch tensor -> numpy float32 -> session -> torch tensor
    on the input's device (float32).

    Args:
        session: an ``onnxruntime.InferenceSession`` of a pix2gan export.
    """

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())  # (B, C, H, W)
        out = self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]  # (B, C_out, H, W)
        return torch.from_numpy(out).to(x.device)


class ProgramGenerator(_Frozen):
    """A loaded ``torch.export`` program as a generator (float32 in, float32 out).

    The program is held outside the module tree: an exported program's module refuses ``eval()``, and it is moved
    to its device when loaded (``move_to_device_pass``), not by ``.to()``.
    """

    def __init__(self, program: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self._program = [program]  # a list: not registered as a submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._program[0](x.float())


@dataclass
class ExportedModel:
    """An exported generator ready to run, with its metadata and the device its inputs go to."""

    path: Path
    generator: nn.Module
    metadata: ExportMetadata
    device: torch.device
    runtime: str  # e.g. "onnxruntime CPUExecutionProvider", "torch.export"


def load_exported(path: str | Path, *, device: str | torch.device = "auto") -> ExportedModel:
    """Load an exported pix2gan generator (``.onnx`` or ``.pt2``) for ``device`` (``auto``: CUDA when available).

    Raises:
        InputError: one line naming the file: missing, not an export (suffix, content), no or damaged pix2gan
            metadata, another pix2gan major version, onnxruntime missing for an ``.onnx``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".onnx", ".pt2"):
        raise InputError(f"{path}: not an exported model (.onnx or .pt2); a checkpoint goes to --checkpoint")
    if not path.is_file():
        raise InputError(f"{path}: exported model not found")
    target = device if isinstance(device, torch.device) else resolve_device(device)
    return _load_onnx(path, target) if suffix == ".onnx" else _load_pt2(path, target)


def _load_onnx(path: Path, device: torch.device) -> ExportedModel:
    try:
        import onnxruntime as ort
    except ImportError:
        raise InputError(f"{path}: running an ONNX model needs onnxruntime: pip install 'pix2gan[onnx]'") from None
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda":
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        else:
            log.warning("%s: this onnxruntime has no CUDA execution provider; running on the CPU", path)
            device = torch.device("cpu")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # as torch's generators would use
    options.log_severity_level = 3  # errors only
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...) for unreadable models
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: not a readable ONNX model ({first})") from None
    meta = ExportMetadata.from_props(path, dict(session.get_modelmeta().custom_metadata_map))
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if [i.name for i in inputs] != [INPUT_NAME] or [o.name for o in outputs] != [OUTPUT_NAME] or \
            inputs[0].shape[1] != meta.in_channels:  # fmt: skip
        raise InputError(f"{path}: its graph does not match its pix2gan metadata (inputs "
                         f"{[(i.name, i.shape) for i in inputs]}, {meta.in_channels} channels expected)")  # fmt: skip
    runtime = f"onnxruntime {session.get_providers()[0]}"
    return ExportedModel(path, OnnxGenerator(session), meta, device, runtime)


def read_pt2_metadata(path: str | Path) -> ExportMetadata:
    """The pix2gan metadata of a ``.pt2`` archive, read from the zip without loading (running) its program.

    Raises:
        InputError: not a readable archive, no or damaged pix2gan metadata.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith(f"/extra/{_PT2_METADATA}")]
            text = archive.read(names[0]).decode("utf-8") if len(names) == 1 else "{}"
    except (zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable .pt2 archive, truncated or corrupt ({type(exc).__name__})") from None
    try:
        props = json.loads(text)
    except ValueError:
        props = None
    if not isinstance(props, dict) or not all(isinstance(v, str) for v in props.values()):
        raise InputError(f"{path}: damaged pix2gan metadata (pix2gan.json is not a JSON object of strings)")
    return ExportMetadata.from_props(path, props)


def _load_pt2(path: Path, device: torch.device) -> ExportedModel:
    meta = read_pt2_metadata(path)  # checked before anything of the file runs
    try:
        program = torch.export.load(path)
        if device.type != "cpu":  # the program's weights and the devices named in its graph
            from torch.export.passes import move_to_device_pass

            program = move_to_device_pass(program, device)
        module = program.module()
    except Exception as exc:  # torch.export.load raises many types for a damaged archive
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: not a loadable torch.export program ({type(exc).__name__}: {first})") from None
    return ExportedModel(path, ProgramGenerator(module), meta, device, "torch.export")
