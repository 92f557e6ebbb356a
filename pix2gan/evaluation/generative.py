"""Offline evaluation of noise- and class-mode runs against their real training images.

No network access and no downloaded weights: the feature space is a small network trained here on the real images,
a classifier in class mode (its held-out accuracy is reported, so its verdict can be trusted or not), a rotation
predictor in noise mode. In that space we report

* **class consistency** (class mode): the share of generated images the classifier assigns to the class asked for;
* **Fréchet distance** and **KID** between real and generated features (0 for identical distributions);
* **diversity**: mean pairwise feature distance of generated images, next to the same figure for real images, so
  mode collapse shows as a ratio far below 1.

FID/KID in InceptionV3 space are added only when a weights file is given and torchvision imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pix2gan.checkpoint import LoadedCheckpoint, load_checkpoint

from pix2gan.runs import RunLayout
from pix2gan.config import Mode
from pix2gan.evaluation.distances import diversity, frechet_distance, kid
from pix2gan.evaluation.features import class_consistency, extract_features, train_classifier, train_rotation_features
from pix2gan.evaluation.inception import load_inception
from pix2gan.infer.sample import GanSampler
from pix2gan.errors import InputError
from pix2gan.io import atomic_write_json

__all__ = ["GanEvalReport", "evaluate_gan_run"]


@dataclass
class GanEvalReport:
    """Figures of one generative run; ``per_class`` holds class consistency per class in class mode."""

    mode: str
    metrics: dict[str, float]
    per_class: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    grids: list[Path] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "metrics": self.metrics, "per_class": self.per_class, "notes": self.notes,
                "grids": [str(p) for p in self.grids]}  # fmt: skip

    def write_json(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_dict())


def evaluate_gan_run(
    run_dir: str | Path,
    *,
    checkpoint: str | Path | LoadedCheckpoint | None = None,
    n_per_class: int = 200,
    n_samples: int = 1000,
    inception_weights: str | Path | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    device: str = "auto",
) -> GanEvalReport:
    """Score a noise- or class-mode run against the real images it was trained on.

    Args:
        run_dir: the run folder.
        checkpoint: checkpoint (file or already loaded) to use (default the run's latest).
        n_per_class: generated images per class (class mode).
        n_samples: generated images in noise mode, and the cap on real images used for the distances.
        inception_weights: InceptionV3 state dict for FID/KID in Inception space (optional, never downloaded).
        out_dir: where the sample grids used are written (default ``RUN_DIR/eval``).
    """
    from pix2gan.data.images import images_for_run

    layout = RunLayout(Path(run_dir))
    if not layout.root.is_dir():
        raise InputError(f"{layout.root}: run folder not found")
    if isinstance(checkpoint, LoadedCheckpoint):
        ckpt = checkpoint
    else:
        ckpt = load_checkpoint(Path(checkpoint) if checkpoint else layout.model_checkpoint())
    if ckpt.mode == Mode.PAIRED:
        raise InputError(f"{ckpt.path}: a paired-mode run; evaluate it with `pix2gan eval --run` (SynthRAD metrics)")
    cfg, conditional = ckpt.config, ckpt.mode == Mode.CLASS
    real = images_for_run(cfg, download=False)
    sampler = GanSampler(ckpt, device=device)
    out = Path(out_dir) if out_dir else layout.root / "eval"
    report = GanEvalReport(mode=ckpt.mode.value, metrics={})
    g = torch.Generator().manual_seed(seed)

    if conditional:
        k = len(sampler.class_names)
        classifier, accuracy = train_classifier(real.images, real.labels, k, seed=seed)
        labels = torch.arange(k).repeat_interleave(n_per_class)
        fake = torch.from_numpy(sampler.generate(torch.randn(len(labels), sampler.latent_dim, generator=g), labels))
        report.metrics["classifier_accuracy"] = accuracy
        report.metrics["class_consistency"] = class_consistency(classifier, fake, labels)
        for c, name in enumerate(sampler.class_names):
            sel = labels == c
            report.per_class[name] = class_consistency(classifier, fake[sel], labels[sel])
        features = classifier
    else:
        features = train_rotation_features(real.images, seed=seed)
        fake = torch.from_numpy(sampler.generate(torch.randn(n_samples, sampler.latent_dim, generator=g)))

    pick = torch.randperm(len(real), generator=g)[: max(n_samples, len(fake))]
    real_images = real.images[pick]
    report.metrics.update(_distances(features, real_images, fake, seed))
    inception = load_inception(inception_weights)
    if inception is None:
        report.notes.append("FID/KID in InceptionV3 space skipped: no weights given (--inception-weights PATH)")
    else:
        i_real, i_fake = extract_features(inception, real_images), extract_features(inception, fake)
        report.metrics["fid"] = frechet_distance(i_real, i_fake)
        report.metrics["kid_inception"] = kid(i_real, i_fake, subset_size=min(1000, len(i_real), len(i_fake)))

    images, nrow, rows = sampler.grid(8 * max(1, len(sampler.class_names)) if conditional else 64, label="all", seed=seed)
    grid = out / "samples.png"
    sampler.save(grid, images, nrow, rows, overwrite=True)
    report.grids.append(grid)
    report.metrics = {k: float(v) for k, v in report.metrics.items()}
    report.notes.append(
        f"{len(fake)} generated vs {len(real_images)} real images ({real.source}); feature space: "
        + ("a classifier trained on the real images" if conditional else "a rotation predictor trained on the real images")
    )
    return report


def _distances(features: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor, seed: int) -> dict[str, float]:
    """Fréchet distance, KID and diversity of real vs generated images in a learned feature space."""
    f_real, f_fake = extract_features(features, real), extract_features(features, fake)
    size = min(1000, len(f_real), len(f_fake))
    out = {"frechet_distance": frechet_distance(f_real, f_fake),
           "kid": kid(f_real, f_fake, subset_size=size) if size >= 2 else float("nan"),
           "diversity_generated": diversity(f_fake, seed=seed), "diversity_real": diversity(f_real, seed=seed)}  # fmt: skip
    out["diversity_ratio"] = out["diversity_generated"] / max(out["diversity_real"], 1e-12)
    return out
