import numpy as np
import pytest
import torch

import pix2gan.data.subjects as subjects_mod
from pix2gan.config import DataConfig
from pix2gan.data.intensity import intensity_maps
from pix2gan.data.planes import context_stack
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


# --------------------------------------------------------------------------------------------------------------------
# 2.5-D context stacks and anatomical planes
# --------------------------------------------------------------------------------------------------------------------
def test_context_stack_repeats_the_end_slices():
    n, k2 = 6, 2
    vol = torch.arange(float(n))[:, None, None].expand(n, 3, 4)  # slice k holds the value k
    assert context_stack(vol, 0, k2)[:, 0, 0].tolist() == [0, 0, 0, 1, 2]
    assert context_stack(vol, 1, k2)[:, 0, 0].tolist() == [0, 0, 1, 2, 3]
    assert context_stack(vol, 3, k2)[:, 0, 0].tolist() == [1, 2, 3, 4, 5]
    assert context_stack(vol, n - 1, k2)[:, 0, 0].tolist() == [3, 4, 5, 5, 5]
    batch = context_stack(vol, [0, 1, n - 1], k2)
    assert batch.shape == (3, 5, 3, 4)
    assert batch[..., 1, 2].tolist() == [[0, 0, 0, 1, 2], [0, 0, 1, 2, 3], [3, 4, 5, 5, 5]]
    assert context_stack(vol, [2], 0).shape == (1, 1, 3, 4)  # no context: the slice alone
    assert context_stack(torch.zeros(1, 2, 2), 0, 3).shape == (7, 2, 2)  # one slice: repeated on both sides


def test_paired_items_carry_the_context_and_the_centre_target(tiny_data):
    cache, _ = make_cache(tiny_data)
    ds = PairedSlices(cache, 32, train=False, context=2, with_mask=True)
    s = cache.subjects[0]
    n = s.src.shape[0]
    assert n == 9
    for k in (0, 1, 4, n - 1):
        i = ds.pairs.index((0, 0, k))
        item = ds[i]
        assert item["src"].shape == (5, 32, 32) and item["dst"].shape == item["mask"].shape == (1, 32, 32)
        for c, o in enumerate(range(-2, 3)):
            neighbour = s.src[min(max(k + o, 0), n - 1)]
            assert torch.equal(item["src"][c], neighbour + 1.0 - 1.0), (k, o)  # shifted before padding, as always
        assert torch.equal(item["src"][2], s.src[k] + 1.0 - 1.0)  # the centre channel is the slice itself
        assert torch.equal(item["dst"][0], s.dst[k] + 1.0 - 1.0)  # the target is the centre slice's
        assert torch.equal(item["mask"][0], s.mask[k])
    # the first and last slices repeat themselves as their missing neighbours
    first, last = ds[ds.pairs.index((0, 0, 0))]["src"], ds[ds.pairs.index((0, 0, n - 1))]["src"]
    assert torch.equal(first[0], first[2]) and torch.equal(first[1], first[2])
    assert torch.equal(last[3], last[2]) and torch.equal(last[4], last[2])
    assert not torch.equal(first[3], first[2])  # real neighbours differ


@pytest.mark.parametrize("flip", [True, False])
def test_device_crops_with_context_and_planes_equal_cpu_crops(tiny_data, flip):
    """Axial (32 x 32) and coronal (32 x 9) slices on one canvas, 5-channel sources, masks: bit for bit."""
    from torch.utils.data import default_collate

    from pix2gan.data.device_crop import crop_batch

    cache, _ = make_cache(tiny_data, planes=("axial", "coronal"))
    size = 16
    cpu = PairedSlices(cache, size, train=True, flip=flip, with_mask=True, context=2)
    dev = PairedSlices(cache, size, train=True, flip=flip, with_mask=True, context=2, crop_on_device=True)
    assert dev.canvas == (32, 32)
    g = torch.Generator().manual_seed(0)
    ks = list(zip(torch.randint(0, len(cpu), (40,), generator=g).tolist(),
                  torch.randint(0, 2**62, (40,), generator=g).tolist(), strict=True))  # fmt: skip
    assert {cpu.pairs[i][1] for i, _ in ks} == {0, 1}  # both planes drawn
    out = crop_batch(default_collate([dev[k] for k in ks]), size)
    ref = default_collate([cpu[k] for k in ks])
    assert out.keys() == ref.keys() == {"src", "dst", "mask"}
    assert ref["src"].shape == (40, 5, size, size) and ref["dst"].shape == ref["mask"].shape == (40, 1, size, size)
    for key in ("src", "dst", "mask"):
        assert out[key].dtype == ref[key].dtype and out[key].shape == ref[key].shape
        assert torch.equal(out[key], ref[key]), key


