"""PNG panels (pix2gan.reporting.panels): the |error| column on one scale per figure, fixed per kind of target (HU for
CT, normalised units for MR), with a colour bar under it; the validation and evaluation panels draw it so."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from conftest import tiny_config
from pix2gan.config import DataConfig
from pix2gan.reporting import panels
from pix2gan.reporting.panels import HU_ERROR, HU_WINDOW, NORMALISED_ERROR, ErrorScale, compose_panel, panel_style

SIDE = 8  # 8 x 8 images are drawn 24x as 192-pixel tiles
TILE = panels._TILE


def _pixel(image, row: int, column: int) -> tuple[int, int, int]:
    """The colour at the centre of a tile of a panel drawn without row labels."""
    x = panels._GAP + column * (TILE + panels._GAP) + TILE // 2
    y = panels._HEADER + row * (TILE + panels._GAP) + TILE // 2
    return image.getpixel((x, y))


def _rows(*errors: float | np.ndarray) -> list[dict[str, np.ndarray]]:
    flat = np.zeros((SIDE, SIDE))
    return [{"prediction": flat, "target": flat, "|error|": np.broadcast_to(e, (SIDE, SIDE)).astype(float)}
            for e in errors]  # fmt: skip


def test_one_error_scale_for_the_whole_figure():
    """A 250 HU error has one colour in every row, whatever the other errors of the row; above the scale, white."""
    titles = ("prediction", "target", "|error|")
    peaked = np.full((SIDE, SIDE), 250.0)
    peaked[:2] = 1000.0
    image = compose_panel(_rows(250.0, peaked, 500.0, 2000.0), titles=titles, error_scale=HU_ERROR)
    assert _pixel(image, 0, 2) == _pixel(image, 1, 2) != (255, 255, 255)
    assert _pixel(image, 2, 2) == _pixel(image, 3, 2) == (255, 255, 255)
    # without a given scale, still one for the figure (its largest error), not one per image
    image = compose_panel(_rows(100.0, 400.0), titles=titles)
    assert _pixel(image, 0, 2) != _pixel(image, 1, 2) == (255, 255, 255)


def test_colour_bar_under_the_error_column():
    titles = ("prediction", "target", "|error|")
    image = compose_panel(_rows(0.0, 100.0), titles=titles, error_scale=HU_ERROR)
    grid_bottom = panels._HEADER + 2 * (TILE + panels._GAP)
    assert image.height == grid_bottom + panels._GAP + panels._BAR + panels._TICKS
    bar_y = grid_bottom + panels._GAP + panels._BAR // 2
    left = panels._GAP + 2 * (TILE + panels._GAP)
    assert image.getpixel((left, bar_y)) == (0, 0, 0)  # 0: black
    assert image.getpixel((left + TILE - 1, bar_y)) == (255, 255, 255)  # vmax: white
    middle = image.getpixel((left + TILE // 2, bar_y))
    assert middle[0] == 255 and 0 < middle[1] < 255  # half way: between red and yellow
    # without an |error| column there is no bar
    plain = compose_panel([{"prediction": np.zeros((SIDE, SIDE))}], titles=("prediction",))
    assert plain.height == panels._HEADER + TILE + panels._GAP


def test_fixed_scales_per_kind_of_target():
    assert panel_style(True) == ({"prediction": HU_WINDOW, "target": HU_WINDOW}, ErrorScale(500.0, "HU"))
    assert panel_style(False) == (None, ErrorScale(0.5, "normalised units"))
    assert HU_ERROR.label == "|error| in HU, the same scale in every row"
    assert NORMALISED_ERROR.label == "|error| in normalised units, the same scale in every row"


@pytest.mark.parametrize(("src", "dst"), [("t1", "ct"), ("ct", "t1")])
def test_validation_panels_show_the_error_on_the_fixed_scale(tiny_data, tmp_path, monkeypatch, src, dst):
    """The panel drawn after each epoch: source | prediction | target | |error|, the error in HU (CT target) or in
    the normalised space the generator works in (MR target)."""
    import pix2gan.tasks.paired as paired_task
    from pix2gan.train import fit

    drawn = []
    monkeypatch.setattr(paired_task, "save_panel", lambda path, rows, **kw: drawn.append((rows, kw)))
    cfg = replace(tiny_config(tiny_data, epochs=1), data=DataConfig(root=str(tiny_data), src=src, dst=dst))
    fit(cfg, tmp_path / "run", progress=False)
    (rows, kwargs), = drawn
    assert kwargs["titles"] == ("source", "prediction", "target", "|error|")
    assert kwargs["error_scale"] == (HU_ERROR if dst == "ct" else NORMALISED_ERROR)
    for row in rows:
        if dst == "ct":
            np.testing.assert_allclose(row["|error|"], np.abs(row["prediction"] - row["target"]), rtol=1e-6)
        else:  # the images in MR units, the error in the space [-1, 1] where training and evaluation measure it
            error, physical = row["|error|"], np.abs(row["prediction"] - row["target"])
            assert error.max() <= 2.0 and error.max() > 0.01
            ratio = physical[error > 0.01] / error[error > 0.01]  # half the subject's percentile range
            np.testing.assert_allclose(ratio, ratio[0], rtol=1e-3)
            assert ratio[0] > 10


def test_evaluation_panels_of_mr_targets_show_the_scored_error(tmp_path, monkeypatch):
    """``eval --pred --target --no-ct-window``: the |error| column is the error that was scored (normalised space),
    on the normalised scale, not the error in each subject's own MR units."""
    import pix2gan.evaluation.paired as paired_eval
    from pix2gan.evaluation import evaluate_folders
    from test_synthrad_rules import _mr_folders, _normalised_direct

    drawn = []
    monkeypatch.setattr(paired_eval, "save_panel", lambda path, rows, **kw: drawn.append((path.stem, rows, kw)))
    folders, truth = _mr_folders(tmp_path, n=2)
    evaluate_folders(folders["pred"], folders["target"], folders["mask"], modality="t2", out_dir=tmp_path / "panels")
    assert len(drawn) == 2
    for sid, rows, kwargs in drawn:
        assert kwargs["error_scale"] == NORMALISED_ERROR and kwargs["windows"] is None
        pred, target, _ = truth[sid]
        p, t = _normalised_direct(pred, target)
        slices = [int(label.removeprefix("slice ")) for label in kwargs["row_labels"]]
        for row, k in zip(rows, slices, strict=True):
            np.testing.assert_allclose(row["|error|"], np.abs(p - t)[:, :, k], atol=1e-5)
            np.testing.assert_array_equal(row["target"], target[:, :, k].astype(np.float32))  # shown in MR units


def test_matplotlib_is_imported_only_to_draw_a_curve():
    import subprocess
    import sys

    code = ("import sys, pix2gan.reporting, pix2gan.reporting.panels, pix2gan.reporting.grids, pix2gan.reporting.curves,"
            " pix2gan.tasks.paired, pix2gan.train.loop, pix2gan.evaluation.paired; print('matplotlib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
