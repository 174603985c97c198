"""Keep/drop decisions, merging of kept windows, the class filter and the split (paper §3).

Every row of ``windows.parquet`` gets ``passed`` (all thresholds met), ``kept`` (in the released
dataset) and ``reason``:

* ``kept``; or the failed thresholds joined by ``;`` in measurement order, each
  ``<measurement>_low`` / ``<measurement>_high`` (``<measurement>_missing`` for a NaN value);
* ``class_below_min``: passed, but its class has fewer than ``min_per_class`` examples;
* marker rows (``window_index = -1``, not windows): ``decode_error`` or ``no_window`` (every
  scene shorter than a window).

Kept windows of one scene of one video that overlap or touch are merged into one *example*
(a segment ``[start, end]``); windows of different scenes are never merged, so no example spans a
scene cut. Classes with fewer than ``min_per_class`` examples are dropped (AVSync-AC: 100). The
split is by source video: within each class, videos are ordered by the sha256 of their path and
the first ``ceil(test_fraction · n)`` go to ``test.txt`` (AVSync15: 10 of 100).
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from avsync_bench.curation.settings import MEASUREMENTS, Thresholds

__all__ = ["decide_windows", "merge_segments", "filter_classes", "split_videos"]

_EPS = 1e-9


def decide_windows(frame, thresholds: Thresholds):
    """Add ``passed`` and ``reason`` columns to a windows DataFrame (see module docstring)."""
    reasons = []
    for row in frame.itertuples(index=False):
        if row.window_index < 0:
            reasons.append("decode_error" if isinstance(row.error, str) else "no_window")
            continue
        failed = []
        for m in MEASUREMENTS:
            value = getattr(row, m.name)
            bound = thresholds.bounds[m.name]
            if value is None or not math.isfinite(value):
                failed.append(f"{m.name}_missing")
            elif bound.get("lower") is not None and value < bound["lower"]:
                failed.append(f"{m.name}_low")
            elif bound.get("upper") is not None and value > bound["upper"]:
                failed.append(f"{m.name}_high")
        reasons.append(";".join(failed) or "kept")
    frame = frame.copy()
    frame["reason"] = reasons
    frame["passed"] = frame["reason"] == "kept"
    return frame


def merge_segments(frame) -> list[dict]:
    """Examples: overlapping or touching passed windows of one scene merged (sorted).

    Returns:
        ``[{"video", "class_folder", "scene_index", "start", "end", "windows", "rows"}]``, times
        in s; ``rows`` are the frame's index labels of the merged windows.
    """
    passed = frame[frame["passed"]].sort_values(["video", "scene_index", "start"])
    segments: list[dict] = []
    for row in passed.itertuples(index=True):
        last = segments[-1] if segments else None
        if (
            last is not None
            and last["video"] == row.video
            and last["scene_index"] == row.scene_index
            and row.start <= last["end"] + _EPS
        ):
            last["end"] = max(last["end"], float(row.end))
            last["windows"] += 1
            last["rows"].append(row.Index)
            continue
        segments.append(
            {
                "video": row.video,
                "class_folder": row.class_folder,
                "scene_index": int(row.scene_index),
                "start": float(row.start),
                "end": float(row.end),
                "windows": 1,
                "rows": [row.Index],
            }
        )
    return segments


def filter_classes(frame, segments: list[dict], min_per_class: int):
    """Drop classes with fewer than ``min_per_class`` examples.

    Returns:
        (frame with ``kept`` and updated ``reason``, kept segments, ``{class: examples}`` of
        every class with at least one example, the sorted list of dropped classes).
    """
    counts: dict[str, int] = {}
    for segment in segments:
        counts[segment["class_folder"]] = counts.get(segment["class_folder"], 0) + 1
    dropped = sorted(c for c, n in counts.items() if n < min_per_class)
    frame = frame.copy()
    below = frame["passed"] & frame["class_folder"].isin(dropped)
    frame.loc[below, "reason"] = "class_below_min"
    frame["kept"] = frame["passed"] & ~below
    kept = [s for s in segments if s["class_folder"] not in dropped]
    return frame, kept, counts, dropped


def split_videos(segments: list[dict], test_fraction: float) -> dict[str, str]:
    """``{video: "train" | "test"}`` for every video with a kept example (see module docstring)."""
    by_class: dict[str, list[str]] = {}
    for segment in segments:
        videos = by_class.setdefault(segment["class_folder"], [])
        if segment["video"] not in videos:
            videos.append(segment["video"])
    split = {}
    for videos in by_class.values():
        ordered = sorted(videos, key=lambda v: hashlib.sha256(v.encode()).hexdigest())
        n_test = int(math.ceil(test_fraction * len(ordered) - _EPS))
        for position, video in enumerate(ordered):
            split[video] = "test" if position < n_test else "train"
    return split


def reference_values(frame) -> dict[str, list[float]]:
    """Per measurement, the finite values of every window (calibration input)."""
    windows = frame[frame["window_index"] >= 0]
    return {
        m.name: [float(v) for v in windows[m.name].to_numpy() if np.isfinite(v)]
        for m in MEASUREMENTS
    }
