"""Draw from a trained model: sample grids, latent walks and interpolations (noise/class), panels (paired), cycle
panels (unpaired: a -> b -> a and b -> a -> b, drawn by :mod:`pix2gan.infer.cycle_panel`).

Every image is a function of explicit seeds, so a grid can be reproduced exactly and compared between runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pix2gan.checkpoint import LoadedCheckpoint
from pix2gan.data.intensity import IntensityMap, Scale
from pix2gan.data.planes import context_stack, slice_axes
from pix2gan.data.subjects import Subject
from pix2gan.nets import padding_multiple

from pix2gan.io import check_new_file
from pix2gan.runs import RunLayout, RunRef
from pix2gan.config import DataConfig, Mode
from pix2gan.reporting.grids import save_grid
from pix2gan.reporting.panels import body_slices, panel_rows, panel_style, save_panel
from pix2gan.device import resolve_device
from pix2gan.errors import InputError

__all__ = ["GanSampler", "SampleRequest", "draw", "slerp", "paired_panels", "cycle_panels"]


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latent vectors (stays on the shell where Gaussian z concentrate).

    Shape:
        ``a``, ``b``: (D,); ``t``: (T,) in [0, 1]; returns (T, D).

    Example:
        >>> a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
        >>> [[round(v, 4) for v in row] for row in slerp(a, b, torch.tensor([0.0, 0.5, 1.0])).tolist()]
        [[1.0, 0.0], [0.7071, 0.7071], [0.0, 1.0]]
    """
    omega = torch.arccos(torch.clamp(torch.dot(a / a.norm(), b / b.norm()), -1.0, 1.0))
    if omega.abs() < 1e-6:
        return torch.lerp(a[None], b[None], t[:, None])
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega)[:, None] * a + torch.sin(t * omega)[:, None] * b) / so


