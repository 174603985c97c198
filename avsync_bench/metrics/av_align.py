"""AV-Align: audio-video peak alignment score (IoU of audio onsets and motion peaks).

AV-Align was introduced by Yariv et al., "Diverse and Aligned Audio-to-Video Generation via
Text-to-Video Model Adaptation" (AAAI 2024). This module follows the authors' reference script
``av_align.py`` in github.com/guyyariv/TempoTokens (commit 34d9502), with every parameter taken
from it unless stated otherwise below. (The stored script does not run as is: its
``find_local_max_indexes`` uses an undefined ``n``, read here as ``len(arr)``.) It needs no
torch: only numpy, librosa and OpenCV.

Audio peaks (:func:`audio_peak_frames`)
    1. The mono waveform is resampled to ``analysis_sr`` = 22050 Hz with ``librosa.resample``
       (default ``res_type`` "soxr_hq"). The reference calls ``librosa.load(path)``, which loads
       mono at librosa's default 22050 Hz with the same resampler, so the rate is kept.
    2. ``librosa.onset.onset_strength(y=y, sr=22050)`` with librosa's defaults: hop_length 512
       (23.2 ms per envelope frame), feature = dB mel spectrogram (n_fft 2048, 128 mels),
       lag 1, max_size 1, aggregate = mean over bins, centred frames, no detrending.
    3. ``librosa.onset.onset_detect(onset_envelope=env, sr=22050)`` with librosa's defaults:
       hop_length 512, envelope max-normalised, no backtracking, and ``librosa.util.peak_pick``
       with pre_max 0.03 s, post_max 0 s + 1, pre_avg 0.10 s, post_avg 0.10 s + 1, wait 0.03 s
       (i.e. 1, 1, 4, 5, 1 envelope frames at 22050 Hz / 512) and delta 0.07. An all-zero
       envelope (silence) gives no onsets. (Checked against librosa 0.11.)
    4. Onset frames to seconds with ``librosa.frames_to_time(..., sr=22050, hop_length=512)``,
       then to (fractional) video-frame positions ``t * fps``. They are not rounded: the match
       test below compares positions exactly as the reference compares times.

Video peaks (:func:`video_peak_frames`)
    1. Each frame is converted to 8-bit grey (``cv2.COLOR_RGB2GRAY`` for our RGB input; the
       reference applies ``COLOR_BGR2GRAY`` to OpenCV's BGR frames, which is the same weighting).
    2. Dense optical flow ``cv2.calcOpticalFlowFarneback(prev, next, None, pyr_scale=0.5,
       levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)`` between each
       pair of consecutive frames; the per-pair value is the mean of the flow magnitude over
       all pixels (``cv2.magnitude`` then a mean, as the reference's ``cv2.mean``).
    3. **Numerical floor (not in the reference):** identical consecutive frames get magnitude
       0 without running Farneback, and mean magnitudes below ``FLOW_FLOOR`` = 1e-6 px are set
       to 0. Farneback returns ~1e-10 px of float noise on identical frames, and that noise
       varies between calls, so without the floor the strict local-maximum
       rule below finds random "peaks" in static stretches (e.g. the Static baseline, which
       repeats one frame) and the score is not reproducible. Real motion is orders of
       magnitude above 1e-6 px, so no real peak is affected. (Non-zero magnitudes can still
       differ by ~1e-8 relative between calls inside OpenCV; peaks flip only on such near-ties.)
    4. The trajectory has one value per frame: ``m[i]`` = mean flow magnitude from frame i-1 to
       frame i for i >= 1, and ``m[0] = m[1]`` (the reference duplicates the first pair).
    5. A video peak is a strict local maximum ``m[i-1] < m[i] > m[i+1]`` for
       ``1 <= i <= T-2``; its position is frame index i (time i / fps). No threshold, no
       minimum distance. Consequences of the reference rule kept here: motion between frames
       0 and 1 can never be a peak (m[0] == m[1]), the last frame can never be a peak, flat
       plateaus give no peak, and a clip of 3 frames can have no video peak at all.

Score (:func:`peak_iou`)
    A video peak v and an audio peak a match when ``|a - v| < tolerance`` with tolerance
    1 frame, i.e. the reference's strict test ``v - 1/fps < a < v + 1/fps`` in seconds.
    AV-Align = M / (N_audio + N_video - M).

    **Deviation (default ``matching="one_to_one"``):** M is the size of a maximum one-to-one
    matching between the two peak sets (each peak used at most once; computed exactly by a
    greedy sweep over the sorted positions), so the score is a true IoU in [0, 1]. The
    reference instead counts every audio peak that has *some* video peak within the window, so
    several audio onsets near one motion peak are all counted and its score can exceed 1
    (e.g. 2 onsets + 1 motion peak -> 2 / (2 + 1 - 2) = 2.0). ``matching="reference"``
    reproduces that count exactly, for comparison with numbers published with the script.

    **Both sets empty** (e.g. a static clip with silent audio): the reference divides by zero.
    Here the score is ``empty_value``, 0.0 by default: no evidence of synchronisation is scored
    as none, so static-and-silent output is never rewarded. Pass ``empty_value=float("nan")``
    to exclude such clips from a mean instead. If only one set is empty the score is 0.0.

Other conventions: the audio is not cropped to the video's duration (neither does the
reference), so pass the clip's own audio; there is no resampling of the video (``fps`` only
converts audio times to frame positions).
"""

