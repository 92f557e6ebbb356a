"""The ZTE-like MR of a phantom: cortical bone intermediate and distinct from air, soft tissue nearly flat.

Zero-echo-time (ZTE) MR reads the signal a few microseconds after excitation, before the short T2* of cortical bone
has decayed: bone gives signal where T1 and T2 show a void, while air, having no protons, stays dark. With a low flip
angle the image is proton-density weighted, so soft tissues (brain, CSF, fat, muscle, skin) look nearly uniform.
:func:`render_zte` renders this from a phantom's tissue label map: a proton-density value per tissue
(:data:`ZTE_SIGNAL`), the phantom's partial-volume blur, then a bias field, gain and Rician noise of its own.

Every draw comes from the subject's own ZTE stream, ``SeedSequence([seed, index], spawn_key=(0x7a7465,))`` ("zte"),
so asking for the ZTE changes no value of the T1, T2, CT, mask or ``meta`` a phantom has without it.

Example:
    >>> from pix2gan.data.phantom import make_subject
    >>> ph = make_subject(seed=0, index=0, size=32)
    >>> zte, gain = render_zte(0, 0, ph.labels, np.zeros(ph.labels.shape + (3,), np.float32))
    >>> zte.shape == ph.t1.shape, zte.dtype.name, 0.75 <= gain <= 1.3
    (True, 'int16', True)
    >>> bool(np.array_equal(zte, render_zte(0, 0, ph.labels, np.zeros(ph.labels.shape + (3,), np.float32))[0]))
    True
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from pix2gan.data.phantom import _PSF, Tissue, _mr_acquire, _mr_int16

__all__ = ["ZTE_SIGNAL", "ZTE_STREAM", "render_zte"]

# Proton-density weighted signal (scanner units) per tissue: soft tissues within +-8 % of 600, fatty marrow a little
# lower (it is partly trabecular bone), cortical bone intermediate (short T2*, low water content), air none.
ZTE_SIGNAL = {
    Tissue.AIR: 0.0, Tissue.SKIN: 590.0, Tissue.FAT: 560.0, Tissue.CORTICAL: 260.0, Tissue.MARROW: 470.0,
    Tissue.CSF: 640.0, Tissue.GREY: 610.0, Tissue.WHITE: 585.0, Tissue.MUSCLE: 600.0,
    Tissue.LESION_HYPER: 595.0, Tissue.LESION_HYPO: 625.0,
}  # fmt: skip
ZTE_STREAM = int.from_bytes(b"zte", "big")  # spawn key of the ZTE stream, apart from the subject's other streams


def render_zte(seed: int, index: int, labels: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, float]:
    """The ZTE-like image (int16) of subject ``index`` of family ``seed`` and its gain, from its own stream.

    Args:
        seed, index: the subject's family and number (they seed the ZTE stream; nothing else draws from it).
        labels: (X, Y, Z) uint8 :class:`~pix2gan.data.phantom.Tissue` map.
        p: (X, Y, Z, 3) float32 head-local position in mm (the bias field is smooth in it).

    Returns:
        (image, gain): the blurred signal under a bias field, a gain U(0.75, 1.3) and Rician noise of sigma 12, as
        int16 in [0, 32767], and the gain drawn.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, index], spawn_key=(ZTE_STREAM,)))
    signal = np.array([ZTE_SIGNAL[t] for t in Tissue], dtype=np.float32)
    magnitude, gain = _mr_acquire(ndimage.gaussian_filter(signal[labels], _PSF), p, rng)
    return _mr_int16(magnitude), gain
