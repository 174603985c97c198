"""Checks run before any heavy work: every output location is writable, results are not
overwritten by accident, and the torch device exists (issue 15 §1, issue 16 §2).

A run that decodes and embeds hundreds of clips must not fail at the end because ``--out`` sits
under a regular file, ``$AVSYNC_BENCH_HOME`` is read-only or ``--device cuda`` names a device the
machine lacks. ``score``, ``sync-score`` and ``generate`` call these first; every problem found is
named in one :class:`PreflightError` (the option, the path, the reason).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path

from avsync_bench.errors import AVSyncBenchError

__all__ = [
    "PreflightError",
    "RESULT_FILES",
    "writable_problem",
    "device_problem",
    "existing_results",
    "overwrite_problem",
    "preflight",
]

RESULT_FILES = ("results.json", "per_clip.csv", "features.npz")
"""The files a ``score`` run writes into its output folder (never replaced without ``--force``)."""


class PreflightError(AVSyncBenchError, ValueError):
    """An output location, earlier results or the device make the run fail; raised before any
    heavy work. The message lists every problem, one per line, each naming its option."""


def writable_problem(path: str | Path) -> str | None:
    """Why files cannot be created in folder ``path`` (created on demand), or None.

    Walks up to the nearest existing ancestor: it must be a folder in which a temporary file can
    be created (a real write test: permission bits, read-only mounts and ACLs all count). Nothing
    is left behind.
    """
    path = Path(path)
    probe = path
    while not probe.exists():
        if probe.is_symlink():
            return f"{probe} is a symlink to a missing target"
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        if probe == path:
            return f"{path} exists and is not a folder"
        return f"cannot create {path}: {probe} is a file, not a folder"
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        return f"{probe} is not writable ({exc.strerror or exc})"
    return None


def device_problem(device: str) -> str | None:
    """Why torch device ``device`` (``cpu``, ``cuda``, ``cuda:1``, ``mps`` …) is unusable, or None.

    A CUDA device needs ``torch.cuda.is_available()`` and an index below the device count; any
    other device must hold a one-element tensor.
    """
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        return f"{device!r} is not a torch device, e.g. cpu, cuda, cuda:1 ({exc})"
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = torch.version.cuda or "none (a CPU build)"
            return (
                f"{device!r}: no usable CUDA device on this machine (torch {torch.__version__}, "
                f"CUDA build {build}); use --device cpu"
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            return f"{device!r}: this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})"
        return None
    if dev.type == "cpu":
        return None
    try:
        torch.empty(1, device=dev)
    except (RuntimeError, AssertionError, ValueError) as exc:
        return f"{device!r}: device not usable ({exc})"
    return None


def existing_results(folder: str | Path) -> list[Path]:
    """The result files of an earlier run present in ``folder`` (see :data:`RESULT_FILES`)."""
    folder = Path(folder)
    return [folder / name for name in RESULT_FILES if (folder / name).exists()]


def overwrite_problem(folder: str | Path) -> str | None:
    """A message naming the earlier results in ``folder`` (their metrics and date), or None."""
    present = existing_results(folder)
    if not present:
        return None
    about = ""
    try:
        earlier = json.loads((Path(folder) / "results.json").read_text())
        about = (
            f" (metrics {', '.join(earlier.get('metrics', {})) or 'none'}, "
            f"created {earlier.get('created_utc', '?')})"
        )
    except (OSError, ValueError):
        pass
    names = ", ".join(p.name for p in present)
    return (
        f"{folder} already holds results of an earlier run: {names}{about}; refusing to "
        "overwrite them: pass --force to replace them, or --out to write elsewhere"
    )


def preflight(
    outputs: Mapping[str, str | Path | None] | None = None,
    device: str | None = None,
    results_dir: str | Path | None = None,
    force: bool = False,
) -> None:
    """Check everything a run will need to write, and its device, before any heavy work.

    Args:
        outputs: option label (``"--out"``, ``"--cache-dir"`` …) → folder the run will write
            into; None entries are skipped (e.g. a disabled cache).
        device: torch device string, or None to skip the check.
        results_dir: the folder that will receive ``results.json`` / ``per_clip.csv`` /
            ``features.npz``; earlier results there are refused unless ``force``.
        force: allow replacing earlier results.

    Raises:
        PreflightError: every problem found, one per line.
    """
    problems = []
    for option, folder in (outputs or {}).items():
        if folder is not None:
            problem = writable_problem(folder)
            if problem:
                problems.append(f"{option}: {problem}")
    if results_dir is not None and not force:
        problem = overwrite_problem(results_dir)
        if problem:
            problems.append(f"--out: {problem}")
    if device is not None:
        problem = device_problem(device)
        if problem:
            problems.append(f"--device: {problem}")
    if problems:
        raise PreflightError("\n".join(problems))
