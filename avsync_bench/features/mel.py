"""The clip's log-mel as a feature (both sides), used to check generated audio against the GT.

Not a metric input of its own: the scorer compares each generated file's mel with its GT clip's
mel and flags clips whose audio differs by more than AAC re-encoding explains (a common mistake:
muxing the wrong audio window). Cached on the GT side like every other feature.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from avsync_bench.clips import Clip, clip_mel
from avsync_bench.features.base import FeatureExtractor

__all__ = ["MelFeatures", "audio_match", "MATCH_THRESHOLD", "MATCH_MEASURE"]

# Generated audio is compared with the GT clip's audio on the clip's log-mel spectrogram (what the
# audio metrics read): the 198 real 10 ms frames of the 2 s window, each value raised to at least
# FLOOR below the clip's loudest value (the codec's noise floor is no evidence), smoothed over
# SMOOTH_FRAMES frames in time (a 44 ms offset is 4.4 frames: the moving average absorbs the
# sub-frame remainder and codec smearing), each mel bin's mean over time removed (every recording
# shares a long-term spectrum; only its changes over time identify the window). The score is the best Pearson correlation of the two spectrograms over
# lags of ±MAX_LAG frames (±60 ms: the official protocol re-reads a generated file's audio with a
# window that can sit a few tens of ms off the GT window, and generators shift it too). Unlike the
# earlier smoothed log-energy envelope, the whole spectro-temporal pattern is compared, so a
# correct file scores high at any offset inside the search. Calibration on the AVSync15 gallery:
# `benchmarks/audio_check_gallery.py` (figures in the README). Below the threshold a clip is flagged.
MATCH_THRESHOLD = 0.75
MATCH_MEASURE = (
    "best log-mel spectrogram correlation within ±60 ms, GT clip audio vs generated file"
)
MAX_LAG = 6
REAL_FRAMES = 198
FLOOR = 2.0  # normalised log-mel units (x 9.138 nats: ≈ 80 dB)
SMOOTH_FRAMES = 5


class MelFeatures(FeatureExtractor):
    """Per clip: (1, 128, 204) float32 normalised log-mel (the metric audio input)."""

    name = "mel"
    version = "1"
    weight_names = ()
    feature_shape = (1, 128, 204)

    def build(self, weights) -> nn.Module:
        return nn.Identity()

    def extract(self, clips: Sequence[Clip], side: str = "gen") -> np.ndarray:
        return torch.stack([clip_mel(c) for c in clips]).numpy()


def _spectrogram(mel: np.ndarray) -> np.ndarray:
    """(128, 198) float64: the real frames of a normalised mel, floored at FLOOR below its peak,
    moving-averaged over SMOOTH_FRAMES frames in time (edges repeat the end frames)."""
    from scipy.ndimage import uniform_filter1d

    values = mel[0, :, :REAL_FRAMES].astype(np.float64)
    values = np.maximum(values, values.max() - FLOOR)
    return uniform_filter1d(values, SMOOTH_FRAMES, axis=1, mode="nearest")


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 1e-12 else float("nan")


def audio_match(gt: np.ndarray, gen: np.ndarray) -> np.ndarray:
    """(N,) best correlation of the GT and generated log-mel spectrograms over ±``MAX_LAG``
    frames (±60 ms), per clip (see the comment above ``MATCH_THRESHOLD``).

    Args:
        gt, gen: (N, 1, 128, 204) normalised mels (:func:`avsync_bench.clips.clip_mel`) of the
            GT clips and of the generated files.

    Returns:
        (N,) float64 in [-1, 1]; 1.0 when both sides are silent (flat after the floor), 0.0 when
        only one is.
    """
    out = []
    for g, p in zip(gt, gen):
        a, b = _spectrogram(g), _spectrogram(p)
        flat_a, flat_b = np.ptp(a) < 1e-6, np.ptp(b) < 1e-6
        if flat_a or flat_b:
            out.append(1.0 if flat_a and flat_b else 0.0)
            continue
        n = a.shape[1]
        scores = [
            _correlation(a[:, max(lag, 0) : n + min(lag, 0)], b[:, max(-lag, 0) : n + min(-lag, 0)])
            for lag in range(-MAX_LAG, MAX_LAG + 1)
        ]
        out.append(max((s for s in scores if s == s), default=0.0))
    return np.array(out, dtype=np.float64)
