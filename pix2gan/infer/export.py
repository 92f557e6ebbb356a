"""Export a trained generator to ONNX or to a PyTorch ``.pt2`` program, with what inference needs inside.

A paired run's generator, or one generator of an unpaired (CycleGAN) run: G_ab (source -> target), or G_ba (target ->
source) with ``reverse``, stored with the configuration and intensity maps of its direction
(:mod:`pix2gan.infer.direction`), so ``translate --model`` of a reverse export translates e.g. ct -> t1. A run on two
image folders exports G_ab or G_ba the same way, without intensity maps (:func:`pix2gan.infer.images.image_directed`).

Both formats are captured once by ``torch.export`` from the checkpoint's generator in eval mode (dropout off,
batch norm on its running statistics; both checked, in the modules and in the captured graph), with a dynamic
batch, height and width (height and width multiples of the architecture's padding multiple). The file carries
:class:`~pix2gan.infer.export_metadata.ExportMetadata`: the run's configuration, the intensity maps, the padding
multiple and the tensors' names and layout, so :mod:`pix2gan.infer.exported` rebuilds a
:class:`~pix2gan.infer.translate.Translator` from the file alone. Every export is checked before it is written
(atomically): the saved file is run on two input sizes and batch sizes and compared with the PyTorch generator
(``ExportResult.max_diff``, in the network's [-1, 1] space).

* ONNX (``export_onnx``): the ``torch.export``-based exporter (needs ``onnx``, ``onnxscript`` and, for the check,
  ``onnxruntime``: ``pip install 'pix2gan[onnx]'``), opset :data:`DEFAULT_OPSET`, one self-contained file, checked
  by ``onnx.checker``; the properties go to ``metadata_props``.
* pt2 (``export_pt2``): ``torch.export.save`` of the inference graph; the properties are the extra file
  ``pix2gan.json`` of the archive. Loading a .pt2 runs the saved program: load only files you trust.

See ``docs/deployment.md``.

Example:
    >>> import tempfile
    >>> from pix2gan.checkpoint import LoadedCheckpoint
    >>> from pix2gan.config import ModelConfig
    >>> from pix2gan.data.intensity import intensity_maps
    >>> from pix2gan.nets import build_generator
    >>> cfg = RunConfig(model=ModelConfig(depth=2, base_filters=2))
    >>> ckpt = LoadedCheckpoint(Path("g.pt"), cfg, *intensity_maps(cfg.data), {"generator": build_generator(cfg).state_dict()}, {})
    >>> result = export_pt2(ckpt, Path(tempfile.mkdtemp()) / "g.pt2")
    >>> result.format, result.metadata.multiple, result.max_diff < 1e-4
    ('pt2', 4, True)
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import inspect
import json
import logging
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pix2gan.checkpoint import LoadedCheckpoint, load_checkpoint
from pix2gan.config import RunConfig
from pix2gan.errors import InputError
from pix2gan.infer.direction import Directed, directed
from pix2gan.infer.export_metadata import INPUT_NAME, OUTPUT_NAME, ExportMetadata
from pix2gan.io import atomic_path, check_new_file
from pix2gan.nets import padding_multiple

__all__ = ["EXPORT_FORMATS", "DEFAULT_OPSET", "ExportResult", "export_onnx", "export_pt2", "export_run",
           "capture_generator", "export_path"]  # fmt: skip

EXPORT_FORMATS = ("onnx", "pt2")
DEFAULT_OPSET = 18  # the opset torch's ONNX functions are written in (no version conversion); onnxruntime >= 1.14
TOLERANCE = 1e-4  # largest |exported - PyTorch| accepted, in [-1, 1]
ONNX_EXTRA = "pip install 'pix2gan[onnx]'"
# operators that only a training graph holds (eval-mode dropout is an identity; eval batch norm is *_no_training)
_TRAINING_OPS = {"native_dropout", "bernoulli", "rand", "randn", "rand_like", "randn_like",
                 "_native_batch_norm_legit_functional", "_native_batch_norm_legit"}  # fmt: skip


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_onnx` / :func:`export_pt2` wrote.

    Args:
        path: the file.
        format: ``onnx`` or ``pt2``.
        size: its size in bytes.
        metadata: what it carries.
        max_diff: largest absolute difference between the saved model and the PyTorch generator on the check inputs
            (two sizes and batch sizes), in the network's [-1, 1] space.
    """

    path: Path
    format: str
    size: int
    metadata: ExportMetadata
    max_diff: float


