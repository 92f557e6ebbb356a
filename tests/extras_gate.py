"""A pytest plugin (loaded by conftest.py): skips for a missing optional extra become failures where the extra must be
there.

A test that needs an extra skips with a reason naming it the way users install it, e.g. ``needs pip install
'pix2gan[onnx]'``. ``PIX2GAN_REQUIRE_EXTRAS`` lists extras (``onnx,tensorboard``) whose tests must run: such a skip is
then reported as a failure. ``make test`` sets it under CI (``CI=true``) to the extras it installs, so CI cannot pass
with a feature untested because its extra did not install; skips for things a machine may lack (CUDA, torchvision,
running as root) stay skips.
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator

import pytest

__all__ = ["pytest_make_collect_report", "pytest_runtest_makereport", "required_extras"]

_EXTRA_IN_REASON = re.compile(r"pix2gan\[([\w,-]+)\]")


def required_extras() -> set[str]:
    """The extras named by ``PIX2GAN_REQUIRE_EXTRAS`` (comma separated; empty or unset: none)."""
    return {name.strip() for name in os.environ.get("PIX2GAN_REQUIRE_EXTRAS", "").split(",") if name.strip()}


def _fail_if_required(report: pytest.CollectReport | pytest.TestReport) -> None:
    """Turn ``report``, when it is a skip whose reason names a required extra, into a failure saying so."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    named = {e for group in _EXTRA_IN_REASON.findall(reason) for e in group.split(",")}
    missing = sorted(named & required_extras())
    if missing:
        report.outcome = "failed"
        report.longrepr = (f"skipped, but PIX2GAN_REQUIRE_EXTRAS requires {', '.join(missing)} "
                           f"(installed by make test): {reason}")  # fmt: skip


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator[None, None, None]:
    outcome = yield
    _fail_if_required(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, None, None]:
    outcome = yield
    _fail_if_required(outcome.get_result())
