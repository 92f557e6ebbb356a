"""Generative-model metrics on planted cases with known answers; the feature networks on easy synthetic images."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pix2gan.evaluation.distances import diversity, frechet_distance, kid
from pix2gan.evaluation.features import (
    SmallClassifier,
    _shift,
    class_consistency,
    extract_features,
    train_classifier,
    train_rotation_features,
)
from pix2gan.evaluation.inception import InceptionFeatures, load_inception
from pix2gan.errors import InputError

# ------------------------------------------------------------------------------------------------ Fréchet, KID, diversity


@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_frechet_identical_sets_is_zero(scale: float) -> None:
    feats = np.random.default_rng(0).normal(size=(400, 32)) * scale
    assert abs(frechet_distance(feats, feats)) < 1e-6 * scale**2
    assert frechet_distance(feats, feats) >= 0.0


def test_frechet_shifted_mean_is_squared_shift() -> None:
    rng = np.random.default_rng(1)
    shift = np.array([2.0, -1.0, 0.0, 1.0, 0.0, 0.0, 1.5, 0.5])  # ||shift||^2 = 8.5
    a, b = rng.normal(size=(4000, 8)), rng.normal(size=(4000, 8)) + shift
    assert frechet_distance(a, b) == pytest.approx(float(shift @ shift), rel=0.05)


def test_frechet_diagonal_covariances_closed_form() -> None:
    rng = np.random.default_rng(2)
    var_a, var_b = np.array([1.0, 4.0, 9.0, 0.25]), np.array([4.0, 1.0, 1.0, 1.0])
    a = rng.normal(size=(20000, 4)) * np.sqrt(var_a)
    b = rng.normal(size=(20000, 4)) * np.sqrt(var_b)
    expected = float(((np.sqrt(var_a) - np.sqrt(var_b)) ** 2).sum())  # 6.25
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.03)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)  # symmetric


def test_frechet_singular_covariance_is_finite() -> None:
    a = np.random.default_rng(3).normal(size=(5, 16))  # 5 samples in 16-D: rank-4 covariance
    d = frechet_distance(a, a[::-1] + 1.0)
    assert np.isfinite(d) and d == pytest.approx(16.0, rel=1e-6)  # same covariance, shift of 1 in 16 dims


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        (np.zeros((10, 4)), np.zeros((10, 5)), "feature sizes differ: 4 vs 5"),
        (np.zeros((1, 4)), np.zeros((10, 4)), r"N >= 2, got \(1, 4\)"),
        (np.zeros(10), np.zeros((10, 1)), r"got \(10,\)"),
        (np.full((3, 2), np.nan), np.zeros((3, 2)), "NaN"),
    ],
)
def test_frechet_and_kid_reject_bad_shapes(a: np.ndarray, b: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        frechet_distance(a, b)
    with pytest.raises(ValueError, match=match):
        kid(a, b)


def test_kid_identical_near_zero_and_shift_positive() -> None:
    rng = np.random.default_rng(4)
    a = rng.normal(size=(600, 16))
    same, other = kid(a, a, subset_size=200), kid(a, rng.normal(size=(600, 16)), subset_size=200)
    shifted = kid(a, a + 0.5, subset_size=200)
    assert abs(same) < 0.05 * shifted and abs(other) < 0.05 * shifted  # unbiased: ~ -O(1/m) for equal sets
    assert shifted > 0.1
    assert kid(a, a + 0.5, subset_size=200, seed=7) == kid(a, a + 0.5, subset_size=200, seed=7)  # deterministic


def test_kid_rejects_bad_settings() -> None:
    a = np.zeros((10, 2))
    with pytest.raises(ValueError, match="subsets must be at least 1, got 0"):
        kid(a, a, subsets=0)
    with pytest.raises(ValueError, match="subset_size must be at least 2, got 1"):
        kid(a, a, subset_size=1)


def test_diversity_collapsed_generator_far_below_real() -> None:
    rng = np.random.default_rng(5)
    real = rng.normal(size=(500, 32))
    collapsed = real[:1] + 1e-3 * rng.normal(size=(500, 32))  # every sample (almost) the same
    assert diversity(collapsed) < 0.1 * diversity(real)
    assert diversity(real, max_pairs=500, seed=1) == diversity(real, max_pairs=500, seed=1)  # deterministic
    assert diversity(real, max_pairs=5000) == pytest.approx(np.sqrt(2 * 32), rel=0.05)  # E|x - y| for N(0, I)


def test_diversity_exact_for_small_sets_and_checks_input() -> None:
    pts = np.array([[0.0], [1.0], [3.0]])  # pair distances 1, 3, 2
    assert diversity(pts) == pytest.approx(2.0)
    with pytest.raises(ValueError, match=r"N >= 2, got \(1, 3\)"):
        diversity(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="max_pairs must be at least 1, got 0"):
        diversity(pts, max_pairs=0)


# ------------------------------------------------------------------------------------------------------ the networks


def bars(n: int, seed: int, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 0: a bright horizontal bar, class 1: a vertical one, at random places on noise; in [-1, 1].

    The classes differ by content, not position: global average pooling makes a position-only task (a square at
    top-left vs bottom-right) learnable only through border effects.
    """
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    x = -0.8 + 0.3 * torch.randn(n, 1, size, size, generator=g)
    long, thick = size // 2, max(2, size // 8)
    for i, (r, c) in enumerate(torch.randint(0, size - long + 1, (n, 2), generator=g).tolist()):
        rows, cols = (
            (slice(r, r + thick), slice(c, c + long)) if labels[i] == 0 else (slice(r, r + long), slice(c, c + thick))
        )
        x[i, :, rows, cols] += 1.5
    return x.clamp(-1, 1), labels


