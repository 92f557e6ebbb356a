import numpy as np
import pytest

from pix2gan.config import DataConfig, IntensityKind
from pix2gan.data.intensity import IntensityMap, intensity_maps


@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.float64])
def test_hu_round_trip_inside_window(dtype):
    ct = IntensityMap(IntensityKind.HU)
    hu = np.arange(-1024, 3001, 7).astype(dtype)
    scale = ct.scale_of(hu)
    y = ct.forward(hu, scale)
    assert y.dtype == np.float32 and y.min() == -1.0 and y.max() <= 1.0
    np.testing.assert_allclose(ct.inverse(y, scale), hu, atol=1e-3)
    assert np.array_equal(np.rint(ct.inverse(y, scale)), hu.astype(np.float64))  # integer HU back exactly


def test_hu_clips_outside_window_and_is_volume_independent():
    ct = IntensityMap(IntensityKind.HU)
    assert ct.scale_of(np.array([0.0])) == ct.scale_of(np.array([-5000.0, 9000.0])) == (-1024.0, 3000.0)
    y = ct.forward(np.array([-3000.0, 5000.0]), ct.scale_of(np.zeros(1)))
    assert y.tolist() == [-1.0, 1.0]
    assert ct.inverse(y).tolist() == [-1024.0, 3000.0]


def test_percentile_round_trip():
    rng = np.random.default_rng(0)
    mr = rng.gamma(2.0, 150.0, (20, 20, 10)).astype(np.float32)
    m = IntensityMap(IntensityKind.PERCENTILE, percentiles=(0.5, 99.5))
    scale = m.scale_of(mr)
    lo, hi = np.percentile(mr, [0.5, 99.5])
    assert scale == pytest.approx((lo, hi))
    y = m.forward(mr, scale)
    assert y.min() == -1.0 and y.max() == 1.0
    inside = (mr >= lo) & (mr <= hi)
    np.testing.assert_allclose(m.inverse(y, scale)[inside], mr[inside], rtol=1e-5, atol=1e-3)


def test_percentile_is_scale_invariant():
    rng = np.random.default_rng(1)
    mr = rng.uniform(0, 1000, (10, 10, 10))
    m = IntensityMap(IntensityKind.PERCENTILE)
    np.testing.assert_allclose(m.forward(mr, m.scale_of(mr)), m.forward(mr * 3.7, m.scale_of(mr * 3.7)), atol=1e-5)


def test_constant_volume_is_refused():
    with pytest.raises(ValueError, match="constant"):
        IntensityMap(IntensityKind.PERCENTILE).scale_of(np.full((4, 4, 4), 7.0))


def test_generated_percentile_output_needs_reference():
    m = IntensityMap(IntensityKind.PERCENTILE)
    with pytest.raises(ValueError, match="reference"):
        m.inverse(np.zeros(3))
    ref = IntensityMap(IntensityKind.PERCENTILE, reference=(0.0, 800.0))
    assert ref.inverse(np.array([-1.0, 0.0, 1.0])).tolist() == [0.0, 400.0, 800.0]


def test_dict_round_trip_and_config_defaults():
    m = IntensityMap(IntensityKind.PERCENTILE, reference=(1.5, 9.0))
    assert IntensityMap.from_dict(m.to_dict()) == m
    src, dst = intensity_maps(DataConfig())
    assert src.kind == IntensityKind.PERCENTILE and dst.kind == IntensityKind.HU
    assert DataConfig.default_intensity("CT") == IntensityKind.HU
    assert DataConfig.default_intensity("t2") == IntensityKind.PERCENTILE
