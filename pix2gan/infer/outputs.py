"""Where translations go: every input volume paired with its output path, refused before anything is written.

An output keeps its input's format (a ``.mha`` gives a ``.mha``, a DICOM series a derived series in a folder) unless
``--output`` names a file of another format.
"""

from __future__ import annotations

from pathlib import Path

from pix2gan.data.subjects import modality_file
from pix2gan.errors import InputError
from pix2gan.io import (
    VOLUME_SUFFIXES,
    check_output_folder,
    check_writable_as,
    format_of,
    is_dicom_folder,
    is_volume_file,
    volume_name,
)

__all__ = ["plan_outputs", "std_path"]


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


def plan_outputs(
    inputs: list[Path], output: Path | None, *, src: str, dst: str, overwrite: bool = False, uncertainty: bool = False
) -> list[tuple[Path, Path]]:
    """Pair every input volume with its output path, and refuse the plan before anything is written.

    Inputs may be volume files (NIfTI, MetaImage, NRRD), DICOM series folders, subject folders (holding a ``<src>``
    volume) or folders of volumes. Outputs keep the input's format and go:

    * with no ``output``: a file input gets ``<name>_<dst>.<its suffix>`` beside it, a DICOM series the sibling
      series folder ``<folder>_<dst>/``; a folder of volumes gets the sibling folder ``<folder>_<dst>/`` (so outputs
      never land among the inputs);
    * with one input and an ``output`` naming a volume file (``.nii.gz``, ``.mha``, ...): to that file, in that
      format;
    * otherwise into the folder ``output``, keeping the input's name (a subject folder gives ``<subject>.<suffix>``).

    With ``uncertainty`` each output also has its standard-deviation map beside it (``<output name>_std``, same
    format), which must not exist either.

    Raises:
        InputError: a missing input, a folder without volumes, two inputs mapped to one output, an existing
            output without ``overwrite``, a DICOM output asked of a non-DICOM input, or an output folder that cannot
            be created or written.
    """
    if not inputs:
        raise InputError("no input given")
    files: list[tuple[Path, str, Path | None]] = []  # (volume, name inside an output folder, input folder)
    for item in inputs:
        if not item.exists():
            raise InputError(f"{item}: file not found")
        if is_dicom_folder(item):
            files.append((item, item.name, None))
        elif item.is_dir():
            subject_file = modality_file(item, src)
            if subject_file is not None:
                files.append((subject_file, f"{item.name}{_suffix(subject_file)}", None))
                continue
            found = [p for p in sorted(item.iterdir()) if not p.name.startswith(".") and (is_volume_file(p) or is_dicom_folder(p))]
            if not found:
                raise InputError(
                    f"{item}: folder holds no volumes ({', '.join(VOLUME_SUFFIXES)} files or DICOM series), nor a {src} volume"
                )
            files += [(p, p.name, item) for p in found]
        else:
            files.append((item, item.name, None))
    single_file = output is not None and len(files) == 1 and format_of(output) is not None
    if output is not None and not single_file:
        if format_of(output) is not None:
            raise InputError(f"{output}: {len(files)} inputs need an output folder, not a file name")
        if output.exists() and not output.is_dir():
            raise InputError(f"{output}: exists and is not a folder")
    plan = []
    for volume, name, folder in files:
        if output is None and folder is not None:
            folder = folder.resolve()  # "." has no name to suffix
            target = folder.with_name(f"{folder.name}_{dst}") / name
        elif output is None:
            target = volume.with_name(f"{volume_name(volume)}_{dst}{_suffix(volume)}")
        elif single_file:
            target = output
        else:
            target = output / name
        plan.append((volume, target))
    seen: dict[Path, Path] = {}
    for volume, target in plan:
        if target in seen:
            raise InputError(f"{volume}: output {target} would also be written for {seen[target]}")
        if target.resolve() == volume.resolve():
            raise InputError(f"{volume}: output would replace the input itself; choose another --output")
        seen[target] = volume
        check_writable_as(target, volume)
        for path in (target, std_path(target)) if uncertainty else (target,):
            if path.exists() and not overwrite:
                raise InputError(f"{path}: already exists (use --overwrite to replace it)")
    for folder in dict.fromkeys(target.parent for _, target in plan):
        check_output_folder(folder)
    return plan