def export_path(run_dir: Path | None, checkpoint: Path, fmt: str, *, reverse: bool = False) -> Path:
    """Where an export goes by default: ``RUN/export/model.<fmt>``, or beside a checkpoint outside any run; an
    unpaired run's G_ba (``reverse``) as ``model_reverse.<fmt>`` (``<checkpoint>_reverse.<fmt>``).

    Example:
        >>> export_path(Path("runs/a"), Path("runs/a/checkpoints/best.pt"), "onnx").as_posix()
        'runs/a/export/model.onnx'
        >>> export_path(None, Path("g.pt"), "pt2").as_posix()
        'g.pt2'
        >>> export_path(Path("runs/a"), Path("runs/a/checkpoints/best.pt"), "onnx", reverse=True).as_posix()
        'runs/a/export/model_reverse.onnx'
    """
    tail = "_reverse" if reverse else ""
    if run_dir is not None:
        return run_dir / "export" / f"model{tail}.{fmt}"
    return checkpoint.with_name(f"{checkpoint.stem}{tail}.{fmt}")


def _eval_generator(net: nn.Module, ckpt: LoadedCheckpoint) -> nn.Module:
    """The checkpoint's generator ``net`` (see :func:`~pix2gan.infer.direction.directed`) in inference mode, refused
    if any module would train (dropout, batch statistics)."""
    training = [name or type(net).__name__ for name, m in net.named_modules() if m.training]
    stats = [name for name, m in net.named_modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and (not m.track_running_stats or m.running_mean is None)]  # fmt: skip
    if training or stats:
        raise RuntimeError(f"{ckpt.path}: the generator is not in inference mode (training: {training[:3]}, batch norm "
                           f"without running statistics: {stats[:3]}); an export would not match translate")  # fmt: skip
    return net


def capture_generator(net: nn.Module, multiple: int, in_channels: int, *, decompose: bool = True) -> torch.export.ExportedProgram:
    """``torch.export`` of a generator in eval mode: dynamic batch, height and width (multiples of ``multiple``);
    with ``decompose`` the inference graph of core ATen operators (what a .pt2 holds; the ONNX exporter decomposes
    by its own table).

    Raises:
        RuntimeError: the graph would still train: dropout on, random numbers, batch statistics (a generator left in
            training mode).

    Shape:
        - Input: :math:`(B, C_{in}, m h, m w)` with ``h``, ``w`` >= 1 (ResNet generators: >= 2).
    """
    dims = {0: torch.export.Dim("batch", min=1), 2: multiple * torch.export.Dim("height_blocks", min=1),
            3: multiple * torch.export.Dim("width_blocks", min=1)}  # fmt: skip
    example = torch.zeros(2, in_channels, 2 * multiple, 3 * multiple)
    with _quiet(), _size_oblivious():
        program = torch.export.export(net, (example,), dynamic_shapes={_forward_arg(net): dims})
        if decompose:
            program = program.run_decompositions()
    training = _training_nodes(program)
    if training:
        raise RuntimeError(f"the captured generator would still train ({', '.join(training)}); call .eval() first")
    return program


def _training_nodes(program: torch.export.ExportedProgram) -> list[str]:
    """Operators of ``program`` that behave differently in training: dropout with ``train``, batch norm with
    ``training``, random numbers, batch-statistics kernels (none survive in an eval-mode graph). Instance norm's
    kernel without running statistics is not one: it normalises by each image's statistics in inference too (a batch
    norm without running statistics, which would decompose to it as well, is refused on the modules before capture)."""
    found = []
    for node in program.graph.nodes:
        schema = getattr(node.target, "_schema", None)
        if node.op != "call_function" or schema is None:
            continue
        name = schema.name.split("::")[-1]
        if (name, schema.overload_name) == ("_native_batch_norm_legit", "no_stats"):
            continue  # instance norm decomposed: each image's own statistics, in inference too (CycleGAN's norm)
        args = {**dict(zip((a.name for a in schema.arguments), node.args, strict=False)), **node.kwargs}
        if name in _TRAINING_OPS or args.get("train") is True or args.get("training") is True:
            found.append(name)
    return sorted(set(found))


def _forward_arg(net: nn.Module) -> str:
    """The name of the generator's one input in ``forward`` (``x`` for ours), which ``dynamic_shapes`` is keyed by."""
    return next(iter(inspect.signature(net.forward).parameters))


