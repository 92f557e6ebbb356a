import json

import pytest
import torch

from pix2gan.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint

from pix2gan.runs import RunLayout, find_latest_run, resolve_checkpoint
from pix2gan.config import Mode
from pix2gan.errors import InputError


def test_run_folder_has_everything(tiny_run):
    layout = RunLayout(tiny_run)
    for path in (layout.config, layout.split, layout.log, layout.epochs, layout.loss_curve, layout.latest, layout.best):
        assert path.is_file(), path
    assert sorted(p.name for p in layout.panels.iterdir()) == ["epoch_001.png", "epoch_002.png"]
    split = json.loads(layout.split.read_text())
    assert set(split) == {"train", "val", "test"} and len(split["test"]) == 1
    assert not [p for p in tiny_run.rglob(".*")]  # no temporary files left behind


def test_checkpoint_is_plain_and_complete(tiny_run):
    raw = torch.load(RunLayout(tiny_run).latest, weights_only=True)
    assert raw["format"] == "pix2gan-checkpoint" and raw["format_version"] == FORMAT_VERSION
    assert raw["mode"] == "paired" and raw["epoch"] == 2
    for key in ("generator", "discriminator", "opt_g", "opt_d", "sched_g", "sched_d", "pix2gan_version"):
        assert key in raw
    config = json.loads(raw["config"])
    assert config["model"]["depth"] == 3 and config["data"]["src"] == "t1"
    assert json.loads(raw["intensity"])["dst"]["kind"] == "hu"
    ckpt = load_checkpoint(RunLayout(tiny_run).latest, expect_mode=Mode.PAIRED)
    assert ckpt.config.train.epochs == 2 and ckpt.dst_map.window == (-1024.0, 3000.0)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_pickle_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": "pix2gan-checkpoint", "payload": _Evil(str(marker))}, path)
    with pytest.raises(InputError, match=r"evil\.pt: refused to load"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "truncated or corrupt"),
        (b"not a checkpoint at all", "truncated or corrupt"),
    ],
)
def test_corrupt_files(tmp_path, content, message):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_checkpoint(path)


def test_truncated_checkpoint(tiny_run, tmp_path):
    data = RunLayout(tiny_run).latest.read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut\.pt: not a readable checkpoint"):
        load_checkpoint(path)


def test_foreign_newer_and_other_mode(tiny_run, tmp_path):
    torch.save({"state_dict": {"w": torch.zeros(2)}}, tmp_path / "foreign.pt")
    with pytest.raises(InputError, match="not a pix2gan checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    raw = torch.load(RunLayout(tiny_run).latest, weights_only=True)
    save_checkpoint(tmp_path / "newer.pt", {k: v for k, v in raw.items() if k not in ("format", "format_version", "pix2gan_version")})
    newer = torch.load(tmp_path / "newer.pt", weights_only=True)
    newer["format_version"] = FORMAT_VERSION + 1
    torch.save(newer, tmp_path / "newer.pt")
    with pytest.raises(InputError, match="newer than this pix2gan"):
        load_checkpoint(tmp_path / "newer.pt")
    other = dict(raw)
    config = json.loads(other["config"])
    config["train"]["mode"] = "paired"
    other["config"] = json.dumps(config)
    torch.save(other, tmp_path / "ok.pt")
    assert load_checkpoint(tmp_path / "ok.pt", expect_mode=Mode.PAIRED).mode == Mode.PAIRED
    config["train"]["mode"] = "noise"
    other["config"] = json.dumps(config)
    torch.save(other, tmp_path / "noise.pt")
    with pytest.raises(InputError, match="noise"):
        load_checkpoint(tmp_path / "noise.pt", expect_mode=Mode.PAIRED)


def test_atomic_save_keeps_previous_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "latest.pt"
    save_checkpoint(path, {"mode": "paired", "step": 1})
    before = path.read_bytes()

    def broken_save(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint(path, {"mode": "paired", "step": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]


def test_resolve_checkpoint(tiny_run, tmp_path):
    assert resolve_checkpoint(tiny_run) == RunLayout(tiny_run).best
    assert resolve_checkpoint(None, tmp_path / "x.pt") == tmp_path / "x.pt"
    assert find_latest_run(tiny_run.parent) == tiny_run
    with pytest.raises(InputError, match="no trained run"):
        find_latest_run(tmp_path)
    with pytest.raises(InputError, match="run folder not found"):
        resolve_checkpoint(tmp_path / "missing")


def test_loaded_checkpoint_require(tiny_run):
    ckpt = load_checkpoint(RunLayout(tiny_run).latest)
    assert ckpt.require(Mode.PAIRED) is ckpt
    with pytest.raises(InputError, match="paired-mode run; this command needs a noise-mode model"):
        ckpt.require(Mode.NOISE)
