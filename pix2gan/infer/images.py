"""2-D images through an unpaired run trained on two image folders (``train --data A/ --data-b B/``): a PNG, JPEG or
BMP image in, an 8-bit PNG of the same size out, with G_ab (a -> b) or, ``reverse``, G_ba (b -> a).

An image is read as training read its folder (:func:`pix2gan.data.images._decode`: grayscale or RGB, 16-bit samples
kept, transparent pixels refused) and converted to the generator's input channels (luminance, or gray replicated).
Any size works: the image is resized, keeping its aspect, so that its shorter side is the run's ``--image-size`` (the
scale the generator learnt, since training resized each centre square to that side), padded with -1 up to the
generator's multiple, translated, cropped, and resized back to the input's own size (Pillow's bicubic both ways).
G_ab or G_ba exported (``export --run R [--reverse]``) translates the same way (:meth:`ImageTranslator.from_exported`);
``sample`` draws a few images of each folder through both cycles (:func:`image_cycle_panel`).

Example:
    >>> from pix2gan.config import RunConfig
    >>> from pix2gan.nets import build_generator
    >>> cfg = RunConfig.from_options("unpaired", data="A", data_b="B", generator="unet", depth=3, filters=4,
    ...                              image_size=16)
    >>> tr = ImageTranslator(build_generator(cfg), cfg)
    >>> tr.translate_array(np.random.rand(21, 40).astype(np.float32)).shape  # any size, back to its own
    (21, 40)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pix2gan.checkpoint import LoadedCheckpoint, load_checkpoint
from pix2gan.config import RunConfig
from pix2gan.data.images import IMAGE_SUFFIXES, _decode
from pix2gan.data.imageset import _convert_channels
from pix2gan.device import resolve_device
from pix2gan.errors import InputError
from pix2gan.infer.batch import BatchResult, FileResult
from pix2gan.infer.cycle_panel import save_cycle_images
from pix2gan.infer.direction import Directed, require_exported_direction
from pix2gan.infer.stream import predict_slices
from pix2gan.io import atomic_path
from pix2gan.io.atomic import check_new_file
from pix2gan.nets import padding_multiple
from pix2gan.nets.cycle import reversed_config

__all__ = ["ImageTranslator", "image_cycle_panel", "image_directed", "is_image_export", "is_image_file", "is_image_run",
           "image_run_translator", "plan_image_outputs", "translate_images"]  # fmt: skip

_KINDS = "PNG, JPEG or BMP"


def is_image_file(path: Path) -> bool:
    """A PNG, JPEG or BMP file name (by its suffix).

    Example:
        >>> is_image_file(Path("horse.JPG")), is_image_file(Path("t1.nii.gz"))
        (True, False)
    """
    return path.suffix.lower() in IMAGE_SUFFIXES


def is_image_run(checkpoint: Path) -> bool:
    """Whether ``checkpoint`` is of a run trained on two image folders; read lazily (memory-mapped: its weights are
    not loaded). False for anything that cannot be read so: the volume path then says what is wrong with it."""
    try:
        raw = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
        return json.loads(raw["config"])["data"].get("data_b") is not None
    except Exception:  # noqa: BLE001  (damaged, foreign, a folder...: load_checkpoint's messages name the problem)
        return False


def is_image_export(path: Path) -> bool:
    """Whether an exported model (``.onnx`` / ``.pt2``) is G_ab or G_ba of a run trained on two image folders, from its
    pix2gan metadata (a ``.pt2``'s program is not loaded; an ``.onnx`` is parsed by ``onnx``, else opened by
    onnxruntime). False for anything that cannot be read so: the volume path then says what is wrong with it."""
    from pix2gan.infer.exported import read_pt2_metadata

    try:
        if path.suffix.lower() == ".pt2":
            return read_pt2_metadata(path).config.data.data_b is not None
        try:
            import onnx

            props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        except ImportError:
            import onnxruntime

            props = dict(onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                         .get_modelmeta().custom_metadata_map)  # fmt: skip
        return json.loads(props["pix2gan.config"])["data"].get("data_b") is not None
    except Exception:  # noqa: BLE001  (not an export, damaged...: load_exported's messages name the problem)
        return False


def image_directed(
    ckpt: LoadedCheckpoint, *, reverse: bool = False, realism: float | None = None, device: torch.device | str = "cpu"
) -> Directed:
    """G_ab (``reverse``: G_ba, with :func:`~pix2gan.nets.cycle.reversed_config`) of an image-folder run's checkpoint,
    in eval mode on ``device``: what :class:`ImageTranslator` and ``export`` use (as
    :func:`~pix2gan.infer.direction.directed` for volume runs). There are no intensity maps: images map [0, 1] to
    [-1, 1] linearly (``src_map`` and ``dst_map`` are None).

    Raises:
        InputError: not a run trained on two image folders; a ``realism`` the checkpoint cannot give.
    """
    if ckpt.config.data.data_b is None:
        raise InputError(f"{ckpt.path}: not a run trained on two image folders (--data-b); it translates volumes")
    nets = ckpt.generator(device, realism=realism).eval()
    if reverse:
        return Directed(nets.g_ba, reversed_config(ckpt.config), None, None, "G_ba")  # type: ignore[arg-type]
    return Directed(nets.g_ab, ckpt.config, None, None, "G_ab")  # type: ignore[arg-type]


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """(C, H, W) float32 -> (C, height, width), channel by channel with Pillow's bicubic (antialiased to shrink)."""
    from PIL import Image

    if image.shape[1:] == (height, width):
        return image
    channels = (Image.fromarray(np.ascontiguousarray(c, dtype=np.float32)) for c in image)  # (mode F)
    return np.stack([np.asarray(c.resize((width, height), Image.Resampling.BICUBIC)) for c in channels])


