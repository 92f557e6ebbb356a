"""Phantoms that show the misregistration problem: a CT under a smooth random deformation, and unpaired subject sets.

A clinic's MR and CT are taken on different days; after a rigid registration the CT is resampled onto the MR's grid,
but millimetres of residual deformation remain. :func:`random_deformation` draws such a residual for one subject: a
cubic B-spline free-form deformation on a 40 mm control lattice (the model of residual deformation registration
tools such as elastix and NiftyReg fit) plus a small rigid part (a shift and a rotation about the axial axis), the
whole displacement at most ``mm`` millimetres at every voxel of the grid. :func:`warp_ct` resamples the CT in HU
with linear interpolation on the T1's own grid and affine.

Every draw comes from the subject's own stream, ``SeedSequence([seed, index], spawn_key=(0x6d6973,))`` ("mis"), so
the T1, mask (and T2, ZTE) of a subject, and its aligned CT, are the arrays :func:`~pix2gan.data.phantom.make_subject`
gives without misregistration, bit for bit. The aligned CT is written to ``<subject>/aligned/ct.nii.gz``
(:data:`ALIGNED_CT`), for scoring only: :func:`~pix2gan.data.subjects.find_subjects` lists the volumes directly in a
subject folder and DICOM series folders, and ``aligned/`` is neither, so no run reads it as a modality.

Example:
    >>> from pix2gan.data.phantom import make_subject
    >>> ph = make_subject(seed=0, index=0, size=32)
    >>> d = random_deformation(0, 0, ph.affine, ph.ct.shape, mm=4.0)
    >>> d.displacement.shape, bool(0.5 * 4.0 / 3 <= d.max_mm() <= 4.0), abs(d.rotation_deg) <= 2.0
    ((32, 32, 9, 3), True, True)
    >>> ct = warp_ct(ph.ct, ph.affine, d.displacement)
    >>> ct.dtype.name, ct.shape == ph.ct.shape, bool((ct != ph.ct).any())
    ('int16', True, True)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

if TYPE_CHECKING:  # phantom.py imports this module inside write_dataset
    from pix2gan.data.phantom import Phantom

__all__ = [
    "ALIGNED_CT", "MAX_MISREGISTER_MM", "Holds", "Deformation", "random_deformation", "warp_ct", "check_options",
    "unpaired_holdings", "plan_layout", "subject_volumes", "prepare_folder", "layout_meta", "scoring_ct",
]  # fmt: skip

ALIGNED_CT = Path("aligned") / "ct.nii.gz"  # the aligned CT of a misregistered subject, relative to its folder
MAX_MISREGISTER_MM = 20.0  # residual errors after a rigid registration are millimetres; beyond this it is not one
CONTROL_MM = 40.0  # B-spline control lattice spacing: the deformation varies over several centimetres
MAX_ROTATION_DEG = 2.0  # about the axial (superior) axis
_STREAM = int.from_bytes(b"mis", "big")  # spawn key of the deformation stream, apart from the subject's main stream


class Holds(enum.StrEnum):
    """What a subject of a written set holds besides its mask."""

    MR = "mr"  # T1 (and T2, ZTE), no CT
    CT = "ct"  # CT only
    BOTH = "both"


@dataclass(frozen=True)
class Deformation:
    """A displacement field on a volume's grid and the rigid part inside it.

    The warped CT at voxel x shows the aligned CT at world position x + u(x).
    """

    displacement: np.ndarray  # (X, Y, Z, 3) float32 u(x) in world (RAS) mm
    shift_mm: tuple[float, float, float]  # rigid translation (RAS mm)
    rotation_deg: float  # rigid rotation about the axial axis through the grid's centre
    budget_mm: float  # the draw mm * U(0.5, 1) that bounds max |u|

    def max_mm(self, where: np.ndarray | None = None) -> float:
        """The largest |u(x)| in mm over the grid, or over the voxels where ``where`` (an (X, Y, Z) mask) is true."""
        norm = np.sqrt((self.displacement.astype(np.float64) ** 2).sum(-1))
        return float(norm.max() if where is None else norm[where.astype(bool)].max())

    def meta(self, body: np.ndarray) -> dict:
        """What ``phantom.json`` records: the maxima actually applied (over the grid and inside ``body``)."""
        return {"max_displacement_mm": round(self.max_mm(), 3),
                "max_displacement_body_mm": round(self.max_mm(body), 3),
                "shift_mm": [round(s, 3) for s in self.shift_mm],
                "rotation_deg": round(self.rotation_deg, 3)}  # fmt: skip


def check_options(n_subjects: int, misregister_mm: float | None, unpaired: bool) -> None:
    """Refuse a misregistration that is not in (0, 20] mm, and an unpaired set of fewer than 4 subjects.

    Raises:
        ValueError: one line naming the option and the value.

    Example:
        >>> check_options(6, 4.0, True)
        >>> check_options(6, 25.0, False)
        Traceback (most recent call last):
        ...
        ValueError: --misregister 25 mm: too large; at most 20 mm (what a rigid registration leaves)
    """
    if misregister_mm is not None:
        _check_mm(misregister_mm)
    if unpaired and n_subjects < 4:
        raise ValueError(f"--unpaired needs at least 4 subjects (2 with one image, 2 with both), got {n_subjects}")


def _check_mm(mm: float) -> None:
    if not 0 < mm <= MAX_MISREGISTER_MM:  # (NaN too)
        limit = f"too large; at most {MAX_MISREGISTER_MM:g} mm (what a rigid registration leaves)"
        raise ValueError(f"--misregister {mm:g} mm: {limit if mm > 0 else 'must be > 0'}")


def unpaired_holdings(n_subjects: int) -> list[Holds]:
    """Which images each subject of an unpaired set keeps (:class:`Holds`: MR, that is T1, T2 and ZTE, CT or both).

    The last max(2, round(n / 4)) subjects keep both (an unpaired run validates and tests on them); before them even
    indices keep only the MR, odd ones only the CT.

    Example:
        >>> [str(h) for h in unpaired_holdings(6)]
        ['mr', 'ct', 'mr', 'ct', 'both', 'both']
    """
    n_both = max(2, round(0.25 * n_subjects))
    return [Holds.BOTH if i >= n_subjects - n_both else (Holds.MR, Holds.CT)[i % 2] for i in range(n_subjects)]


def plan_layout(n_subjects: int, misregister_mm: float | None, unpaired: bool) -> list[Holds]:
    """What each subject of a set keeps (:func:`unpaired_holdings`, or both images for all), after
    :func:`check_options` accepted the options."""
    check_options(n_subjects, misregister_mm, unpaired)
    return unpaired_holdings(n_subjects) if unpaired else [Holds.BOTH] * n_subjects


def _grid_world(affine: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Every voxel's world position, (X, Y, Z, 3) float64 mm."""
    idx = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"), -1)
    return idx @ affine[:3, :3].T + affine[:3, 3]


