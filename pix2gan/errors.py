"""The errors pix2gan raises on purpose; each carries one line that the CLI prints as it is.

* :class:`InputError`: a problem with what the user handed us (a file, an option value, an existing output).
  The message names the file or option and the problem; the CLI exits with code 2.
* :class:`TrainingError`: training cannot go on (losses non-finite for too long, a data-loader worker died); exit 1.
* :class:`TrainingInterrupted`: Ctrl-C or SIGTERM stopped training after saving a checkpoint; exit 130.

Example:
    >>> str(InputError("scan.nii.gz: file not found"))
    'scan.nii.gz: file not found'
    >>> issubclass(InputError, ValueError)
    True
"""

from __future__ import annotations

__all__ = ["InputError", "TrainingError", "TrainingInterrupted"]


class InputError(ValueError):
    """A problem with user input: a one-line message naming the file and what is wrong with it."""


class TrainingError(RuntimeError):
    """Training cannot go on (losses non-finite for too long, a data-loader worker died); one line, no traceback."""


class TrainingInterrupted(Exception):
    """Ctrl-C or SIGTERM: a checkpoint was saved; the message says how to resume."""
