"""Crops on the device: ``crop_batch`` of ``crop_on_device`` items equals the CPU-cropped items bit for bit."""

import numpy as np
import pytest
import torch
from helpers import write_nifti
from torch.utils.data import default_collate

from pix2gan.config import DataConfig
from pix2gan.data.batches import EpochBatchSampler
from pix2gan.data.device_crop import crop_batch
from pix2gan.data.intensity import intensity_maps
from pix2gan.data.slices import PairedSlices, SliceCache
from pix2gan.data.subjects import find_subjects

MIXED_SHAPES = [(30, 40, 3), (37, 25, 3), (20, 21, 2)]  # odd and even, taller and wider: uneven padding


def make_cache(root):
    dc = DataConfig(root=str(root))
    return SliceCache(find_subjects(root, [dc.src, dc.dst], [dc.mask]), dc, *intensity_maps(dc))


@pytest.fixture(scope="module")
def tiny_cache(tiny_data):
    return make_cache(tiny_data)


@pytest.fixture(scope="module")
def mixed_cache(tmp_path_factory):
    """Subjects of different in-plane sizes, with values near 0 (where (x + 1) - 1 != x in float32)."""
    root = tmp_path_factory.mktemp("mixed")
    rng = np.random.default_rng(0)
    for i, shape in enumerate(MIXED_SHAPES):
        folder = root / f"sub{i}"
        write_nifti(folder / "t1.nii.gz", rng.normal(500, 300, shape).astype(np.float32))
        write_nifti(folder / "ct.nii.gz", rng.normal(0, 500, shape).astype(np.float32))
        write_nifti(folder / "mask.nii.gz", (rng.random(shape) > 0.3).astype(np.uint8))
    return make_cache(root)


def keys(n_items, n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return list(zip(torch.randint(0, n_items, (n,), generator=g).tolist(),
                    torch.randint(0, 2**62, (n,), generator=g).tolist(), strict=True))  # fmt: skip


def check_equal(cache, size, flip, ks=None):
    cpu = PairedSlices(cache, size, train=True, flip=flip, with_mask=True)
    dev = PairedSlices(cache, size, train=True, flip=flip, crop_on_device=True, with_mask=True)
    ks = keys(len(cpu)) if ks is None else ks
    items = [dev[k] for k in ks]
    batch = default_collate(items)
    out = crop_batch(batch, size)
    ref = default_collate([cpu[k] for k in ks])
    assert out.keys() == ref.keys() == {"src", "dst", "mask"}
    for key in ("src", "dst", "mask"):
        assert out[key].shape == (len(ks), 1, size, size) and out[key].is_contiguous()
        assert out[key].dtype == ref[key].dtype
        assert torch.equal(out[key], ref[key]), key
    return batch


@pytest.mark.parametrize("flip", [True, False])
@pytest.mark.parametrize("size", [24, 48])  # smaller than the 32 x 32 slices, and larger (padded)
def test_same_crops_as_cpu_tiny(tiny_cache, size, flip):
    batch = check_equal(tiny_cache, size, flip)
    canvas = max(size, 32)
    assert batch["src"].shape[-2:] == batch["mask"].shape[-2:] == (canvas, canvas)
    assert batch["top"].dtype == batch["left"].dtype == torch.int64 and batch["flip"].dtype == torch.bool
    assert bool(batch["flip"].any()) == flip and bool((~batch["flip"]).any())
    if size < 32:
        assert len(set(batch["top"].tolist())) > 1 and len(set(batch["left"].tolist())) > 1


@pytest.mark.parametrize("flip", [True, False])
@pytest.mark.parametrize("size", [16, 24, 34, 48])  # all cropped; some axes padded; ...; all padded
def test_same_crops_as_cpu_mixed_sizes(mixed_cache, size, flip):
    batch = check_equal(mixed_cache, size, flip, keys(8, n=64, seed=size))
    assert batch["src"].shape[-2:] == (max(size, 37), max(size, 40))


def test_sampler_batches_and_canvas_background(mixed_cache):
    ds = PairedSlices(mixed_cache, 24, train=True, crop_on_device=True, with_mask=True)
    sampler = EpochBatchSampler(len(ds), batch_size=4, seed=5)
    sampler.set_epoch(3)
    for ks in sampler:
        check_equal(mixed_cache, 24, True, ks)
    item = ds[(7, 11)]  # subject 2 (20 x 21) on the 37 x 40 canvas: background -1 / False around it
    assert item["src"][0, -1, -1] == -1 and item["dst"][0, -1, -1] == -1 and not item["mask"][0, -1, -1]


def test_evaluation_ignores_the_flag(tiny_cache):
    ev = PairedSlices(tiny_cache, 24, train=False, crop_on_device=True, with_mask=True)
    ref = PairedSlices(tiny_cache, 24, train=False, with_mask=True)
    assert not ev.crop_on_device
    for key, value in ev[(3, 9)].items():
        assert torch.equal(value, ref[(3, 9)][key])


def test_crop_outside_canvas_rejected():
    batch = {"src": torch.zeros(1, 1, 8, 8), "dst": torch.zeros(1, 1, 8, 8), "mask": torch.zeros(1, 1, 8, 8, dtype=bool),
             "top": torch.tensor([5]), "left": torch.tensor([0]), "flip": torch.tensor([False])}  # fmt: skip
    with pytest.raises(ValueError, match="outside"):
        crop_batch(batch, 4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_same_crops_on_cuda(mixed_cache):
    dev = PairedSlices(mixed_cache, 24, train=True, crop_on_device=True, with_mask=True)
    cpu = PairedSlices(mixed_cache, 24, train=True, with_mask=True)
    ks = keys(len(dev))
    batch = default_collate([dev[k] for k in ks])
    images = {k: v.cuda() if k in ("src", "dst", "mask") else v for k, v in batch.items()}
    out = crop_batch(images, 24)
    ref = default_collate([cpu[k] for k in ks])
    for key in ("src", "dst", "mask"):
        assert out[key].is_cuda and torch.equal(out[key].cpu(), ref[key])
