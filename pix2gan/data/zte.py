"""The ZTE-like MR of a phantom: cortical bone intermediate and distinct from air, soft tissue nearly flat.

Zero-echo-time (ZTE) MR reads the signal a few microseconds after excitation, before the short T2* of cortical bone
has decayed: bone gives signal where T1 and T2 show a void, while air, having no protons, stays dark. With a low flip
angle the image is proton-density weighted, so soft tissues (brain, CSF, fat, muscle, skin) look nearly uniform.

:func:`pix2gan.data.phantom.make_subject` (``zte=True``) renders it from the tissue label map like the T2: the
proton-density value per tissue (:data:`ZTE_SIGNAL`), the phantom's partial-volume blur, then a bias field, gain and
Rician noise of its own, every draw from the subject's ZTE stream ``SeedSequence([seed, index],
spawn_key=(ZTE_STREAM,))`` ("zte"), so asking for it changes no value of the T1, T2, CT, mask or ``meta`` a phantom
has without it. This module holds only the contrast and the stream's key (it imports nothing of the phantom's).

Example:
    >>> ZTE_STREAM == 0x7A7465, ZTE_SIGNAL["air"], ZTE_SIGNAL["cortical"] < min(ZTE_SIGNAL[t] for t in SOFT_TISSUES)
    (True, 0.0, True)
"""

from __future__ import annotations

__all__ = ["SOFT_TISSUES", "ZTE_SIGNAL", "ZTE_STREAM"]

# Proton-density weighted signal (scanner units) per tissue (names of pix2gan.data.phantom.Tissue, lower case): soft
# tissues within +-8 % of 600, fatty marrow a little lower (it is partly trabecular bone), cortical bone intermediate
# (short T2*, little water), air none.
ZTE_SIGNAL: dict[str, float] = {
    "air": 0.0, "skin": 590.0, "fat": 560.0, "cortical": 260.0, "marrow": 470.0, "csf": 640.0, "grey": 610.0,
    "white": 585.0, "muscle": 600.0, "lesion_hyper": 595.0, "lesion_hypo": 625.0,
}  # fmt: skip
SOFT_TISSUES = ("skin", "fat", "csf", "grey", "white", "muscle")  # nearly flat in ZTE, varied in T1 and T2
ZTE_STREAM = int.from_bytes(b"zte", "big")  # spawn key of the ZTE stream, apart from the subject's other streams
