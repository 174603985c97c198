"""Listing and checking a folder of generated clips before any heavy work.

A generated clip is ``<preds>/<list line minus .mp4>_clip-{00,01,02}.mp4`` (the official naming,
PROTOCOL.md §1), with an audio track and at least 12 video frames. Names are matched exactly (no
prefix glob, unlike the official ``<stem>*.mp4``, §8). Every problem is collected into one
:class:`PredictionReport` so the user sees them all at once.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from avsync_bench.datasets import TestVideo
from avsync_bench.io.media import MediaError, count_video_frames, probe
from avsync_bench.protocol import ClipSpec

__all__ = [
    "PredictionProblem",
    "PredictionReport",
    "PredictionError",
    "check_predictions",
    "check_clip_file",
]


@dataclass(frozen=True)
class PredictionProblem:
    """One problem: ``kind`` is missing, extra, duplicate, unreadable, no_audio or too_few_frames."""

    kind: str
    path: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class PredictionReport:
    """Result of :func:`check_predictions`.

    Attributes:
        expected: every expected relative name, in evaluation order (video, then clip index).
        found: expected names whose file exists and passed every check → absolute path.
        problems: every problem found.
    """

    root: Path
    expected: list[str]
    found: dict[str, Path] = field(default_factory=dict)
    problems: list[PredictionProblem] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every expected clip is present and valid (extras are still problems)."""
        return len(self.found) == len(self.expected)

    @property
    def absent(self) -> list[str]:
        """Expected names that cannot be scored (missing or invalid)."""
        return [name for name in self.expected if name not in self.found]

    def summary(self) -> str:
        """A human-readable report listing every problem, grouped by kind."""
        lines = [
            f"{self.root}: {len(self.found)}/{len(self.expected)} expected clips usable, "
            f"{len(self.problems)} problem(s)"
        ]
        by_kind: dict[str, list[PredictionProblem]] = defaultdict(list)
        for problem in self.problems:
            by_kind[problem.kind].append(problem)
        for kind in sorted(by_kind):
            lines.append(f"  {kind} ({len(by_kind[kind])}):")
            lines.extend(
                f"    {p.path}" + (f": {p.detail}" if p.detail else "") for p in by_kind[kind]
            )
        return "\n".join(lines)


class PredictionError(ValueError):
    """The predictions folder cannot be scored as asked; carries the full report."""

    def __init__(self, report: PredictionReport, message: str):
        super().__init__(message + "\n" + report.summary())
        self.report = report


def check_predictions(
    preds: str | Path, videos: list[TestVideo], spec: ClipSpec
) -> PredictionReport:
    """Check a predictions folder against the test videos.

    Finds missing, extra (any ``.mp4`` not expected), duplicate (an expected file name that also
    sits in another folder, or that differs only by letter case), unreadable, no-audio and
    fewer-than-``spec.num_frames``-frames files.

    Directory symlinks are followed (a class folder may link to a folder elsewhere); a symlink
    that leads back into a folder it sits in is a loop and refused.

    Raises:
        PredictionError: ``preds`` is not a directory, or a directory symlink loops.
    """
    root = Path(preds)
    expected = [video.clip_name(i) for video in videos for i in range(spec.num_clips)]
    report = PredictionReport(root=root, expected=expected)
    if not root.is_dir():
        raise PredictionError(report, f"{root}: predictions folder does not exist")
    present = _list_files(root, report)
    media = {rel: p for rel, p in present.items() if rel.lower().endswith(".mp4")}
    expected_set = set(expected)
    by_basename: dict[str, list[str]] = defaultdict(list)
    for rel in media:
        by_basename[rel.rsplit("/", 1)[-1].lower()].append(rel)
    for rel in sorted(media):
        if rel in expected_set:
            continue
        twins = [r for r in by_basename[rel.rsplit("/", 1)[-1].lower()] if r in expected_set]
        kind = "duplicate" if twins or rel.lower() in {e.lower() for e in expected} else "extra"
        detail = f"same clip as {twins[0]}" if twins else ""
        if kind == "duplicate" and not twins:
            detail = "differs from an expected name only by letter case"
        report.problems.append(PredictionProblem(kind, rel, detail))
    for rel in expected:
        path = media.get(rel)
        if path is None:
            report.problems.append(PredictionProblem("missing", rel))
            continue
        problem = check_clip_file(rel, path, spec)
        if problem is None:
            report.found[rel] = path
        else:
            report.problems.append(problem)
    return report


def _list_files(root: Path, report: PredictionReport) -> dict[str, Path]:
    """Every file under ``root`` by POSIX relative path, following directory symlinks.

    Raises:
        PredictionError: a directory symlink points at one of its own ancestors (a loop).
    """
    present: dict[str, Path] = {}
    ancestors = [(root.stat().st_dev, root.stat().st_ino)]

    def walk(folder: Path, rel: str) -> None:
        with os.scandir(folder) as entries:
            children = sorted(entries, key=lambda e: e.name)
        for entry in children:
            path, name = Path(entry.path), f"{rel}{entry.name}"
            if entry.is_dir(follow_symlinks=True):
                stat = path.stat()
                identity = (stat.st_dev, stat.st_ino)
                if identity in ancestors:
                    raise PredictionError(
                        report,
                        f"{path}: directory symlink loop (it leads back to "
                        f"{os.path.realpath(path)}, a folder that contains it); refusing to list",
                    )
                ancestors.append(identity)
                walk(path, name + "/")
                ancestors.pop()
            elif entry.is_file(follow_symlinks=True):
                present[name] = path

    walk(root, "")
    return present


def check_clip_file(rel: str, path: Path, spec: ClipSpec) -> PredictionProblem | None:
    """The problem with one generated file (unreadable, no audio, too few frames), or None."""
    try:
        info = probe(path)
        if info.video_duration is None:
            return PredictionProblem("unreadable", rel, "no video stream")
        if info.audio_duration is None:
            return PredictionProblem("no_audio", rel, "no audio track")
        frames = count_video_frames(path)
    except MediaError as exc:
        return PredictionProblem("unreadable", rel, str(exc).split(": ", 1)[-1])
    if frames < spec.num_frames:
        return PredictionProblem("too_few_frames", rel, f"{frames} < {spec.num_frames} frames")
    return None
