"""Shared CLI pieces: progress bars and turning known errors into a message and exit code."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from avsync_bench.errors import AVSyncBenchError, message_of

console = Console(stderr=True)


@contextlib.contextmanager
def progress_bars() -> Iterator:
    """Yield ``progress(label, total) -> tick(n)`` drawing rich progress bars on stderr."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bars:

        def progress(label: str, total: int):
            task = bars.add_task(label, total=total)
            return lambda n: bars.advance(task, n)

        yield progress


@contextlib.contextmanager
def exit_on_error(verbose: bool = False) -> Iterator[None]:
    """Print a user error (:class:`AVSyncBenchError`) as ``error: <file or option>: <problem>``
    without a traceback and exit with code 1; with ``verbose`` its diagnostic detail (e.g.
    FFmpeg's message) follows. Any other exception is a bug and propagates with its traceback."""
    try:
        yield
    except AVSyncBenchError as exc:
        console.print(
            f"[bold red]error:[/] {escape(message_of(exc, verbose))}",
            markup=True,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
