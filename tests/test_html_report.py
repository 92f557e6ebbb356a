"""The HTML run report (``pix2gan report``, and after ``train`` / ``eval``): one self-contained page whose tables say
what the run's files say, for paired, noise and class runs."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from conftest import tiny_config
from pix2gan.data.digits import write_digit_folder
from pix2gan.reporting import eval_json_path, render_html_report, write_html_report
from pix2gan.reporting.numbers import (GAN_LABELS, REALISM_LABELS, REALISM_NOTES, format_gan_metric, format_mean_std,
                                      format_metric)
from pix2gan_cli.show import fmt
from test_cli import assert_one_clear_line, cli

TINY_GAN = ["--image-size", "28", "--filters", "8", "--disc-filters", "8", "--latent-dim", "16", "--embed-dim", "8",
            "--batch-size", "16", "--epochs", "2", "--no-progress", "--device", "cpu"]  # fmt: skip
NAN = float("nan")


class Page(HTMLParser):
    """Every tag with its attributes, every table (by id) as rows of (tag, data-key, text) cells, the page's text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.tables: dict[str, list[list[tuple[str, str | None, str]]]] = {}
        self.text: list[str] = []
        self._table: str | None = None
        self._cell: list | None = None
        self._head = False
        self.headers: set[tuple[str, int]] = set()  # (table, row index) of header rows
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "table":
            self._table = attrs.get("id") or f"table{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "thead":
            self._head = True
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
            if self._head:
                self.headers.add((self._table, len(self.tables[self._table]) - 1))
        elif tag in ("th", "td") and self._table is not None:
            self._cell = [tag, attrs.get("data-key"), ""]

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._cell is not None:
            self.tables[self._table][-1].append((self._cell[0], self._cell[1], self._cell[2].strip()))
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "thead":
            self._head = False

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell[2] += data

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())

    def rows(self, table: str) -> dict[str, list[str]]:
        """Body and footer rows of a table keyed by their first cell's data-key (or text), each the texts of the
        other cells."""
        return {(r[0][1] or r[0][2]): [c[2] for c in r[1:]] for i, r in enumerate(self.tables[table])
                if r and (table, i) not in self.headers}  # fmt: skip

    def header_keys(self, table: str) -> list[str | None]:
        return [c[1] for c in self.tables[table][0][1:]]


def check_page(path: Path) -> Page:
    """The page parses, holds no external reference, and every embedded image decodes."""
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    page = Page(text)
    assert "http:" not in text and "https:" not in text
    names = {tag for tag, _ in page.tags}
    assert not names & {"script", "link", "iframe", "object", "embed"}, names
    images = 0
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            assert not (value or "").startswith("//"), (tag, name, value)
            if name == "href":
                assert (value or "").startswith("#"), value
            if name == "src":
                assert (value or "").startswith("data:image/png;base64,"), value[:50]
                image = Image.open(io.BytesIO(base64.b64decode(value.split(",", 1)[1], validate=True)))
                image.verify()
                images += 1
    page.images = images  # type: ignore[attr-defined]
    return page


def config_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def check_config(page: Page, run: Path) -> None:
    config = json.loads((run / "config.json").read_text())
    for section, values in config.items():
        rows = page.rows(f"config-{section}")
        assert list(rows) == list(values)
        for key, value in values.items():
            assert rows[key] == [config_text(value)], (section, key)


# --- paired ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def paired(tiny_data, tmp_path_factory) -> dict[str, Path]:
    """A tiny paired run: ``fresh`` as training left it, ``evaluated`` the same run after ``pix2gan eval``."""
    from pix2gan.train import fit

    root = tmp_path_factory.mktemp("report")
    run = root / "evaluated"
    fit(tiny_config(tiny_data), run, progress=False)
    trained = root / "trained.html"
    shutil.copy(run / "report.html", trained)  # written at the end of training
    fresh = root / "runs" / "fresh"
    shutil.copytree(run, fresh)
    (fresh / "report.html").unlink()
    result = cli("eval", "--run", run, "--device", "cpu", "--json", run / "eval.json")  # the same figures twice
    assert result.exit_code == 0, result.output
    return {"fresh": fresh, "evaluated": run, "trained": trained, "eval_output": result.output}  # type: ignore[dict-item]