class ImageTranslator:
    """One generator of an image-folder run, translating 2-D images of any size (see the module's notes).

    Args:
        generator: the direction's generator (G_ab, or G_ba for the reverse), ``(B, C_in, H, W) -> (B, C_out, H, W)``
            in [-1, 1].
        config: the direction's configuration (:func:`~pix2gan.nets.cycle.reversed_config` for G_ba): its model's
            channels, its ``--image-size``, its modality names.
        device: where the generator runs.
        name: the checkpoint, in messages.
    """

    def __init__(
        self, generator: nn.Module, config: RunConfig, *, device: torch.device | str = "cpu", name: str = ""
    ) -> None:
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.generator = generator.to(self.device).eval()
        self.config = config
        self.in_channels, self.out_channels = config.model.in_channels, config.model.out_channels
        self.size = config.train.image_size
        self.multiple = padding_multiple(config)
        self.name = name or "model"

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | Path | LoadedCheckpoint, *, device: str = "auto", reverse: bool = False
    ) -> ImageTranslator:
        """G_ab (``reverse``: G_ba) of an image-folder run's checkpoint.

        Raises:
            InputError: a checkpoint that cannot be loaded, or not of a run trained on two image folders.
        """
        ckpt = checkpoint if isinstance(checkpoint, LoadedCheckpoint) else load_checkpoint(checkpoint)
        d = image_directed(ckpt, reverse=reverse)
        return cls(d.generator, d.config, device=resolve_device(device), name=str(ckpt.path))

    @classmethod
    def from_exported(cls, path: str | Path, *, device: str = "auto", reverse: bool = False) -> ImageTranslator:
        """G_ab or G_ba of an image-folder run exported by ``export`` (``.onnx`` / ``.pt2``), with the configuration
        stored in it; it runs in fp32.

        Raises:
            InputError: the file cannot be loaded (see :func:`~pix2gan.infer.exported.load_exported`); not an export of
                an image-folder run; ``reverse`` with an export of G_ab (an export is one direction).
        """
        from pix2gan.infer.exported import load_exported

        model = load_exported(path, device=device)
        meta = model.metadata
        if meta.config.data.data_b is None:
            raise InputError(f"{model.path}: not exported from a run trained on two image folders; it translates "
                             f"volumes")  # fmt: skip
        require_exported_direction(str(model.path), meta.config, str(meta.source.get("generator")), reverse=reverse)
        return cls(model.generator, meta.config, device=model.device, name=str(model.path))

    @property
    def src(self) -> str:
        return self.config.data.src

    @property
    def dst(self) -> str:
        return self.config.data.dst

    def translate_array(self, image: np.ndarray) -> np.ndarray:
        """Translate one image.

        Args:
            image: (H, W) grayscale or (H, W, 3) RGB, float in [0, 1].

        Returns:
            (H, W) uint8 for a one-channel target, (H, W, 3) for RGB.

        Raises:
            ValueError: another shape.
        """
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3) or min(image.shape[:2]) < 1:
            raise ValueError(f"expected an (H, W) or (H, W, 3) image, got shape {image.shape}")
        x = torch.from_numpy(np.asarray(image, dtype=np.float32))
        x = x[None] if x.ndim == 2 else x.permute(2, 0, 1)  # (C, H, W)
        x = _convert_channels(x[None], self.in_channels)[0].numpy()  # (C_in, H, W)
        h, w = x.shape[1:]
        scale = self.size / min(h, w)  # the shorter side at the training size
        small = _resize(x, max(1, round(h * scale)), max(1, round(w * scale)))
        normalised = torch.from_numpy(np.clip(small, 0.0, 1.0) * 2.0 - 1.0)[None]  # (1, C_in, h', w') in [-1, 1]
        with torch.inference_mode():
            pred = predict_slices(self.generator, normalised, self.multiple, device=self.device)[0].numpy()
        out = _resize(np.clip((pred + 1.0) / 2.0, 0.0, 1.0).astype(np.float32), h, w)  # (C_out, H, W)
        pixels = np.rint(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)
        return pixels[0] if len(pixels) == 1 else pixels.transpose(1, 2, 0)

    def translate_file(self, in_path: str | Path, out_path: str | Path, *, overwrite: bool = False) -> Path:
        """Translate an image file into an 8-bit PNG of its size (written atomically; refuses to overwrite).

        Raises:
            InputError: the output exists (without ``overwrite``); the input cannot be decoded or has transparent
                pixels (naming it).
        """
        from PIL import Image

        out_path = Path(out_path)
        check_new_file(out_path, overwrite)
        pixels = self.translate_array(_decode(Path(in_path), None))
        with atomic_path(out_path, overwrite=overwrite) as tmp:
            Image.fromarray(pixels).save(tmp, format="PNG")
        return out_path