@contextlib.contextmanager
def _size_oblivious() -> Iterator[None]:
    """Let one block of ``multiple`` (an innermost 1 x 1 feature map) stay symbolic instead of being specialised
    away (torch's 0/1 specialisation), as torch's own ONNX exporter does."""
    config = getattr(getattr(torch.fx, "experimental", None), "_config", None)
    if config is None or not hasattr(config, "backed_size_oblivious"):  # pragma: no cover - other torch versions
        yield
        return
    with config.patch(backed_size_oblivious=True):
        yield


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' chatter for one export: missing torchvision operators, each graph pass's INFO lines,
    their own deprecations."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._export", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            for category in (FutureWarning, DeprecationWarning, UserWarning):
                warnings.simplefilter("ignore", category)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _metadata(ckpt: LoadedCheckpoint, d: Directed, exporter: dict[str, object], realism: float | None = None) -> ExportMetadata:
    """What the export of ``d`` carries: its direction's configuration and maps; the configuration records the realism
    of the exported generator (``infer.realism``, and ``source.realism``); ``source.generator`` which one it is."""
    realism = ckpt.realism(realism)
    cfg: RunConfig = dataclasses.replace(d.config, infer=dataclasses.replace(d.config.infer, realism=realism))
    source = {"checkpoint": ckpt.path.name, "epoch": ckpt.raw.get("epoch"), "step": ckpt.raw.get("step"),
              "realism": realism, "generator": d.name}  # fmt: skip
    return ExportMetadata(cfg, d.src_map, d.dst_map, padding_multiple(cfg), source=source,
                          exporter={"torch": torch.__version__, "capture": "torch.export", **exporter})  # fmt: skip


def _check_inputs(meta: ExportMetadata) -> list[torch.Tensor]:
    """Two check inputs of different batch sizes and in-plane sizes, uniform in [-1, 1] (fixed seed)."""
    gen = torch.Generator().manual_seed(0)
    m, c = meta.multiple, meta.in_channels
    return [torch.rand(shape, generator=gen) * 2 - 1 for shape in ((1, c, 2 * m, 3 * m), (3, c, 3 * m, 2 * m))]


def _verify(net: nn.Module, run: Callable[[torch.Tensor], np.ndarray], meta: ExportMetadata, path: Path) -> float:
    """Run the saved model and the PyTorch generator on the check inputs; refuse a mismatch."""
    worst = 0.0
    with torch.inference_mode():
        for x in _check_inputs(meta):
            worst = max(worst, float(np.abs(run(x) - net(x).numpy()).max()))
    if not worst <= TOLERANCE:
        raise RuntimeError(f"{path}: the exported model differs from the PyTorch generator by {worst:.3g} "
                           f"(> {TOLERANCE:g} in [-1, 1]); nothing written")  # fmt: skip
    return worst


def _direction(
    ckpt: LoadedCheckpoint, path: str | Path, overwrite: bool, reverse: bool, realism: float | None
) -> tuple[Directed, nn.Module, Path]:
    """The generator to export (checked in inference mode) and the file, refused before any work."""
    path = Path(path)
    check_new_file(path, overwrite)
    if ckpt.config.data.data_b is not None:  # two image folders: the generator ImageTranslator uses
        from pix2gan.infer.images import image_directed

        d = image_directed(ckpt, reverse=reverse, realism=realism)
    else:
        d = directed(ckpt, reverse=reverse, realism=realism)
    return d, _eval_generator(d.generator, ckpt), path


def export_onnx(
    ckpt: LoadedCheckpoint, path: str | Path, *, opset: int = DEFAULT_OPSET, overwrite: bool = False,
    realism: float | None = None, reverse: bool = False,
) -> ExportResult:  # fmt: skip
    """Export the generator of a paired checkpoint (G_ab of an unpaired one, G_ba with ``reverse``) to one ONNX file
    (atomic), checked by ``onnx.checker`` and against PyTorch with onnxruntime.

    Args:
        ckpt: a paired- or unpaired-mode checkpoint.
        path: the ``.onnx`` file to write.
        opset: the ONNX opset (default :data:`DEFAULT_OPSET`).
        overwrite: replace an existing file.
        realism: the generator of a ``--gan-warmup`` run to export (see :meth:`LoadedCheckpoint.generator`; default
            the run's recorded realism).
        reverse: an unpaired run's G_ba (target -> source) instead of G_ab.

    Raises:
        InputError: onnx, onnxscript or onnxruntime are missing; not a paired or unpaired checkpoint; ``reverse`` with
            a paired one; the file exists (without ``overwrite``) or cannot be written; a ``realism`` the checkpoint
            cannot give.
    """
    d, net, path = _direction(ckpt, path, overwrite, reverse, realism)
    try:  # onnxscript: torch's ONNX exporter is built on it
        onnx, ort, _ = [importlib.import_module(name) for name in ("onnx", "onnxruntime", "onnxscript")]
    except ImportError as exc:
        raise InputError(f"exporting to ONNX needs onnx, onnxscript and onnxruntime ({exc.name or exc} is missing): "
                         f"{ONNX_EXTRA}") from None  # fmt: skip
    meta = _metadata(ckpt, d, {"format": "onnx", "opset": opset}, realism)
    program = capture_generator(net, meta.multiple, meta.in_channels, decompose=False)
    with _quiet():
        onnx_program = torch.onnx.export(program, (_check_inputs(meta)[0],), dynamo=True, opset_version=opset,
                                         input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], verbose=False)  # fmt: skip
    model = onnx_program.model
    shape = model.graph.inputs[0].shape  # (batch, C, m * height_blocks, m * width_blocks), symbols named s<N>
    onnx_program.rename_axes({_symbol(shape[0]): "batch", _symbol(shape[2]): "height_blocks",
                              _symbol(shape[3]): "width_blocks"})  # fmt: skip
    model.metadata_props.update(meta.to_props())
    model.doc_string = f"pix2gan generator {meta.describe()}; see metadata_props pix2gan.*"
    with atomic_path(path, overwrite=overwrite) as tmp:
        onnx_program.save(tmp, external_data=False)
        onnx.checker.check_model(str(tmp), full_check=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(tmp), options, providers=["CPUExecutionProvider"])
        diff = _verify(net, lambda x: session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0], meta, path)
    return ExportResult(path, "onnx", path.stat().st_size, meta, diff)


