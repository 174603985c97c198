"""Protocol constants, modes and rules (PROTOCOL.md §1, §2 "CLI" and §8).

``official`` reproduces the official ASVA evaluation's definitions, quirks included where they
change values; ``corrected`` fixes each quirk. Every result records its mode, and the two are never
mixed in one table.

All protocol policy lives in one object, :class:`ProtocolRules`: the frame picker, the audio
window, the stereo handling, the IT text source, start clamping, the frames fed to the sync
classifier and the padding limits. Consumers ask a rules instance (``rules_for(mode)``); the mode
is read only here, where the instances are built. A new protocol (e.g. 24 fps inputs read at 6 fps,
or 48 frames) is a new instance, not new branches.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

import numpy as np

__all__ = [
    "ProtocolMode",
    "DEFAULT_MODE",
    "ClipSpec",
    "ProtocolRules",
    "OFFICIAL",
    "CORRECTED",
    "OFFICIAL_SINGLE_PAIR",
    "CORRECTED_SINGLE_PAIR",
    "rules_for",
    "eval_clip_starts",
    "generated_clip_start",
]


class ProtocolMode(str, Enum):
    """``official``: the official numbers' definitions; ``corrected``: quirks fixed (§8)."""

    official = "official"
    corrected = "corrected"


DEFAULT_MODE = ProtocolMode.official
"""The mode used when none is given (the leaderboard's)."""


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


@dataclass(frozen=True)
class ProtocolRules:
    """Every protocol choice, asked by the code that applies it.

    Attributes:
        name: instance name (``official``, ``corrected``, ``official-single-pair`` …).
        mode: the protocol mode recorded in results (``official`` / ``corrected``).
        frame_picker: ``"first_at_or_after"``: keep the first frame whose integer-µs pts plus
            ``pick_tolerance_s`` reaches the target ``s + k/6``, scanning pts ≤ s + 2 + 1/12,
            padding by repeating the last frame (official loader, §1); ``"nearest"``: the
            nearest frame by exact pts within half a source frame interval (corrected).
        pick_tolerance_s: seconds added to a frame's pts before the ``>=`` test: 0 in the dataset
            loader (which drops the frame at exactly 1/3 s), 1e-6 in the official single-pair
            script ``scripts/avsync_metric.py`` (§2 "CLI").
        audio_window: ``"codec_frames"``: the decoded codec frames with ``s ≤ pts ≤ s + 2`` as the
            decoder hands them (official); ``"exact"``: the sample window [s, s + 2) at 16 kHz,
            zero-padded, never wrapped (corrected).
        audio_channels: ``"left_after_mean"``: the mel reads channel 0 after the mean over all
            channels is subtracted (official, §1 "Stereo"); ``"mean"``: the channel mean.
        it_text: ``"folder"``: the raw class folder string (official, §2 "IA / IT");
            ``"mapping"``: the text of ``class_mapping.json``.
        clamp_negative_starts: clamp negative clip starts (videos shorter than 2 s) to 0.
        classifier_frames: ``"clip"``: the sync classifier sees the clip's frames (crop + resize
            to the clip size first); ``"native"``: the decoded frames at their own size, squashed
            to 224 by the classifier transform (the single-pair script).
        audio_file_window: for a non-mp4 audio file (``.wav`` …) in the single-pair path:
            ``"first_then_resample"``: the first ``int(sr·2)`` samples, then resampled (official
            ``load_audio``); ``"resample_then_exact"``: resampled, first 32000, zero-padded.
        max_repeated_frames: the most picked frames that may repeat another picked frame before a
            clip is refused (0 for a single pair, 1 for the benchmark: the official picker
            itself repeats the last frame of a 6 fps file).
        max_audio_padding_s: the most seconds of the 2 s audio window that may be missing
            (zero-filled or absent) before a clip is refused.
    """

    name: str
    mode: ProtocolMode
    frame_picker: str
    pick_tolerance_s: float
    audio_window: str
    audio_channels: str
    it_text: str
    clamp_negative_starts: bool
    classifier_frames: str = "clip"
    audio_file_window: str = "resample_then_exact"
    max_repeated_frames: int = 1
    max_audio_padding_s: float = 0.1

    def clamp(self, start: float) -> float:
        """A clip start (s) as this protocol uses it."""
        return max(start, 0.0) if self.clamp_negative_starts else start

    def eval_clip_starts(self, av_duration: float, spec: ClipSpec) -> list[float]:
        """Start times (s) of the test clips of one video: ``linspace(0, D − 2, 3)`` (§1).

        Without clamping, a video shorter than 2 s gives negative starts, as the official code
        does; with it they become 0 (the audio is then zero-padded, never wrapped).
        """
        starts = np.linspace(0.0, av_duration - spec.duration, num=spec.num_clips, endpoint=True)
        return [self.clamp(float(s)) for s in starts]

    def generated_clip_start(self, av_duration: float, spec: ClipSpec) -> float:
        """Where a generated clip is read from: its centred 2 s window, ``(D − 2) / 2`` (§2
        "Inputs"); ≈0 for a 2 s file (slightly negative when its audio track is a little
        shorter than 2 s), clamped to 0 when the rules clamp."""
        return self.clamp((av_duration - spec.duration) / 2.0)

    def limits(self) -> dict:
        """The padding limits as recorded in ``results.json``."""
        return {
            "max_repeated_frames": self.max_repeated_frames,
            "max_audio_padding_s": self.max_audio_padding_s,
        }


