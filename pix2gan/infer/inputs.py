"""A many-to-one model's inputs at inference: which sources are given, their files, and one grid for them all.

A model trained with several sources (``--src t1,zte``) translates the sources it is given, by name: a subject
folder holding ``t1.nii.gz`` and ``zte.nii.gz``, or a volume (the model's first source) with named extra ones
(``--input zte=scan.nii.gz``). A model trained with input dropout takes any non-empty subset
(:meth:`~pix2gan.data.sources.SourceLayout.present` refuses the others in one line). :class:`SourceFiles` is one
such translation's files: a small frozen record, so that plans of many volumes travel to worker processes.

Example:
    >>> files = SourceFiles((("t1", Path("sub/t1.nii.gz")),), missing=("zte",), folder=Path("sub"))
    >>> str(files), files.primary.name, describe_sources(("t1", "zte"), ("t1", "zte"))
    ('sub [t1 (zte missing)]', 't1.nii.gz', 't1 + zte')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pix2gan.data.sources import SourceLayout
from pix2gan.data.subjects import modality_file
from pix2gan.errors import InputError
from pix2gan.infer.stream import Inputs
from pix2gan.io import Volume, check_same_grid

__all__ = ["SourceFiles", "accepted", "assembler", "describe_sources", "given_volumes", "parse_inputs", "source_arrays",
           "source_files", "subject_sources"]


def describe_sources(names: Sequence[str], given: Sequence[str]) -> str:
    """The sources used, in the model's order, and the ones left out: ``t1 + zte``, ``t1 (zte missing)``.

    Example:
        >>> describe_sources(("t1", "zte", "t2"), ("zte",))
        'zte (t1, t2 missing)'
    """
    used = " + ".join(n for n in names if n in given)
    missing = [n for n in names if n not in given]
    return f"{used} ({', '.join(missing)} missing)" if missing else used


@dataclass(frozen=True)
class SourceFiles:
    """The volumes one translation reads, by source name (the model's order), and what it goes without.

    Args:
        files: (source name, volume file or DICOM series folder) pairs, in the model's source order.
        missing: the model's sources not given.
        folder: the subject folder they were found in (None: named on the command line).
    """

    files: tuple[tuple[str, Path], ...]
    missing: tuple[str, ...] = ()
    folder: Path | None = None

    @classmethod
    def of(cls, names: Sequence[str], files: Mapping[str, Path], folder: Path | None = None) -> SourceFiles:
        """The ``files`` given, by source name, in the model's order (``names``), and the model's sources not given.

        Example:
            >>> SourceFiles.of(("t1", "zte"), {"zte": Path("z.nii.gz")}).missing
            ('t1',)
        """
        return cls(tuple((n, files[n]) for n in names if n in files), tuple(n for n in names if n not in files), folder)

    @property
    def primary(self) -> Path:
        """The first given source's file: the output takes its grid, format and header."""
        return self.files[0][1]

    @property
    def name(self) -> str:
        """The file name a message names (the primary's)."""
        return self.primary.name

    def named(self) -> dict[str, Path]:
        """{source name: file}, for :meth:`~pix2gan.infer.translate.Ensemble.translate_file`'s ``inputs``."""
        return dict(self.files)

    def used(self) -> str:
        """The sources used, in words (:func:`describe_sources`)."""
        names = [n for n, _ in self.files]
        return describe_sources([*names, *self.missing], names)

    def __str__(self) -> str:
        where = self.folder if self.folder is not None else " + ".join(str(p) for _, p in self.files)
        return f"{where} [{self.used()}]"


def parse_inputs(items: Sequence[str], names: Sequence[str], *, model: str = "model") -> dict[str, Path]:
    """``--input NAME=PATH`` options as {source name: path}, each checked: well formed, a source of the model
    (``names``), given once, and an existing file or folder.

    Raises:
        InputError: one line naming the option or the file.
    """
    named: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        name = name.strip()
        if not sep or not name or not path:
            raise InputError(f"--input {item!r}: expected NAME=PATH, e.g. --input {names[-1]}=scan.nii.gz")
        if name not in names:
            raise InputError(f"--input {item!r}: {model} has no source {name!r}; it takes {', '.join(names)}")
        if name in named:
            raise InputError(f"--input {item!r}: {name} is given twice")
        if not Path(path).exists():
            raise InputError(f"{path}: file not found (--input {name}=...)")
        named[name] = Path(path)
    return named


def accepted(models: Sequence[tuple[str, SourceLayout]], given: Sequence[str], *, files: bool = False) -> tuple[str, ...]:
    """The sources ``given``, in the first model's order, once every model (name, layout) accepts them.

    Raises:
        InputError: a name that is no source, none given, or a source missing that a model cannot do without (one
            line naming that model; with ``files``, saying how to give the source).
    """
    try:
        for name, layout in models:
            layout.present(given, model=name)
    except InputError as exc:
        names = models[0][1].names
        lacking = [n for n in names if n not in given]
        if not files or not given or not lacking or any(n not in names for n in given):
            raise
        raise InputError(f"{exc}: give it with --input {lacking[0]}=FILE, or translate a subject folder holding "
                         f"{' and '.join(names)}") from None  # fmt: skip
    return tuple(n for n in models[0][1].names if n in given)


def source_files(sources: Sequence[str], in_path: str | Path | None, named: Mapping[str, str | Path]) -> dict[str, Path]:
    """The files of one translation by source name: ``in_path`` (when given) is the model's first source, ``named``
    any others.

    Raises:
        InputError: the first source given both ways.
    """
    files = {n: Path(p) for n, p in named.items()}
    first = sources[0]
    if in_path is not None and first in files:
        raise InputError(f"--input {first}={files[first]}: {first} is the model's first source, already given as "
                         f"{in_path}; give it once")  # fmt: skip
    return {sources[0]: Path(in_path), **files} if in_path is not None else files


def subject_sources(folder: Path, names: Sequence[str]) -> SourceFiles | None:
    """The sources of a model (``names``) found in a subject folder, by name (None when it holds none of them).

    Raises:
        InputError: a source there in two formats.
    """
    found = {n: f for n in names if (f := modality_file(folder, n)) is not None}
    return SourceFiles.of(names, found, folder) if found else None


def given_volumes(volumes: Mapping[str, Volume], names: Sequence[str]) -> dict[str, Volume]:
    """The given volumes in the model's source order (``names``), checked to lie on one grid.

    Raises:
        InputError: a volume off the first one's grid (naming both files).
    """
    ordered = {n: volumes[n] for n in names if n in volumes}
    ordered.update({n: v for n, v in volumes.items() if n not in ordered})  # unknown names: refused by the caller
    first = next(iter(ordered.values()), None)
    for other in list(ordered.values())[1:]:
        check_same_grid(first, other)  # type: ignore[arg-type]
    return ordered


def source_arrays(given: np.ndarray | Mapping[str, np.ndarray], names: Sequence[str]) -> dict[str, np.ndarray]:
    """The arrays to translate by source name, in the model's order (``names``): one array is the first source.

    Raises:
        ValueError: arrays of different shapes, or not 3-D.
    """
    arrays = {names[0]: given} if isinstance(given, np.ndarray) else {n: given[n] for n in names if n in given}
    arrays.update({} if isinstance(given, np.ndarray) else {n: a for n, a in given.items() if n not in arrays})
    shapes = {n: a.shape for n, a in arrays.items()}
    for name, shape in shapes.items():
        if len(shape) != 3:
            raise ValueError(f"expected a 3-D volume, got shape {shape}" + (f" for {name}" if len(arrays) > 1 else ""))
    if len(set(shapes.values())) > 1:
        raise ValueError(f"the sources differ in shape ({', '.join(f'{n} {s}' for n, s in shapes.items())}); they "
                         f"must lie on one grid")  # fmt: skip
    return arrays


def assembler(layout: SourceLayout, given: Sequence[str]) -> Inputs:
    """The :data:`~pix2gan.infer.stream.Inputs` hook of a many-to-one model given the sources ``given``: the padded
    stacks of those sources, one after the other in the model's order, (B, P (2K + 1), H, W), become the generator's
    input (B, ``layout.channels``, H, W): each stack in its source's channels, the missing ones zero and the
    availability planes 1/0 over the whole padded slice (:meth:`SourceLayout.assemble`), as training built it.

    Example:
        >>> import torch
        >>> layout = SourceLayout(("t1", "zte"), optional=True)
        >>> assembler(layout, ["zte"])(torch.full((1, 1, 2, 2), -1.0))[0, :, 0, 0].tolist()
        [0.0, -1.0, 0.0, 1.0]
    """
    names = [n for n in layout.names if n in given]
    present = torch.tensor([n in given for n in layout.names])
    blocks = [layout.block(n) for n in names]
    k = layout.per_source

    def build(padded: torch.Tensor) -> torch.Tensor:
        if padded.shape[1] != k * len(names):
            raise ValueError(f"expected {k * len(names)} channels of {', '.join(names)}, got {padded.shape[1]}")
        stacks = padded.new_zeros((padded.shape[0], layout.stacks, *padded.shape[-2:]))  # (B, S (2K + 1), H, W)
        for i, block in enumerate(blocks):
            stacks[:, block] = padded[:, i * k : (i + 1) * k]
        return layout.assemble(stacks, present)

    return build
