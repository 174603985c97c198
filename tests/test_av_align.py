"""Tests for the AV-Align score (synthetic clips built in numpy; no media files needed)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from avsync_bench.metrics.av_align import (
    audio_peak_frames,
    av_align,
    flow_magnitudes,
    peak_iou,
    video_peak_frames,
)

FPS = 24.0
N_FRAMES = 48  # 2 s
JUMPS = [10, 22, 34]
SR = 16000


def jumping_square(n_frames=N_FRAMES, jumps=JUMPS, size=64, step=10, rgb=True) -> np.ndarray:
    """A white square on black that moves right by ``step`` px exactly at each frame in jumps."""
    frames = np.zeros((n_frames, size, size, 3), np.uint8)
    for t in range(n_frames):
        x = 6 + step * sum(t >= j for j in jumps)
        frames[t, 24:40, x : x + 16] = (255, 200, 120)
    return frames if rgb else frames[..., 0]


def clicks(times_s, duration_s=N_FRAMES / FPS, sr=SR, seed=0) -> np.ndarray:
    """Silence with short decaying noise bursts (10 ms) starting at ``times_s``."""
    rng = np.random.default_rng(seed)
    y = np.zeros(int(round(duration_s * sr)), np.float32)
    n = int(0.01 * sr)
    env = np.exp(-np.arange(n) / (0.002 * sr))
    for t in times_s:
        i = int(round(t * sr))
        seg = y[i : i + n]
        seg += (0.8 * rng.standard_normal(n) * env)[: seg.size].astype(np.float32)
    return y


# --------------------------------------------------------------------------------------------
# IoU arithmetic on hand-made peak lists
# --------------------------------------------------------------------------------------------


def test_iou_hand_made():
    # 2 <-> 2 (distance 0) and 5.5 <-> 6 (0.5) match; 9 and 12 do not.
    assert peak_iou([2.0, 5.5, 9.0], [2, 6, 12]) == pytest.approx(2 / 4)
    assert peak_iou([1.0, 4.0], [1, 4]) == 1.0
    assert peak_iou([1.0, 4.0], [7, 9]) == 0.0
    # 3 audio, 1 video, 1 match -> 1 / (3 + 1 - 1)
    assert peak_iou([3.2, 8.0, 15.0], [3]) == pytest.approx(1 / 3)


def test_iou_window_is_strict_one_frame():
    assert peak_iou([2.999], [2]) == 1.0
    assert peak_iou([1.001], [2]) == 1.0
    assert peak_iou([3.0], [2]) == 0.0  # exactly one frame away: no match (reference: strict <)
    assert peak_iou([1.0], [2]) == 0.0
    assert peak_iou([3.0], [2], tolerance=1.5) == 1.0


def test_iou_order_does_not_matter():
    assert peak_iou([9.0, 2.0, 5.5], [12, 2, 6]) == peak_iou([2.0, 5.5, 9.0], [2, 6, 12])


def test_iou_one_to_one_vs_reference_count():
    # two onsets around one motion peak: one-to-one uses the motion peak once
    assert peak_iou([4.8, 5.2], [5]) == pytest.approx(1 / 2)
    # the TempoTokens script counts both onsets -> 2 / (2 + 1 - 2) = 2.0 (not an IoU)
    assert peak_iou([4.8, 5.2], [5], matching="reference") == pytest.approx(2.0)
    # where each peak has a single partner, the two counts agree
    a, v = [2.0, 5.5, 9.0], [2, 6, 12]
    assert peak_iou(a, v, matching="reference") == peak_iou(a, v)


def test_iou_empty_sets():
    assert peak_iou([], []) == 0.0
    assert math.isnan(peak_iou([], [], empty_value=float("nan")))
    assert peak_iou([], [], empty_value=1.0) == 1.0
    assert peak_iou([3.0], []) == 0.0
    assert peak_iou([], [3]) == 0.0


def test_iou_bad_arguments():
    with pytest.raises(ValueError, match="matching"):
        peak_iou([1.0], [1], matching="greedy")
    with pytest.raises(ValueError, match="tolerance"):
        peak_iou([1.0], [1], tolerance=0)
    with pytest.raises(ValueError, match="finite"):
        peak_iou([np.nan], [1])


def _max_matching(a, v, tol=1.0) -> int:
    if len(a) == 0 or len(v) == 0:
        return 0
    adj = (np.abs(np.subtract.outer(a, v)) < tol).astype(float)
    rows, cols = linear_sum_assignment(-adj)
    return int(adj[rows, cols].sum())


def test_greedy_matching_is_maximum_and_iou_bounded():
    rng = np.random.default_rng(1)
    for _ in range(300):
        a = np.round(rng.uniform(0, 12, rng.integers(0, 7)), 2)
        v = rng.integers(0, 12, rng.integers(0, 7)).astype(float)
        if a.size + v.size == 0:
            continue
        m = _max_matching(a, v)
        expected = m / (a.size + v.size - m)
        got = peak_iou(a, v)
        assert got == pytest.approx(expected), (a, v)
        assert 0.0 <= got <= 1.0


def test_greedy_matching_small_exhaustive():
    # every small configuration on a half-frame grid
    grid = [0.0, 0.5, 1.0, 1.5, 2.0]
    for na, nv in itertools.product(range(3), range(1, 3)):
        for a in itertools.combinations(grid, na):
            for v in itertools.combinations(grid, nv):
                m = _max_matching(np.array(a), np.array(v))
                assert peak_iou(a, v) == pytest.approx(m / (na + nv - m))


# --------------------------------------------------------------------------------------------
# Peak detectors
# --------------------------------------------------------------------------------------------


def test_video_peaks_at_jumps():
    frames = jumping_square()
    traj = flow_magnitudes(frames)
    assert traj.shape == (N_FRAMES,)
    assert traj[0] == traj[1]  # reference duplicates the first pair
    assert all(traj[j] > 0.5 for j in JUMPS)
    assert np.all(np.delete(traj, JUMPS) == 0.0)  # static stretches are exactly zero motion
    assert video_peak_frames(frames).tolist() == JUMPS


def test_video_peaks_deterministic():
    # Farneback leaves ~1e-10 px of run-to-run noise on static pairs; the floor removes it, so
    # no spurious strict maxima appear in static stretches and repeated calls agree. (Real
    # magnitudes themselves can differ by ~1e-8 relative between calls inside OpenCV.)
    frames = jumping_square()
    runs = [flow_magnitudes(frames) for _ in range(4)]
    for r in runs[1:]:
        np.testing.assert_allclose(r, runs[0], rtol=1e-6, atol=0)
        assert np.array_equal(np.flatnonzero(r), JUMPS)
    assert all(video_peak_frames(frames).tolist() == JUMPS for _ in range(3))


def test_video_peaks_grey_equals_rgb_luma():
    rgb = jumping_square()
    grey = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).round()
    assert video_peak_frames(grey.astype(np.uint8)).tolist() == video_peak_frames(rgb).tolist()


def test_static_clip_has_no_video_peaks():
    frames = np.repeat(jumping_square()[:1], 12, axis=0)
    assert np.all(flow_magnitudes(frames) == 0.0)
    assert video_peak_frames(frames).size == 0


def test_motion_between_frames_0_and_1_is_not_a_peak():
    # reference rule: m[0] == m[1], so a jump at frame 1 is a plateau, not a strict maximum
    frames = jumping_square(n_frames=12, jumps=[1, 6])
    assert video_peak_frames(frames).tolist() == [6]


def test_audio_peaks_at_clicks():
    y = clicks([j / FPS for j in JUMPS])
    peaks = audio_peak_frames(y, SR, FPS)
    assert peaks.dtype == np.float64
    assert len(peaks) == len(JUMPS)
    assert np.all(np.abs(peaks - np.array(JUMPS)) < 1.0)


def test_audio_peaks_sample_rate_independent():
    times = [j / FPS for j in JUMPS]
    p16 = audio_peak_frames(clicks(times, sr=16000), 16000, FPS)
    p22 = audio_peak_frames(clicks(times, sr=22050), 22050, FPS)
    assert len(p16) == len(p22) == 3
    assert np.all(np.abs(p16 - p22) < 0.5)


def test_silence_has_no_audio_peaks():
    assert audio_peak_frames(np.zeros(SR, np.float32), SR, FPS).size == 0


# --------------------------------------------------------------------------------------------
# End to end
# --------------------------------------------------------------------------------------------


def test_synchronised_clip_scores_high_and_shifted_lower():
    frames = jumping_square()
    synced = av_align(frames, FPS, clicks([j / FPS for j in JUMPS]), SR)
    shifted = av_align(frames, FPS, clicks([(j + 5) / FPS for j in JUMPS]), SR)
    assert synced >= 0.75
    assert shifted <= 0.25
    assert synced - shifted >= 0.5
    assert 0.0 <= shifted <= synced <= 1.0


def test_official_rate_6fps_12_frames():
    fps, jumps = 6.0, [3, 7, 10]
    frames = jumping_square(n_frames=12, jumps=jumps)
    synced = av_align(frames, fps, clicks([j / fps for j in jumps], duration_s=2.0), SR)
    shifted = av_align(frames, fps, clicks([(j - 2) / fps for j in jumps], duration_s=2.0), SR)
    assert synced >= 0.75
    assert shifted < synced


def test_silence_and_static_is_defined():
    """Static video + silent audio: no peaks on either side -> empty_value (0.0 by default)."""
    frames = np.repeat(jumping_square()[:1], N_FRAMES, axis=0)
    silence = np.zeros(SR * 2, np.float32)
    assert av_align(frames, FPS, silence, SR) == 0.0
    assert math.isnan(av_align(frames, FPS, silence, SR, empty_value=float("nan")))
    # only one side has peaks -> 0.0
    assert av_align(frames, FPS, clicks([j / FPS for j in JUMPS]), SR) == 0.0
    assert av_align(jumping_square(), FPS, silence, SR) == 0.0


def test_input_validation():
    frames = jumping_square()
    audio = clicks([0.5])
    with pytest.raises(ValueError, match="at least 3 frames"):
        av_align(frames[:2], FPS, audio, SR)
    with pytest.raises(ValueError, match="empty"):
        av_align(frames, FPS, np.zeros(0, np.float32), SR)
    with pytest.raises(ValueError, match="mono"):
        av_align(frames, FPS, np.stack([audio, audio]), SR)
    with pytest.raises(ValueError, match="uint8"):
        av_align(frames.astype(np.float32) / 255, FPS, audio, SR)
    with pytest.raises(ValueError, match="shape"):
        av_align(frames[..., :2], FPS, audio, SR)
    with pytest.raises(ValueError, match="fps"):
        av_align(frames, 0.0, audio, SR)
    with pytest.raises(ValueError, match="sample_rate"):
        av_align(frames, FPS, audio, 0)
    with pytest.raises(ValueError, match="NaN"):
        av_align(frames, FPS, np.full(100, np.nan, np.float32), SR)