from __future__ import annotations

from typing import Literal

import cv2
import librosa
import numpy as np

__all__ = [
    "ANALYSIS_SR",
    "FARNEBACK_PARAMS",
    "FLOW_FLOOR",
    "HOP_LENGTH",
    "audio_peak_frames",
    "av_align",
    "flow_magnitudes",
    "peak_iou",
    "video_peak_frames",
]

#: Sample rate of the onset analysis (librosa.load's default in the reference script).
ANALYSIS_SR = 22050
#: Hop length of the onset envelope (librosa's default; the reference does not set it).
HOP_LENGTH = 512
#: Farneback parameters of the reference script, in OpenCV's positional order.
FARNEBACK_PARAMS = {
    "pyr_scale": 0.5,
    "levels": 3,
    "winsize": 15,
    "iterations": 3,
    "poly_n": 5,
    "poly_sigma": 1.2,
    "flags": 0,
}

#: Mean flow magnitudes below this (pixels per frame) are treated as exactly zero motion.
FLOW_FLOOR = 1e-6

Matching = Literal["one_to_one", "reference"]


def _check_fps(fps: float) -> float:
    fps = float(fps)
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive finite number, got {fps!r}")
    return fps


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 4 and frames.shape[-1] == 3:
        pass
    elif frames.ndim != 3:
        raise ValueError(
            "frames must have shape (T, H, W, 3) (RGB) or (T, H, W) (grey), "
            f"got shape {frames.shape}"
        )
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (0..255), got dtype {frames.dtype}")
    if frames.shape[0] < 3:
        raise ValueError(
            f"AV-Align needs at least 3 frames (a peak needs two neighbours), got {frames.shape[0]}"
        )
    if frames.shape[1] < 2 or frames.shape[2] < 2:
        raise ValueError(f"frames are too small for optical flow: {frames.shape[1:3]}")
    return frames


