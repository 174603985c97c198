"""Listing and checking a folder of generated clips before any heavy work.

A generated clip is ``<preds>/<list line minus .mp4>_clip-{00,01,02}.mp4`` (the official naming,
PROTOCOL.md §1), with an audio track and at least 12 video frames. Names are matched exactly (no
prefix glob, unlike the official ``<stem>*.mp4``, §8). Every problem is collected into one
:class:`PredictionReport` so the user sees them all at once.

Besides the listing (missing, extra, duplicate, a clip written as ``.mkv``/``.mov``/``.webm``),
each file is decoded once to find: unreadable files, no audio track, fewer than 12 frames,
NaN or infinite audio samples (``bad_audio``), and how much of its clip window is padding
(:class:`~avsync_bench.clips.ClipPadding`): clips over the protocol's padding limits
(:class:`~avsync_bench.protocol.ProtocolRules`) are problems (``padding``) unless
``allow_padding``; every padded clip is listed in :attr:`PredictionReport.padding`.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avsync_bench.clips import ClipPadding, generated_clip_padding
from avsync_bench.datasets import TestVideo
from avsync_bench.errors import AVSyncBenchError
from avsync_bench.io.media import MediaError, decode_audio, probe, video_frame_times
from avsync_bench.protocol import DEFAULT_MODE, ClipSpec, ProtocolMode, ProtocolRules, rules_for

__all__ = [
    "PredictionProblem",
    "PredictionReport",
    "PredictionError",
    "check_predictions",
    "check_clip_file",
    "inspect_clip_file",
]


@dataclass(frozen=True)
class PredictionProblem:
    """One problem: ``kind`` is missing, extra, duplicate, wrong_format, unreadable, no_audio,
    too_few_frames, bad_audio or padding. ``debug`` holds diagnostics (FFmpeg's text) shown only
    with ``--verbose``."""

    kind: str
    path: str
    detail: str = ""
    debug: str = ""

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
    padding: dict[str, ClipPadding] = field(default_factory=dict)
    rules: ProtocolRules = field(default_factory=lambda: rules_for(DEFAULT_MODE))
    allow_padding: bool = False

    @property
    def complete(self) -> bool:
        """True when every expected clip is present and valid (extras are still problems)."""
        return len(self.found) == len(self.expected)

    @property
    def absent(self) -> list[str]:
        """Expected names that cannot be scored (missing or invalid)."""
        return [name for name in self.expected if name not in self.found]

    def why_absent(self) -> dict[str, str]:
        """Each absent expected clip → why (the problem's kind and detail)."""
        reasons = {}
        for problem in self.problems:
            if problem.path in self.expected and problem.path not in self.found:
                reasons.setdefault(
                    problem.path, problem.kind + (f": {problem.detail}" if problem.detail else "")
                )
        return {name: reasons.get(name, "missing") for name in self.absent}

    def padding_record(self) -> dict:
        """``results.json`` → ``padding``: the limits, whether over-limit clips were allowed, and
        every scored clip whose window needed padding."""
        return {
            "limits": self.rules.limits(),
            "allow_padding": self.allow_padding,
            "clips": {
                name: {**pad.record(), "over_limit": pad.exceeds(self.rules)}
                for name, pad in self.padding.items()
                if name in self.found
            },
        }

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


class PredictionError(AVSyncBenchError, ValueError):
    """The predictions folder cannot be scored as asked; carries the full report."""

    def __init__(self, report: PredictionReport, message: str):
        super().__init__(message + "\n" + report.summary())
        self.report = report
        self.detail = "\n".join(f"{p.path}: {p.debug}" for p in report.problems if p.debug)


_OTHER_CONTAINERS = (".mkv", ".mov", ".webm", ".avi", ".m4v", ".flv", ".wmv")


def check_predictions(
    preds: str | Path,
    videos: list[TestVideo],
    spec: ClipSpec,
    mode: ProtocolMode | ProtocolRules = DEFAULT_MODE,
    allow_padding: bool = False,
) -> PredictionReport:
    """Check a predictions folder against the test videos.

    Finds missing, extra (any ``.mp4`` not expected), duplicate (an expected file name that also
    sits in another folder, or that differs only by letter case), wrong_format (a clip written as
    ``.mkv``/``.mov``/``.webm`` …: "found <name>.mkv; predictions must be .mp4"), unreadable,
    no-audio, fewer-than-``spec.num_frames``-frames, NaN/infinite-audio files, and clips whose
    window needs more padding than ``mode``'s rules allow (unless ``allow_padding``).

    Directory symlinks are followed (a class folder may link to a folder elsewhere); a symlink
    that leads back into a folder it sits in is a loop and refused.

    Raises:
        PredictionError: ``preds`` is not a directory, or a directory symlink loops.
    """
    root = Path(preds)
    rules = rules_for(mode)
    expected = [video.clip_name(i) for video in videos for i in range(spec.num_clips)]
    report = PredictionReport(
        root=root, expected=expected, rules=rules, allow_padding=allow_padding
    )
    if not root.is_dir():
        raise PredictionError(report, f"{root}: predictions folder does not exist")
    present = _list_files(root, report)
    media = {rel: p for rel, p in present.items() if rel.lower().endswith(".mp4")}
    expected_set = set(expected)
    wrong = {}  # expected name → the other-container file found for it
    for rel in sorted(present):
        if not rel.lower().endswith(_OTHER_CONTAINERS):
            continue
        as_mp4 = rel.rsplit(".", 1)[0] + ".mp4"
        found = f"found {rel.rsplit('/', 1)[-1]}; predictions must be .mp4"
        if as_mp4 in expected_set and as_mp4 not in media:
            wrong[as_mp4] = found
        elif as_mp4 in expected_set:
            report.problems.append(PredictionProblem("wrong_format", rel, found + " (ignored)"))
        else:
            report.problems.append(PredictionProblem("extra", rel, found))
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
            report.problems.append(PredictionProblem("missing", rel, wrong.get(rel, "")))
            continue
        problem, padding = inspect_clip_file(rel, path, spec, rules)
        if problem is None and padding is not None and padding.exceeds(rules):
            if not allow_padding:
                limits = rules.limits()
                problem = PredictionProblem(
                    "padding",
                    rel,
                    f"{padding.describe(spec)}; the limit is {limits['max_repeated_frames']} "
                    f"repeated frame(s) and {limits['max_audio_padding_s']:g} s of audio "
                    "(--allow-padding scores it anyway)",
                )
        if padding is not None and padding.needed:
            report.padding[rel] = padding
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


def inspect_clip_file(
    rel: str, path: Path, spec: ClipSpec, mode: ProtocolMode | ProtocolRules = DEFAULT_MODE
) -> tuple[PredictionProblem | None, ClipPadding | None]:
    """Decode one generated file once: its problem (unreadable, no audio, too few frames, NaN or
    infinite audio) or None, and the padding of its clip window under ``mode``'s rules (None
    when the file has a problem)."""
    try:
        info = probe(path)
        if info.video_duration is None:
            return PredictionProblem("unreadable", rel, "no video stream"), None
        if info.audio_duration is None:
            return PredictionProblem("no_audio", rel, "no audio track"), None
        frames = video_frame_times(path)
        if len(frames) < spec.num_frames:
            detail = f"{len(frames)} < {spec.num_frames} frames"
            return PredictionProblem("too_few_frames", rel, detail), None
        audio = decode_audio(path, 0.0, math.inf)
    except MediaError as exc:
        message = str(exc).split(": ", 1)[-1]
        return PredictionProblem("unreadable", rel, message, debug=exc.detail), None
    if not audio:
        return PredictionProblem("no_audio", rel, "the audio track is empty"), None
    if not all(np.isfinite(f.samples).all() for f in audio):
        return PredictionProblem("bad_audio", rel, "audio contains NaN or infinite samples"), None
    span = (audio[0].pts, audio[-1].pts + audio[-1].samples.shape[1] / audio[-1].sample_rate)
    padding = generated_clip_padding(frames, span, info.av_duration, spec, mode)
    return None, padding


def check_clip_file(
    rel: str, path: Path, spec: ClipSpec, mode: ProtocolMode | ProtocolRules = DEFAULT_MODE
) -> PredictionProblem | None:
    """The problem with one generated file (unreadable, no audio, too few frames, NaN or
    infinite audio), or None (see :func:`inspect_clip_file`)."""
    return inspect_clip_file(rel, path, spec, mode)[0]
