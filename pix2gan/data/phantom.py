"""Deterministic synthetic head phantoms: paired T1-weighted MR, CT (HU), a body mask, optionally T2 and ZTE MR.

Each subject is a labelled tissue map built analytically in millimetres, then rendered into both modalities with
partial-volume blur and modality-specific noise. It is designed so that MR -> CT is *not* a per-voxel lookup:

* cortical bone and air are both signal voids in T1 (dark), but +1500 vs -1000 HU in CT;
* fatty diploic marrow is bright in T1 like subcutaneous fat, yet ~+500 HU instead of -100 HU;
* air cavities (sinuses) with thin bone walls sit inside the body mask.

Only spatial context (a dark ring between fat and CSF is skull; a dark blob wrapped in a thin wall is a sinus)
tells them apart. Anatomy varies between subjects: head size and shape (low-order harmonic deformation), rotation
and tilt, skull thickness, bone density, ventricle size, sinus size, and 0-3 lesions (hyper- or hypodense).

The T2-weighted image (``t2=True``) is rendered from the same label map with its own contrast (CSF bright, fat
intermediate, grey matter brighter than white matter), bias field, gain and Rician noise, all drawn from a separate
random stream: asking for it changes no value of T1, CT, mask or ``meta`` that a call without it gives. The ZTE-like
image (``zte=True``, :mod:`pix2gan.data.zte`) shows cortical bone as intermediate signal apart from air, from a stream
of its own too.

Geometry: RAS axes, voxel grid ``(size, size, n_slices)`` with anisotropic spacing (in-plane ``fov_mm / size``,
``slice_mm`` between axial slices), qform/sform code 1 (scanner).

Example:
    >>> p = make_subject(seed=0, index=0, size=32)
    >>> p.ct.shape == p.t1.shape == p.mask.shape, p.ct.dtype.name, p.t1.dtype.name
    (True, 'int16', 'int16')
    >>> q = make_subject(seed=0, index=0, size=32, t2=True)
    >>> p.t2 is None, q.t2.shape == q.t1.shape, q.t2.dtype.name, bool((q.t1 == p.t1).all() and (q.ct == p.ct).all())
    (True, True, 'int16', True)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from pix2gan.data.zte import ZTE_SIGNAL, ZTE_STREAM, bone_signal

__all__ = ["Tissue", "Phantom", "make_subject", "write_dataset", "subject_id"]


class Tissue(enum.IntEnum):
    AIR = 0
    SKIN = 1
    FAT = 2
    CORTICAL = 3
    MARROW = 4
    CSF = 5
    GREY = 6
    WHITE = 7
    MUSCLE = 8
    LESION_HYPER = 9
    LESION_HYPO = 10


# Mean CT numbers (HU), T1 and T2 signal (arbitrary scanner units) per tissue. Bone HU are drawn per subject.
_HU = {
    Tissue.AIR: -1000.0, Tissue.SKIN: 40.0, Tissue.FAT: -100.0, Tissue.CORTICAL: 1500.0, Tissue.MARROW: 500.0,
    Tissue.CSF: 10.0, Tissue.GREY: 40.0, Tissue.WHITE: 25.0, Tissue.MUSCLE: 45.0,
    Tissue.LESION_HYPER: 65.0, Tissue.LESION_HYPO: 15.0,
}  # fmt: skip
_T1 = {
    Tissue.AIR: 0.0, Tissue.SKIN: 450.0, Tissue.FAT: 900.0, Tissue.CORTICAL: 25.0, Tissue.MARROW: 780.0,
    Tissue.CSF: 180.0, Tissue.GREY: 480.0, Tissue.WHITE: 680.0, Tissue.MUSCLE: 400.0,
    Tissue.LESION_HYPER: 600.0, Tissue.LESION_HYPO: 290.0,
}  # fmt: skip
# T2-weighted (fast spin echo, long TE): fluid brightest, fat intermediate-bright (J-coupling), grey above white
# matter, muscle dark-ish, cortical bone and air signal voids; the hyperdense lesion (blood / calcification) is dark,
# the hypodense one (oedema) bright.
_T2 = {
    Tissue.AIR: 0.0, Tissue.SKIN: 380.0, Tissue.FAT: 620.0, Tissue.CORTICAL: 20.0, Tissue.MARROW: 520.0,
    Tissue.CSF: 1100.0, Tissue.GREY: 560.0, Tissue.WHITE: 400.0, Tissue.MUSCLE: 230.0,
    Tissue.LESION_HYPER: 250.0, Tissue.LESION_HYPO: 850.0,
}  # fmt: skip
_T2_STREAM = int.from_bytes(b"t2", "big")  # spawn key of the T2 stream, apart from the subject's main stream
_SIGMA_MR = 12.0  # Rician noise of both MR images (scanner units)
_PSF = (0.6, 0.6, 0.4)  # partial volume: Gaussian blur in voxels (thicker slices blur less across them)


@dataclass
class Phantom:
    """One synthetic subject: co-registered volumes on one grid and the parameters that made it."""

    t1: np.ndarray  # (X, Y, Z) int16, T1-weighted signal
    ct: np.ndarray  # (X, Y, Z) int16, HU
    mask: np.ndarray  # (X, Y, Z) uint8, 1 inside the head
    labels: np.ndarray  # (X, Y, Z) uint8, Tissue before blur and noise
    affine: np.ndarray  # (4, 4) voxel -> RAS mm
    meta: dict = field(default_factory=dict)
    t2: np.ndarray | None = None  # (X, Y, Z) int16, T2-weighted signal (only when asked for)
    zte: np.ndarray | None = None  # (X, Y, Z) int16, ZTE-like proton-density signal (only when asked for)


def subject_id(index: int) -> str:
    return f"sub-{index + 1:03d}"


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    cz, sz, cx, sx, cy, sy = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    return rz @ rx @ ry


def _ellipsoid_radius(p: np.ndarray, centre: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Normalised radius |(p - centre) / axes|: < 1 inside. ``p`` is (..., 3)."""
    return np.sqrt((((p - centre) / axes) ** 2).sum(-1))


