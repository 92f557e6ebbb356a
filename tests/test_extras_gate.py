"""tests/extras_gate.py: under PIX2GAN_REQUIRE_EXTRAS a skip for a required extra fails; other skips stay skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SKIPPING = '''
import pytest

def test_onnx_call():
    pytest.skip("needs pip install 'pix2gan[onnx]'")

@pytest.mark.skipif(True, reason="needs pip install 'pix2gan[onnx]'")
def test_onnx_mark():
    pass

def test_tensorboard_import():
    pytest.importorskip("no_such_module_here", reason="needs pip install 'pix2gan[tensorboard]'")

@pytest.mark.skipif(True, reason="needs CUDA")
def test_cuda():
    pass
'''
MODULE_SKIP = '''
import pytest

pytest.importorskip("no_such_module_here", reason="needs pip install 'pix2gan[onnx]'")

def test_never_collected():
    pass
'''


def run_pytest(folder: Path, require: str | None) -> str:
    """Run pytest with only the extras gate on ``folder``'s tests; returns its summary line."""
    (folder / "pytest.ini").write_text("[pytest]\n")  # not the project's settings
    env = {k: v for k, v in os.environ.items() if k != "PIX2GAN_REQUIRE_EXTRAS"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    if require is not None:
        env["PIX2GAN_REQUIRE_EXTRAS"] = require
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfs", "-p", "extras_gate", "-p", "no:cacheprovider",
                           str(folder)], cwd=folder, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    return done.stdout


@pytest.mark.parametrize(
    ("require", "summary"),
    [
        (None, "4 skipped"),
        ("", "4 skipped"),
        ("onnx", "1 failed, 2 skipped, 1 error"),  # a skipif mark skips in setup: its failure is an error
        ("onnx,tensorboard", "2 failed, 1 skipped, 1 error"),
        ("tensorboard", "1 failed, 3 skipped"),
    ],
)
def test_skips_of_required_extras_fail(tmp_path, require, summary):
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    out = run_pytest(tmp_path, require)
    assert summary in out, out
    if require:
        assert "skipped, but PIX2GAN_REQUIRE_EXTRAS requires" in out, out
    assert "SKIPPED [1] test_skipping.py" in out and "needs CUDA" in out, out  # -rs: the reason of what still skips


@pytest.mark.parametrize(("require", "summary"), [(None, "1 skipped"), ("onnx,tensorboard", "1 error")])
def test_a_module_skipped_for_a_required_extra_fails(tmp_path, require, summary):
    (tmp_path / "test_module_skip.py").write_text(MODULE_SKIP)
    out = run_pytest(tmp_path, require)
    assert summary in out, out
