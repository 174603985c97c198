"""AV-Align per clip (weight-free sync score, :mod:`avsync_bench.metrics.av_align`).

Computed from the clip's 12 frames at 6 fps and its audio downmixed to mono (channel mean,
centre-cropped to 2 s where longer), on both sides. An extra column, never a replacement for
RelSync.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import nn

from avsync_bench.clips import Clip
from avsync_bench.features.base import FeatureExtractor
from avsync_bench.metrics.av_align import av_align

__all__ = ["AVAlignFeatures", "clip_av_align"]


def clip_av_align(clip: Clip, fps: int = 6, sample_rate: int = 16000) -> float:
    """AV-Align of one clip (frames at ``fps``, audio at ``sample_rate`` Hz)."""
    audio = clip.audio.mean(axis=0)
    n = 2 * sample_rate
    if len(audio) > n:
        begin = (len(audio) - n) // 2
        audio = audio[begin : begin + n]
    return av_align(clip.frames, fps, audio.astype(np.float32), sample_rate)


class AVAlignFeatures(FeatureExtractor):
    """Per clip: (1,) AV-Align score in [0, 1]."""

    name = "av_align"
    version = "1"
    weight_names = ()
    feature_shape = (1,)

    def build(self, weights) -> nn.Module:
        return nn.Identity()  # nothing to load

    def extract(self, clips: Sequence[Clip], side: str = "gen") -> np.ndarray:
        return np.array([[clip_av_align(c)] for c in clips], dtype=np.float32)