@contextmanager
def one_thread() -> Iterator[None]:
    """These networks are tiny: with 2 (shared) cores, OpenMP hand-offs cost more than they save (2-6x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield


@pytest.fixture(scope="module")
def bars_classifier() -> tuple[SmallClassifier, float]:
    x, y = bars(320, seed=0)
    with one_thread():
        return train_classifier(x, y, 2, epochs=5, batch_size=32, width=8, seed=0)


@pytest.mark.parametrize("size", [28, 32, 64])
def test_small_classifier_shapes(size: int) -> None:
    net = SmallClassifier(in_channels=3, num_classes=5, width=8).eval()
    x = torch.rand(2, 3, size, size) * 2 - 1
    assert net.features(x).shape == (2, 4 * 8) and net(x).shape == (2, 5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"in_channels": 0, "num_classes": 2}, "in_channels"), ({"in_channels": 1, "num_classes": 1}, "num_classes"),
     ({"in_channels": 1, "num_classes": 2, "width": 3}, "width must be an even number >= 2, got 3")],
)  # fmt: skip
def test_small_classifier_rejects_bad_settings(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SmallClassifier(**kwargs)


def test_small_classifier_rejects_wrong_channels() -> None:
    with pytest.raises(ValueError, match=r"\(B, 1, S, S\), got \(2, 3, 32, 32\)"):
        SmallClassifier(1, 2, width=4).features(torch.zeros(2, 3, 32, 32))


def test_shift_is_a_translated_crop() -> None:
    x = torch.arange(2 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8)
    out = _shift(x, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="replicate")
    for b in range(2):
        crops = [padded[b, :, i : i + 8, j : j + 8] for i in range(5) for j in range(5)]
        assert any(torch.equal(out[b], c) for c in crops)


def test_classifier_learns_easy_task(bars_classifier: tuple[SmallClassifier, float]) -> None:
    net, acc = bars_classifier
    assert acc >= 0.95
    assert not net.training


def test_class_consistency_right_and_wrong_labels(bars_classifier: tuple[SmallClassifier, float]) -> None:
    net, _ = bars_classifier
    x, y = bars(100, seed=1)  # fresh "generated" images
    assert class_consistency(net, x, y) >= 0.95
    assert class_consistency(net, x, 1 - y) <= 0.05
    with pytest.raises(ValueError, match=r"labels must have shape \(100,\), got \(3,\)"):
        class_consistency(net, x, y[:3])


def test_classifier_features_see_collapse(bars_classifier: tuple[SmallClassifier, float]) -> None:
    net, _ = bars_classifier
    x, _ = bars(200, seed=2)
    collapsed = x[:1] + 0.01 * torch.randn(200, *x.shape[1:], generator=torch.Generator().manual_seed(0))
    real_f, fake_f = extract_features(net, x), extract_features(net, collapsed)
    assert real_f.shape == (200, 32) and real_f.dtype == np.float64
    assert diversity(fake_f) < 0.1 * diversity(real_f)
    assert frechet_distance(real_f, fake_f) > 10 * frechet_distance(real_f[:100], real_f[100:])


def test_training_is_seeded_and_leaves_global_rng_alone() -> None:
    x, y = bars(64, seed=3, size=16)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    (a, acc_a), (b, acc_b) = (train_classifier(x, y, 2, epochs=1, batch_size=16, width=4, seed=5) for _ in range(2))
    assert torch.equal(torch.get_rng_state(), before)
    assert acc_a == acc_b
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"holdout": 1.0}, r"holdout must be in \[0, 1\), got 1.0"), ({"epochs": 0}, "epochs must be at least 1, got 0"),
     ({"batch_size": 1}, "batch_size must be at least 2"), ({"lr": 0.0}, "lr must be positive, got 0.0")],
)  # fmt: skip
def test_train_classifier_rejects_bad_settings(kwargs: dict, match: str) -> None:
    x, y = bars(8, seed=0, size=8)
    with pytest.raises(ValueError, match=match):
        train_classifier(x, y, 2, **kwargs)


def test_train_classifier_rejects_bad_labels() -> None:
    x, y = bars(8, seed=0, size=8)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\), got range \[0, 2\]"):
        train_classifier(x, y * 2, 2)
    with pytest.raises(TypeError, match="integer classes"):
        train_classifier(x, y.float(), 2)
    with pytest.raises(ValueError, match=r"shape \(N, C, S, S\), got \(8, 1, 8, 4\)"):
        train_classifier(x[..., :4], y, 2)


def test_rotation_features_train_and_have_documented_size() -> None:
    x, _ = bars(64, seed=4)
    net = train_rotation_features(x, epochs=1, batch_size=32, width=8)
    assert net.num_classes == 4 and not net.training
    feats = extract_features(net, x, batch_size=20)
    assert feats.shape == (64, 4 * 8) and np.isfinite(feats).all()


# ------------------------------------------------------------------------------------------------------- InceptionV3


def test_load_inception_none_is_skip() -> None:
    assert load_inception(None) is None


def test_load_inception_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "inception.pth"
    with pytest.raises(InputError, match=re.escape(f"{path}: InceptionV3 weights not found")):
        load_inception(path)


def test_load_inception_without_torchvision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "inception.pth"
    path.write_bytes(b"not used")
    monkeypatch.setitem(sys.modules, "torchvision", None)  # makes `import torchvision` raise ImportError
    with pytest.raises(InputError, match="torchvision") as err:
        load_inception(path)
    assert str(path) in str(err.value) and "pip install torchvision" in str(err.value)
    assert "\n" not in str(err.value)


class _FakeInception(nn.Module):
    """Stands in for torchvision's Inception3: records its input; `fc` is replaced by identity."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(3, 2048)
        self.fc = nn.Linear(2048, 1000)
        self.seen: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = x
        return self.fc(self.body(x.mean(dim=(2, 3))))