def test_paired_report_after_eval(paired):
    run = paired["evaluated"]
    assert f"report: {run / 'report.html'}" in paired["eval_output"]
    doc = json.loads(eval_json_path(run, "paired", "test").read_text())
    assert doc == json.loads((run / "eval.json").read_text())
    page = check_page(run / "report.html")
    # eval.json is the same: shown once, the realism figures in a table of their own (one would overflow the page)
    assert [t for t in page.tables if t.startswith("eval-")] == ["eval-test", "eval-test-realism"]
    dr = doc["rules"]["data_range"]
    assert page.header_keys("eval-test-realism") == list(REALISM_LABELS)
    keys = page.header_keys("eval-test") + page.header_keys("eval-test-realism")
    assert keys == [k for k in doc["per_subject"][next(iter(doc["per_subject"]))] if k != "std_mean"]
    assert {"mae", "mae_air", "mae_soft", "mae_bone", "psnr", "ssim", *REALISM_LABELS} <= set(keys)
    heads = dict(zip(keys, (c[2] for t in ("eval-test", "eval-test-realism") for c in page.tables[t][0][1:]),
                     strict=True))  # fmt: skip
    assert [heads[k] for k in REALISM_LABELS] == list(REALISM_LABELS.values())
    for key, note in REALISM_NOTES.items():  # one line under the table per realism figure
        assert f"{REALISM_LABELS[key]}: {note}" in page.all_text
    distortion, realism = page.rows("eval-test"), page.rows("eval-test-realism")
    assert list(distortion) == list(realism)
    rows = {name: distortion[name] + realism[name] for name in distortion}
    for sid, figures in doc["per_subject"].items():
        for key, text in zip(keys, rows[sid], strict=True):
            value = figures[key]
            assert text == fmt(key, NAN if value is None else value, dr)  # as the terminal table prints it
            if value is not None:
                assert float(text) == pytest.approx(value, abs=0.006)
            assert text in paired["eval_output"]
    for key, text in zip(keys, rows["mean"], strict=True):
        if doc["mean"][key] is None:  # no subject has it (no NPS square fits in a 32 x 32 phantom)
            assert text == rows["median"][keys.index(key)] == rows["quartiles"][keys.index(key)] == "–"
            continue
        assert text == f"{fmt(key, doc['mean'][key], dr)} ± {fmt(key, doc['std'][key], dr)}"
        assert float(text.split(" ± ")[0]) == pytest.approx(doc["mean"][key], abs=0.006)
    for key, med, quart in zip(keys, rows["median"], rows["quartiles"], strict=True):
        if doc["median"][key] is None:
            continue
        assert med == fmt(key, doc["median"][key], dr)
        assert quart == f"{fmt(key, doc['q1'][key], dr)} – {fmt(key, doc['q3'][key], dr)}"
    base = doc["baseline"]
    for key, text in zip(keys, rows["baseline"], strict=True):
        if base["mean"].get(key) is not None:
            assert text == f"{fmt(key, base['mean'][key], dr)} ± {fmt(key, base['std'][key], dr)}"
    for table_id in ("baseline-test", "baseline-test-realism"):
        assert set(page.rows(table_id)) == set(doc["per_subject"]) | {"mean", "median", "quartiles"}
    rules = doc["rules"]
    assert (f"rules {rules['name']}, data range {dr:g}: {rules['space']}; SSIM column: {rules['ssim']}"
            in page.all_text)  # fmt: skip
    # one panel per test subject, the loss curve and the last epoch's validation panel
    assert page.images == len(doc["per_subject"]) + 2
    assert "not evaluated yet" not in page.all_text


def test_paired_config_and_split(paired):
    run = paired["evaluated"]
    page = check_page(run / "report.html")
    check_config(page, run)
    split = json.loads((run / "split.json").read_text())
    rows = page.rows("split")
    assert list(rows) == list(split)
    for name, ids in split.items():
        assert rows[name] == [", ".join(ids)]
    assert "t1 → ct" in page.all_text and "evaluated" in page.all_text
    epochs = page.tables["epochs"]
    assert len(epochs) == 1 + 2 and epochs[-1][0][2] == "2"  # header and two epochs


def test_unevaluated_run_says_so_and_cli(paired, tmp_path, monkeypatch):
    page = check_page(paired["trained"])  # written at the end of training
    assert f"not evaluated yet: pix2gan eval --run {paired['evaluated']}" in page.all_text
    assert page.images == 2  # loss curve and the last validation panel
    fresh = paired["fresh"]
    result = cli("report", fresh)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(fresh / "report.html")
    assert f"not evaluated yet: pix2gan eval --run {fresh}" in check_page(fresh / "report.html").all_text
    out = tmp_path / "elsewhere" / "r.html"
    result = cli("report", fresh, "-o", out)
    assert result.exit_code == 0 and result.output.strip() == str(out)
    check_page(out)
    assert_one_clear_line(cli("report", fresh, "-o", tmp_path), "is a folder")
    monkeypatch.delenv("PIX2GAN_RUNS", raising=False)
    result = cli("report", cwd=fresh.parent.parent)  # the newest run under ./runs
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(Path("runs") / "fresh" / "report.html")


