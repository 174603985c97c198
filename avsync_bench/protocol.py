"""Protocol constants and modes (PROTOCOL.md §1 and §8).

``official`` reproduces the official ASVA evaluation's definitions, quirks included where they
change values; ``corrected`` fixes each quirk. Every result records its mode, and the two are never
mixed in one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

__all__ = ["ProtocolMode", "ClipSpec", "eval_clip_starts", "generated_clip_start"]


class ProtocolMode(str, Enum):
    """``official``: the official numbers' definitions; ``corrected``: quirks fixed (§8)."""

    official = "official"
    corrected = "corrected"


@dataclass(frozen=True)
class ClipSpec:
    """What one benchmark clip is (PROTOCOL.md §1).

    Attributes:
        height, width: output frame size in pixels (256x256; 128x256 for TheGreatestHits).
        num_frames: frames per clip (12).
        fps: clip frame rate in frames/s (6), so a clip lasts ``num_frames / fps`` = 2 s.
        sample_rate: audio rate after resampling, Hz (16000).
        num_clips: test clips per video (3).
    """

    height: int = 256
    width: int = 256
    num_frames: int = 12
    fps: int = 6
    sample_rate: int = 16000
    num_clips: int = 3

    @property
    def duration(self) -> float:
        """Clip length in seconds (2.0)."""
        return self.num_frames / self.fps

    @property
    def num_samples(self) -> int:
        """Audio samples per clip at ``sample_rate`` (32000)."""
        return int(self.duration * self.sample_rate)


def eval_clip_starts(av_duration: float, spec: ClipSpec, mode: ProtocolMode) -> list[float]:
    """Start times (s) of the test clips of one video: ``linspace(0, D − 2, 3)`` (§1).

    In ``official`` mode a video shorter than 2 s gives negative starts, as the official code
    does; ``corrected`` clamps them to 0 (the audio is then zero-padded, never wrapped).
    """
    starts = np.linspace(0.0, av_duration - spec.duration, num=spec.num_clips, endpoint=True)
    if mode is ProtocolMode.corrected:
        starts = np.maximum(starts, 0.0)
    return [float(s) for s in starts]


def generated_clip_start(av_duration: float, spec: ClipSpec, mode: ProtocolMode) -> float:
    """Where a generated clip is read from: its centred 2 s window, ``(D − 2) / 2`` (§2 "Inputs").

    The official evaluation re-reads each generated file as one centred clip; for a 2 s file this
    is ≈0 (slightly negative when its audio track is a little shorter than 2 s). ``corrected``
    clamps it to 0.
    """
    start = (av_duration - spec.duration) / 2.0
    return max(start, 0.0) if mode is ProtocolMode.corrected else start
