"""Streaming translation: same numbers as the old whole-volume pipeline, one batch at a time, bounded memory."""

from __future__ import annotations

import tracemalloc

import nibabel as nib
import numpy as np
import pytest
import torch

from helpers import oblique_affine, write_nifti
from pix2gan.config import ModelConfig, RunConfig
from pix2gan.data.intensity import intensity_maps
from pix2gan.data.slices import from_slices, to_slices
from pix2gan.nets import UNetGenerator, init_weights
from pix2gan.infer.translate import Translator, predict_slices


def make_translator(axis: int = 2, batch_size: int = 4, generator: torch.nn.Module | None = None) -> Translator:
    torch.manual_seed(0)
    cfg = RunConfig(model=ModelConfig(depth=3, base_filters=4))
    cfg.data.slice_axis = axis
    if generator is None:
        generator = UNetGenerator(cfg.model)
        init_weights(generator, gain=0.3)  # outputs spread over the HU range, not all near 0
    return Translator(generator, cfg, *intensity_maps(cfg.data), batch_size=batch_size)


def old_translate_array(tr: Translator, volume: np.ndarray) -> np.ndarray:
    """The pipeline before streaming: normalised volume -> slice-first copy -> all outputs -> inverse map."""
    scale = tr.src_map.scale_of(volume)
    slices = to_slices(tr.src_map.forward(volume, scale), tr.slice_axis)
    pred = predict_slices(tr.generator, torch.from_numpy(slices)[:, None], tr.multiple,
                          batch_size=tr.batch_size, device=tr.device)[:, 0].numpy()  # fmt: skip
    return np.ascontiguousarray(from_slices(tr.dst_map.inverse(pred), tr.slice_axis))


def volume(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 800, shape).astype(np.float32)


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_streaming_equals_whole_volume(axis, batch_size):
    """Odd sizes (padded in-plane), every slice axis, batch of 1, a partial last batch, one batch above N."""
    tr = make_translator(axis, batch_size)
    vol = volume((11, 13, 7))
    out = tr.translate_array(vol)
    assert out.dtype == np.float32 and out.shape == vol.shape
    assert out.std() > 1.0  # a real spread of HU values, not a constant
    np.testing.assert_array_equal(out, old_translate_array(tr, vol))
    # in place, over the source itself: same numbers
    inplace = vol.copy()
    assert tr.translate_array(inplace, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, out)


def test_int16_output_is_the_rounded_float_output():
    tr = make_translator(axis=1, batch_size=2)
    vol = volume((9, 6, 10), seed=1)
    i16 = tr.translate_array(vol, dtype=np.int16)
    assert i16.dtype == np.int16
    np.testing.assert_array_equal(i16, np.clip(np.rint(old_translate_array(tr, vol)), -32768, 32767).astype(np.int16))


@pytest.mark.parametrize("name", ["s.nii", "s.nii.gz"])
def test_translate_file_matches_old_pipeline_and_keeps_the_source(tmp_path, name):
    """File to file (float32 written over the decoded source, int16 into its own array): the old numbers, the
    input's geometry, and an uncompressed (memory-mapped) source file left untouched."""
    tr = make_translator(axis=2, batch_size=3)
    raw = np.random.default_rng(2).integers(0, 400, (10, 9, 7)).astype(np.int16)
    src = write_nifti(tmp_path / name, raw, oblique_affine(), slope=2.5, inter=1.0)
    src_f32 = write_nifti(tmp_path / f"f32_{name}", volume((10, 9, 7), seed=3), oblique_affine())
    before = src_f32.read_bytes()
    for path in (src, src_f32):
        expected = old_translate_array(tr, nib.load(path).get_fdata(dtype=np.float32))
        f32 = nib.load(tr.translate_file(path, tmp_path / "f.nii.gz", overwrite=True))
        assert f32.get_data_dtype() == np.float32 and np.array_equal(f32.affine, nib.load(path).affine)
        np.testing.assert_array_equal(f32.get_fdata(dtype=np.float32), expected)
        i16 = nib.load(tr.translate_file(path, tmp_path / "i.nii.gz", overwrite=True, dtype="int16"))
        assert i16.get_data_dtype() == np.int16
        np.testing.assert_array_equal(np.asarray(i16.dataobj), np.rint(expected).astype(np.int16))
    assert src_f32.read_bytes() == before