def test_bad_runs_one_line(tmp_path):
    assert_one_clear_line(cli("report", tmp_path / "nope"), "run folder not found")
    (tmp_path / "empty").mkdir()
    assert_one_clear_line(cli("report", tmp_path / "empty"), "not a pix2gan run folder")


def test_every_string_is_escaped_and_stale_evaluations_are_flagged(paired, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(paired["evaluated"], run)
    config = json.loads((run / "config.json").read_text())
    config["data"]["root"] = "<b>bold</b> & 'x' \"y\""
    (run / "config.json").write_text(json.dumps(config))
    latest = run / "checkpoints" / "latest.pt"
    os.utime(latest, (latest.stat().st_atime, (run / "eval" / "test.json").stat().st_mtime + 60))
    (run / "report.html").write_text(render_html_report(run))
    page = check_page(run / "report.html")
    assert "b" not in {tag for tag, _ in page.tags}
    assert page.rows("config-data")["root"] == ["<b>bold</b> & 'x' \"y\""]
    assert "The run has trained since this evaluation" in page.all_text


def test_a_missing_loss_curve_is_drawn_from_the_logs(paired, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(paired["fresh"], run)
    (run / "loss_curve.png").unlink()
    page = check_page(write_html_report(run))
    assert page.images == 2 and not (run / "loss_curve.png").exists()  # drawn for the page, the run left as it was
    assert "(loss_curve.png)" in page.all_text


def test_a_report_failure_never_fails_training(tiny_data, tmp_path, monkeypatch, caplog):
    import pix2gan.reporting
    from pix2gan.train import fit

    def broken(*args, **kwargs):
        raise RuntimeError("disk\nfull")

    monkeypatch.setattr(pix2gan.reporting, "write_html_report", broken)
    with caplog.at_level(logging.WARNING, logger="pix2gan"):
        result = fit(tiny_config(tiny_data, epochs=1), tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "checkpoints" / "latest.pt").is_file() and not (tmp_path / "run" / "report.html").exists()
    warnings = [r.getMessage() for r in caplog.records if "report.html" in r.getMessage()]
    assert warnings == ["report.html not written: RuntimeError: disk full"]
    assert not any(line.startswith("report:") for line in result.summary_lines())


PAIRED_NUMBERS = [  # (metric, value, data range, as the table and the page show it)
    ("mae", 78.6123, None, "78.61"),  # HU: 2 decimals
    ("mae", 0.0, None, "0.00"),
    ("mae", -3.25, None, "-3.25"),
    ("mae", 1295.375, None, "1295.38"),  # an exact binary half: to even
    ("mae", 816.555, None, "816.55"),  # 816.555 is 816.55499... in binary
    ("mae", 123456789.125, None, "123456789.12"),  # large: all digits, no exponent
    ("mae", 1e-7, None, "0.00"),  # small
    ("mae", 0.081534, 4024.0, "0.08"),  # HU data range: 2 decimals
    ("mae", 0.081534, 2.0, "0.0815"),  # MR targets, data range 2: 4 decimals
    ("mae_bone", 0.081534, 2.0, "0.0815"),
    ("mae", 0.08153, 10.0, "0.0815"),  # 4 decimals up to a data range of 10
    ("mae", 0.08153, 10.5, "0.08"),
    ("mae_soft", 2.675, None, "2.67"),
    ("psnr", 27.1234, None, "27.12"),
    ("psnr", 27.1234, 2.0, "27.12"),  # PSNR keeps 2 decimals for MR targets
    ("psnr", float("inf"), None, "inf"),  # a perfect prediction
    ("ssim", 0.91234, None, "0.9123"),
    ("ssim", 0.91234, 4095.0, "0.9123"),
    ("ssim", 0.99995, None, "1.0000"),
    ("std_error_spearman", 0.41234, None, "0.412"),
    ("std_error_spearman", 0.4125, None, "0.412"),
    ("nps_ratio", 0.41234, None, "0.412"),  # the realism ratios: 3 decimals
    ("nps_ratio", 3.63310, 4024.0, "3.633"),
    ("sharpness", 1.0308688, None, "1.031"),
    ("sharpness_bone", 0.7, 4095.0, "0.700"),
    ("nps_lsd", 5.27087, None, "5.27"),  # dB: 2 decimals, as PSNR
    ("hu_w1", 4.644131, 4024.0, "4.64"),  # HU: 2 decimals, as MAE
    ("hu_w1", 0.0, None, "0.00"),
    *((m, v, dr, "–") for m in ("mae", "mae_air", "psnr", "ssim", "std_error_spearman", "nps_ratio", "nps_lsd",
                                "sharpness", "sharpness_bone", "hu_w1") for v in (None, NAN) for dr in (None, 2.0)),
]  # fmt: skip


@pytest.mark.parametrize(("metric", "value", "data_range", "expected"), PAIRED_NUMBERS)
def test_paired_numbers_formatted(metric, value, data_range, expected):
    assert format_metric(metric, value, data_range) == expected
    assert fmt(metric, value, data_range) == expected  # the terminal table (cli/show.py) prints the same text


def test_mean_std_and_generative_numbers_formatted():
    assert format_mean_std("psnr", 27.123, 0.456) == "27.12 ± 0.46"
    assert format_mean_std("mae", 0.08153, 0.0123, 2.0) == "0.0815 ± 0.0123"
    assert format_mean_std("ssim", 0.81234, 0.05, 4024.0) == "0.8123 ± 0.0500"
    assert format_mean_std("mae", None, 1.0) == format_mean_std("mae", NAN, NAN) == "–"
    assert format_mean_std("mae", 50.0, None) == "50.00 ± –"
    gan = {("classifier_accuracy", 0.9): "90.0 %", ("class_consistency", 0.12345): "12.3 %",
           ("class_consistency", 1.0): "100.0 %", ("class_consistency", 0.99951): "100.0 %",
           ("kid", 0.000123456): "0.0001235", ("kid", 1e-7): "1e-07", ("kid_inception", -0.00012): "-0.00012",
           ("frechet_distance", 1234567.0): "1.235e+06", ("fid", 12.3456): "12.35", ("diversity_ratio", 1.0): "1",
           ("kid", None): "–", ("class_consistency", NAN): "–"}  # fmt: skip
    for (key, value), expected in gan.items():
        assert format_gan_metric(key, value) == expected, key
    assert GAN_LABELS == {
        "classifier_accuracy": "real-image classifier accuracy (held out)",
        "class_consistency": "class consistency of generated images",
        "frechet_distance": "Fréchet distance (learned features)",
        "kid": "KID (learned features)",
        "diversity_generated": "diversity, generated",
        "diversity_real": "diversity, real",
        "diversity_ratio": "diversity ratio generated / real",
        "fid": "FID (InceptionV3)",
        "kid_inception": "KID (InceptionV3)",
    }


# --- noise and class ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("digits") / "digits"
    write_digit_folder(root, per_class=8, size=28, seed=0)
    return root


@pytest.mark.parametrize("mode", ["noise", "class"])
def test_gan_report(mode, digits, tmp_path):
    run = tmp_path / mode
    result = cli("train", "--mode", mode, "--data", digits, "--run-dir", run, *TINY_GAN)
    assert result.exit_code == 0, result.output
    assert f"report: {run / 'report.html'}" in result.output
    page = check_page(run / "report.html")
    assert f"not evaluated yet: pix2gan eval --run {run}" in page.all_text
    assert page.images == 3  # loss curve, the first and the last epoch's sample grids
    result = cli("eval", "--run", run, "--n-per-class", "4", "--n-samples", "32")
    assert result.exit_code == 0, result.output
    assert f"report: {run / 'report.html'}" in result.output
    doc = json.loads(eval_json_path(run, mode).read_text())
    assert doc["mode"] == mode
    page = check_page(run / "report.html")
    rows = page.rows("eval-gan")
    assert list(rows) == list(doc["metrics"])
    for key, value in doc["metrics"].items():
        text = rows[key][0]
        if key in ("classifier_accuracy", "class_consistency"):
            assert text == f"{100 * value:.1f} %"
        else:
            assert text == f"{value:.4g}" and float(text) == pytest.approx(value, rel=1e-3)
        assert text in result.output  # as the terminal table prints it
    if mode == "class":
        per_class = page.rows("eval-per-class")
        assert per_class == {name: [f"{100 * v:.1f} %"] for name, v in doc["per_class"].items()}
        assert list(per_class) == [str(d) for d in range(10)]
    else:
        assert "eval-per-class" not in page.tables
    assert all(note in page.all_text for note in doc["notes"])
    assert page.images == 4  # and the evaluation's sample grid
    assert "split" not in page.tables and "no subject split" in page.all_text
    check_config(page, run)
