"""The command line's plumbing: help that reads well, and every user error as one line with exit code 2.

Commands live in :mod:`pix2gan_cli.app`; they wrap themselves in :func:`user_errors` and print through ``console``
(results, stdout) and ``err`` (messages, stderr).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from pix2gan.options import default_help

try:  # typer >= 0.20 vendors click; the bare ``click`` package may then be another, unrelated copy
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - typer on top of the click package
    from click.exceptions import UsageError

__all__ = ["Command", "OneLineUsageErrors", "user_errors", "print_error", "console", "err", "state", "opt", "flag"]


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
