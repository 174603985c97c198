"""Content-addressed cache of ground-truth-side features.

An entry is keyed by (video content sha256, protocol mode, clip spec, clip index, extractor name
and version, sha256 of every weight file the extractor used). Scoring a second predictions
folder against the same dataset therefore recomputes nothing on the ground-truth side, and any
change of video, mode, preprocessing or weights misses the cache instead of reusing stale values.

Writes are atomic (a temporary file in the same folder, then ``os.replace``), so an interrupted
run leaves no half-written entry; a later run finds the complete entries and resumes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from avsync_bench.io.atomic import atomic_open
from avsync_bench.protocol import ClipSpec, ProtocolMode

__all__ = ["FeatureCache", "file_sha256"]

_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, memoised per (path, size, mtime) for the process."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


class FeatureCache:
    """Feature arrays stored as ``.npy`` files under ``root`` (default
    ``$AVSYNC_BENCH_HOME/features``); ``root=None`` disables caching."""

    def __init__(self, root: str | Path | None):
        self.root = Path(root) if root is not None else None
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(
        video_sha256: str,
        mode: ProtocolMode,
        spec: ClipSpec,
        clip_index: int,
        extractor: str,
        extractor_version: str,
        weight_sha256s: dict[str, str],
    ) -> str:
        """The entry's key: sha256 of the canonical JSON of every input that shapes the features."""
        payload = {
            "video": video_sha256,
            "mode": ProtocolMode(mode).value,
            "spec": asdict(spec),
            "clip": clip_index,
            "extractor": extractor,
            "version": extractor_version,
            "weights": dict(sorted(weight_sha256s.items())),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        """The stored array, or None (a missing or unreadable entry counts as a miss)."""
        if self.root is None:
            self.misses += 1
            return None
        path = self._path(key)
        try:
            value = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, key: str, value: np.ndarray) -> None:
        """Store an array atomically (no-op when caching is disabled)."""
        if self.root is None:
            return
        path = self._path(key)
        with atomic_open(path, "wb", suffix=".npy") as handle:
            np.save(handle, np.ascontiguousarray(value), allow_pickle=False)
