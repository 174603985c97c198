"""Writing a finished run's results without losing them (issue 15 §1).

If the chosen folder cannot take the files at the end of a run (it became unwritable, the disk
filled, or earlier results appeared there during the run without ``--force``), the results are
written to a fresh fallback folder in the working directory (else the system's temporary folder)
and the caller says where.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path

from avsync_bench.preflight import overwrite_problem
from avsync_bench.results import write_results

__all__ = ["WrittenResults", "write_results_safely", "FALLBACK_PREFIX"]

FALLBACK_PREFIX = "avsync-bench-results-"


@dataclass(frozen=True)
class WrittenResults:
    """Where the results went. ``problem`` is None when they went to the requested folder;
    otherwise it says why not, and ``folder`` is the fallback folder."""

    folder: Path
    json_path: Path
    csv_path: Path
    problem: str | None = None


def write_results_safely(
    results: dict, per_clip: list[dict], out_dir: str | Path, features=None, force: bool = False
) -> WrittenResults:
    """:func:`~avsync_bench.results.write_results` into ``out_dir``, else into a fallback folder.

    The fallback is ``./avsync-bench-results-<UTC time>/`` (a new folder; the system temporary
    folder when the working directory is not writable either).

    Raises:
        OSError: not even the fallback could be written (the message names every place tried).
    """
    out_dir = Path(out_dir)
    problem = None if force else overwrite_problem(out_dir)
    if problem is None:
        try:
            json_path, csv_path = write_results(results, per_clip, out_dir, features)
            return WrittenResults(out_dir, json_path, csv_path)
        except OSError as exc:
            problem = f"cannot write into {out_dir} ({exc.strerror or exc})"
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    tried = []
    for parent in (Path.cwd(), Path(tempfile.gettempdir())):
        try:
            folder = Path(tempfile.mkdtemp(prefix=f"{FALLBACK_PREFIX}{stamp}-", dir=parent))
            json_path, csv_path = write_results(results, per_clip, folder, features)
            return WrittenResults(folder, json_path, csv_path, problem)
        except OSError as exc:
            tried.append(f"{parent} ({exc.strerror or exc})")
    raise OSError(f"{problem}; the fallback folders failed too: {', '.join(tried)}")