def _check_audio(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(
            f"audio must be a mono 1-D waveform of shape (T_a,), got shape {audio.shape}; "
            "downmix first (e.g. audio.mean(axis=0) for (channels, samples))"
        )
    if audio.size == 0:
        raise ValueError("audio is empty (0 samples)")
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    audio = audio.astype(np.float32, copy=False)
    if not np.all(np.isfinite(audio)):
        raise ValueError("audio contains NaN or infinite samples")
    return audio


def audio_peak_frames(
    audio: np.ndarray,
    sample_rate: int,
    fps: float,
    *,
    analysis_sr: int = ANALYSIS_SR,
    hop_length: int = HOP_LENGTH,
) -> np.ndarray:
    """Audio onset positions in video-frame units (``onset_time * fps``), sorted, float64.

    Onsets come from ``librosa.onset.onset_detect`` on ``librosa.onset.onset_strength`` of the
    waveform resampled to ``analysis_sr`` (see the module docstring for every parameter).
    Silence gives an empty array.
    """
    fps = _check_fps(fps)
    audio = _check_audio(audio, sample_rate)
    sample_rate = int(sample_rate)
    if sample_rate != analysis_sr:
        audio = librosa.resample(audio, orig_sr=sample_rate, target_sr=analysis_sr)
    env = librosa.onset.onset_strength(y=audio, sr=analysis_sr, hop_length=hop_length)
    onsets = librosa.onset.onset_detect(onset_envelope=env, sr=analysis_sr, hop_length=hop_length)
    times = librosa.frames_to_time(onsets, sr=analysis_sr, hop_length=hop_length)
    return np.sort(np.asarray(times, dtype=np.float64) * fps)


def _grey(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return np.ascontiguousarray(frame)
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def flow_magnitudes(frames: np.ndarray) -> np.ndarray:
    """Per-frame motion trajectory ``m`` (T,) float64: mean Farneback flow magnitude.

    ``m[i]`` is the mean magnitude of the flow from frame i-1 to frame i (i >= 1) and
    ``m[0] = m[1]``, as in the reference script. Values below ``FLOW_FLOOR`` (and identical
    frame pairs) are exactly 0.
    """
    frames = _check_frames(frames)
    p = FARNEBACK_PARAMS
    greys = [_grey(f) for f in frames]
    pair = []
    for prev, curr in zip(greys[:-1], greys[1:], strict=True):
        if np.array_equal(prev, curr):
            pair.append(0.0)
            continue
        flow = cv2.calcOpticalFlowFarneback(
            prev,
            curr,
            None,
            p["pyr_scale"],
            p["levels"],
            p["winsize"],
            p["iterations"],
            p["poly_n"],
            p["poly_sigma"],
            p["flags"],
        )
        mag = cv2.magnitude(flow[..., 0], flow[..., 1])
        value = float(np.mean(mag, dtype=np.float64))
        pair.append(value if value >= FLOW_FLOOR else 0.0)
    return np.asarray([pair[0], *pair], dtype=np.float64)


def _strict_local_maxima(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.size < 3:
        return np.zeros(0, dtype=np.int64)
    inner = (v[1:-1] > v[:-2]) & (v[1:-1] > v[2:])
    return np.flatnonzero(inner).astype(np.int64) + 1


def video_peak_frames(frames: np.ndarray) -> np.ndarray:
    """Frame indices (int64, sorted) of strict local maxima of :func:`flow_magnitudes`.

    ``frames``: (T, H, W, 3) RGB or (T, H, W) grey, uint8, T >= 3. A static clip gives none.
    """
    return _strict_local_maxima(flow_magnitudes(frames))


def _count_one_to_one(a: np.ndarray, v: np.ndarray, tolerance: float) -> int:
    # Points on a line, compatible when |a - v| < tolerance: the greedy sweep over sorted
    # positions yields a maximum matching (each audio peak's compatible video peaks form an
    # interval whose ends increase with the audio position).
    i = j = matched = 0
    while i < a.size and j < v.size:
        if abs(a[i] - v[j]) < tolerance:
            matched += 1
            i += 1
            j += 1
        elif a[i] < v[j]:
            i += 1
        else:
            j += 1
    return matched


def _count_reference(a: np.ndarray, v: np.ndarray, tolerance: float) -> int:
    # TempoTokens' calc_intersection_over_union: audio peaks with any video peak in the window.
    return sum(1 for x in a if np.any(np.abs(v - x) < tolerance))


def peak_iou(
    audio_peaks: np.ndarray,
    video_peaks: np.ndarray,
    *,
    tolerance: float = 1.0,
    matching: Matching = "one_to_one",
    empty_value: float = 0.0,
) -> float:
    """IoU of two peak sets given in the same unit (video frames for AV-Align).

    Two peaks match when ``|a - v| < tolerance`` (strict). ``matching="one_to_one"`` (default)
    uses a maximum one-to-one matching, giving a value in [0, 1]; ``"reference"`` counts audio
    peaks that have any video peak in the window, as TempoTokens' script does (may exceed 1).
    Returns ``empty_value`` when both sets are empty.
    """
    a = np.sort(np.asarray(audio_peaks, dtype=np.float64).ravel())
    v = np.sort(np.asarray(video_peaks, dtype=np.float64).ravel())
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(v))):
        raise ValueError("peak positions must be finite")
    if not tolerance > 0:
        raise ValueError(f"tolerance must be positive, got {tolerance!r}")
    if a.size == 0 and v.size == 0:
        return float(empty_value)
    if matching == "one_to_one":
        inter = _count_one_to_one(a, v, tolerance)
    elif matching == "reference":
        inter = _count_reference(a, v, tolerance)
    else:
        raise ValueError(f"matching must be 'one_to_one' or 'reference', got {matching!r}")
    return inter / (a.size + v.size - inter)


def av_align(
    frames: np.ndarray,
    fps: float,
    audio: np.ndarray,
    sample_rate: int,
    *,
    matching: Matching = "one_to_one",
    empty_value: float = 0.0,
) -> float:
    """AV-Align score of one clip, in [0, 1] (higher = audio onsets and motion peaks agree).

    Args:
        frames: (T, H, W, 3) uint8 RGB video frames (or (T, H, W) grey), T >= 3.
        fps: frame rate of ``frames``; converts audio onset times to frame positions.
        audio: (T_a,) mono waveform, float (nominally in [-1, 1]), non-empty.
        sample_rate: sample rate of ``audio`` in Hz.
        matching: "one_to_one" (default, a true IoU) or "reference" (TempoTokens' count,
            may exceed 1); see the module docstring.
        empty_value: score when neither audio onsets nor motion peaks are found.

    Raises:
        ValueError: fewer than 3 frames, empty audio, bad shapes/dtypes, non-positive fps or
            sample rate.
    """
    fps = _check_fps(fps)
    frames = _check_frames(frames)
    audio = _check_audio(audio, sample_rate)
    a = audio_peak_frames(audio, sample_rate, fps)
    v = video_peak_frames(frames)
    return peak_iou(a, v, tolerance=1.0, matching=matching, empty_value=empty_value)
