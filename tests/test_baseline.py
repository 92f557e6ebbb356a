import numpy as np
import pytest

from pix2gan.evaluation.baseline import LookupTable


def test_median_per_bin_minimises_l1():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 20000)
    y = np.where(x < 0, rng.choice([-1000.0, 1500.0], x.size, p=[0.3, 0.7]), 40.0) + rng.normal(0, 5, x.size)
    lut = LookupTable.fit([x], [y], bins=16)
    pred = lut.apply(x)
    assert np.median(pred[x < 0]) == pytest.approx(1500, abs=10)  # the bimodal bins take the majority mode
    assert np.median(pred[x > 0]) == pytest.approx(40, abs=2)
    base = np.abs(pred - y).mean()
    for shift in (-50.0, 50.0):  # moving the table off the medians only increases the L1 error
        assert np.abs(pred + shift - y).mean() > base


def test_empty_bins_take_the_nearest_value():
    lut = LookupTable.fit([np.array([-0.99, 0.99])], [np.array([1.0, 2.0])], bins=8)
    assert lut.apply(np.array([-1.0, -0.5, 0.4, 1.0])).tolist() == [1.0, 1.0, 2.0, 2.0]


def test_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="equally many"):
        LookupTable.fit([np.zeros(3)], [np.zeros(4)])