def _spline_weights(n_control: int, positions: np.ndarray) -> np.ndarray:
    """(len(positions), n_control) weights of SciPy's cubic B-spline interpolation (prefiltered) at ``positions``.

    Interpolation is linear in the control values, so each column is the interpolant of one unit control vector.
    """
    eye = np.eye(n_control)
    columns = [ndimage.map_coordinates(eye[j], positions[None], order=3, mode="nearest") for j in range(n_control)]
    return np.stack(columns, 1)


def _elastic(rng: np.random.Generator, world: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """A smooth random (X, Y, Z, 3) field with max |u| = 1: N(0, 1) control values on a lattice of CONTROL_MM around
    the grid (one spare point beyond each side), interpolated by a tensor-product cubic B-spline."""
    lo, hi = world.reshape(-1, 3).min(0), world.reshape(-1, 3).max(0)
    n = [int(np.ceil((hi[a] - lo[a]) / CONTROL_MM)) + 3 for a in range(3)]
    control = rng.normal(size=(*n, 3))
    axes = [world[:, 0, 0, 0], world[0, :, 0, 1], world[0, 0, :, 2]]  # the affine is axis-aligned (checked)
    w = [_spline_weights(n[a], (axes[a] - centre[a]) / CONTROL_MM + (n[a] - 1) / 2) for a in range(3)]
    u = np.einsum("xi,yj,zk,ijkc->xyzc", w[0], w[1], w[2], control, optimize=True)
    return u / np.sqrt((u**2).sum(-1)).max()


def random_deformation(
    seed: int, index: int, affine: np.ndarray, shape: tuple[int, int, int], mm: float
) -> Deformation:
    """Draw subject ``index``'s residual deformation, at most ``mm`` millimetres at every voxel of the grid.

    Draws, in order, from the subject's deformation stream: the budget D = mm * U(0.5, 1); a shift of U(0, D/3) mm in a
    uniformly random direction; a rotation about the axial axis through the grid's centre of up to 2 degrees, capped
    so that it moves no voxel by more than D/3; the control values of the elastic part. The elastic part takes what
    the rigid part leaves: amplitude D - max |rigid|, so max |u| <= D by the triangle inequality.

    Args:
        seed, index: the phantom family and subject (:func:`~pix2gan.data.phantom.make_subject`).
        affine: (4, 4) voxel -> RAS mm of the grid, axis-aligned (the phantoms' diagonal affine).
        shape: the grid (X, Y, Z).
        mm: the largest displacement asked for, in (0, 20].
    """
    _check_mm(mm)
    if np.count_nonzero(affine[:3, :3] - np.diag(np.diag(affine[:3, :3]))):
        raise ValueError("random_deformation: the grid's affine must be axis-aligned (diagonal)")
    rng = np.random.default_rng(np.random.SeedSequence([seed, index], spawn_key=(_STREAM,)))
    world = _grid_world(affine, shape)
    centre = affine[:3, :3] @ ((np.array(shape) - 1) / 2) + affine[:3, 3]
    budget = mm * rng.uniform(0.5, 1.0)
    direction = rng.normal(size=3)
    shift = direction / np.linalg.norm(direction) * rng.uniform(0.0, budget / 3)
    rel = world - centre
    reach = np.sqrt(rel[..., 0] ** 2 + rel[..., 1] ** 2).max()  # farthest voxel from the axial axis (mm)
    cap = min(np.deg2rad(MAX_ROTATION_DEG), 2 * np.arcsin(min(1.0, budget / 3 / (2 * reach))))  # chord <= D/3
    angle = rng.uniform(-1.0, 1.0) * cap
    c, s = np.cos(angle), np.sin(angle)
    rotated = np.stack([c * rel[..., 0] - s * rel[..., 1], s * rel[..., 0] + c * rel[..., 1], rel[..., 2]], -1)
    rigid = rotated - rel + shift
    elastic = _elastic(rng, world, centre)
    amplitude = budget - np.sqrt((rigid**2).sum(-1)).max()
    u = (rigid + amplitude * elastic).astype(np.float32)
    return Deformation(u, tuple(float(x) for x in shift), float(np.rad2deg(angle)), float(budget))


def warp_ct(ct: np.ndarray, affine: np.ndarray, displacement: np.ndarray, *, order: int = 1) -> np.ndarray:
    """The CT (HU) resampled at x + u(x) by linear interpolation, on the same grid: int16 HU in [-1024, 3071].

    Positions beyond the grid take the nearest edge voxel: the phantom's head runs through the top and bottom slices,
    and the anatomy goes on beyond them in a real CT, so a constant -1000 HU there would cut air into the head.

    Args:
        ct: (X, Y, Z) HU.
        affine: (4, 4) voxel -> RAS mm.
        displacement: (X, Y, Z, 3) u(x) in RAS mm.
        order: spline order of the interpolation; 1 (linear, what ``write_dataset`` uses) blurs thin cortical bone
            more than 3 does (docs/phantom.md has the figures).

    Example:
        >>> ct = np.arange(8, dtype=np.int16).reshape(8, 1, 1) * 100
        >>> u = np.zeros((8, 1, 1, 3), np.float32); u[..., 0] = 1.0  # half a voxel of 2 mm along x
        >>> warp_ct(ct, np.diag([2.0, 2.0, 2.0, 1.0]), u).ravel().tolist()
        [50, 150, 250, 350, 450, 550, 650, 700]
    """
    idx = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in ct.shape], indexing="ij"), 0)
    coords = idx + np.moveaxis(displacement.astype(np.float64) @ np.linalg.inv(affine[:3, :3]).T, -1, 0)
    warped = ndimage.map_coordinates(ct.astype(np.float32), coords, order=order, mode="nearest")
    return np.clip(np.rint(warped), -1024, 3071).astype(np.int16)


