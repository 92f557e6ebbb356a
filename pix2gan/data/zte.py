"""The ZTE-like MR of a phantom: cortical bone intermediate and distinct from air, soft tissue nearly flat.

Zero-echo-time (ZTE) MR reads the signal a few microseconds after excitation, before the short T2* of cortical bone
has decayed: bone gives signal where T1 and T2 show a void, while air, having no protons, stays dark. With a low flip
angle the image is proton-density weighted, so soft tissues (brain, CSF, fat, muscle, skin) look nearly uniform. In
bone the signal falls as the mineral density rises (less water, more mineral): ZTE-based pseudo-CT inverts an about
linear relation between the signal normalised to soft tissue and HU (Wiesinger et al., MRM 2018: HU = -2000 (nZTE
- 1) + 42), so denser bone is darker (:func:`bone_signal`).

:func:`pix2gan.data.phantom.make_subject` (``zte=True``) renders it from the tissue label map like the T2: the
proton-density value per tissue (:data:`ZTE_SIGNAL`; in cortical bone and marrow, :func:`bone_signal` of the voxel's
HU before blur and noise, so the subject's bone density and its smooth variation over the skull show), the phantom's partial-volume blur, then a bias field, gain and
Rician noise of its own, every draw from the subject's ZTE stream ``SeedSequence([seed, index],
spawn_key=(ZTE_STREAM,))`` ("zte"), so asking for it changes no value of the T1, T2, CT, mask or ``meta`` a phantom
has without it. This module holds only the contrast and the stream's key (it imports nothing of the phantom's).

Example:
    >>> ZTE_STREAM == 0x7A7465, ZTE_SIGNAL["air"], ZTE_SIGNAL["cortical"] < min(ZTE_SIGNAL[t] for t in SOFT_TISSUES)
    (True, 0.0, True)
"""

from __future__ import annotations

import numpy as np

__all__ = ["SOFT_TISSUES", "ZTE_SIGNAL", "ZTE_STREAM", "SOFT_SIGNAL", "bone_signal"]

SOFT_SIGNAL = 600.0  # the soft-tissue signal nZTE is normalised by


def bone_signal(hu: np.ndarray | float) -> np.ndarray:
    """The ZTE signal of bone of density ``hu``: ``SOFT_SIGNAL (1 - (hu - 42) / 2000)``, the relation ZTE-based
    pseudo-CT inverts (Wiesinger et al. 2018), floored at 0.

    Example:
        >>> [round(float(s), 1) for s in bone_signal(np.array([500.0, 1350.0, 1550.0, 1750.0]))]
        [462.6, 207.6, 147.6, 87.6]
    """
    hu = np.asarray(hu, dtype=np.float32)
    return np.maximum(SOFT_SIGNAL * (1.0 - (hu - 42.0) / 2000.0), 0.0).astype(np.float32)


# Proton-density weighted signal (scanner units) per tissue (names of pix2gan.data.phantom.Tissue, lower case): soft
# tissues within +-8 % of 600, air none; fatty marrow and cortical bone at the middle of their HU ranges (500 and
# 1550: the phantom renders each bone voxel from its own density, bone_signal), cortical bone intermediate.
ZTE_SIGNAL: dict[str, float] = {
    "air": 0.0, "skin": 590.0, "fat": 560.0, "cortical": float(bone_signal(1550.0)), "marrow": float(bone_signal(500.0)),
    "csf": 640.0, "grey": 610.0, "white": 585.0, "muscle": 600.0, "lesion_hyper": 595.0, "lesion_hypo": 625.0,
}  # fmt: skip
SOFT_TISSUES = ("skin", "fat", "csf", "grey", "white", "muscle")  # nearly flat in ZTE, varied in T1 and T2
ZTE_STREAM = int.from_bytes(b"zte", "big")  # spawn key of the ZTE stream, apart from the subject's other streams
