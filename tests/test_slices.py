import numpy as np
import pytest
import torch

import pix2gan.data.subjects as subjects_mod
from pix2gan.config import DataConfig
from pix2gan.data.intensity import intensity_maps
from pix2gan.data.slices import PairedSlices, SliceCache, from_slices, pad_to, to_slices
from pix2gan.data.subjects import find_subjects


def make_cache(root, **cfg):
    dc = DataConfig(root=str(root), **cfg)
    subjects = find_subjects(root, [dc.src, dc.dst], [dc.mask])
    return SliceCache(subjects, dc, *intensity_maps(dc)), subjects


def test_each_volume_decoded_once(tiny_data, monkeypatch):
    calls = []
    real = subjects_mod.load_volume
    monkeypatch.setattr(subjects_mod, "load_volume", lambda p, **k: calls.append(p) or real(p, **k))
    cache, subjects = make_cache(tiny_data)
    assert len(calls) == 3 * len(subjects)  # t1, ct, mask once each
    ds = PairedSlices(cache, 32, train=True, with_mask=True)
    for i in range(len(ds)):
        ds[i]
    for i in range(len(ds)):
        ds[i]  # a second epoch reads nothing from disk either
    assert len(calls) == 3 * len(subjects)


def test_cache_contents(tiny_data):
    cache, subjects = make_cache(tiny_data)
    s = cache.subjects[0]
    assert s.src.shape == s.dst.shape == s.mask.shape == (9, 32, 32)  # (N slices along axis 2, H, W)
    assert s.src.dtype == torch.float32 and s.mask.dtype == torch.bool
    assert s.src.min() >= -1 and s.src.max() <= 1 and s.dst.min() >= -1 and s.dst.max() <= 1
    assert s.dst_scale == (-1024.0, 3000.0)
    assert len(cache) == 9 * len(subjects)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_slice_axis_round_trip(axis):
    vol = np.random.default_rng(0).normal(size=(5, 6, 7))
    sl = to_slices(vol, axis)
    assert sl.shape[0] == vol.shape[axis] and sl.flags.c_contiguous
    np.testing.assert_array_equal(from_slices(sl, axis), vol)


def test_pad_to_is_symmetric_and_reports_padding():
    x = torch.zeros(1, 5, 6)
    y, pad = pad_to(x, 8, 9, value=-1.0)
    assert y.shape == (1, 8, 9) and pad == (1, 2, 1, 2)
    assert y[0, 0, 0] == -1 and y[0, 1, 1] == 0
    assert pad_to(x, 4, 4, 0.0)[0].shape == (1, 5, 6)  # never crops


def test_paired_crops_stay_aligned_and_pad_with_background(tiny_data):
    cache, _ = make_cache(tiny_data)
    torch.manual_seed(0)
    ds = PairedSlices(cache, 48, train=True, flip=True, with_mask=True)  # larger than the 32x32 slices: padded
    item = ds[3]
    assert item["src"].shape == item["dst"].shape == item["mask"].shape == (1, 48, 48)
    assert item["src"][0, 0, 0] == -1 and item["dst"][0, 0, 0] == -1 and not item["mask"][0, 0, 0]
    # source and target were cropped and flipped together: the head outline matches
    head_src = item["src"][0] > -0.9
    head_dst = item["dst"][0] > -0.8
    assert (head_src ^ head_dst).float().mean() < 0.05


def test_foreground_filter(tiny_data):
    cache, _ = make_cache(tiny_data)
    assert len(PairedSlices(cache, 32, train=False, min_foreground=0.0)) == len(cache)
    strict = PairedSlices(cache, 32, train=False, min_foreground=0.3, with_mask=True)
    assert 0 < len(strict) < len(cache)