def subject_volumes(
    ph: Phantom, seed: int, index: int, misregister_mm: float | None, holds: Holds = Holds.BOTH
) -> tuple[dict[Path, np.ndarray], dict]:
    """The files of one written subject (path relative to its folder -> array) and the ``meta`` entries they add.

    Args:
        ph: the subject (:class:`~pix2gan.data.phantom.Phantom`).
        seed, index: its family and number (the deformation's stream).
        misregister_mm: warp its CT by at most this many mm and keep the aligned one as :data:`ALIGNED_CT`; None: no.
        holds: both images, only the MR (T1, T2, ZTE) or only the CT; the mask is always written.
    """
    files: dict[Path, np.ndarray] = {}
    meta: dict = {}
    if holds != Holds.CT:
        files[Path("t1.nii.gz")] = ph.t1
    if holds != Holds.MR:
        files[Path("ct.nii.gz")] = ph.ct
        if misregister_mm is not None:
            deformation = random_deformation(seed, index, ph.affine, ph.ct.shape, misregister_mm)
            files[Path("ct.nii.gz")] = warp_ct(ph.ct, ph.affine, deformation.displacement)
            files[ALIGNED_CT] = ph.ct
            meta["misregistration"] = deformation.meta(ph.mask)
    files[Path("mask.nii.gz")] = ph.mask
    if ph.t2 is not None and holds != Holds.CT:
        files[Path("t2.nii.gz")] = ph.t2
    if ph.zte is not None and holds != Holds.CT:  # on the T1's grid like the T1: never deformed
        files[Path("zte.nii.gz")] = ph.zte
    return files, meta


