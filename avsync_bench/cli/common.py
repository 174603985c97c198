"""Shared CLI pieces: progress bars and turning known errors into a message and exit code."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.markup import escape

from avsync_bench.errors import AVSyncBenchError, message_of
from avsync_bench.progress import progress_reporter

console = Console(stderr=True)


@contextlib.contextmanager
def progress_bars() -> Iterator:
    """Yield ``progress(label, total) -> tick(n)`` on stderr: rich bars on a terminal, plain
    lines otherwise, "cached" for empty stages (:func:`avsync_bench.progress.progress_reporter`)."""
    with progress_reporter(console) as progress:
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