def _symbol(dim: object) -> str:
    """The symbol of an ONNX dimension like ``8*s38`` (``s38``), or the dimension's own name."""
    text = str(getattr(dim, "value", dim))
    found = re.findall(r"[A-Za-z_]\w*", text)
    if len(found) != 1:
        raise RuntimeError(f"unexpected dynamic dimension {text!r} in the exported ONNX graph")
    return found[0]


def export_pt2(
    ckpt: LoadedCheckpoint, path: str | Path, *, overwrite: bool = False, realism: float | None = None,
    reverse: bool = False,
) -> ExportResult:  # fmt: skip
    """Export the generator of a paired checkpoint (at ``realism``; an unpaired one's G_ab, or G_ba with ``reverse``:
    as :func:`export_onnx`) as a ``torch.export`` program (``torch.export.save``, atomic), checked against PyTorch
    after loading it back; the metadata is the archive's extra file ``pix2gan.json``.

    Raises:
        InputError: not a paired or unpaired checkpoint; ``reverse`` with a paired one; the file exists (without
            ``overwrite``) or cannot be written; a ``realism`` the checkpoint cannot give.
    """
    d, net, path = _direction(ckpt, path, overwrite, reverse, realism)
    meta = _metadata(ckpt, d, {"format": "pt2"}, realism)
    program = capture_generator(net, meta.multiple, meta.in_channels)
    with atomic_path(path, overwrite=overwrite) as tmp:
        with _quiet():
            torch.export.save(program, tmp, extra_files={"pix2gan.json": json.dumps(meta.to_props())})
            loaded = torch.export.load(tmp).module()
        diff = _verify(net, lambda x: loaded(x).numpy(), meta, path)
    return ExportResult(path, "pt2", path.stat().st_size, meta, diff)


def export_run(
    checkpoint: Path, run_dir: Path | None = None, *, output: Path | None = None, fmt: str | None = None,
    overwrite: bool = False, opset: int = DEFAULT_OPSET, realism: float | None = None, reverse: bool = False,
) -> ExportResult:  # fmt: skip
    """Export a run's (or a checkpoint's) generator: the format from ``fmt``, else ``output``'s extension, else ONNX;
    the file ``output``, else :func:`export_path` (``model_reverse.<fmt>`` with ``reverse``); ``realism``: which
    generator of a ``--gan-warmup`` run (the checkpoint refuses one it cannot give, before anything is written);
    ``reverse``: an unpaired run's G_ba (refused for a paired run before anything is written).

    Raises:
        InputError: an unknown format, or one that contradicts ``output``'s extension; see :func:`export_onnx`.
    """
    suffix = output.suffix.lower().lstrip(".") if output is not None else ""
    if fmt is not None and fmt not in EXPORT_FORMATS:
        raise InputError(f"--format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    if output is not None and fmt is None and suffix not in EXPORT_FORMATS:
        raise InputError(f"{output}: give an .onnx or .pt2 file name, or --format")
    if fmt is not None and suffix in EXPORT_FORMATS and suffix != fmt:
        raise InputError(f"{output}: a .{suffix} name for a --format {fmt} export")
    fmt = fmt or (suffix if suffix in EXPORT_FORMATS else "onnx")
    path = output if output is not None else export_path(run_dir, checkpoint, fmt, reverse=reverse)
    check_new_file(path, overwrite)  # before the checkpoint is read
    ckpt = load_checkpoint(checkpoint)  # (its mode, direction and realism are refused before any work, in _direction)
    if fmt == "onnx":
        return export_onnx(ckpt, path, opset=opset, overwrite=overwrite, realism=realism, reverse=reverse)
    return export_pt2(ckpt, path, overwrite=overwrite, realism=realism, reverse=reverse)
