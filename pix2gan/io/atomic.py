"""Atomic writes: a file appears complete or not at all, and outputs are checked before any work starts.

Every file pix2gan writes goes to a temporary file in the same folder, is flushed and fsynced, then moved into place
with ``os.replace`` (and the folder fsynced), so a crash never leaves a half-written file and never destroys the
previous version.

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write_json(folder / "a.json", {"x": 1})
    >>> json.loads((folder / "a.json").read_text())
    {'x': 1}
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pix2gan.errors import InputError

__all__ = ["atomic_path", "atomic_write_json", "atomic_write_text", "check_new_file", "check_output_folder", "fsync_folder"]


def check_output_folder(folder: str | Path) -> None:
    """Refuse, before any work is done, an output folder that cannot be created or written.

    Raises:
        InputError: ``folder`` is a file, a file stands where one of its parents should be, or the nearest existing
            parent is not writable.
    """
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing.parent != existing:  # exists() is also False below a regular file
        existing = existing.parent
    if not existing.is_dir():
        where = "exists and is not a folder" if existing == folder else f"cannot be created, {existing} is a file"
        raise InputError(f"{folder}: {where}")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "folder is not writable" if existing == folder else f"cannot be created, {existing} is not writable"
        raise InputError(f"{folder}: {where}")


def check_new_file(path: Path, overwrite: bool) -> None:
    """Refuse an output file before any work: it exists (without ``overwrite``), is a folder, or cannot be written."""
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give a file name")
    if path.exists() and not overwrite:
        raise InputError(f"{path}: already exists (use --overwrite to replace it)")
    check_output_folder(path.parent)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and ``os.replace`` it onto ``path``.

    The temporary name keeps the file's suffixes so writers that pick a format by extension still work. On any
    error the temporary file is removed and ``path`` is left as it was.

    Raises:
        InputError: ``path`` exists and ``overwrite`` is false, or its folder cannot be written.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path}: already exists (use --overwrite to replace it)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix="".join(path.suffixes[-2:]), dir=path.parent)
    except OSError as exc:
        raise InputError(f"{path.parent}: cannot write here ({exc.strerror or exc})") from None
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the mode open() would
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_folder(path.parent)  # make the rename itself durable
    finally:
        tmp.unlink(missing_ok=True)


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename into it) to disk, where the platform allows it."""
    with contextlib.suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str, *, overwrite: bool = True) -> None:
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text)


def atomic_write_json(path: str | Path, obj: Any, *, overwrite: bool = True) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n", overwrite=overwrite)
