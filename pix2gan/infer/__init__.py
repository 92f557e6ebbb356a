"""Inference: ``stream.py`` (slices through the generator, streaming), ``fusion.py`` (planes, flips and ensemble
members fused, with their standard deviation), ``translate.py`` (volume -> slices -> generator -> volume on the
input's grid; :class:`Translator` for one model, :class:`Ensemble` for several), ``members.py`` (ensemble members
agreeing), ``inputs.py`` (a many-to-one model's sources by name), ``outputs.py`` (where translations go),
``sample.py`` (grids, walks and panels from a trained model)."""

from pix2gan.infer.fusion import Accumulator
from pix2gan.infer.sample import GanSampler, SampleRequest, draw
from pix2gan.infer.stream import predict_slices, stream_slices
from pix2gan.infer.translate import Ensemble, Translation, Translator, std_path

__all__ = ["Translator", "Ensemble", "Translation", "Accumulator", "std_path", "predict_slices", "stream_slices",
           "GanSampler", "SampleRequest", "draw"]
