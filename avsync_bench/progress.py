"""One progress helper for every long stage: rich bars on a terminal, plain lines in logs.

Every long-running function in the package takes ``progress(label, total) -> tick(n)`` (or
None). :func:`progress_reporter` returns such a callable:

- On a terminal: rich progress bars (label, bar, done/total, elapsed time).
- Not a terminal (a log file, CI, ``nohup``, a pipe): rich bars would render only once, at the
  end, so plain lines are written instead: ``label: 0/N`` at the start, then a line at every
  10 % step or every ``interval`` seconds (whichever comes first), and ``label: N/N (100%) in
  T s`` at the end.
- A stage with nothing to do (``total == 0``, e.g. every ground-truth feature is cached) is
  printed once as ``label: cached`` (or ``label: nothing to do``), with no bar and no clock.

:func:`frechet_estimate` gives the time a number of Fréchet distances will take on this
machine, for the announcements that ``compare`` and ``report`` print before they start.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["ProgressFn", "frechet_estimate", "format_seconds", "progress_reporter"]

ProgressFn = Callable[[str, int], Callable[[int], None]]
"""``progress(label, total)`` returns ``tick(n)``, called with the number of items just done."""

PLAIN_STEP = 0.1
"""Plain mode prints a line each time another 10 % of a stage is done..."""
PLAIN_INTERVAL_S = 30.0
"""...or when this many seconds passed since the stage's last line (and something was done)."""


def format_seconds(seconds: float) -> str:
    """``42 s``, ``3.5 min`` or ``1.2 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _skipped_label(label: str) -> str:
    cached = any(word in label for word in ("ground truth", "decode"))
    return f"{label}: {'cached' if cached else 'nothing to do'}"


class _PlainLines:
    """Plain-text progress lines on ``console`` (see the module docstring)."""

    def __init__(self, console: Console, interval: float) -> None:
        self.console = console
        self.interval = interval

    def _line(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)
        with contextlib.suppress(AttributeError, ValueError, OSError):
            self.console.file.flush()

    def __call__(self, label: str, total: int) -> Callable[[int], None]:
        if total <= 0:
            self._line(_skipped_label(label))
            return lambda _n: None
        start = time.monotonic()
        state = {"done": 0, "last_time": start, "last_step": 0}
        self._line(f"{label}: 0/{total}")

        def tick(n: int = 1) -> None:
            state["done"] = min(total, state["done"] + n)
            done, now = state["done"], time.monotonic()
            step = int(done / total / PLAIN_STEP)
            if done == total:
                if state["last_step"] >= 0:
                    self._line(f"{label}: {done}/{total} (100%) in {format_seconds(now - start)}")
                state["last_step"] = -1  # finished: print nothing more
                return
            if step > state["last_step"] or now - state["last_time"] >= self.interval:
                rate = (now - start) / done
                self._line(
                    f"{label}: {done}/{total} ({100 * done // total}%) "
                    f"{format_seconds(now - start)}, ~{format_seconds(rate * (total - done))} left"
                )
                state["last_step"], state["last_time"] = step, now

        return tick


@contextlib.contextmanager
def progress_reporter(
    console: Console | None = None,
    plain: bool | None = None,
    interval: float = PLAIN_INTERVAL_S,
) -> Iterator[ProgressFn]:
    """Yield a ``progress(label, total) -> tick(n)`` callable (see the module docstring).

    Args:
        console: where to draw (default: a rich console on stderr).
        plain: force plain lines (True) or bars (False); default: bars only on a terminal.
        interval: plain mode's longest silence in seconds while a stage advances.
    """
    console = console or Console(stderr=True)
    if plain is None:
        plain = not console.is_terminal
    if plain:
        yield _PlainLines(console, interval)
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bars:

        def progress(label: str, total: int) -> Callable[[int], None]:
            if total <= 0:
                bars.console.print(_skipped_label(label), highlight=False, markup=False)
                return lambda _n: None
            task = bars.add_task(label, total=total)

            def tick(n: int = 1) -> None:
                bars.advance(task, n)
                if bars.tasks[task].finished:
                    bars.stop_task(task)

            return tick

        yield progress


_CALIBRATION: dict[str, float] = {}


def frechet_estimate(dim: int, count: int) -> float:
    """Seconds that ``count`` Fréchet distances between ``dim``-d feature sets should take here.

    Calibrated once per process by timing the library's Fréchet distance at 256-d (≈ 10-50 ms)
    and scaled by (dim / 256)³ (its cost is dominated by d×d matrix factorisations), so it is a
    rough guide (within a factor of ~2), printed before long runs.
    """
    if count <= 0:
        return 0.0
    if "s256" not in _CALIBRATION:
        import numpy as np

        from avsync_bench.metrics.frechet import frechet_from_stats

        rng = np.random.default_rng(0)
        a, b = rng.standard_normal((2, 400, 256))
        mu_a, mu_b = a.mean(0), b.mean(0)
        cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        began = time.perf_counter()
        frechet_from_stats(mu_a, cov_a, mu_b, cov_b)
        _CALIBRATION["s256"] = time.perf_counter() - began
    return count * _CALIBRATION["s256"] * (dim / 256) ** 3
