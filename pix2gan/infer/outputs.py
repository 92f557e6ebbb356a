"""Where translations go: every input volume paired with its output path, refused before anything is written.

Example:
    >>> _stem(Path("scan.nii.gz")), _stem(Path("scan.nii"))
    ('scan', 'scan')
"""

from __future__ import annotations

from pathlib import Path

from pix2gan.data.subjects import modality_file
from pix2gan.errors import InputError
from pix2gan.io import NIFTI_SUFFIXES, check_output_folder

__all__ = ["plan_outputs", "std_path"]


def std_path(output: Path) -> Path:
    """Where the uncertainty map of ``output`` goes: ``<name>_std.nii.gz`` beside it.

    Example:
        >>> std_path(Path("out/sub-001_ct.nii.gz")).as_posix()
        'out/sub-001_ct_std.nii.gz'
    """
    return output.with_name(f"{_stem(output)}_std.nii.gz")


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def plan_outputs(
    inputs: list[Path], output: Path | None, *, src: str, dst: str, overwrite: bool = False, uncertainty: bool = False
) -> list[tuple[Path, Path]]:
    """Pair every input volume with its output path, and refuse the plan before anything is written.

    Inputs may be NIfTI files, subject folders (holding ``<src>.nii.gz``) or folders of NIfTI files. Outputs go:

    * with no ``output``: a file input gets ``<name>_<dst>.nii.gz`` beside it; a folder input gets the sibling
      folder ``<folder>_<dst>/`` (so outputs never land among the inputs);
    * with one input file and an ``output`` ending in ``.nii``/``.nii.gz``: to that file;
    * otherwise into the folder ``output``, keeping the input's file name (a subject folder gives ``<subject>.nii.gz``).

    With ``uncertainty`` each output also has its standard-deviation map beside it (``<output name>_std.nii.gz``),
    which must not exist either.

    Raises:
        InputError: a missing input, a folder without NIfTI files, two inputs mapped to one output, an existing
            output without ``overwrite``, or an output folder that cannot be created or written.
    """
    if not inputs:
        raise InputError("no input given")
    files: list[tuple[Path, str, Path | None]] = []  # (volume, name inside an output folder, input folder)
    for item in inputs:
        if not item.exists():
            raise InputError(f"{item}: file not found")
        if item.is_dir():
            subject_file = modality_file(item, src)
            if subject_file is not None:
                files.append((subject_file, f"{item.name}.nii.gz", None))
                continue
            found = sorted(p for p in item.iterdir() if p.is_file() and p.name.endswith(NIFTI_SUFFIXES))
            if not found:
                raise InputError(f"{item}: folder holds no .nii or .nii.gz files (nor {src}.nii.gz)")
            files += [(p, p.name, item) for p in found]
        else:
            files.append((item, item.name, None))
    single_file = output is not None and len(files) == 1 and output.name.endswith(NIFTI_SUFFIXES)
    if output is not None and not single_file:
        if output.name.endswith(NIFTI_SUFFIXES):
            raise InputError(f"{output}: {len(files)} inputs need an output folder, not a file name")
        if output.exists() and not output.is_dir():
            raise InputError(f"{output}: exists and is not a folder")
    plan = []
    for volume, name, folder in files:
        if output is None and folder is not None:
            folder = folder.resolve()  # "." has no name to suffix
            target = folder.with_name(f"{folder.name}_{dst}") / name
        elif output is None:
            target = volume.with_name(f"{_stem(volume)}_{dst}.nii.gz")
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
        for path in (target, std_path(target)) if uncertainty else (target,):
            if path.exists() and not overwrite:
                raise InputError(f"{path}: already exists (use --overwrite to replace it)")
    for folder in dict.fromkeys(target.parent for _, target in plan):
        check_output_folder(folder)
    return plan
