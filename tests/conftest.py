"""Shared fixtures: a tiny generated paired data set and a tiny trained run (made once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from extras_gate import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401  (hooks: skips of extras)
from pix2gan.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from pix2gan.data.phantom import write_dataset

TINY_SIZE = 32


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 phantom subjects of 32 x 32 x 9 voxels: split 3 train / 1 val / 1 test."""
    root = tmp_path_factory.mktemp("data") / "phantoms"
    write_dataset(root, n_subjects=5, size=TINY_SIZE, seed=3)
    return root


def tiny_config(root: Path, **train: object) -> RunConfig:
    return RunConfig(
        data=DataConfig(root=str(root)),
        model=ModelConfig(depth=3, base_filters=4, disc_filters=4, disc_layers=2),
        train=TrainConfig(**{"epochs": 2, "batch_size": 4, "image_size": 32, "device": "cpu", "panel_slices": 2, **train}),
    )


@pytest.fixture(scope="session")
def tiny_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder trained for 2 epochs on ``tiny_data``."""
    from pix2gan.train import fit

    run = tmp_path_factory.mktemp("runs") / "tiny"
    fit(tiny_config(tiny_data), run, progress=False)
    return run


@pytest.fixture(scope="session")
def unpaired_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 phantoms of 32 x 32 voxels for unpaired runs: sub-001, sub-003 hold only T1, sub-002, sub-004 only CT,
    sub-005, sub-006 both (read only: a test that changes a subject copies it first)."""
    root = tmp_path_factory.mktemp("unpaired") / "data"
    write_dataset(root, n_subjects=6, size=32, seed=0, unpaired=True)
    return root