OFFICIAL = ProtocolRules(
    name="official",
    mode=ProtocolMode.official,
    frame_picker="first_at_or_after",
    pick_tolerance_s=0.0,
    audio_window="codec_frames",
    audio_channels="left_after_mean",
    it_text="folder",
    clamp_negative_starts=False,
)
CORRECTED = ProtocolRules(
    name="corrected",
    mode=ProtocolMode.corrected,
    frame_picker="nearest",
    pick_tolerance_s=0.0,
    audio_window="exact",
    audio_channels="mean",
    it_text="mapping",
    clamp_negative_starts=True,
)
OFFICIAL_SINGLE_PAIR = replace(
    OFFICIAL,
    name="official-single-pair",
    pick_tolerance_s=1e-6,
    classifier_frames="native",
    audio_file_window="first_then_resample",
    max_repeated_frames=0,
)
"""``scripts/avsync_metric.py``: 12 frames from t = 0 with a +1e-6 tolerance, native frames into
the classifier, audio from 0 to 2 s (§2 "CLI")."""
CORRECTED_SINGLE_PAIR = replace(CORRECTED, name="corrected-single-pair", max_repeated_frames=0)
"""A single pair read exactly as the corrected benchmark reads a clip starting at 0."""

_RULES = {
    (ProtocolMode.official, False): OFFICIAL,
    (ProtocolMode.corrected, False): CORRECTED,
    (ProtocolMode.official, True): OFFICIAL_SINGLE_PAIR,
    (ProtocolMode.corrected, True): CORRECTED_SINGLE_PAIR,
}


def rules_for(mode: ProtocolMode | str | ProtocolRules, single_pair: bool = False) -> ProtocolRules:
    """The rules of a mode (or ``mode`` itself when it is already a rules instance).

    Args:
        mode: ``official`` / ``corrected`` (enum or string), or a :class:`ProtocolRules`.
        single_pair: the rules of ``avsync-bench sync-score`` rather than of the benchmark.

    Raises:
        ValueError: an unknown mode string.
    """
    if isinstance(mode, ProtocolRules):
        return mode
    return _RULES[(ProtocolMode(mode), single_pair)]


def eval_clip_starts(
    av_duration: float, spec: ClipSpec, mode: ProtocolMode | ProtocolRules
) -> list[float]:
    """:meth:`ProtocolRules.eval_clip_starts` of ``mode``'s rules."""
    return rules_for(mode).eval_clip_starts(av_duration, spec)


def generated_clip_start(
    av_duration: float, spec: ClipSpec, mode: ProtocolMode | ProtocolRules
) -> float:
    """:meth:`ProtocolRules.generated_clip_start` of ``mode``'s rules."""
    return rules_for(mode).generated_clip_start(av_duration, spec)
