"""Atomic file writes: every file avsync-bench writes for later reading (results, feature files,
caches, leaderboard pages, weight records, curation parts) goes through a temporary file in the
target's folder and one ``os.replace``, so a reader or a crash never sees a half-written file.
This module is the only place that does it."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = ["atomic_path", "atomic_open", "atomic_write_text", "atomic_write_json"]


@contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path`` (a hidden ``.<name>.*<suffix>`` file, created empty) to
    write by any means; renamed onto ``path`` when the block ends, removed if it raises.

    The parent folder is created when missing. ``suffix`` keeps an extension that a writer
    insists on (``np.save`` adds ``.npy`` to a bare path name).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", suffix: str = "", **open_kwargs) -> Iterator[IO]:
    """``open(<temporary path>, mode, **open_kwargs)`` for :func:`atomic_path`."""
    with atomic_path(path, suffix) as tmp, open(tmp, mode, **open_kwargs) as handle:
        yield handle


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` as UTF-8 with ``\\n`` line ends, atomically; return ``path``."""
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
    return Path(path)


def atomic_write_json(path: str | Path, data, *, newline: bool = True, **dumps_kwargs) -> Path:
    """Write ``json.dumps(data, **dumps_kwargs)`` (plus a final newline unless ``newline`` is
    False), atomically; return ``path``.

    Raises:
        ValueError: ``allow_nan=False`` was given and ``data`` holds NaN or infinity.
    """
    return atomic_write_text(path, json.dumps(data, **dumps_kwargs) + ("\n" if newline else ""))