def test_generator_never_sees_more_than_batch_size_slices():
    class Recorder(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.inner, self.sizes = inner, []

        def forward(self, x):
            self.sizes.append(x.shape[0])
            return self.inner(x)

    inner = make_translator().generator
    for batch_size, n in [(1, 5), (4, 10), (16, 7)]:
        rec = Recorder(inner)
        make_translator(axis=2, batch_size=batch_size, generator=rec).translate_array(volume((8, 8, n)))
        assert max(rec.sizes) <= batch_size and sum(rec.sizes) == n
        assert rec.sizes == [min(batch_size, n - s) for s in range(0, n, batch_size)]


def traced_peak(fn) -> int:
    """Peak bytes allocated through Python and numpy (tracemalloc sees numpy arrays, not torch's allocator) by ``fn()``."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()


def test_memory_stays_bounded(tmp_path):
    """128 x 128 x 40: the streaming path holds about one extra volume; the old one held more than three."""
    tr = make_translator(axis=2, batch_size=4)
    vol = volume((128, 128, 40))
    nbytes = vol.nbytes
    old = traced_peak(lambda: old_translate_array(tr, vol))
    array = traced_peak(lambda: tr.translate_array(vol))  # the result + the percentile copy before it + one batch
    path = write_nifti(tmp_path / "m.nii.gz", vol)
    file = traced_peak(lambda: tr.translate_file(path, tmp_path / "o.nii.gz"))  # load, translate in place, save
    assert old > 3 * nbytes  # measured 4.41: the measurement sees the copies it is meant to catch
    assert array < 1.75 * nbytes, array / nbytes  # measured 1.40 (4-slice batches of float64 temporaries)
    assert file < 3 * nbytes, file / nbytes  # measured 2.05: the decoded file, then the percentile copy


class _MeanOfStack(torch.nn.Module):
    """A 'generator' whose output depends on every input channel: the mean of the slice stack."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(()))  # gives the module a device

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 2K + 1, H, W) -> (B, 1, H, W)
        return x.mean(1, keepdim=True)


@pytest.mark.parametrize("context", [0, 1, 3])
@pytest.mark.parametrize("batch_size", [1, 4, 7])
def test_neighbouring_slices_are_read_from_the_source_even_in_place(context, batch_size):
    """With context, in-place streaming must never feed a slice already replaced by a prediction."""
    from pix2gan.infer.translate import stream_slices

    vol = volume((6, 5, 11), seed=4)
    forward, inverse = (lambda x: x / 100.0), (lambda y: y * 100.0 + 1000.0)  # predictions differ from the source
    n = vol.shape[2]
    expected = np.stack([np.mean([vol[:, :, min(max(k + o, 0), n - 1)] / 100.0 for o in range(-context, context + 1)],
                                 axis=0) * 100.0 + 1000.0 for k in range(n)], axis=2)  # fmt: skip
    separate = stream_slices(_MeanOfStack(), vol, 2, 1, out=np.empty_like(vol), forward=forward, inverse=inverse,
                             batch_size=batch_size, context=context)  # fmt: skip
    in_place = vol.copy()
    stream_slices(_MeanOfStack(), in_place, 2, 1, out=in_place, forward=forward, inverse=inverse,
                  batch_size=batch_size, context=context)  # fmt: skip
    np.testing.assert_allclose(separate, expected, rtol=1e-6)
    np.testing.assert_array_equal(in_place, separate)