def image_run_translator(spec: dict[str, Any]) -> ImageTranslator | None:
    """The translator of ``translate``'s models (the keywords of :func:`~pix2gan.infer.translate.load_ensemble`)
    when they are a run trained on two image folders, or its G_ab or G_ba exported (``--model``); None when they are
    volume models.

    Raises:
        InputError: an image-folder run or export given with other models (no ensembles of image runs), or not
            loadable; ``reverse`` with an export of G_ab.
    """
    from pix2gan.runs import resolve_checkpoint

    paths = [resolve_checkpoint(r, None) for r in spec["runs"]]
    paths += [resolve_checkpoint(None, c) for c in spec["checkpoints"]]
    models = [Path(m) for m in spec.get("models", ())]
    images = [p for p in paths if is_image_run(p)] + [m for m in models if is_image_export(m)]
    if not images:
        return None
    if len(paths) + len(models) > 1:
        raise InputError(f"{images[0]}: a run trained on two image folders translates images on its own; give it "
                         f"alone (ensembles are of volume models)")  # fmt: skip
    device, reverse = spec.get("device", "auto"), bool(spec.get("reverse"))
    if models:
        return ImageTranslator.from_exported(images[0], device=device, reverse=reverse)
    return ImageTranslator.from_checkpoint(images[0], device=device, reverse=reverse)


def image_cycle_panel(
    ckpt: LoadedCheckpoint, out: Path, *, n_images: int = 3, device: str = "auto", overwrite: bool = False
) -> Path:
    """``pix2gan sample`` of an image-folder run: a -> b -> a for the first ``n_images`` images of folder A and
    b -> a -> b for the first of folder B (in the order training lists them; there are no held-out images), each
    centre-cropped and resized to the run's ``--image-size`` as training read it, converted to the generators'
    channels, drawn as the epoch panels are (0-255, a row per image labelled with its file name).

    Raises:
        InputError: ``out`` exists (without ``overwrite``); a folder missing or without images; an image that cannot
            be decoded or has transparent pixels (naming it).
    """
    from pix2gan.data.images import _image_files, _to_tensor

    check_new_file(out, overwrite)
    cfg = ckpt.config
    sides = []
    folders = (Path(cfg.data.root), cfg.model.in_channels), (Path(str(cfg.data.data_b)), cfg.model.out_channels)
    for folder, channels in folders:
        if not folder.is_dir():
            raise InputError(f"{folder}: image folder of the run not found")
        files = _image_files(folder)[:n_images]
        if not files:
            raise InputError(f"{folder}: no {_KINDS} images found")
        sides.append((_to_tensor([_decode(f, cfg.train.image_size) for f in files], channels), [f.stem for f in files]))
    (a, names_a), (b, names_b) = sides
    labels = [f"{n[:8]} a>b>a" for n in names_a] + [f"{n[:8]} b>a>b" for n in names_b]
    target = resolve_device(device)
    save_cycle_images(out, ckpt.generator(target), a, b, target, labels)
    return out


