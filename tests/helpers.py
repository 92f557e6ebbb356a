"""Test helpers importable from every test module (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None, **header: object) -> Path:
    """Write a NIfTI file with optional header tweaks (``slope``, ``inter``, ``qform_code``, ``sform_code``)."""
    affine = np.eye(4) if affine is None else affine
    img = nib.Nifti1Image(data, affine)
    img.header.set_qform(affine, code=int(header.get("qform_code", 1)))
    img.header.set_sform(affine, code=int(header.get("sform_code", 1)))
    if "slope" in header:
        img.header.set_slope_inter(header["slope"], header.get("inter", 0.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)
    return path


def oblique_affine(spacing=(0.9, 1.1, 3.0), angles=(0.3, -0.2, 0.15), origin=(-90.5, 101.25, -40.0)) -> np.ndarray:
    """A rotated, anisotropic voxel-to-mm affine."""
    a, b, c = angles
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ ry @ rx @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine
