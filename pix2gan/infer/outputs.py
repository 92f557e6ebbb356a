"""Where translations go: every input volume paired with its output path, refused before anything is written.

An output keeps its input's format (a ``.mha`` gives a ``.mha``, a DICOM series a derived series in a folder) unless
``--output`` names a file of another format.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pix2gan.data.images import IMAGE_SUFFIXES
from pix2gan.data.subjects import modality_file
from pix2gan.errors import InputError
from pix2gan.infer.inputs import SourceFiles, source_files, subject_sources
from pix2gan.io import (
    VOLUME_SUFFIXES,
    check_output_folder,
    check_writable_as,
    format_of,
    is_dicom_folder,
    is_volume_file,
    output_format,
    volume_name,
)
from pix2gan.io.atomic import refuse_existing
from pix2gan.io.itk import data_file

__all__ = ["check_outputs", "output_files", "plan_outputs", "std_path"]


def std_path(output: Path) -> Path:
    """Where the uncertainty map of ``output`` goes: ``<name>_std`` beside it, in the same format.

    Example:
        >>> std_path(Path("out/sub-001_ct.nii.gz")).as_posix(), std_path(Path("ct.mha")).as_posix()
        ('out/sub-001_ct_std.nii.gz', 'ct_std.mha')
        >>> std_path(Path("scan_ct")).as_posix()  # a DICOM series folder
        'scan_ct_std'
    """
    stem = volume_name(output)
    return output.with_name(f"{stem}_std{output.name[len(stem):]}")


def _suffix(path: Path) -> str:
    """The format suffix of a volume path as written (``""`` for a DICOM series folder)."""
    return path.name[len(volume_name(path)) :]


def output_files(output: Path, *, uncertainty: bool = False) -> list[Path]:
    """Every path that writing ``output`` creates: the file (or DICOM series folder), the data file of a detached
    header (``.mhd`` -> ``.zraw``, ``.nhdr`` -> ``.raw.gz``), and with ``uncertainty`` the same for its ``_std`` map.

    Example:
        >>> [p.name for p in output_files(Path("ct.mhd"), uncertainty=True)]
        ['ct.mhd', 'ct.zraw', 'ct_std.mhd', 'ct_std.zraw']
    """
    files = []
    for volume in (output, std_path(output)) if uncertainty else (output,):
        data = data_file(volume)
        files += [volume] if data is None else [volume, data]
    return files


def check_outputs(output: Path, *, overwrite: bool, uncertainty: bool = False) -> None:
    """Refuse, before any work, an output whose files exist (without ``overwrite``), or an existing DICOM series
    folder that holds other things than DICOM files (never replaced, even with ``overwrite``).

    Raises:
        InputError: naming the first such path.
    """
    refuse_existing(output_files(output, uncertainty=uncertainty), overwrite)
    for path in (output, std_path(output)) if uncertainty else (output,):
        if output_format(path).name == "dicom" and (path.exists() or path.is_symlink()):
            from pix2gan.io.dicom_write import check_target  # the DICOM writer's own rule for replacing a series

            check_target(path, overwrite)


def plan_outputs(
    inputs: list[Path], output: Path | None, *, src: str, dst: str, overwrite: bool = False, uncertainty: bool = False,
    named: Mapping[str, Path] | None = None,
) -> list[tuple[Path | SourceFiles, Path]]:
    """Pair every input volume with its output path, and refuse the plan before anything is written.

    Inputs may be volume files (NIfTI, MetaImage, NRRD), DICOM series folders, subject folders (holding a ``<src>``
    volume) or folders of volumes. A many-to-one model (``src`` names several sources, ``t1,zte``) reads a
    :class:`~pix2gan.infer.inputs.SourceFiles` per translation: a subject folder holding any of its sources (by
    name), or a volume file (its first source) with the ``named`` ones (``--input zte=FILE``: with one volume file,
    or alone); whether the sources found are enough is the model's to say when it translates them (a subject
    lacking one among several is then reported and skipped). Such an output is named after, and lies beside, its
    primary (first given) source. Outputs keep the input's format and go:

    * with no ``output``: a file input gets ``<name>_<dst>.<its suffix>`` beside it, a DICOM series the sibling
      series folder ``<folder>_<dst>/``; a folder of volumes gets the sibling folder ``<folder>_<dst>/`` (so outputs
      never land among the inputs);
    * with one input and an ``output`` naming a volume file (``.nii.gz``, ``.mha``, ...): to that file, in that
      format;
    * otherwise into the folder ``output``, keeping the input's name (a subject folder gives ``<subject>.<suffix>``).

    With ``uncertainty`` each output also has its standard-deviation map beside it (``<output name>_std``, same
    format). None of the files written may exist (the data file of a detached header included) unless ``overwrite``.

    Raises:
        InputError: a missing input, a folder without volumes, two inputs mapped to one output, an existing
            output without ``overwrite``, a DICOM output asked of a non-DICOM input, or an output folder that cannot
            be created or written.
    """
    sources = tuple(src.split(","))
    if named and (len(inputs) > 1 or any(i.is_dir() and not is_dicom_folder(i) for i in inputs)):
        raise InputError(f"--input names further sources of one volume: give at most one volume file (the model's "
                         f"first source, {sources[0]}) with it, not {', '.join(map(str, inputs))}")  # fmt: skip
    if named and inputs:
        source_files(sources, inputs[0], named)  # the first source given once
    if not inputs and named:  # the named sources alone (a model trained with input dropout)
        files = SourceFiles.of(sources, named)
        volumes: list[tuple[Path | SourceFiles, str, Path | None]] = [(files, files.primary.name, None)]
    elif not inputs:
        raise InputError("no input given")
    else:
        volumes = [found for item in inputs for found in _volumes_of(item, sources, named or {})]
    single_file = output is not None and len(volumes) == 1 and format_of(output) is not None
    if output is not None and not single_file:
        if format_of(output) is not None:
            raise InputError(f"{output}: {len(volumes)} inputs need an output folder, not a file name")
        if output.exists() and not output.is_dir():
            raise InputError(f"{output}: exists and is not a folder")
    plan = [(volume, _target(_primary(volume), name, folder, output, dst, single_file)) for volume, name, folder in volumes]
    seen: dict[Path, Path | SourceFiles] = {}
    for volume, target in plan:
        for path in output_files(target, uncertainty=uncertainty):  # a detached data file may clash too
            if path in seen:
                raise InputError(f"{volume}: output {path} would also be written for {seen[path]}")
            seen[path] = volume
        read = [p for _, p in volume.files] if isinstance(volume, SourceFiles) else [volume]
        if any(target.resolve() == p.resolve() for p in read):
            raise InputError(f"{volume}: output would replace the input itself; choose another --output")
        check_writable_as(target, _primary(volume))
        check_outputs(target, overwrite=overwrite, uncertainty=uncertainty)
    for folder in dict.fromkeys(target.parent for _, target in plan):
        check_output_folder(folder)
    return plan


def _primary(volume: Path | SourceFiles) -> Path:
    return volume.primary if isinstance(volume, SourceFiles) else volume


def _volumes_of(
    item: Path, sources: tuple[str, ...], named: Mapping[str, Path]
) -> list[tuple[Path | SourceFiles, str, Path | None]]:
    """The volumes an input stands for: (volume, its name inside an output folder, the folder listing it or None);
    for a many-to-one model the sources of one translation (:class:`SourceFiles`)."""
    src = sources[0]
    if not item.exists():
        raise InputError(f"{item}: file not found")
    if not item.is_dir() and item.suffix.lower() in IMAGE_SUFFIXES:
        raise InputError(f"{item}: a 2-D image; this model translates volumes ({', '.join(VOLUME_SUFFIXES)} or DICOM "
                         f"series): images go to a run trained on two image folders (train --data A/ --data-b B/)")  # fmt: skip
    if is_dicom_folder(item) or not item.is_dir():
        if len(sources) == 1:
            return [(item, item.name, None)]
        return [(SourceFiles.of(sources, {src: item, **named}), item.name, None)]
    if len(sources) > 1:  # a subject folder holding any of the model's sources
        found = subject_sources(item, sources)
        if found is not None:
            return [(found, f"{item.name}{_suffix(found.primary)}", None)]
    subject_file = modality_file(item, src) if len(sources) == 1 else None
    if subject_file is not None:
        return [(subject_file, f"{item.name}{_suffix(subject_file)}", None)]
    found = [p for p in sorted(item.iterdir()) if not p.name.startswith(".") and (is_volume_file(p) or is_dicom_folder(p))]
    if not found:
        images = any(p.suffix.lower() in IMAGE_SUFFIXES for p in item.iterdir())
        hint = ": its 2-D images go to a run trained on two image folders (--data-b)" if images else ""
        raise InputError(f"{item}: folder holds no volumes ({', '.join(VOLUME_SUFFIXES)} files or DICOM series), nor a "
                         f"{' or '.join(sources)} volume{hint}")  # fmt: skip
    if len(sources) > 1:  # each volume of the folder is the model's first source
        return [(SourceFiles.of(sources, {src: p}), p.name, item) for p in found]
    return [(p, p.name, item) for p in found]


def _target(volume: Path, name: str, folder: Path | None, output: Path | None, dst: str, single_file: bool) -> Path:
    """Where one volume's translation goes (the rules of :func:`plan_outputs`)."""
    if output is None and folder is not None:
        folder = folder.resolve()  # "." has no name to suffix
        return folder.with_name(f"{folder.name}_{dst}") / name
    if output is None:
        return volume.with_name(f"{volume_name(volume)}_{dst}{_suffix(volume)}")
    return output if single_file else output / name
