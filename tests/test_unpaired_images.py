"""``--mode unpaired`` on two folders of 2-D images (``--data A/ --data-b B/``, horse <-> zebra style): trained through
the CLI with the generators' channels taken from the images, resumed bit for bit, translated both ways into 8-bit
PNGs of the input's size, and bad input refused in one line; its report (A <-> B, the folders, no split), its sample
(the first images of each folder through both cycles) and its exports (translating images as the checkpoint does)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from helpers import assert_identical, assert_one_clear_line, final_state, run_at_step
from pix2gan.checkpoint import load_checkpoint
from pix2gan.config import RunConfig
from pix2gan.data.images import load_image_folder
from pix2gan.infer.images import ImageTranslator
from pix2gan.runs import RunLayout
from pix2gan.infer.cycle_panel import cycle_images
from pix2gan.train import resume_run
from pix2gan_cli.app import app

TINY = ["--generator", "unet", "--depth", "3", "--filters", "4", "--disc-filters", "4", "--disc-layers", "2",
        "--image-size", "32", "--epochs", "2", "--pool-size", "4", "--device", "cpu", "--threads", "1",
        "--no-progress"]  # fmt: skip


def cli(*args: object):  # noqa: ANN201
    return CliRunner().invoke(app, [str(a) for a in args])


def write_folders(root: Path, n: int = 6) -> tuple[Path, Path]:
    """``root/circles``: ``n`` RGB 32 x 32 images of a yellow disc on blue; ``root/squares``: ``n`` grayscale squares."""
    rng = np.random.default_rng(0)
    a, b = root / "circles", root / "squares"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    yy, xx = np.mgrid[:32, :32]
    for i in range(n):
        (cy, cx), r = rng.integers(10, 22, 2), int(rng.integers(4, 9))
        rgb = np.empty((32, 32, 3), np.uint8)
        rgb[...] = (30, 60, 90)
        rgb[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = (220, 180, 40)
        Image.fromarray(rgb).save(a / f"circle{i}.png")
        gray = np.full((32, 32), 40, np.uint8)
        y0, x0 = rng.integers(4, 20, 2)
        gray[y0 : y0 + 9, x0 : x0 + 9] = 210
        Image.fromarray(gray).save(b / f"square{i}.png")
    return a, b


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_folders(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def image_run(folders: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 epochs of 6 steps (6 images a side, batch 1) through the CLI, a checkpoint every step."""
    run = tmp_path_factory.mktemp("runs") / "cycle"
    result = cli("train", "--mode", "unpaired", "--data", folders[0], "--data-b", folders[1], *TINY,
                 "--checkpoint-every", "1", "--keep-last", "20", "--run-dir", run)  # fmt: skip
    assert result.exit_code == 0, result.output
    return run


