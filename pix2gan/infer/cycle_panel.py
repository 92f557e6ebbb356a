"""The cycle panels of an unpaired (CycleGAN) run: a -> G_ab -> G_ba and b -> G_ba -> G_ab, in physical units.

One function computes the rows (:func:`cycle_rows`) and one draws them (:func:`save_cycle_panel`): the training task
draws one slice of each side after every epoch (``RUN/panels/epoch_NNN.png``), ``pix2gan sample`` a few slices of
held-out subjects (:func:`pix2gan.infer.sample.cycle_panels`). Each row is ``input | translated | back again``: a
source slice, its translation to the target modality, and that translated back, then the same from a target slice.
No random numbers are drawn. Runs on two image folders draw their images as they are (0-255) instead
(:func:`cycle_images`, :func:`save_cycle_images`).

Example:
    >>> from pix2gan.config import ModelConfig, Norm, RunConfig
    >>> from pix2gan.data.intensity import intensity_maps
    >>> from pix2gan.nets import build_generator
    >>> cfg = RunConfig.from_options("unpaired", src="t1", dst="ct", filters=4)
    >>> maps = intensity_maps(cfg.data)
    >>> rows = cycle_rows(build_generator(cfg), torch.zeros(2, 1, 8, 8), torch.zeros(2, 8, 8), maps,
    ...                   ((0.0, 1.0), None), context=0, multiple=4, device=torch.device("cpu"))
    >>> len(rows), list(rows[0]), rows[0]["translated"].shape
    (4, ['input', 'translated', 'back again'], (8, 8))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pix2gan.data.intensity import IntensityMap, Scale
from pix2gan.infer.stream import predict_slices
from pix2gan.reporting.grids import save_grid
from pix2gan.reporting.panels import save_panel

__all__ = ["CYCLE_TITLES", "cycle_images", "cycle_rows", "save_cycle_images", "save_cycle_panel"]

CYCLE_TITLES = ("input", "translated", "back again")
"""The panel's columns: the input slice, its translation, and the translation translated back."""


@torch.no_grad()
def cycle_rows(
    generators: nn.Module, a_stacks: torch.Tensor, b_slices: torch.Tensor, maps: tuple[IntensityMap, IntensityMap],
    scales: tuple[Scale | None, Scale | None], *, context: int, multiple: int, device: torch.device,
) -> list[dict[str, np.ndarray]]:  # fmt: skip
    """a -> b -> a and b -> a -> b of each slice pair, in physical units; the caller sets eval mode.

    Args:
        generators: a :class:`~pix2gan.nets.cycle.CycleGenerators` (G_ab when called, G_ba through ``reversed()``).
        a_stacks: normalised source stacks, the slice and its ``context`` neighbours on each side as channels.
        b_slices: normalised target slices (one per source stack, e.g. the same slice of the same subject).
        maps: the run's (source, target) intensity maps, mapping [-1, 1] back to physical units.
        scales: the scale of the source volume and of the target volume (None for HU maps; a generated T1 is shown
            in its input's scale, so input and cycle compare).
        context: K of ``a_stacks``; multiple: the generators' padding multiple.

    Returns:
        Two rows per pair, ``{input, translated, back again}`` -> (H, W) float32: the a row, then the b row.

    Shape:
        - a_stacks: :math:`(N, 2K + 1, H, W)`; b_slices: :math:`(N, H, W)`.
    """
    n = 2 * context + 1

    def run(x: torch.Tensor, reverse: bool) -> torch.Tensor:  # (N, C, H, W) -> (N, C', H, W)
        net = generators.reversed() if reverse else generators  # type: ignore[operator]
        return predict_slices(net, x, multiple, device=device)

    fake_b = run(a_stacks, False)
    rec_a = run(fake_b, True)
    fake_a = run(b_slices[:, None], True)
    rec_b = run(fake_a.repeat(1, n, 1, 1), False)  # (the generated slice stands in for its neighbours)
    (sa, sb), (a_scale, b_scale) = maps, scales

    def phys(x: torch.Tensor | np.ndarray, m: IntensityMap, scale: Scale | None) -> np.ndarray:
        return m.inverse(np.asarray(x, dtype=np.float32).reshape(x.shape[-2:]), scale)

    rows = []
    for i in range(len(a_stacks)):
        a = a_stacks[i, context].numpy()
        rows.append(dict(zip(CYCLE_TITLES, (phys(a, sa, a_scale), phys(fake_b[i], sb, b_scale),
                                            phys(rec_a[i], sa, a_scale)), strict=True)))  # fmt: skip
        rows.append(dict(zip(CYCLE_TITLES, (phys(b_slices[i], sb, b_scale), phys(fake_a[i], sa, a_scale),
                                            phys(rec_b[i], sb, b_scale)), strict=True)))  # fmt: skip
    return rows


def save_cycle_panel(path: str | Path, rows: Sequence[dict[str, np.ndarray]], labels: Sequence[str]) -> None:
    """Write the rows of :func:`cycle_rows` as one PNG (atomically), a label per row (e.g. ``sub-005 12: a>b>a``)."""
    save_panel(path, rows, titles=CYCLE_TITLES, row_labels=list(labels))


@torch.no_grad()
def cycle_images(
    generator: nn.Module, a: torch.Tensor, b: torch.Tensor, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """The two cycles of images ``a`` and ``b`` through CycleGAN's generators (``generator.g_ab``, ``generator.g_ba``),
    in eval mode (left in train mode after), every image with 3 channels for display.

    Shape:
        - ``a``: :math:`(N, C_a, S, S)`, ``b``: :math:`(N, C_b, S, S)` in [-1, 1].
        - Returns: :math:`(3N, 3, S, S)` each: ``a``, G_ab(a), G_ba(G_ab(a)) per image of ``a`` (row by row), then the
          same for ``b`` through G_ba and G_ab.
    """
    g_ab, g_ba = generator.g_ab, generator.g_ba  # type: ignore[union-attr]
    generator.eval()
    try:
        fake_b = g_ab(a.to(device))
        fake_a = g_ba(b.to(device))
        cycles = ((a, fake_b, g_ba(fake_b)), (b, fake_a, g_ab(fake_a)))
    finally:
        generator.train()

    def rgb(x: torch.Tensor) -> torch.Tensor:  # (N, 1 or 3, S, S) -> (N, 3, S, S)
        return x.float().cpu().expand(-1, 3, -1, -1)

    rows = tuple(torch.stack([rgb(x) for x in images], 1).flatten(0, 1).numpy() for images in cycles)
    return rows  # type: ignore[return-value]


def save_cycle_images(
    path: Path, generator: nn.Module, a: torch.Tensor, b: torch.Tensor, device: torch.device, labels: list[str]
) -> None:
    """Draw :func:`cycle_images` of ``a`` and ``b`` as one PNG (atomically): a row a | G_ab(a) | G_ba(G_ab(a)) per
    image of ``a``, then b | G_ba(b) | G_ab(G_ba(b)) per image of ``b``, shown as the images are ([-1, 1] as 0-255),
    ``labels`` one per row (the epoch panel's and ``pix2gan sample``'s)."""
    rows = cycle_images(generator, a, b, device)
    save_grid(path, np.concatenate(rows), nrow=3, row_labels=labels)
