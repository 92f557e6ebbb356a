"""``pix2gan translate`` on the terminal: a line per volume as it is written (or its error line), a progress bar over
many volumes, and the summary at the end. The command itself is in :mod:`pix2gan_cli.app`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from pix2gan_cli.common import console, err, print_error

if TYPE_CHECKING:
    from pathlib import Path

    from pix2gan.infer.batch import BatchResult, FileResult
    from pix2gan.infer.images import ImageTranslator
    from pix2gan.infer.translate import Ensemble

__all__ = ["file_lines", "print_summary", "translate_images"]


@contextlib.contextmanager
def file_lines(total: int, *, bar: bool) -> Iterator[Callable[[FileResult], None]]:
    """The ``on_result`` of ``translate_many``: ``INPUT -> OUTPUT (S s)`` on stdout for each volume written, the
    error line for each one that failed, and with ``bar`` a transient progress bar over the ``total`` volumes on
    stderr (closed when the block ends)."""
    progress = None
    if bar:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(TextColumn("translating"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[failed]}"), TimeRemainingColumn(), console=err, transient=True)  # fmt: skip
        task = progress.add_task("translate", total=total, failed="")
    failures = 0

    def show(result: FileResult) -> None:
        nonlocal failures
        if result.error is None:
            console.print(f"{result.input} -> {result.output} ({result.seconds:.1f} s)", highlight=False, markup=False,
                          soft_wrap=True)
        else:
            failures += 1
            print_error(result.error)
        if progress is not None:
            progress.update(task, advance=1, failed=f"{failures} failed" if failures else "")

    with progress if progress is not None else contextlib.nullcontext():
        yield show


def print_summary(result: BatchResult, translator: Ensemble, seconds: float | None) -> None:
    """The last line: how many volumes were translated, with which models and passes, where (``seconds``: how long,
    shown for several volumes), and which failed."""
    from pix2gan.infer.inputs import SourceFiles

    data = translator.members[0].config.data
    models = ", ".join(m.name for m in translator.members)
    scope = f"{result.scope}: " if result.scope else ""
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    # a many-to-one model: the sources each volume was translated from ("t1 + zte", "t1 (zte missing)")
    used = dict.fromkeys(r.input.used() for r in result.translated if isinstance(r.input, SourceFiles))
    sources = "; ".join(used) if used else data.src
    err.print(
        f"{scope}translated {len(result.translated)} volume(s) with {models} ({sources} -> "
        f"{data.dst}, {translator.describe()}, {result.where()}){took}{result.failure_summary()}",
        highlight=False, markup=False, soft_wrap=True,
    )  # fmt: skip


def translate_images(translator: ImageTranslator, inputs: list[Path], output: Path | None, *, overwrite: bool,
                     unused: list[str]) -> None:  # fmt: skip
    """``translate`` with a run trained on two image folders: a line per image (a bad one among several is reported
    and skipped), then the summary; ``unused``: the volume options given, refused (one line, exit 2) before any work.

    Raises:
        InputError: an option of ``unused``; a bad plan; the error of a single image.
        typer.Exit: 2 when an image of several failed.
    """
    import time

    import typer

    from pix2gan.errors import InputError
    from pix2gan.infer.images import plan_image_outputs, translate_images as translate_all

    if unused:
        verb = "applies" if len(unused) == 1 else "apply"
        raise InputError(f"{translator.name}: {', '.join(unused)} {verb} to volumes; a run trained on two image "
                         f"folders translates each image with one generator")  # fmt: skip
    plan = plan_image_outputs(inputs, output, dst=translator.dst, overwrite=overwrite)
    keep_going, t0 = len(plan) > 1, time.perf_counter()
    with file_lines(len(plan), bar=keep_going and err.is_terminal) as show:
        result = translate_all(plan, translator, overwrite=overwrite, keep_going=keep_going, on_result=show)
    took = f" in {time.perf_counter() - t0:.1f} s" if keep_going else ""
    err.print(f"translated {len(result.translated)} image(s) with {translator.name} ({translator.src} -> "
              f"{translator.dst}, {result.where()}){took}{result.failure_summary()}", highlight=False, soft_wrap=True)  # fmt: skip
    if result.failed:
        raise typer.Exit(2)
