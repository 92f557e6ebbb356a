"""The cycle panels of an unpaired (CycleGAN) run: a -> G_ab -> G_ba and b -> G_ba -> G_ab, in physical units.

One function computes the rows (:func:`cycle_rows`) and one draws them (:func:`save_cycle_panel`): the training task
draws one slice of each side after every epoch (``RUN/panels/epoch_NNN.png``), ``pix2gan sample`` a few slices of
held-out subjects (:func:`pix2gan.infer.sample.cycle_panels`). Each row is ``input | translated | back again``: a
source slice, its translation to the target modality, and that translated back, then the same from a target slice.
No random numbers are drawn.

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
from pix2gan.reporting.panels import save_panel

__all__ = ["CYCLE_TITLES", "cycle_rows", "save_cycle_panel"]

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
