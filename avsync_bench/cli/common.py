"""Shared CLI pieces: progress bars and turning known errors into a message and exit code."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from rich.console import Console

from avsync_bench.datasets import DatasetError
from avsync_bench.io.media import MediaError
from avsync_bench.predictions import PredictionError
from avsync_bench.progress import progress_reporter
from avsync_bench.weights.store import WeightsError

console = Console(stderr=True)
KNOWN_ERRORS = (DatasetError, MediaError, PredictionError, WeightsError, ValueError, KeyError)


@contextlib.contextmanager
def progress_bars() -> Iterator:
    """Yield ``progress(label, total) -> tick(n)`` on stderr: rich bars on a terminal, plain
    lines otherwise, "cached" for empty stages (:func:`avsync_bench.progress.progress_reporter`)."""
    with progress_reporter(console) as progress:
        yield progress


@contextlib.contextmanager
def exit_on_error() -> Iterator[None]:
    """Print a known error's message (no traceback) and exit with code 1."""
    try:
        yield
    except KNOWN_ERRORS as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        console.print(
            f"[bold red]error:[/] {message}", markup=True, highlight=False, soft_wrap=True
        )
        raise typer.Exit(1) from None