def _mr_acquire(signal: np.ndarray, p: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Bias field, scanner gain and Rician noise on a blurred MR signal map; returns (magnitude, gain).

    The draws, in order: four bias coefficients, the gain, the real and the imaginary noise.

    Args:
        signal: (X, Y, Z) float32 noise-free signal.
        p: (X, Y, Z, 3) float32 head-local position in mm (the bias field is smooth in it).
        rng: the stream to draw from.

    Example:
        >>> p = np.zeros((2, 2, 1, 3), np.float32)
        >>> m, gain = _mr_acquire(np.full((2, 2, 1), 500, np.float32), p, np.random.default_rng(0))
        >>> m.shape, m.dtype.name, 0.75 <= gain <= 1.3, bool((np.abs(m - 500 * gain) < 60).all())
        ((2, 2, 1), 'float32', True, True)
    """
    x = p / np.float32(100.0)  # receive-coil bias field: smooth, linear plus a cross term
    bias = 1.0 + sum(rng.uniform(-0.08, 0.08) * x[..., i] for i in range(3)) + rng.uniform(-0.05, 0.05) * x[..., 0] * x[..., 1]
    gain = rng.uniform(0.75, 1.3)
    real = signal * bias * gain + rng.normal(0, _SIGMA_MR, signal.shape).astype(np.float32)
    imag = rng.normal(0, _SIGMA_MR, signal.shape).astype(np.float32)
    return np.sqrt(real**2 + imag**2), gain


def _mr_int16(magnitude: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(magnitude), 0, 32767).astype(np.int16)


@dataclass
class _Head:
    """Where the head lies on the grid, and how deep each voxel is below its skin."""

    p: np.ndarray  # (X, Y, Z, 3) float32 head-local position (u: left-right, v: anterior, w: superior) in mm
    axes: tuple[float, float, float]  # semi-axes a, b, c (left-right, anterior-posterior, superior-inferior) in mm
    angles: tuple[float, float, float]  # yaw, pitch, roll in degrees
    depth: np.ndarray  # (X, Y, Z) mm below the surface along the ray from the centre (negative outside)
    radius: np.ndarray  # (X, Y, Z) mm from the centre


@dataclass
class _Layers:
    """Depths below the skin (mm) where each layer of scalp, skull and CSF ends; the skull's vary per voxel."""

    skull_scale: np.ndarray  # (X, Y, Z) skull thickness factor (thicker at the front and back)
    skin: float
    fat: float
    outer: np.ndarray  # outer table of the skull
    diploe: np.ndarray  # marrow between the tables
    inner: np.ndarray  # inner table
    csf: np.ndarray  # CSF between skull and brain


def _grid(shape: tuple[int, int, int], dx: float, slice_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """The voxel -> RAS mm affine (centred on the origin) and every voxel's position, (X, Y, Z, 3) float32 mm."""
    affine = np.diag([dx, dx, slice_mm, 1.0])
    affine[:3, 3] = -0.5 * (np.array(shape) - 1) * np.array([dx, dx, slice_mm])
    idx = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij"), -1)
    world = idx @ affine[:3, :3].T.astype(np.float32) + affine[:3, 3].astype(np.float32)  # (X, Y, Z, 3)
    return affine, world


def _place_head(rng: np.random.Generator, world: np.ndarray) -> _Head:
    """Draw the head's size, position and rotation, and its outline: an ellipsoid deformed by low-order harmonics."""
    a, b, c = rng.uniform(66, 76), rng.uniform(84, 96), rng.uniform(80, 92)  # semi-axes: left-right, ap, si
    centre = np.array([rng.uniform(-6, 6), rng.uniform(-8, 8), rng.uniform(-19, -11)])
    angles = (rng.uniform(-12, 12), rng.uniform(-8, 8), rng.uniform(-4, 4))  # yaw, pitch, roll in degrees
    rot = _rotation(*np.deg2rad(angles))
    p = ((world - centre) @ rot).astype(np.float32)  # head-local (u, v, w): rows of rot^T applied
    u, v, w = p[..., 0], p[..., 1], p[..., 2]
    # depth = distance below the skin along the ray from the centre
    theta = np.arctan2(v / b, u / a)
    harmonics = 1.0 + sum(rng.uniform(-0.035, 0.035) * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 4))
    rho = np.sqrt((u / a) ** 2 + (v / b) ** 2 + (w / c) ** 2) / harmonics
    radius = np.sqrt(u**2 + v**2 + w**2)
    depth = radius * (1.0 - rho) / np.maximum(rho, 1e-6)  # mm below the surface (negative outside)
    return _Head(p=p, axes=(a, b, c), angles=angles, depth=depth, radius=radius)


def _scalp_and_skull(rng: np.random.Generator, head: _Head) -> tuple[np.ndarray, _Layers]:
    """Draw the layer thicknesses and label skin, fat, the skull's tables and marrow, and CSF inside (uint8 map)."""
    ap = np.abs(head.p[..., 1]) / np.maximum(head.radius, 1e-6)
    skull_scale = rng.uniform(0.85, 1.2) * (1.0 + 0.35 * ap)  # the skull is thicker at the front and back
    t_skin, t_fat = rng.uniform(1.5, 2.5), rng.uniform(2.5, 5.0)
    t_outer, t_diploe, t_inner = 1.8 * skull_scale, 3.0 * skull_scale, 1.5 * skull_scale
    t_csf = rng.uniform(1.5, 3.5)
    e_skin, e_fat = t_skin, t_skin + t_fat
    e_outer = e_fat + t_outer
    e_diploe = e_outer + t_diploe
    e_inner = e_diploe + t_inner
    layers = _Layers(skull_scale, e_skin, e_fat, e_outer, e_diploe, e_inner, e_inner + t_csf)

    depth = head.depth
    lab = np.full(depth.shape, Tissue.AIR, dtype=np.uint8)
    lab[depth >= 0] = Tissue.SKIN
    lab[depth >= layers.skin] = Tissue.FAT
    lab[depth >= layers.fat] = Tissue.CORTICAL
    lab[depth >= layers.outer] = Tissue.MARROW
    lab[depth >= layers.diploe] = Tissue.CORTICAL
    lab[depth >= layers.inner] = Tissue.CSF
    return lab, layers


def _brain(rng: np.random.Generator, lab: np.ndarray, head: _Head, layers: _Layers) -> np.ndarray:
    """Label the brain: a cortex of folded thickness around white matter; returns the brain's (X, Y, Z) bool mask."""
    k = rng.normal(size=(6, 3))
    k *= (2 * np.pi / rng.uniform(14, 24, size=(6, 1))) / np.linalg.norm(k, axis=1, keepdims=True)
    phase = rng.uniform(0, 2 * np.pi, size=6)
    folds = np.mean([np.sin(head.p @ k[i].astype(np.float32) + phase[i]) for i in range(6)], axis=0)  # ~[-1, 1]
    t_grey = rng.uniform(2.5, 3.5) * (1.0 + 0.9 * folds)
    brain = head.depth >= layers.csf
    lab[brain] = Tissue.GREY
    lab[brain & (head.depth >= layers.csf + t_grey)] = Tissue.WHITE
    return brain


def _ventricles(rng: np.random.Generator, lab: np.ndarray, p: np.ndarray, brain: np.ndarray) -> float:
    """Label the lateral ventricles (their size varies: atrophy) and a thin third ventricle; returns the size factor."""
    vs = rng.uniform(0.7, 1.5)
    for side in (-1, 1):
        vc = np.array([side * rng.uniform(5, 8), rng.uniform(-2, 6), rng.uniform(8, 16)])
        vax = np.array([rng.uniform(3.5, 6.0), rng.uniform(16, 22), rng.uniform(6, 9)]) * [vs, 1, vs**0.5]
        lab[brain & (_ellipsoid_radius(p, vc, vax) < 1)] = Tissue.CSF
    lab[brain & (_ellipsoid_radius(p, np.array([0.0, 0.0, 2.0]), np.array([1.5 * vs, 10, 7])) < 1)] = Tissue.CSF
    return vs


def _lesions(rng: np.random.Generator, lab: np.ndarray, head: _Head, brain: np.ndarray) -> list[dict]:
    """Label 0-3 spherical lesions in white or grey matter (never in the ventricles); returns their descriptions."""
    a, b, c = head.axes
    lesions = []
    for _ in range(rng.integers(0, 4)):
        lc = np.array([rng.uniform(-0.45, 0.45) * a, rng.uniform(-0.5, 0.5) * b, rng.uniform(0.0, 0.4) * c])
        r = rng.uniform(3.0, 7.0)
        kind = Tissue.LESION_HYPER if rng.random() < 0.5 else Tissue.LESION_HYPO
        lab[brain & (_ellipsoid_radius(head.p, lc, np.array([r, r, r])) < 1) & (lab != Tissue.CSF)] = kind
        lesions.append({"centre_mm": np.round(lc, 1).tolist(), "radius_mm": round(r, 1), "type": kind.name.lower()})
    return lesions


def _skull_base(rng: np.random.Generator, lab: np.ndarray, head: _Head, layers: _Layers) -> None:
    """Label the skull base: below it the interior is soft tissue (face/neck), separated by a tilted cortical plate."""
    v, w = head.p[..., 1], head.p[..., 2]
    w_base = -rng.uniform(0.28, 0.36) * head.axes[2] + np.tan(np.deg2rad(rng.uniform(10, 20))) * v  # rises to the front
    interior = head.depth >= layers.inner
    lab[interior & (w < w_base - 2.5)] = Tissue.MUSCLE
    lab[interior & (w >= w_base - 2.5) & (w < w_base)] = Tissue.CORTICAL


def _sinuses(rng: np.random.Generator, lab: np.ndarray, head: _Head, layers: _Layers) -> None:
    """Label air cavities with thin bone walls: frontal sinuses in the frontal bone, maxillary ones below the base."""
    a, b, c = head.axes
    cavities = []  # (lateral mm, height mm, semi-axes mm, depth of the near wall below the skin mm)
    for side in (-1, 1) if rng.random() < 0.8 else (int(rng.choice([-1, 1])),):
        axes = np.array([rng.uniform(6, 9), rng.uniform(5, 7), rng.uniform(7, 11)])
        cavities.append((side * rng.uniform(7, 13), rng.uniform(-8, 4), axes, layers.fat + 5.0))
    for side in (-1, 1):
        axes = np.array([rng.uniform(9, 13), rng.uniform(11, 15), rng.uniform(9, 13)])
        cavities.append((side * rng.uniform(15, 21), rng.uniform(-50, -40), axes, layers.fat + 17.0))
    under_fat = (head.depth >= 0) & (head.depth >= layers.fat)
    for lateral, height, axes, below_skin in cavities:
        ray = np.array([lateral, b, height])
        ray /= np.linalg.norm(ray)
        surface = ray / np.sqrt(((ray / [a, b, c]) ** 2).sum())  # anterior skin point (harmonics ignored)
        q = _ellipsoid_radius(head.p, (surface - (below_skin + axes[1]) * ray).astype(np.float32), axes)
        lab[under_fat & (q < 1.0 + 2.0 / axes.min())] = Tissue.CORTICAL  # ~2 mm wall
        lab[under_fat & (q < 1.0)] = Tissue.AIR


def _render_ct_t1(
    rng: np.random.Generator, lab: np.ndarray, p: np.ndarray
) -> tuple[np.ndarray, np.ndarray, dict, np.ndarray]:
    """CT (HU, int16) and T1 (int16) from the label map: per-subject bone HU and density, partial-volume blur, then
    the T1's bias field, gain and Rician noise and the CT's Gaussian noise; returns (ct, t1, their ``meta`` entries,
    the HU map before blur and noise: what the ZTE's bone signal follows)."""
    hu = np.array([_HU[t] for t in Tissue], dtype=np.float32)
    t1 = np.array([_T1[t] for t in Tissue], dtype=np.float32)
    hu[Tissue.CORTICAL] = rng.uniform(1350, 1750)
    hu[Tissue.MARROW] = rng.uniform(380, 620)
    ct_vol, t1_vol = hu[lab], t1[lab]
    # bone density varies smoothly over the skull (+-8 %)
    density = 1.0 + 0.08 * np.sin(p @ (rng.normal(size=3) * 0.05).astype(np.float32) + rng.uniform(0, 6.28))
    bone = (lab == Tissue.CORTICAL) | (lab == Tissue.MARROW)
    ct_vol[bone] *= density[bone]
    sharp_hu = ct_vol
    ct_vol, t1_vol = ndimage.gaussian_filter(ct_vol, _PSF), ndimage.gaussian_filter(t1_vol, _PSF)  # partial volume
    t1_out, gain = _mr_acquire(t1_vol, p, rng)  # receive-coil bias field, scanner gain, Rician noise
    sigma_ct = rng.uniform(10, 20)
    ct_out = ct_vol + rng.normal(0, sigma_ct, lab.shape).astype(np.float32)
    meta = {"cortical_hu": round(float(hu[Tissue.CORTICAL]), 1), "marrow_hu": round(float(hu[Tissue.MARROW]), 1),
            "ct_noise_hu": round(sigma_ct, 1), "t1_gain": round(gain, 3)}  # fmt: skip
    return np.clip(np.rint(ct_out), -1024, 3071).astype(np.int16), _mr_int16(t1_out), meta, sharp_hu


def _render_own_stream(signal: np.ndarray, stream: int, seed: int, index: int, p: np.ndarray) -> tuple[np.ndarray, float]:
    """An MR image (int16) of the voxel-wise ``signal`` and its gain, drawn from the subject's own ``stream`` (the
    T2's or the ZTE's; nothing else uses it)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index], spawn_key=(stream,)))
    magnitude, gain = _mr_acquire(ndimage.gaussian_filter(signal.astype(np.float32), _PSF), p, rng)
    return _mr_int16(magnitude), gain


def _zte_signal(lab: np.ndarray, hu: np.ndarray) -> np.ndarray:
    """The ZTE's proton-density signal per voxel: :data:`ZTE_SIGNAL` per tissue, bone (cortical and marrow) from its
    own density, ``hu`` (:func:`pix2gan.data.zte.bone_signal`)."""
    signal = np.array([ZTE_SIGNAL[t.name.lower()] for t in Tissue], dtype=np.float32)[lab]
    bone = (lab == Tissue.CORTICAL) | (lab == Tissue.MARROW)
    signal[bone] = bone_signal(hu[bone])
    return signal


def make_subject(
    seed: int = 0, index: int = 0, size: int = 128, n_slices: int | None = None,
    fov_mm: float = 240.0, slice_mm: float | None = None, t2: bool = False, zte: bool = False,
) -> Phantom:  # fmt: skip
    """Build subject ``index`` of the phantom family ``seed``; identical inputs give identical arrays.

    The steps draw from one random stream in a fixed order (head, scalp and skull, brain, ventricles, lesions, skull
    base, sinuses, rendering), so every step's draws stay where they were.

    Args:
        seed: family seed; subjects of one family are independent draws.
        index: subject number within the family.
        size: in-plane matrix (voxels per side), at least 16.
        n_slices: axial slices (default ``round(0.28 * size)``, at least 8).
        fov_mm: in-plane field of view in mm.
        slice_mm: slice spacing in mm (default: the slices cover 144 mm, 4 mm apart at the default size).
        t2: also render the T2-weighted image (``Phantom.t2``; ``meta`` gains ``t2_gain``). Its draws come from a
            stream of their own, so every other array and ``meta`` entry is the same with or without it.
        zte: also render the ZTE-like image (``Phantom.zte``; ``meta`` gains ``zte_gain``), from a stream of its own
            likewise (:mod:`pix2gan.data.zte`).

    Returns:
        A :class:`Phantom` with int16 T1 (and T2, ZTE) and CT volumes, a uint8 body mask and the affine.
    """
    if size < 16:
        raise ValueError(f"phantom size must be >= 16 voxels, got {size}")
    n_slices = max(8, round(0.28 * size)) if n_slices is None else n_slices
    if n_slices < 1:
        raise ValueError(f"phantom n_slices must be >= 1, got {n_slices}")
    slice_mm = 144.0 / n_slices if slice_mm is None else slice_mm
    rng = np.random.default_rng([seed, index])
    dx = fov_mm / size
    affine, world = _grid((size, size, n_slices), dx, slice_mm)

    head = _place_head(rng, world)
    lab, layers = _scalp_and_skull(rng, head)
    brain = _brain(rng, lab, head, layers)
    vs = _ventricles(rng, lab, head.p, brain)
    lesions = _lesions(rng, lab, head, brain)
    _skull_base(rng, lab, head, layers)
    _sinuses(rng, lab, head, layers)
    ct, t1, rendered, sharp_hu = _render_ct_t1(rng, lab, head.p)

    meta = {
        "seed": seed, "index": index, "head_axes_mm": [round(x, 1) for x in head.axes],
        "rotation_deg": [round(x, 1) for x in head.angles], "skull_scale": round(float(np.mean(layers.skull_scale)), 3),
        "cortical_hu": rendered["cortical_hu"], "marrow_hu": rendered["marrow_hu"], "ventricle_scale": round(vs, 3),
        "lesions": lesions, "ct_noise_hu": rendered["ct_noise_hu"], "t1_gain": rendered["t1_gain"],
        "spacing_mm": [dx, dx, slice_mm],
    }  # fmt: skip
    t2_out = None
    if t2:  # its own stream, drawn after everything else: nothing above depends on it
        t2_signal = np.array([_T2[t] for t in Tissue], dtype=np.float32)[lab]
        t2_out, gain_t2 = _render_own_stream(t2_signal, _T2_STREAM, seed, index, head.p)
        meta["t2_gain"] = round(gain_t2, 3)
    zte_out = None
    if zte:  # likewise, from a stream of its own
        zte_out, gain_zte = _render_own_stream(_zte_signal(lab, sharp_hu), ZTE_STREAM, seed, index, head.p)
        meta["zte_gain"] = round(gain_zte, 3)
    mask = (head.depth >= 0).astype(np.uint8)
    return Phantom(t1=t1, ct=ct, mask=mask, labels=lab, affine=affine, meta=meta, t2=t2_out, zte=zte_out)


def write_dataset(
    out_dir: str | Path, n_subjects: int = 14, size: int = 128, seed: int = 0, overwrite: bool = False,
    t2: bool = False, misregister_mm: float | None = None, unpaired: bool = False, zte: bool = False,
) -> list[Path]:  # fmt: skip
    """Write ``n_subjects`` phantoms as ``out_dir/<subject>/{t1,ct,mask}.nii.gz`` plus ``phantom.json``.

    Existing subject folders are never touched unless ``overwrite`` is set. With ``t2`` each subject also gets
    ``t2.nii.gz``, with ``zte`` ``zte.nii.gz`` (on the T1's grid, never deformed); its ``t1``, ``ct`` and ``mask``
    files are byte-identical either way. ``phantom.json`` lists the
    ``modalities`` written and the parameters of every subject. ``misregister_mm`` (in (0, 20]) writes each CT
    under a smooth random deformation and the aligned one as ``aligned/ct.nii.gz``; ``unpaired`` (4 subjects or more)
    keeps only the MR or only the CT of all but the last subjects (:mod:`pix2gan.data.misregister`).

    Returns:
        The subject folders written.
    """
    from pix2gan.data.misregister import layout_meta, plan_layout, prepare_folder, subject_volumes
    from pix2gan.io import atomic_write_json, check_output_folder, refuse_existing, save_nifti  # local: volumes imports nibabel

    if n_subjects < 1:
        raise ValueError(f"--subjects must be >= 1, got {n_subjects}")
    holds = plan_layout(n_subjects, misregister_mm, unpaired)  # what each subject keeps; refuses bad options
    out = Path(out_dir)
    check_output_folder(out)
    planned = [out / subject_id(i) for i in range(n_subjects)]
    refuse_existing(planned, overwrite, error=FileExistsError)
    written = []
    metas = {}
    for i, folder in enumerate(planned):
        ph = make_subject(seed=seed, index=i, size=size, t2=t2, zte=zte)
        files, extra = subject_volumes(ph, seed, i, misregister_mm, holds[i])
        prepare_folder(folder, files, overwrite)
        for rel, arr in files.items():
            save_nifti(folder / rel, arr, ph.affine, overwrite=overwrite)
        metas[folder.name] = {**ph.meta, **extra}
        written.append(folder)
    modalities = ["t1", "ct", "mask"] + (["t2"] if t2 else []) + (["zte"] if zte else [])
    atomic_write_json(out / "phantom.json", {"generator": "pix2gan.data.phantom", "seed": seed, "size": size,
                                             "modalities": modalities, **layout_meta(planned, misregister_mm, holds),
                                             "subjects": metas})  # fmt: skip
    return written
