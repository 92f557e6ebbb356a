"""What :func:`~pix2gan.train.fit` returns: the run folder, its split and epochs, and the lines a person reads when
training ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from pix2gan.config import Mode
from pix2gan.runs import RunLayout

__all__ = ["FitResult"]


@dataclass
class FitResult:
    run_dir: Path
    split: dict[str, list[str]]
    epochs: list[dict[str, float]] = field(default_factory=list)
    mode: Mode = Mode.PAIRED
    generator: nn.Module | None = None  # the trained networks (bare modules, in training mode)
    discriminator: nn.Module | None = None
    budget: str = ""  # --minutes: how the count of epochs was settled
    sources: tuple[str, ...] = ()  # a paired run's source modalities (several: many-to-one)

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.run_dir)

    def summary_lines(self) -> list[str]:
        """What a person wants to read when training ends: where the run is, how it did, what to do next."""
        last = self.epochs[-1] if self.epochs else {}
        lines = [f"done run folder {self.run_dir}"] + ([self.budget] if self.budget else [])
        if "val_mae" in last:
            lines.append(f"last epoch: validation MAE {float(last['val_mae']):.1f} (physical units, inside the mask)")
        if (self.run_dir / "report.html").is_file():
            lines.append(f"report: {self.run_dir / 'report.html'}")
        if self.mode == Mode.UNPAIRED and not self.split:  # (two image folders: no subjects)
            lines.append(f"next: pix2gan translate IMAGE.png --run {self.run_dir} (--reverse: the other way)")
        elif self.mode == Mode.UNPAIRED:
            lines.append(f"next: pix2gan translate SCAN.nii.gz --run {self.run_dir} (--reverse: the other way)   |   "
                         f"pix2gan eval --run {self.run_dir}")  # fmt: skip
        elif self.mode == Mode.PAIRED and len(self.sources) > 1:
            first, *others = self.sources
            lines.append(f"next: pix2gan eval --run {self.run_dir}   |   pix2gan translate SUBJECT_DIR/ --run {self.run_dir}"
                         f"   |   pix2gan translate {first}.nii.gz {' '.join(f'--input {o}=FILE' for o in others)} "
                         f"--run {self.run_dir}")  # fmt: skip
        elif self.mode == Mode.PAIRED:
            lines.append(f"next: pix2gan eval --run {self.run_dir}   |   pix2gan translate SCAN.nii.gz --run {self.run_dir}")
        else:
            lines.append(f"next: pix2gan sample --run {self.run_dir}   |   pix2gan eval --run {self.run_dir}")
        return lines