# Array axis 0 runs inferior, 1 left, 2 anterior: axial slices along axis 0, coronal along 2, sagittal along 1.
ILA = np.array([[0.0, -1.2, 0.0, 10.0], [0.0, 0.0, 0.8, -5.0], [-2.5, 0.0, 0.0, 3.0], [0.0, 0.0, 0.0, 1.0]])
# Array axis 0 runs left, 1 inferior, 2 posterior: axial along 1, coronal along 2, sagittal along 0.
LIP = np.array([[-0.9, 0.0, 0.0, 1.0], [0.0, 0.0, -1.1, 2.0], [0.0, -3.0, 0.0, -4.0], [0.0, 0.0, 0.0, 1.0]])


@pytest.mark.parametrize(("affine", "axes", "flips"), [(ILA, (0, 2, 1), (True, False, False)),
                                                        (LIP, (1, 2, 0), (True, True, False))])  # fmt: skip
def test_planes_follow_the_affine_and_sagittal_slices_are_never_flipped(tmp_path, affine, axes, flips):
    from helpers import write_nifti

    from pix2gan.data.planes import lr_axis, plane_axes

    shape = (5, 7, 6)
    i, j, k = np.meshgrid(*(np.arange(s) for s in shape), indexing="ij")
    t1 = (100.0 * i + 10.0 * j + k + 1.0).astype(np.float32)  # every voxel's value tells its array position
    ct = (t1 * 3.0 - 500.0).astype(np.float32)
    write_nifti(tmp_path / "sub" / "t1.nii.gz", t1, affine)
    write_nifti(tmp_path / "sub" / "ct.nii.gz", ct, affine)
    write_nifti(tmp_path / "sub" / "mask.nii.gz", np.ones(shape, np.uint8), affine)
    planes = ("axial", "coronal", "sagittal")
    assert plane_axes(affine, planes) == axes
    assert lr_axis(affine) == axes[2]  # the sagittal plane's normal is the left-right axis
    cache, _ = make_cache(tmp_path, planes=planes)
    s = cache.subjects[0]
    assert s.axes == axes and s.flips == flips and not s.flips[2]
    # each plane's slices are the volume's slices along that axis (normalised), in the volume's own order
    src_map, dst_map = intensity_maps(cache.cfg)
    norm_src = src_map.forward(t1, src_map.scale_of(t1))
    norm_dst = dst_map.forward(ct, dst_map.scale_of(ct))
    for axis in axes:
        src, dst, mask = s.along(axis)
        np.testing.assert_array_equal(src.numpy(), np.moveaxis(norm_src, axis, 0))
        np.testing.assert_array_equal(dst.numpy(), np.moveaxis(norm_dst, axis, 0))
        assert mask.shape == src.shape and bool(mask.all())
    # index() covers every slice of every plane once
    triples = cache.index()
    assert len(triples) == len(set(triples)) == sum(shape)
    for p, axis in enumerate(axes):
        assert sorted(k for _, q, k in triples if q == p) == list(range(shape[axis]))

    # behaviour: with random flips on, an item of a non-flipping plane is always its slice as it is; an item of a
    # flipping plane is sometimes mirrored along its rows (crops of 8 >= every side: the crop itself is fixed)
    ds = PairedSlices(cache, 8, train=True, flip=True)
    seen = {p: set() for p in range(3)}
    for idx, (_, p, k) in enumerate(ds.pairs):
        plain = pad_to(s.along(axes[p])[0][k][None] + 1.0, 8, 8, 0.0)[0] - 1.0
        for seed in range(12):
            got = ds[(idx, seed)]["src"]
            if torch.equal(got, plain):
                seen[p].add(False)
            else:
                assert torch.equal(got, plain.flip(-2)), (p, k, seed)
                seen[p].add(True)
    for p in range(3):
        assert seen[p] == ({False, True} if flips[p] else {False}), (p, seen[p])
