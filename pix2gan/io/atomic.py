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
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from glob import escape as glob_escape
from pathlib import Path
from typing import Any

from pix2gan.errors import InputError

__all__ = ["Staging", "atomic_path", "atomic_write_json", "atomic_write_text", "check_new_file", "check_output_folder",
           "discard_staging", "fsync_folder", "refuse_existing", "staged", "staging_folders"]  # fmt: skip

STAGING_MARK = ".pix2gan-partial-"  # in the name of a staging folder: `.<output name>.pix2gan-partial-XXXX`


def refuse_existing(paths: Path | Iterable[Path], overwrite: bool, *, error: type[Exception] = InputError) -> None:
    """Refuse the first of ``paths`` that exists (a file, folder or link), unless ``overwrite``: the one place the
    message ``<path>: already exists (use --overwrite to replace it)`` is written.

    Args:
        paths: one path or several, checked in order.
        overwrite: true to accept existing paths (they will be replaced).
        error: the exception raised: :class:`InputError` (a user error of the CLI, exit 2) or e.g.
            ``FileExistsError`` for library functions that promise it.

    Example:
        >>> refuse_existing(Path("/"), overwrite=False)
        Traceback (most recent call last):
        ...
        pix2gan.errors.InputError: /: already exists (use --overwrite to replace it)
    """
    if overwrite:
        return
    for path in [paths] if isinstance(paths, Path) else paths:
        if path.exists() or path.is_symlink():
            raise error(f"{path}: already exists (use --overwrite to replace it)")


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
    refuse_existing(path, overwrite)
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
    refuse_existing(path, overwrite)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _new_file(path.parent, f".{path.name}.", "".join(path.suffixes[-2:]))
    except OSError as exc:
        raise InputError(f"{path.parent}: cannot write here ({exc.strerror or exc})") from None
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


def _new_file(folder: Path, prefix: str, suffix: str) -> Path:
    """Create a new empty file of a random name in ``folder`` with the mode ``open()`` gives (0666 less the umask).

    ``tempfile.mkstemp`` creates 0600 files, and reading the umask to chmod them means setting it: a process-wide change
    another thread could see. ``O_CREAT | O_EXCL`` with mode 0666 lets the kernel apply the umask itself.
    """
    for _ in range(100):
        candidate = folder / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"{folder}: no free temporary name after 100 tries")


def atomic_write_text(path: str | Path, text: str, *, overwrite: bool = True) -> None:
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text)


def atomic_write_json(path: str | Path, obj: Any, *, overwrite: bool = True) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n", overwrite=overwrite)


# --- several files that appear together -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Staging:
    """A hidden folder beside the outputs where one result's files are written before they all move in together.

    Attributes:
        folder: where the files go.
        root: the staging folder, ``<folder>/.<name>.pix2gan-partial-XXXX`` (see :func:`staging_folders`).
    """

    folder: Path
    root: Path

    def path(self, final: str | Path) -> Path:
        """Where to write ``final`` (a file or a series folder in :attr:`folder`) while staging: the same name."""
        final = Path(final)
        if final.parent.resolve() != self.folder.resolve():
            raise ValueError(f"{final}: not in the staged folder {self.folder}")
        return self.root / final.name


@contextlib.contextmanager
def staged(finals: Sequence[Path], *, overwrite: bool) -> Iterator[Staging]:
    """Write several files (a prediction and its ``_std`` map, a header and its data file) so that they appear together.

    Yields a :class:`Staging`; write each file at ``staging.path(final)`` (any writer, atomic or not). When the block
    ends without error every entry of the staging folder moves into place: entries not named in ``finals`` first (the
    data files of detached headers), then ``finals`` in order (the main result last). An existing file is replaced
    only then, by ``os.replace``; an existing folder (a DICOM series) is moved aside first and removed once the new one
    is in. If the block or the swap fails, the staging folder is removed, whatever moved in already is put back as it
    was, and the old outputs are untouched.

    Raises:
        InputError: the folder cannot be written, or (without ``overwrite``) one of the files written, a detached data
            file included, already exists when the swap starts.
        ValueError: ``finals`` is empty or spread over several folders.
    """
    folders = {Path(f).parent for f in finals}
    if len(folders) != 1:
        raise ValueError(f"staged: the files must share one folder, got {sorted(map(str, folders))}")
    folder = folders.pop()
    last = Path(finals[-1]).name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix=f".{last}{STAGING_MARK}", dir=folder))
    except OSError as exc:
        raise InputError(f"{folder}: cannot write here ({exc.strerror or exc})") from None
    try:
        yield Staging(folder, root)
        named = [Path(f).name for f in finals]
        entries = [e.name for e in sorted(root.iterdir())]
        order = [e for e in entries if e not in named] + [n for n in named if n in entries]
        refuse_existing([folder / name for name in order], overwrite)
        for name in order:  # writers that do not fsync (SimpleITK): flush their files before they count
            _fsync_file(root / name)
        _swap_in(root, folder, order)
    finally:
        discard_staging(root)


def staging_folders(final: Path) -> list[Path]:
    """The staging folders left beside ``final`` by a writer that was killed (its process gone) while writing it."""
    return sorted(final.parent.glob(f".{glob_escape(final.name)}{STAGING_MARK}*"))


def discard_staging(root: Path) -> None:
    """Remove a staging folder; an old output it holds because the swap was cut short goes back where it was."""
    replaced = root / _REPLACED
    if replaced.is_dir():
        for old in replaced.iterdir():
            final = root.parent / old.name
            if not (final.exists() or final.is_symlink()):
                with contextlib.suppress(OSError):
                    os.rename(old, final)
    shutil.rmtree(root, ignore_errors=True)


_REPLACED = ".replaced"  # inside a staging folder: the old outputs during a swap


def _swap_in(root: Path, folder: Path, names: list[str]) -> None:
    """Move ``names`` from ``root`` into ``folder`` in order; on any error put back what was there before."""
    backup = root / _REPLACED
    backup.mkdir()
    done: list[tuple[str, bool]] = []  # (name, whether something stood there)
    try:
        for name in names:
            final = folder / name
            existed = final.exists() or final.is_symlink()
            if existed and final.is_dir() and not final.is_symlink():
                os.rename(final, backup / name)  # a folder cannot be replaced in one step
            elif existed:
                with contextlib.suppress(OSError):  # a way back if a later move fails (no hard links: none)
                    os.link(final, backup / name, follow_symlinks=False)
            done.append((name, existed))
            os.replace(root / name, final)
        fsync_folder(folder)
    except BaseException:
        for name, existed in reversed(done):
            final, old = folder / name, backup / name
            if old.exists() or old.is_symlink() or not existed:
                _remove(final)
            if old.exists() or old.is_symlink():
                os.rename(old, final)
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _fsync_file(path: Path) -> None:
    if path.is_file() and not path.is_symlink():
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())