def _images_of(item: Path) -> list[tuple[Path, Path | None]]:
    """The images an input stands for: (image, the folder listing it or None)."""
    if not item.exists():
        raise InputError(f"{item}: file not found")
    if not item.is_dir():
        if not is_image_file(item):
            raise InputError(f"{item}: not a {_KINDS} image; this run was trained on two image folders and "
                             f"translates 2-D images (volumes go to a run trained on subject folders)")  # fmt: skip
        return [(item, None)]
    found = [p for p in sorted(item.iterdir()) if not p.name.startswith(".") and p.is_file() and is_image_file(p)]
    if not found:
        raise InputError(f"{item}: folder holds no {_KINDS} images")
    return [(p, item) for p in found]


def plan_image_outputs(
    inputs: list[Path], output: Path | None, *, dst: str, overwrite: bool = False
) -> list[tuple[Path, Path]]:
    """Pair every input image with the PNG it becomes, and refuse the plan before anything is written.

    Inputs are image files or folders of them (the images directly inside). Outputs are PNG files named
    ``<name>.png``: with no ``output``, ``<name>_<dst>.png`` beside an input file and in the sibling folder
    ``<folder>_<dst>/`` for a folder; with one input and an ``output`` naming a ``.png`` file, that file; otherwise in
    the folder ``output``.

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     Image.new("L", (8, 8)).save(Path(tmp) / "horse.jpg")
        ...     [(i.name, o.name) for i, o in plan_image_outputs([Path(tmp) / "horse.jpg"], None, dst="zebra")]
        [('horse.jpg', 'horse_zebra.png')]

    Raises:
        InputError: a missing input, a file that is not an image, a folder without images, an ``output`` file of
            another format, two inputs mapped to one output, an output that would replace its input, an existing
            output without ``overwrite``, an output folder that cannot be written.
    """
    if not inputs:
        raise InputError("no input given")
    images = [found for item in inputs for found in _images_of(item)]
    single_file = output is not None and len(images) == 1 and is_image_file(output)
    if output is not None and is_image_file(output) and (not single_file or output.suffix.lower() != ".png"):
        why = "translations are 8-bit PNG files: name it .png" if single_file else f"{len(images)} inputs need a folder"
        raise InputError(f"{output}: {why}")
    plan, seen = [], {}
    for image, folder in images:
        if output is None:
            if folder is None:
                target = image.with_name(f"{image.stem}_{dst}.png")
            else:  # ("." has no name to suffix)
                target = folder.resolve().with_name(f"{folder.resolve().name}_{dst}") / f"{image.stem}.png"
        else:
            target = output if single_file else output / f"{image.stem}.png"
        if target in seen:
            raise InputError(f"{image}: output {target} would also be written for {seen[target]}")
        if target.resolve() == image.resolve():
            raise InputError(f"{image}: output would replace the input itself; choose another --output")
        seen[target] = image
        check_new_file(target, overwrite)
        plan.append((image, target))
    return plan


def translate_images(
    plan: list[tuple[Path, Path]], translator: ImageTranslator, *, overwrite: bool = False, keep_going: bool = False,
    on_result: Callable[[FileResult], None] | None = None,
) -> BatchResult:  # fmt: skip
    """Translate every (input, output) pair of :func:`plan_image_outputs` in order.

    With ``keep_going`` an image that fails with an :class:`InputError` (undecodable, transparent) is recorded with its
    one-line error and the others go on; without it the error is raised. ``on_result`` sees each outcome.
    """
    import time

    results = []
    for image, target in plan:
        t0 = time.perf_counter()
        try:
            translator.translate_file(image, target, overwrite=overwrite)
            error = None
        except InputError as exc:
            if not keep_going:
                raise
            error = " ".join(str(exc).split())
        results.append(FileResult(image, target, time.perf_counter() - t0, error))
        if on_result is not None:
            on_result(results[-1])
    return BatchResult(results, total=len(plan), devices=[str(translator.device)])
