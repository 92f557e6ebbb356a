"""The realism dial in ``pix2gan eval`` and the report: a ``--gan-warmup`` run scored at A = 0, 0.5 and 1
(``eval/dial.json``, ``eval/dial.png``, a table on the terminal, a section of the HTML report).

One tiny warm-up run (2 epochs, F = 0.5: both generators in its checkpoints) is trained through the command line
once for the module and evaluated once with the dial; the tests read what that wrote.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from helpers import assert_one_clear_line
from pix2gan.evaluation import evaluate_run, summary
from pix2gan.reporting import render_html_report
from pix2gan.reporting.numbers import format_metric
from pix2gan.runs import RunLayout
from pix2gan_cli.app import app

TINY = ["--depth", "3", "--filters", "4", "--disc-filters", "4", "--disc-layers", "2", "--image-size", "32",
        "--batch-size", "4", "--epochs", "2", "--device", "cpu", "--threads", "2", "--no-progress"]  # fmt: skip
runner = CliRunner()


@pytest.fixture(scope="module")
def dialled(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A ``--gan-warmup 0.5`` run evaluated by ``pix2gan eval`` (the dial on by default), with the command's output."""
    run = tmp_path_factory.mktemp("dial") / "run"
    result = runner.invoke(app, ["train", "--data", str(tiny_data), *TINY, "--gan-warmup", "0.5", "--no-tta",
                                 "--run-dir", str(run)])  # fmt: skip
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["eval", "--run", str(run), "--no-baseline", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return {"run": run, "output": result.output, "sid": RunLayout(run).read_split()["test"][0]}


def _nifti(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj, dtype=np.float32)


def _null(row: dict[str, float]) -> dict[str, float | None]:
    return {k: None if v != v else v for k, v in row.items()}


def test_dial_json_holds_evaluate_run_figures_at_each_end(dialled, tmp_path):
    run, sid = dialled["run"], dialled["sid"]
    doc = json.loads((run / "eval" / "dial.json").read_text(), parse_constant=pytest.fail)  # strict JSON: no NaN
    assert [v["realism"] for v in doc["values"]] == [0.0, 0.5, 1.0]
    assert [v["default"] for v in doc["values"]] == [False, False, True] and doc["default"] == 1.0
    assert doc["slice"]["subject"] == sid and doc["split"] == "test"
    for entry in (doc["values"][0], doc["values"][2]):
        a = entry["realism"]
        report = evaluate_run(run, realism=a, baseline=False, device="cpu", out_dir=tmp_path / f"{a:g}")
        # exactly (nan as JSON null): the same translation, the same scoring
        assert entry["per_subject"] == {s: _null(row) for s, row in report.per_subject.items()}
        stats = summary(report.per_subject)
        for name in ("mean", "median", "std", "q1", "q3"):
            assert entry[name] == _null(stats[name])
        # the dial's predictions are those of evaluate_run at that realism; the default's are the eval's own
        folder = run / "eval" / "test" / ("" if a == 1.0 else "realism-0")
        assert np.array_equal(_nifti(folder / f"{sid}_ct.nii.gz"), _nifti(report.predictions[0]))
    assert doc["values"][0]["mean"]["mae"] != doc["values"][2]["mean"]["mae"]  # two different generators
    assert (run / "eval" / "test" / "realism-0.5" / f"{sid}_ct.nii.gz").is_file()
    # the slice: source | A = 0 | A = 0.5 | A = 1 | target, one row, titles of several lines above it
    from PIL import Image

    with Image.open(run / "eval" / "dial.png") as image:
        width, height = image.size
    assert width == 4 + 5 * (192 + 4) and height > 22 + 192 + 4


def test_eval_prints_the_dial_one_line_per_realism(dialled):
    doc = json.loads((dialled["run"] / "eval" / "dial.json").read_text())
    lines = dialled["output"].splitlines()
    assert any(line.startswith("realism dial - test subjects") for line in lines)
    for entry in doc["values"]:
        a = f"{entry['realism']:g}" + (" (default)" if entry["default"] else "")
        row = [line for line in lines if line.startswith(f"│ {a} ")]
        assert len(row) == 1 and format_metric("mae", entry["mean"]["mae"]) in row[0], dialled["output"]


def test_a_realism_off_the_default_keeps_the_default_predictions(dialled):
    """eval --realism A wrote its predictions over the default's in RUN/eval/<split>/: now in realism-<A>/."""
    run, sid = dialled["run"], dialled["sid"]
    default = run / "eval" / "test" / f"{sid}_ct.nii.gz"
    before = default.read_bytes()
    result = runner.invoke(app, ["eval", "--run", str(run), "--realism", "0.5", "--no-dial", "--no-baseline",
                                 "--device", "cpu"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert default.read_bytes() == before
    half = _nifti(run / "eval" / "test" / "realism-0.5" / f"{sid}_ct.nii.gz")
    assert not np.array_equal(half, _nifti(default))
    # its figures say which generator they are of, and the report shows them with that generator's panels
    doc = json.loads((run / "eval" / "test.json").read_text())
    assert doc["realism"] == {"value": 0.5, "default": False}
    html = render_html_report(run)
    assert "<h3>test subjects at realism 0.5</h3>" in html and f"(eval/test/realism-0.5/{sid}.png)" in html


def test_the_report_shows_the_dial_with_its_figures(dialled, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(dialled["run"], run)
    doc = json.loads((run / "eval" / "dial.json").read_text())
    html = render_html_report(run)
    assert '<section id="dial"><h2>Realism dial</h2>' in html and 'href="#dial"' in html
    section = html[html.index('<section id="dial">') : html.index("</section>", html.index('<section id="dial">'))]
    assert '<th data-key="realism-1">1 (default)</th>' in section and '<th data-key="realism-0">0</th>' in section
    dr = doc["rules"]["data_range"]
    for entry in doc["values"]:
        for key in ("mae", "psnr", "ssim", "sharpness", "hu_w1"):
            assert f'<td class="num">{format_metric(key, entry["mean"][key], dr)}</td>' in section
    assert "NPS ratio" in section and "sharp bone" in section and "<img src=\"data:image/png;base64," in section
    # without the files: no section; a damaged dial.json: a note, the image alone
    (run / "eval" / "dial.json").write_text("{not json")
    html = render_html_report(run)
    assert "unreadable realism dial" in html and '<section id="dial">' in html and 'id="dial" class' not in html
    for name in ("dial.json", "dial.png"):
        (run / "eval" / name).unlink()
    assert 'id="dial"' not in render_html_report(run)


def test_a_run_without_snapshot_has_no_dial_and_refuses_one(tiny_run, tiny_data, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    shutil.rmtree(run / "eval", ignore_errors=True)
    best = RunLayout(run).best
    result = runner.invoke(app, ["eval", "--run", str(run), "--dial", "--device", "cpu"])
    assert_one_clear_line(result, f"{best}: --dial needs both generators of a --gan-warmup run")
    assert not (run / "eval").exists()  # refused before anything was translated or written
    result = runner.invoke(app, ["eval", "--pred", str(tmp_path), "--target", str(tmp_path), "--dial"])
    assert_one_clear_line(result, "--dial scores a run's generators")
    result = runner.invoke(app, ["eval", "--run", str(run), "--no-baseline", "--device", "cpu"])  # default: no dial
    assert result.exit_code == 0, result.output
    assert "realism dial" not in result.output and not (run / "eval" / "dial.json").exists()
    assert not (run / "eval" / "dial.png").exists() and 'id="dial"' not in render_html_report(run)
