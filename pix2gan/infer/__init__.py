"""Inference: ``translate.py`` (volume -> slices -> generator -> volume on the input's grid, streaming),
``outputs.py`` (where translations go), ``sample.py`` (grids, walks and panels from a trained model)."""

from pix2gan.infer.sample import GanSampler, SampleRequest, draw
from pix2gan.infer.translate import Translator, predict_slices, stream_slices

__all__ = ["Translator", "predict_slices", "stream_slices", "GanSampler", "SampleRequest", "draw"]