def test_trains_on_two_image_folders(folders: tuple[Path, Path], image_run: Path):
    cfg = RunConfig.from_dict(json.loads((image_run / "config.json").read_text()))
    assert (cfg.data.root, cfg.data.data_b) == tuple(str(f.resolve()) for f in folders)  # (absolute: --resume anywhere)
    assert (cfg.data.src, cfg.data.dst) == ("circles", "squares")  # named after the folders
    assert (cfg.model.in_channels, cfg.model.out_channels) == (3, 1)  # from the images: RGB circles, gray squares
    ckpt = load_checkpoint(RunLayout(image_run).latest)
    assert ckpt.src_map is None and ckpt.info == {"source": cfg.data.root, "source_b": cfg.data.data_b,
                                                  "n_images": [6, 6], "channels": [3, 1]}  # fmt: skip
    assert int(ckpt.raw["step"]) == 12 and not (image_run / "split.json").exists()
    nets = ckpt.generator()
    assert nets.g_ab(torch.zeros(1, 3, 32, 32)).shape == (1, 1, 32, 32)
    assert nets.g_ba(torch.zeros(1, 1, 32, 32)).shape == (1, 3, 32, 32)
    with open(image_run / "log.csv") as fh:
        columns = next(csv.reader(fh))
    assert "loss_g_cycle_a" in columns and not any("idt" in c for c in columns)  # (3 vs 1 channels: identity off)
    assert sorted(p.name for p in (image_run / "panels").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    assert Image.open(image_run / "panels" / "epoch_002.png").mode == "RGB"


def test_best_checkpoint_follows_the_training_cycle_loss(image_run: Path):
    with open(image_run / "epochs.csv") as fh:
        rows = list(csv.DictReader(fh))
    cycles = [float(r["loss_g_cycle_a"]) + float(r["loss_g_cycle_b"]) for r in rows]
    best = torch.load(RunLayout(image_run).best, weights_only=True)
    assert int(best["epoch"]) == int(rows[int(np.argmin(cycles))]["epoch"])


def test_the_data_are_the_folders_images_and_matching_channels_keep_the_identity_loss(folders, tmp_path):
    from pix2gan.tasks import build_task

    a, b = folders
    cfg = RunConfig.from_options("unpaired", data=str(a), data_b=str(b), src="horse", dst="zebra", image_size=32)
    task = build_task(cfg, RunLayout(tmp_path / "r"), torch.device("cpu"), check_new=lambda: None)
    expected = load_image_folder(a, image_size=32, labelled=False).images
    assert torch.equal(task.dataset.a, expected) and task.dataset.b.shape == (6, 1, 32, 32)
    assert (task.split, task.objective.identity) == ({}, False)
    rgb = RunConfig.from_options("unpaired", data=str(a), data_b=str(a.parent / "b"), image_size=32)
    (a.parent / "b").mkdir()
    Image.open(a / "circle0.png").save(a.parent / "b" / "x.png")
    both = build_task(rgb, RunLayout(tmp_path / "s"), torch.device("cpu"), check_new=lambda: None)
    assert (rgb.data.src, rgb.data.dst, rgb.model.out_channels, both.objective.identity) == ("circles", "b", 3, True)


def test_resume_is_bit_identical(image_run: Path, tmp_path: Path):
    """Stopped after step 8 (in epoch 2, the pools of 4 full and drawing), resumed: the run of 12 steps, bit for bit."""
    copy = run_at_step(image_run, tmp_path / "run", 8)
    resume_run(copy, progress=False)
    assert_identical(final_state(copy), final_state(image_run))
    pools = [torch.load(RunLayout(r).latest, weights_only=True)["objective_state"] for r in (copy, image_run)]
    assert_identical(pools[0], pools[1], "objective_state")


def test_panel_shows_both_cycles_as_computed_directly(image_run: Path, folders):
    nets = load_checkpoint(RunLayout(image_run).latest).generator()
    a = load_image_folder(folders[0], image_size=32, labelled=False).images[:2]
    b = load_image_folder(folders[1], image_size=32, labelled=False).images[:1]
    row_a, row_b = cycle_images(nets, a, b, torch.device("cpu"))
    assert row_a.shape == (6, 3, 32, 32) and row_b.shape == (3, 3, 32, 32)
    with torch.no_grad():
        fake_b, fake_a = nets.g_ab(a), nets.g_ba(b)
        expected_a = torch.stack([a, fake_b.expand(-1, 3, -1, -1), nets.g_ba(fake_b)], 1).flatten(0, 1)
        gray = (b, nets.g_ab(fake_a))  # (1, 1, 32, 32) each, shown with 3 equal channels
        expected_b = torch.cat([gray[0].expand(-1, 3, -1, -1), fake_a, gray[1].expand(-1, 3, -1, -1)])
    np.testing.assert_array_equal(row_a, expected_a.numpy())
    np.testing.assert_array_equal(row_b, expected_b.numpy())


def test_translate_writes_an_8_bit_png_as_g_ab_computes_it(image_run: Path, folders, tmp_path: Path):
    """An image of the training size goes through G_ab unresized: the PNG is its output in [0, 255], exactly."""
    src = folders[0] / "circle3.png"
    out = tmp_path / "zebra.png"
    result = cli("translate", src, "--run", image_run, "--output", out)
    assert result.exit_code == 0, result.output
    png = Image.open(out)
    assert (png.mode, png.size) == ("L", (32, 32))  # the target's one channel, the input's size
    x = torch.from_numpy(np.asarray(Image.open(src), np.float32) / 255 * 2 - 1).permute(2, 0, 1)[None]
    with torch.no_grad():
        y = load_checkpoint(RunLayout(image_run).best).generator().g_ab(x)[0, 0].numpy()
    expected = np.rint(np.clip((y + 1) / 2, 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(png), expected)


@pytest.mark.parametrize("reverse", [False, True])
def test_translate_any_size_both_ways_into_a_png_of_that_size(image_run: Path, tmp_path: Path, reverse: bool):
    """A 45 x 30 image (neither square nor the training size) and a folder of them; --reverse uses G_ba."""
    rng = np.random.default_rng(1)
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("p.png", "q.jpg"):
        shape = (30, 45) if reverse else (30, 45, 3)  # (a squares-like gray input for G_ba, RGB for G_ab)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / name)
    direction = ["--reverse"] if reverse else []
    result = cli("translate", folder, "--run", image_run, *direction)  # (a folder: <folder>_<dst>/<name>.png)
    assert result.exit_code == 0, result.output
    outputs = sorted((tmp_path / f"in_{'circles' if reverse else 'squares'}").iterdir())
    assert [p.name for p in outputs] == ["p.png", "q.png"]
    assert cli("translate", folder / "p.png", "--run", image_run, *direction).exit_code == 0
    single = folder / f"p_{'circles' if reverse else 'squares'}.png"  # (a file: <name>_<dst>.png beside it)
    for path in (single, *outputs):
        png = Image.open(path)
        assert (png.mode, png.size) == ("RGB" if reverse else "L", (45, 30))
        assert np.asarray(png).dtype == np.uint8
    translator = ImageTranslator.from_checkpoint(RunLayout(image_run).best, device="cpu", reverse=reverse)
    direct = translator.translate_array(np.asarray(Image.open(folder / "p.png"), np.float32) / 255)
    np.testing.assert_array_equal(np.asarray(Image.open(single)), direct)
    np.testing.assert_array_equal(np.asarray(Image.open(outputs[0])), direct)


def test_bad_image_folders_one_line_each_nothing_written(folders, tmp_path: Path):
    a, _ = folders
    run = tmp_path / "run"

    def train(*args: object):  # noqa: ANN202
        return cli("train", *args, *TINY, "--run-dir", run)

    assert_one_clear_line(train("--mode", "unpaired", "--data", a, "--data-b", tmp_path / "nope"),
                          f"{tmp_path / 'nope'}: data folder not found")  # fmt: skip
    (tmp_path / "empty").mkdir()
    assert_one_clear_line(train("--mode", "unpaired", "--data", a, "--data-b", tmp_path / "empty"),
                          "empty: no PNG, JPEG or BMP images found")  # fmt: skip
    broken = tmp_path / "broken"
    broken.mkdir()
    Image.new("L", (8, 8)).save(broken / "fine.png")
    (broken / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    assert_one_clear_line(train("--mode", "unpaired", "--data", a, "--data-b", broken),
                          f"{broken / 'bad.png'}: cannot read image")  # fmt: skip
    assert_one_clear_line(train("--mode", "paired", "--data", a, "--data-b", broken),
                          "--data-b (image folder B) goes with --mode unpaired, not --mode paired")  # fmt: skip
    assert_one_clear_line(train("--mode", "unpaired", "--data-b", broken), "--data-b (image folder B) needs --data")
    assert_one_clear_line(train("--mode", "unpaired", "--data", a, "--data-b", broken, "--src", "x", "--dst", "x"),
                          "--src and --dst are both 'x'")  # fmt: skip
    assert_one_clear_line(train("--mode", "unpaired", "--data", a, "--data-b", folders[1], "--lambda-identity", "0.5"),
                          "--lambda-identity 0.5: the identity loss maps each side onto itself, but the source has 3 "
                          "channels and the target 1")  # fmt: skip
    assert not run.exists()


def test_translate_refuses_in_one_line(image_run: Path, tiny_run: Path, folders, tmp_path: Path):
    png = folders[0] / "circle0.png"
    assert_one_clear_line(cli("translate", png, "--run", tiny_run),
                          "circle0.png: a 2-D image; this model translates volumes")  # fmt: skip
    assert_one_clear_line(cli("translate", folders[0], "--run", tiny_run),
                          "its 2-D images go to a run trained on two image folders")  # fmt: skip
    volume = tmp_path / "t1.nii.gz"
    volume.write_bytes(b"")
    assert_one_clear_line(cli("translate", volume, "--run", image_run), "t1.nii.gz: not a PNG, JPEG or BMP image")
    assert_one_clear_line(cli("translate", png, "--run", image_run, "--uncertainty"), "--uncertainty applies to volumes")
    assert_one_clear_line(cli("translate", png, "--run", image_run, "-o", tmp_path / "x.jpg"), "name it .png")
    assert_one_clear_line(cli("translate", png, "--run", image_run, "--run", tiny_run), "give it alone")
    assert_one_clear_line(cli("eval", "--run", image_run), "no held-out subjects")
    assert list(tmp_path.iterdir()) == [volume]


def test_an_undecodable_image_among_several_is_named_and_skipped(image_run: Path, folders, tmp_path: Path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.open(folders[0] / "circle1.png").save(folder / "good.png")
    (folder / "bad.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    result = cli("translate", folder, "--run", image_run)
    assert result.exit_code == 2
    assert f"error: {folder / 'bad.jpg'}: cannot read image" in " ".join(result.output.split())
    assert sorted(p.name for p in (tmp_path / "in_squares").iterdir()) == ["good.png"]  # (nothing left of bad.jpg)


# --- report, sample and export of an image-folder run --------------------------------------------------------------


def test_report_shows_the_two_folders_not_subjects_or_slices(image_run: Path, folders):
    from pix2gan.reporting import render_html_report

    text = render_html_report(image_run)
    a, b = (str(f.resolve()) for f in folders)
    for expected in (f"A (circles): {a}, 6 RGB images", f"B (squares): {b}, 6 grayscale images",
                     "G_ab: circles → squares, G_ba: squares → circles (2-D images, 32 × 32)",
                     "G_ab 3 → 1 channels, G_ba 1 → 3", "2 × patchgan discriminator (D_a, D_b",
                     "λ cycle 10.0 each way, identity off (3 vs 1 channels), history pool 4",
                     "no held-out subjects: best.pt follows the training cycle loss", "eval does not apply",
                     "panels/epoch_001.png", "panels/epoch_002.png", "loss_curve.png"):  # fmt: skip
        assert expected in text, expected
    for volume_text in ("(mask:", "planes:", "not evaluated yet", "fixed latent vectors", "dcgan generator"):
        assert volume_text not in text, volume_text
    with open(image_run / "epochs.csv") as fh:
        rows = list(csv.DictReader(fh))
    cycles = [float(r["loss_g_cycle_a"]) + float(r["loss_g_cycle_b"]) for r in rows]
    best = int(np.argmin(cycles))
    assert f"{cycles[best]:.4g}" in text and f"lowest training cycle loss (a + b), epoch {rows[best]['epoch']}" in text


def test_sample_draws_the_first_images_of_each_folder_through_both_cycles(image_run: Path, folders, tmp_path: Path):
    """The PNG is the grid of a | G_ab(a) | G_ba(G_ab(a)) for the first 3 circles and b | G_ba(b) | G_ab(G_ba(b)) for
    the first 3 squares, computed here directly with best.pt's generators."""
    from pix2gan.reporting.grids import compose_grid

    out = tmp_path / "cycle.png"
    result = cli("sample", "--run", image_run, "-o", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    nets = load_checkpoint(RunLayout(image_run).best).generator().eval()
    a = load_image_folder(folders[0], image_size=32, labelled=False).images[:3]  # circle0..2, as training read them
    b = load_image_folder(folders[1], image_size=32, labelled=False).images[:3]
    with torch.no_grad():
        fake_b, fake_a = nets.g_ab(a), nets.g_ba(b)
        rgb = [x.expand(-1, 3, -1, -1) for x in (fake_b, b, nets.g_ab(fake_a))]
        columns = ((a, rgb[0], nets.g_ba(fake_b)), (rgb[1], fake_a, rgb[2]))  # (each image's row: its three columns)
        rows = [torch.stack(cols, 1).flatten(0, 1) for cols in columns]
    labels = [f"circle{i} a>b>a" for i in range(3)] + [f"square{i} b>a>b" for i in range(3)]
    expected = compose_grid(torch.cat(rows).numpy(), 3, row_labels=labels)
    np.testing.assert_array_equal(np.asarray(Image.open(out)), np.asarray(expected))
    assert_one_clear_line(cli("sample", "--run", image_run, "-o", out), "cycle.png")  # (exists: not replaced)


def test_sample_refuses_a_missing_folder_in_one_line(image_run: Path, tmp_path: Path):
    import dataclasses

    from pix2gan.errors import InputError
    from pix2gan.infer.images import image_cycle_panel

    ckpt = load_checkpoint(RunLayout(image_run).best)
    gone = tmp_path / "moved"
    ckpt.config = dataclasses.replace(ckpt.config, data=dataclasses.replace(ckpt.config.data, data_b=str(gone)))
    with pytest.raises(InputError, match=f"^{gone}: image folder of the run not found$"):
        image_cycle_panel(ckpt, tmp_path / "p.png", device="cpu")
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize(("fmt", "reverse"), [("onnx", False), ("pt2", True)])
def test_export_translates_images_as_the_checkpoint_does(image_run: Path, tmp_path: Path, fmt: str, reverse: bool):
    """export (G_ab to ONNX, G_ba to .pt2 with --reverse), then translate IMAGE --model: the PNG of the checkpoint's
    ImageTranslator, up to the rounding of a few pixels (the export is checked to 1e-4 in [-1, 1])."""
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    from pix2gan.infer.exported import load_exported

    model = tmp_path / f"g.{fmt}"
    direction = ["--reverse"] if reverse else []
    result = cli("export", "--run", image_run, "-o", model, *direction)
    assert result.exit_code == 0, result.output
    meta = load_exported(model, device="cpu").metadata
    assert (meta.source["generator"], meta.src_map, meta.dst_map) == ("G_ba" if reverse else "G_ab", None, None)
    expected = (1, 3, "squares") if reverse else (3, 1, "circles")
    assert (meta.in_channels, meta.out_channels, meta.config.data.src) == expected
    rng = np.random.default_rng(2)
    image = tmp_path / "in.png"
    Image.fromarray(rng.integers(0, 256, (30, 45) if reverse else (30, 45, 3), dtype=np.uint8)).save(image)
    out = tmp_path / "out.png"
    result = cli("translate", image, "--model", model, "-o", out, *direction, "--device", "cpu")
    assert result.exit_code == 0, result.output
    translator = ImageTranslator.from_checkpoint(RunLayout(image_run).best, device="cpu", reverse=reverse)
    direct = translator.translate_array(np.asarray(Image.open(image), np.float32) / 255)
    got = np.asarray(Image.open(out))
    assert got.shape == direct.shape == ((30, 45, 3) if reverse else (30, 45))
    diff = np.abs(got.astype(int) - direct.astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99


def test_image_exports_refuse_in_one_line(image_run: Path, tiny_run: Path, folders, tmp_path: Path):
    from pix2gan.errors import InputError
    from pix2gan.infer.translate import Translator

    model = tmp_path / "g.pt2"
    assert cli("export", "--run", image_run, "-o", model).exit_code == 0
    png = folders[0] / "circle0.png"
    assert_one_clear_line(cli("translate", png, "--model", model, "--reverse"), "g.pt2: --reverse: this exported model "
                          "translates circles -> squares, not with G_ba; export the run with --reverse")  # fmt: skip
    assert_one_clear_line(cli("translate", png, "--model", model, "--run", tiny_run), "give it alone")
    volume = tmp_path / "t1.nii.gz"
    volume.write_bytes(b"")
    assert_one_clear_line(cli("translate", volume, "--model", model), "t1.nii.gz: not a PNG, JPEG or BMP image")
    with pytest.raises(InputError, match="exported from a run trained on two image folders: it translates 2-D images"):
        Translator.from_exported(model, device="cpu")
    assert_one_clear_line(cli("export", "--run", image_run, "-o", model), "g.pt2")  # (exists: not replaced)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.pt2", "t1.nii.gz"]
