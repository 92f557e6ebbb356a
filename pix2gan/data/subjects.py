"""Find subjects and their modalities in a data folder, and split them by subject.

The layout is SynthRAD's: one folder per subject holding one volume per modality, in any format pix2gan reads
(:mod:`pix2gan.io.volume`: NIfTI, MetaImage, NRRD, or a DICOM series as a folder named after the modality)::

    <root>/<subject>/<modality>.nii.gz     e.g. samples/sub-001/{t1,ct,mask}.nii.gz
    <root>/<subject>/<modality>.mha        SynthRAD2025: <subject>/{mr,ct,mask}.mha
    <root>/<subject>/<modality>/*.dcm      a hospital export: one DICOM series per modality

Splitting is by subject, never by slice (slices of one head are strongly correlated), deterministic for a seed, and
recorded in the run folder's ``split.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pix2gan.errors import InputError
from pix2gan.io import Volume, check_same_grid, format_of, is_dicom_folder, load_volume, volume_name

__all__ = ["Subject", "subject_volumes", "find_subjects", "split_subjects", "load_subject", "modality_file"]


@dataclass(frozen=True)
class Subject:
    """One subject: its id (folder name) and the file of each modality found."""

    id: str
    folder: Path
    files: dict[str, Path]


def _volumes_in(folder: Path) -> dict[str, list[Path]]:
    """Every volume in a subject folder by modality name: files of a supported format, and DICOM series folders."""
    found: dict[str, list[Path]] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if (entry.is_file() and format_of(entry) is not None) or is_dicom_folder(entry):
            found.setdefault(volume_name(entry), []).append(entry)
    return found


def modality_file(folder: Path, modality: str) -> Path | None:
    """The volume of ``modality`` in a subject folder (``<modality>.nii.gz``, ``.mha``, ... or a DICOM folder).

    Raises:
        InputError: the modality is there in two formats (``ct.nii.gz`` and ``ct.mha``): which one is meant?
    """
    return _pick(folder, _volumes_in(folder) if folder.is_dir() else {}, modality)


def _pick(folder: Path, volumes: dict[str, list[Path]], modality: str) -> Path | None:
    """``modality``'s volume among a folder's ``volumes`` (:func:`_volumes_in`); refuses one there in two formats."""
    paths = volumes.get(modality, [])
    if len(paths) > 1:
        names = " and ".join(p.name for p in paths)
        raise InputError(f"{folder}: {modality} is there twice ({names}); keep one")
    return paths[0] if paths else None


def subject_volumes(root: str | Path) -> dict[Path, dict[str, list[Path]]]:
    """Every subject folder under ``root`` (sorted) that holds volumes, with its volumes by modality name.

    Raises:
        InputError: ``root`` missing or not a folder; no subject folders with volumes.
    """
    root = Path(root)
    if not root.exists():
        raise InputError(f"{root}: data folder not found")
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    volumes = {f: found for f in folders if (found := _volumes_in(f))}  # each folder listed once
    if not volumes:
        raise InputError(
            f"{root}: no subject folders with volumes (expected {root}/<subject>/<modality>.nii.gz, .mha, .nrrd or a"
            " DICOM series folder)"
        )
    return volumes


def find_subjects(root: str | Path, required: list[str], optional: list[str] | None = None) -> list[Subject]:
    """List the subjects under ``root`` that hold every ``required`` modality (and any ``optional`` ones found).

    Raises:
        InputError: ``root`` missing or not a folder; no subject folders; a modality no subject has (unknown name);
            a subject lacking a required modality.
    """
    root = Path(root)
    volumes = subject_volumes(root)
    folders = list(volumes)
    available = set().union(*volumes.values())
    for modality in required:
        if modality not in available:
            raise InputError(
                f"{root}: unknown modality {modality!r}; the subjects hold {', '.join(sorted(available))}"
            )
    subjects = []
    for folder in folders:
        files = {}
        for modality in required:
            path = _pick(folder, volumes[folder], modality)
            if path is None:
                raise InputError(
                    f"{folder}: subject has no {modality}.nii.gz (nor {modality}.mha, .nrrd, ... or a DICOM folder)"
                )
            files[modality] = path
        for modality in optional or []:
            path = _pick(folder, volumes[folder], modality)
            if path is not None:
                files[modality] = path
        subjects.append(Subject(id=folder.name, folder=folder, files=files))
    return subjects


def split_subjects(
    ids: list[str], val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0
) -> dict[str, list[str]]:
    """Deterministic train/val/test split by subject.

    With three or more subjects, validation and test get at least one subject each; training keeps at least one.

    Example:
        >>> s = split_subjects([f"s{i}" for i in range(10)], 0.1, 0.2, seed=0)
        >>> [len(s[k]) for k in ("train", "val", "test")]
        [7, 1, 2]
        >>> s == split_subjects([f"s{i}" for i in reversed(range(10))], 0.1, 0.2, seed=0)
        True
    """
    ordered = sorted(ids)
    n = len(ordered)
    if n == 0:
        raise ValueError("split_subjects: no subjects")
    n_test = round(test_fraction * n)
    n_val = round(val_fraction * n)
    if n >= 3:
        n_test = max(1, n_test) if test_fraction > 0 else 0
        n_val = max(1, n_val) if val_fraction > 0 else 0
    while n - n_test - n_val < 1 and (n_test or n_val):  # keep at least one training subject
        if n_test >= n_val:
            n_test -= 1
        else:
            n_val -= 1
    order = np.random.default_rng(seed).permutation(n)
    shuffled = [ordered[i] for i in order]
    test, val, train = shuffled[:n_test], shuffled[n_test : n_test + n_val], shuffled[n_test + n_val :]
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}


def load_subject(subject: Subject, modalities: list[str]) -> dict[str, Volume]:
    """Read the named modalities of a subject (each decoded once) and check they share one voxel grid."""
    volumes: dict[str, Volume] = {}
    for modality in modalities:
        if modality not in subject.files:
            continue
        volumes[modality] = load_volume(subject.files[modality])
    first = next(iter(volumes.values()))
    for vol in volumes.values():
        check_same_grid(first, vol)
    return volumes
