"""Volume -> slices -> generator -> volume in physical units, on the input's exact grid.

The source volume is normalised with its own scale, cut into slices along the slice axis stored with the model,
padded symmetrically with background (-1) up to a multiple of ``2 ** depth`` in-plane, translated in batches,
cropped back, mapped to physical units (HU for CT) and written as float32 with the input's header: same shape,
affine, qform/sform codes and pixdim.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from pix2gan.checkpoint import LoadedCheckpoint, load_checkpoint
from pix2gan.config import Mode, RunConfig
from pix2gan.data.intensity import IntensityMap
from pix2gan.data.slices import from_slices, pad_to, to_slices
from pix2gan.nets import UNetGenerator
from pix2gan.volumes import InputError, Volume, load_volume, save_like

__all__ = ["predict_slices", "Translator", "resolve_device", "plan_outputs"]


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r} (use auto, cpu or cuda[:N])") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available")
    return device


@torch.no_grad()
def predict_slices(
    generator: nn.Module, slices: torch.Tensor, multiple: int, *, batch_size: int = 16, device: torch.device | None = None
) -> torch.Tensor:
    """Run the generator over normalised slices of any in-plane size.

    Args:
        generator: maps (B, C, H, W) in [-1, 1] to (B, C', H, W); its inputs must be multiples of ``multiple``.
        slices: (N, C, H, W) normalised source slices.
        multiple: in-plane sizes are padded (with -1, background) up to a multiple of this and cropped back.
        batch_size: slices per forward pass.

    Returns:
        (N, C', H, W) float32 on the CPU.
    """
    device = device or next(generator.parameters()).device
    n, _, h, w = slices.shape
    ph, pw = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    outputs = []
    for start in range(0, n, batch_size):
        batch = slices[start : start + batch_size].to(device, non_blocking=True)
        padded, (left, _, top, _) = pad_to(batch, ph, pw, value=-1.0)
        out = generator(padded)[..., top : top + h, left : left + w]
        outputs.append(out.float().cpu())
    return torch.cat(outputs) if outputs else torch.empty(0, 1, h, w)


class Translator:
    """A trained generator with everything needed to translate volumes in physical units.

    Example:
        >>> from pix2gan.config import ModelConfig
        >>> cfg = RunConfig(model=ModelConfig(depth=3, base_filters=4))
        >>> from pix2gan.data.intensity import intensity_maps
        >>> tr = Translator(UNetGenerator(cfg.model), cfg, *intensity_maps(cfg.data))
        >>> tr.translate_array(np.random.rand(10, 12, 5).astype(np.float32) * 500).shape
        (10, 12, 5)
    """

    def __init__(
        self,
        generator: nn.Module,
        config: RunConfig,
        src_map: IntensityMap,
        dst_map: IntensityMap,
        *,
        device: torch.device | str = "cpu",
        batch_size: int = 16,
    ) -> None:
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.generator = generator.to(self.device).eval()
        self.config = config
        self.src_map = src_map
        self.dst_map = dst_map
        self.batch_size = batch_size

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | Path | LoadedCheckpoint, *, device: str = "auto", batch_size: int = 16
    ) -> Translator:
        """Rebuild the generator from a checkpoint (which must be a paired-mode one)."""
        ckpt = checkpoint if isinstance(checkpoint, LoadedCheckpoint) else load_checkpoint(checkpoint, expect_mode=Mode.PAIRED)
        generator = UNetGenerator(ckpt.config.model)
        try:
            generator.load_state_dict(ckpt.raw["generator"])
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise InputError(f"{ckpt.path}: generator weights do not match its model config ({first})") from None
        return cls(generator, ckpt.config, ckpt.src_map, ckpt.dst_map, device=resolve_device(device), batch_size=batch_size)

    @property
    def slice_axis(self) -> int:
        return self.config.data.slice_axis

    def translate_array(self, volume: np.ndarray) -> np.ndarray:
        """Translate a 3-D source volume in physical units; returns the target modality in physical units (float32).

        Raises:
            ValueError: the volume is not 3-D, or is constant (no percentile scale).
        """
        if volume.ndim != 3:
            raise ValueError(f"expected a 3-D volume, got shape {volume.shape}")
        scale = self.src_map.scale_of(volume)
        slices = to_slices(self.src_map.forward(volume, scale), self.slice_axis)  # (N, H, W)
        pred = predict_slices(
            self.generator,
            torch.from_numpy(slices)[:, None],
            self.config.model.multiple,
            batch_size=self.batch_size,
            device=self.device,
        )[:, 0].numpy()  # (N, H, W) in [-1, 1]
        return np.ascontiguousarray(from_slices(self.dst_map.inverse(pred), self.slice_axis))

    def translate_volume(self, source: Volume) -> np.ndarray:
        try:
            return self.translate_array(source.data)
        except ValueError as exc:
            raise InputError(f"{source.path}: {exc}") from None

    def translate_file(
        self, in_path: str | Path, out_path: str | Path, *, overwrite: bool = False, dtype: str = "float32"
    ) -> Path:
        """Translate one NIfTI file and write the result on the input's grid (atomic; refuses to overwrite).

        ``dtype`` is ``float32`` or ``int16`` (rounded, e.g. integer HU, with slope 1 and intercept 0).
        """
        out_path = Path(out_path)
        if out_path.exists() and not overwrite:
            raise InputError(f"{out_path}: already exists (use --overwrite to replace it)")
        source = load_volume(in_path)
        pred = self.translate_volume(source)
        save_like(out_path, pred, source, dtype=np.dtype(dtype), overwrite=overwrite, describe=f"pix2gan {self.config.data.dst}")
        return out_path


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def plan_outputs(
    inputs: list[Path], output: Path | None, *, src: str, dst: str, overwrite: bool = False
) -> list[tuple[Path, Path]]:
    """Pair every input volume with its output path, and refuse the plan before anything is written.

    Inputs may be NIfTI files, subject folders (holding ``<src>.nii.gz``) or folders of NIfTI files. Outputs go:

    * with no ``output``: a file input gets ``<name>_<dst>.nii.gz`` beside it; a folder input gets the sibling
      folder ``<folder>_<dst>/`` (so outputs never land among the inputs);
    * with one input file and an ``output`` ending in ``.nii``/``.nii.gz``: to that file;
    * otherwise into the folder ``output``, keeping the input's file name (a subject folder gives ``<subject>.nii.gz``).

    Raises:
        InputError: a missing input, a folder without NIfTI files, two inputs mapped to one output, or an existing
            output without ``overwrite``.
    """
    from pix2gan.data.subjects import modality_file
    from pix2gan.volumes import NIFTI_SUFFIXES

    if not inputs:
        raise InputError("no input given")
    files: list[tuple[Path, str, Path | None]] = []  # (volume, name inside an output folder, input folder)
    for item in inputs:
        if not item.exists():
            raise InputError(f"{item}: file not found")
        if item.is_dir():
            subject_file = modality_file(item, src)
            if subject_file is not None:
                files.append((subject_file, f"{item.name}.nii.gz", None))
                continue
            found = sorted(p for p in item.iterdir() if p.is_file() and p.name.endswith(NIFTI_SUFFIXES))
            if not found:
                raise InputError(f"{item}: folder holds no .nii or .nii.gz files (nor {src}.nii.gz)")
            files += [(p, p.name, item) for p in found]
        else:
            files.append((item, item.name, None))
    single_file = output is not None and len(files) == 1 and output.name.endswith(NIFTI_SUFFIXES)
    if output is not None and not single_file:
        if output.name.endswith(NIFTI_SUFFIXES):
            raise InputError(f"{output}: {len(files)} inputs need an output folder, not a file name")
        if output.exists() and not output.is_dir():
            raise InputError(f"{output}: exists and is not a folder")
    plan = []
    for volume, name, folder in files:
        if output is None and folder is not None:
            folder = folder.resolve()  # "." has no name to suffix
            target = folder.with_name(f"{folder.name}_{dst}") / name
        elif output is None:
            target = volume.with_name(f"{_stem(volume)}_{dst}.nii.gz")
        elif single_file:
            target = output
        else:
            target = output / name
        plan.append((volume, target))
    seen: dict[Path, Path] = {}
    for volume, target in plan:
        if target in seen:
            raise InputError(f"{volume}: output {target} would also be written for {seen[target]}")
        if target.resolve() == volume.resolve():
            raise InputError(f"{volume}: output would replace the input itself; choose another --output")
        seen[target] = volume
        if target.exists() and not overwrite:
            raise InputError(f"{target}: already exists (use --overwrite to replace it)")
    return plan
