"""A synthetic audio-visual sync task for the classifier tests: a bright square flashes at each
click of the audio; clicks fall at random times (≈ 1.25 per second, at least 0.4 s apart) with
random loudness, and a louder click gives a brighter flash, so the events of a window can be
matched across the two modalities. Written as mp4 files in the VGGSS release layout
(``videos/<class>/<file>.mp4``, ``<split>.txt``) so the tests go through the real decoding path.

The density was chosen by measurement: at ≈ 2 clicks per second (0.25 s minimum gap) the tiny
config needed more steps than the test's 90 s allow to place a 2 s window to ±0.2 s."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avsync_bench.io.media import write_clip

FPS = 24
SIZE = 64
RATE = 16000


def click_times(rng: np.random.Generator, duration: float, min_gap: float = 0.4) -> np.ndarray:
    """Random click times (s) in [0.05, duration − 0.05]: gaps of ``min_gap`` plus an exponential
    with mean ``min_gap`` (mean gap 0.8 s, ≈ 1.25 clicks/s)."""
    times, t = [], float(rng.uniform(0.05, 0.3))
    while t < duration - 0.05:
        times.append(t)
        t += min_gap + float(rng.exponential(min_gap))
    return np.asarray(times)


def synthetic_video(rng: np.random.Generator, duration: float):
    """(frames (T, 64, 64, 3) uint8 at 24 fps, audio (1, n) float32 at 48 kHz, click times)."""
    clicks = click_times(rng, duration)
    loudness = rng.uniform(0.2, 1.0, size=clicks.size)
    n_frames = int(round(duration * FPS))
    t = np.arange(n_frames) / FPS
    lag = t[:, None] - clicks[None, :]
    # the square holds for 0.18 s, so the 6 fps clip frames see every flash (in 1 or 2 frames)
    glow = ((lag >= 0) & (lag < 0.18)) * loudness[None, :]
    glow = glow.max(axis=1)
    frames = np.full((n_frames, SIZE, SIZE, 3), 30, dtype=np.float64)
    frames += rng.normal(0, 4, size=(n_frames, 1, 1, 1))
    lo, hi = SIZE // 4, 3 * SIZE // 4
    frames[:, lo:hi, lo:hi, :] += 220 * glow[:, None, None, None]
    audio = rng.normal(0, 0.005, size=int(round(duration * RATE)))
    burst = int(0.03 * RATE)
    envelope = np.exp(-np.arange(burst) / (0.006 * RATE))
    for c, level in zip(clicks, loudness):
        i = int(round(c * RATE))
        n = min(burst, audio.size - i)
        audio[i : i + n] += 0.7 * level * rng.normal(0, 1, size=n) * envelope[:n]
    audio = np.clip(audio, -1, 1).astype(np.float32)[None, :]
    return np.clip(frames, 0, 255).astype(np.uint8), audio, clicks


def make_dataset(
    root: Path, n_videos: int, duration: float, seed: int, split: str = "train"
) -> Path:
    """Write ``n_videos`` synthetic videos under ``root`` (release layout) and ``<split>.txt``."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n_videos):
        rel = f"flash/{split}_{i:03d}.mp4"
        frames, audio, _ = synthetic_video(rng, duration)
        path = root / "videos" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_clip(path, frames, FPS, audio, RATE)
        lines.append(rel)
    (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root