_PHANTOM_FILES = tuple(Path(f"{m}.nii.gz") for m in ("t1", "ct", "mask", "t2", "zte")) + (ALIGNED_CT,)


def prepare_folder(folder: Path, files: dict[Path, np.ndarray], overwrite: bool) -> None:
    """Create a subject folder (and ``aligned/``) for ``files``; when ``overwrite`` replaces an earlier subject,
    delete the phantom files it had that this one does not (a stale ``ct.nii.gz`` would pair an MR-only subject)."""
    folder.mkdir(parents=True, exist_ok=True)
    for rel in _PHANTOM_FILES:
        if rel not in files and overwrite and (folder / rel).is_file():
            (folder / rel).unlink()
    aligned = folder / ALIGNED_CT.parent
    if ALIGNED_CT in files:
        aligned.mkdir(exist_ok=True)
    elif aligned.is_dir() and not any(aligned.iterdir()):
        aligned.rmdir()


def layout_meta(folders: list[Path], misregister_mm: float | None, holds: list[Holds]) -> dict:
    """The ``phantom.json`` entries of a misregistered or unpaired set (none for a plain set: its file is as it was).

    Example:
        >>> layout_meta([Path(f"sub-00{i}") for i in range(1, 5)], 3.0, unpaired_holdings(4))  # doctest: +NORMALIZE_WHITESPACE
        {'misregister_mm': 3.0, 'aligned_ct': 'aligned/ct.nii.gz',
         'unpaired': {'mr_only': ['sub-001'], 'ct_only': ['sub-002'], 'paired': ['sub-003', 'sub-004']}}
    """
    meta: dict = {}
    if misregister_mm is not None:
        meta.update(misregister_mm=misregister_mm, aligned_ct=ALIGNED_CT.as_posix())
    if any(h != Holds.BOTH for h in holds):
        groups = {"mr_only": Holds.MR, "ct_only": Holds.CT, "paired": Holds.BOTH}
        meta["unpaired"] = {key: [f.name for f, h in zip(folders, holds) if h == kind] for key, kind in groups.items()}
    return meta


def scoring_ct(folder: str | Path) -> Path | None:
    """The CT to score a subject's translations against: ``aligned/ct.nii.gz`` when there, else ``ct.nii.gz``."""
    for rel in (ALIGNED_CT, Path("ct.nii.gz")):
        if (Path(folder) / rel).is_file():
            return Path(folder) / rel
    return None