def test_load_inception_with_stand_in_torchvision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []

    def inception_v3(**kwargs: object) -> _FakeInception:
        calls.append(kwargs)
        return _FakeInception()

    fake = types.ModuleType("torchvision")
    fake.models = types.SimpleNamespace(inception_v3=inception_v3)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    path = tmp_path / "inception.pth"
    torch.save(_FakeInception().state_dict(), path)

    model = load_inception(path)
    assert isinstance(model, InceptionFeatures) and not model.training
    assert calls[0]["weights"] is None and calls[0]["aux_logits"] is True and calls[0]["init_weights"] is False
    feats = extract_features(model, -torch.ones(3, 1, 28, 28))  # black gray images
    assert feats.shape == (3, 2048)
    seen = model.net.seen
    assert seen is not None and seen.shape == (3, 3, 299, 299)
    black = -torch.tensor(InceptionFeatures._MEAN) / torch.tensor(InceptionFeatures._STD)  # ImageNet-normalised 0
    assert torch.allclose(seen[:, :, 0, 0], black.expand(3, 3), atol=1e-6)

    (tmp_path / "bad.pth").write_bytes(b"garbage")
    with pytest.raises(InputError, match="bad.pth: not loadable InceptionV3 weights"):
        load_inception(tmp_path / "bad.pth")
