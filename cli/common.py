"""The command line's plumbing: help that reads well, every user error as one line with exit code 2, and the
options of ``train`` and ``translate`` turned into what the library takes.

Commands live in :mod:`pix2gan_cli.app`; they wrap themselves in :func:`user_errors` and print through ``console``
(results, stdout) and ``err`` (messages, stderr).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from pix2gan.config import RunConfig
from pix2gan.options import default_help

try:  # typer >= 0.20 vendors click; the bare ``click`` package may then be another, unrelated copy
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - typer on top of the click package
    from click.exceptions import UsageError

__all__ = ["Command", "OneLineUsageErrors", "user_errors", "print_error", "console", "err", "state", "opt", "flag",
           "train_config", "models_spec"]  # fmt: skip


class _FlagHelp:
    """``--help`` shown as the flag it is (typer's rich help gives it a ``<bool>`` value placeholder)."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.metavar = ""
        return option


class Command(_FlagHelp, TyperCommand):
    """A command whose help reads well (see :class:`_FlagHelp`)."""


class OneLineUsageErrors(_FlagHelp, TyperGroup):
    """Bad usage of a command (a value out of range, an unknown option, a missing argument) as one ``error:`` line
    and exit code 2, like every other user error, instead of Click's usage box (which ``--debug`` keeps)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            if ctx.params.get("debug") or type(exc).__name__ == "NoArgsIsHelpError":
                raise
            print_error(exc.format_message())
            raise typer.Exit(2) from None


console = Console()
err = Console(stderr=True)
state = {"debug": False}

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(func: F) -> F:
    """Turn user errors into one red line on stderr and exit code 2 (tracebacks only with --debug)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pix2gan.errors import InputError

        try:
            return func(*args, **kwargs)
        except (InputError, ValueError, OSError) as exc:  # OSError: e.g. a path below a regular file, a full disk
            if state["debug"]:
                raise
            print_error(_os_message(exc) if isinstance(exc, OSError) else str(exc))
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]", highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None
        except Exception as exc:
            from pix2gan.errors import TrainingError, TrainingInterrupted

            if state["debug"] or not isinstance(exc, (TrainingError, TrainingInterrupted)):
                raise
            if isinstance(exc, TrainingInterrupted):
                err.print(f"[yellow]interrupted:[/] {escape(' '.join(str(exc).split()))}", soft_wrap=True, highlight=False)
                raise typer.Exit(130) from None
            print_error(str(exc))
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def print_error(message: str) -> None:
    """``error: MESSAGE`` as one line on stderr (whitespace collapsed; brackets in paths are not rich markup)."""
    err.print(f"[bold red]error:[/] {escape(' '.join(message.split()))}", soft_wrap=True, highlight=False, markup=True)


def _os_message(exc: OSError) -> str:
    """``PATH: reason`` for an OSError (Python's own text reads ``[Errno 20] Not a directory: 'PATH'``)."""
    if exc.filename is None or exc.strerror is None:
        return str(exc)
    target = f" -> {exc.filename2}" if exc.filename2 is not None else ""
    return f"{exc.filename}{target}: {exc.strerror.lower()}"


def opt(name: str, help: str, *decls: str, **kwargs: Any) -> Any:
    """A ``pix2gan train`` option whose default lives in the library (shown in the help, None here)."""
    return typer.Option(*decls, help=f"{help} {escape(default_help(name))}", show_default=False, **kwargs)


def flag(help: str, *decls: str, **kwargs: Any) -> Any:
    """An on/off option, shown as a flag (no value placeholder) in the help."""
    return typer.Option(*decls, help=escape(help), show_default=False, metavar="", **kwargs)


def train_config(params: dict[str, Any]) -> tuple[RunConfig, Path]:
    """The configuration and run folder ``pix2gan train`` trains with, from its parsed options (``ctx.params``; an
    option not given is None): the ``--config`` file's settings under the options given, ``--run-dir`` or a new
    folder named after the run.

    Raises:
        InputError: a problem with the ``--config`` file.
        ValueError: an option value the configuration refuses; no ``--run-dir`` under torchrun.
    """
    from pix2gan.config.files import run_config_with_file
    from pix2gan.options import OPTIONS
    from pix2gan.runs import new_run_dir

    options = {k: v for k, v in params.items() if k in OPTIONS}  # None: not given
    # --planes axial,coronal or --planes axial --planes coronal; none (typer gives ()): not given
    options["planes"] = tuple(p.strip() for item in params["planes"] or () for p in item.split(",") if p.strip()) or None
    cfg = run_config_with_file(params["config"], params["mode"], **options)
    run_dir = params["run_dir"]
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and run_dir is None:
        raise ValueError("under torchrun, pass --run-dir (every rank must write to the same run folder)")
    return cfg, run_dir or new_run_dir(cfg.run_name())


def models_spec(runs: list[Path] | None, checkpoints: list[Path] | None, models: list[Path] | None,
                **settings: Any) -> dict[str, Any]:  # fmt: skip
    """``translate``'s models as ``load_ensemble``'s keywords (each ``--nproc`` worker rebuilds them from these), with
    ``settings`` (device, batch size, precision, TTA, fusion). Without ``--run``, ``--checkpoint`` or ``--model``:
    the newest run's checkpoint, found once here, since every worker must use the same one.

    Raises:
        InputError: no run to fall back on.
    """
    if not (runs or checkpoints or models):
        from pix2gan.runs import resolve_checkpoint

        checkpoints = [resolve_checkpoint(None, None)]
    return {"runs": runs or [], "checkpoints": checkpoints or [], "models": models or [], **settings}