class GanSampler:
    """A noise- or class-mode generator with its configuration and class names."""

    def __init__(self, ckpt: LoadedCheckpoint, device: str = "auto") -> None:
        if ckpt.mode == Mode.PAIRED:
            raise InputError(f"{ckpt.path}: a paired-mode model; use paired_panels for it")
        self.config = ckpt.config
        self.class_names: list[str] = list(ckpt.info.get("class_names", []))
        self.device = resolve_device(device)
        self.generator: nn.Module = ckpt.generator(self.device)
        self.conditional = ckpt.mode == Mode.CLASS

    @property
    def latent_dim(self) -> int:
        return self.config.gan.latent_dim

    def label_index(self, name: str) -> int:
        """Class index of a class name (or of a number given as text)."""
        if name in self.class_names:
            return self.class_names.index(name)
        if name.isdigit() and int(name) < len(self.class_names):
            return int(name)
        raise InputError(f"--label {name!r} is not a class of this model ({', '.join(self.class_names)})")

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> np.ndarray:
        """Images (N, C, S, S) in [-1, 1] for latents (N, latent_dim) and, in class mode, labels (N,)."""
        if self.conditional and labels is None:
            raise ValueError("a class-mode generator needs labels")
        args = (labels.to(self.device),) if self.conditional else ()
        out = [self.generator(chunk.to(self.device), *(a[i : i + 256] for a in args))
               for i, chunk in zip(range(0, len(z), 256), z.split(256), strict=True)]  # fmt: skip
        return torch.cat(out).float().cpu().numpy()

    def latents(self, n: int, seed: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=torch.Generator().manual_seed(seed))

    def grid(self, n: int = 64, *, label: str | None = None, seed: int = 0) -> tuple[np.ndarray, int, list[str] | None]:
        """``n`` samples; in class mode ``label`` is a class name or ``all`` (one row per class, same z per column)."""
        if not self.conditional:
            self._no_label(label)
            return self.generate(self.latents(n, seed)), int(np.ceil(np.sqrt(n))), None
        if label in (None, "all"):
            per_row = max(1, min(16, n // len(self.class_names)))
            z = self.latents(per_row, seed).repeat(len(self.class_names), 1)
            labels = torch.arange(len(self.class_names)).repeat_interleave(per_row)
            return self.generate(z, labels), per_row, list(self.class_names)
        index = self.label_index(label)
        return self.generate(self.latents(n, seed), torch.full((n,), index)), int(np.ceil(np.sqrt(n))), None

    def walk(self, dim: int, *, seeds: int = 6, steps: int = 9, span: float = 3.0, label: str | None = None,
             seed: int = 0) -> tuple[np.ndarray, int, list[str]]:  # fmt: skip
        """Sweep latent coordinate ``dim`` over [-span, span]: one row per value, one column per seed.

        In class mode the class is held fixed (``label``, default the first class), so only z[dim] changes.
        """
        if not 0 <= dim < self.latent_dim:
            raise InputError(f"--walk {dim}: latent coordinates are 0 .. {self.latent_dim - 1}")
        base = self.latents(seeds, seed)
        values = torch.linspace(-span, span, steps)
        z = base.repeat(steps, 1)
        z[:, dim] = values.repeat_interleave(seeds)
        labels = self._labels(label, len(z), seed)
        return self.generate(z, labels), seeds, [f"z[{dim}]={v:+.1f}" for v in values.tolist()]

    def interpolate(self, seed_a: int, seed_b: int, *, steps: int = 9, label: str | None = None
                    ) -> tuple[np.ndarray, int, list[str] | None]:  # fmt: skip
        """Spherical interpolation from seed_a's z to seed_b's z; in class mode one row per class (or the label)."""
        za, zb = self.latents(1, seed_a)[0], self.latents(1, seed_b)[0]
        path = slerp(za, zb, torch.linspace(0, 1, steps))  # (steps, D)
        if not self.conditional:
            self._no_label(label)
            return self.generate(path), steps, None
        classes = range(len(self.class_names)) if label in (None, "all") else [self.label_index(label)]
        z = path.repeat(len(classes), 1)
        labels = torch.tensor(list(classes)).repeat_interleave(steps)
        return self.generate(z, labels), steps, [self.class_names[c] for c in classes]

    def _labels(self, label: str | None, n: int, seed: int) -> torch.Tensor | None:
        """Walks hold the class fixed so that only z[dim] changes: ``label``, or the first class."""
        if not self.conditional:
            self._no_label(label)
            return None
        return torch.full((n,), 0 if label in (None, "all") else self.label_index(label))

    @staticmethod
    def _no_label(label: str | None) -> None:
        if label not in (None, "all"):
            raise InputError(f"--label {label!r}: labels apply to class-mode runs; this is a noise-mode model")

    @staticmethod
    def save(path: Path, images: np.ndarray, nrow: int, row_labels: list[str] | None, *, overwrite: bool) -> None:
        check_new_file(path, overwrite)
        save_grid(path, images, nrow, row_labels=row_labels)


def paired_panels(ckpt: LoadedCheckpoint, run_dir: Path, out: Path, *, split: str = "test", n_subjects: int = 3,
                  device: str = "auto", overwrite: bool = False) -> Path:  # fmt: skip
    """Source | prediction panels (three slices each) for a paired run's held-out subjects; a many-to-one model is fed
    every source of each subject (the panels show the first)."""
    from pix2gan.data.subjects import find_subjects, load_subject
    from pix2gan.infer.translate import Translator

    layout = RunLayout(run_dir)
    ids = layout.read_split().get(split, [])[:n_subjects]
    if not ids:
        raise InputError(f"{layout.split}: the {split!r} split is empty")
    check_new_file(out, overwrite)
    dc = ckpt.config.data
    names = list(dc.sources)
    subjects = {s.id: s for s in find_subjects(dc.root, names)}
    translator = Translator.from_checkpoint(ckpt, device=device)
    rows, labels = [], []
    for sid in ids:
        if sid not in subjects:
            raise InputError(f"{dc.root}: subject {sid!r} of the run's {split} split is missing")
        volumes = load_subject(subjects[sid], names)
        source = volumes[names[0]]
        pred = translator.translate_volume(volumes)
        r, lab = panel_rows(source.data, pred, None, dc.slice_axis, None)
        rows += r
        labels += [f"{sid} {t}" for t in lab]
    windows, _ = panel_style(ckpt.dst_map is not None and ckpt.dst_map.kind == "hu")
    save_panel(out, rows, titles=("source", "prediction"), windows=windows, row_labels=labels)
    return out


def cycle_panels(ckpt: LoadedCheckpoint, run_dir: Path, out: Path, *, n_slices: int = 3, device: str = "auto",
                 overwrite: bool = False) -> Path:  # fmt: skip
    """a -> b -> a and b -> a -> b rows of an unpaired run for ``n_slices`` slices through the body (along its first
    plane): the same slices of the source and the target of its first held-out subject (test, else validation: they
    hold both), else slices of the first training subject holding the source and of the first holding the target.

    Raises:
        InputError: ``out`` exists (without ``overwrite``); a subject of the split or its volume is missing; a
            constant volume.
    """
    from pix2gan.data.unpaired import find_unpaired_subjects
    from pix2gan.infer.cycle_panel import cycle_rows, save_cycle_panel

    check_new_file(out, overwrite)
    dc, split = ckpt.config.data, RunLayout(run_dir).read_split()
    subjects = {s.id: s for s in find_unpaired_subjects(dc.root, dc.src, dc.dst, [dc.mask] if dc.mask else [])}
    held = split.get("test", []) + split.get("val", [])
    if held:
        if held[0] not in subjects:
            raise InputError(f"{dc.root}: subject {held[0]!r} of the run's held-out subjects is missing")
        a_subject = b_subject = subjects[held[0]]
    else:
        train = [subjects[i] for i in split.get("train", []) if i in subjects]
        a_subject, b_subject = (next((s for s in train if m in s.files), None) for m in (dc.src, dc.dst))
        if a_subject is None or b_subject is None:
            raise InputError(f"{dc.root}: no subject of the run's split holds {dc.src if a_subject is None else dc.dst}")
    a, a_scale, a_picks = _cycle_side(a_subject, dc.src, ckpt.src_map, dc, n_slices)  # type: ignore[arg-type]
    b, b_scale, b_picks = _cycle_side(b_subject, dc.dst, ckpt.dst_map, dc, n_slices)  # type: ignore[arg-type]
    if a_subject is b_subject:
        b_picks = a_picks  # (the same slice of both)
    k = min(len(a_picks), len(b_picks))
    a_stacks = context_stack(a, a_picks[:k], dc.context)  # (k, 2K + 1, H, W)
    target = resolve_device(device)
    rows = cycle_rows(ckpt.generator(target), a_stacks, b[b_picks[:k]], (ckpt.src_map, ckpt.dst_map),  # type: ignore[arg-type]
                      (a_scale, b_scale), context=dc.context, multiple=padding_multiple(ckpt.config), device=target)  # fmt: skip
    labels = [label for ka, kb in zip(a_picks[:k], b_picks[:k], strict=True)
              for label in (f"{a_subject.id} {ka}: a>b>a", f"{b_subject.id} {kb}: b>a>b")]  # fmt: skip
    save_cycle_panel(out, rows, labels)
    return out


def _cycle_side(subject: Subject, modality: str, imap: IntensityMap, dc: DataConfig, n: int
                ) -> tuple[torch.Tensor, Scale | None, list[int]]:  # fmt: skip
    """One side of the cycle panels: the subject's ``modality`` normalised with its own scale as (N, H, W) slices
    along the run's first plane, the scale, and ``n`` slice indices spread through the body (its mask, if any)."""
    from pix2gan.data.subjects import load_subject

    volumes = load_subject(subject, [modality, *([dc.mask] if dc.mask and dc.mask in subject.files else [])])
    volume = volumes[modality]
    axis = slice_axes(dc, volume.affine)[0]
    try:
        scale = imap.scale_of(volume.data)
    except ValueError as exc:
        raise InputError(f"{volume.path}: {exc}") from None
    slices = torch.from_numpy(np.ascontiguousarray(np.moveaxis(imap.forward(volume.data, scale), axis, 0)))
    mask = volumes[dc.mask].data > 0 if dc.mask in volumes else np.ones(volume.data.shape, dtype=bool)
    quantiles = np.linspace(0.25, 0.75, n) if n > 1 else (0.5,)
    return slices.float(), scale, body_slices(mask, axis, quantiles)


@dataclass(frozen=True)
class SampleRequest:
    """What ``pix2gan sample`` draws. Noise/class runs: a grid of ``n`` (``label`` a class or ``all``), a latent walk
    over coordinate ``walk``, or an interpolation from ``seed`` to ``seed_b``; paired runs: source | prediction panels
    of held-out subjects."""

    n: int = 64
    label: str | None = None
    seed: int = 0
    walk: int | None = None
    span: float = 3.0
    steps: int = 9
    interpolate: bool = False
    seed_b: int = 1

    @property
    def kind(self) -> str:
        if self.walk is not None:
            return f"walk{self.walk}"
        if self.interpolate:
            return f"interp{self.seed_b}"
        return f"grid-{self.label}" if self.label not in (None, "all") else "grid"


def draw(ref: RunRef, request: SampleRequest, *, output: Path | None = None, overwrite: bool = False,
         device: str = "auto") -> tuple[Path, str]:  # fmt: skip
    """Draw what ``request`` asks from the model of ``ref``; returns the PNG written and what it shows.

    The default output is ``RUN/samples/<kind>-seed<K>.png`` (``panels-seed<K>.png`` for paired runs,
    ``cycle-seed<K>.png`` for unpaired runs: :func:`cycle_panels`, or of image folders
    :func:`~pix2gan.infer.images.image_cycle_panel`). An existing
    output is refused before the generator runs.
    """
    from pix2gan.checkpoint import load_checkpoint

    ckpt = load_checkpoint(ref.checkpoint)
    kind = {Mode.PAIRED: "panels", Mode.UNPAIRED: "cycle"}.get(ckpt.mode, request.kind)
    out = output or ref.require_run("the default output goes into it; or pass -o FILE") / "samples" / f"{kind}-seed{request.seed}.png"
    check_new_file(out, overwrite)
    if ckpt.mode == Mode.PAIRED:
        paired_panels(ckpt, ref.require_run("panels show its held-out subjects"), out, device=device, overwrite=overwrite)
        return out, "source | prediction panels"
    if ckpt.mode == Mode.UNPAIRED and ckpt.config.data.data_b is not None:  # two image folders: a few of each
        from pix2gan.infer.images import image_cycle_panel

        image_cycle_panel(ckpt, out, device=device, overwrite=overwrite)
        return out, "a -> b -> a and b -> a -> b cycle panels of the first images of each folder"
    if ckpt.mode == Mode.UNPAIRED:
        cycle_panels(ckpt, ref.require_run("panels show its subjects"), out, device=device, overwrite=overwrite)
        return out, "a -> b -> a and b -> a -> b cycle panels"
    sampler = GanSampler(ckpt, device=device)
    r = request
    if r.walk is not None:
        images, nrow, rows = sampler.walk(r.walk, steps=r.steps, span=r.span, label=r.label, seed=r.seed)
    elif r.interpolate:
        images, nrow, rows = sampler.interpolate(r.seed, r.seed_b, steps=r.steps, label=r.label)
    else:
        images, nrow, rows = sampler.grid(r.n, label=r.label, seed=r.seed)
    sampler.save(out, images, nrow, rows, overwrite=overwrite)
    return out, f"{len(images)} samples"
