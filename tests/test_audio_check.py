"""The generated-audio check (issue 15 §3): a correct file passes at any offset inside the ±60 ms
search; another window or another clip's audio is flagged."""

from __future__ import annotations

import numpy as np
import pytest

from avsync_bench.clips import clip_mel, load_generated_clip, waveform_mel
from avsync_bench.features.mel import MATCH_THRESHOLD, audio_match
from avsync_bench.io.media import write_clip
from avsync_bench.protocol import ClipSpec, ProtocolMode

SR = 16000
SPEC = ClipSpec()


def melody(seconds: float, seed: int) -> np.ndarray:
    """Constant-loudness music: a phase-continuous tone jumping between random pitches every
    0.12 s. Its loudness envelope is flat, so only the spectro-temporal pattern identifies it
    (the earlier envelope check scored its 44 ms offsets 0.77-0.79, below its 0.8 threshold)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    freqs = np.repeat(rng.uniform(300, 2500, int(seconds / 0.12) + 1), int(0.12 * SR))[:n]
    tone = 0.3 * np.sin(2 * np.pi * np.cumsum(freqs) / SR)
    return (tone + 0.003 * rng.standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module")
def windows(tmp_path_factory):
    """GT mel of a 2 s window, and the mels of files read back after AAC muxing of: the same
    window ±44 ms, the window 0.5 s later, and another melody."""
    folder = tmp_path_factory.mktemp("audio_check")
    sig, other, start = melody(5.0, 1), melody(5.0, 11), 8000
    cases = {
        "+44 ms": sig[start + 704 : start + 704 + 32000],
        "-44 ms": sig[start - 704 : start - 704 + 32000],
        "0.5 s later": sig[start + 8000 : start + 40000],
        "other audio": other[start : start + 32000],
    }
    frames = np.zeros((12, 64, 64, 3), np.uint8)
    mels = {}
    for name, audio in cases.items():
        path = folder / f"{name.replace(' ', '_')}.mp4"
        write_clip(path, frames, 6, audio[None], SR)
        mels[name] = clip_mel(load_generated_clip(path, SPEC, ProtocolMode.official)).numpy()
    return waveform_mel(sig[None, start : start + 32000]).numpy(), mels


def test_correct_audio_passes_at_a_44_ms_offset_and_wrong_audio_is_flagged(windows):
    gt, mels = windows
    score = {name: float(audio_match(gt[None], mel[None])[0]) for name, mel in mels.items()}
    assert score["+44 ms"] >= MATCH_THRESHOLD + 0.1, score
    assert score["-44 ms"] >= MATCH_THRESHOLD + 0.1, score
    assert score["0.5 s later"] < MATCH_THRESHOLD - 0.1, score
    assert score["other audio"] < MATCH_THRESHOLD - 0.1, score


def test_silence_and_identity():
    rng = np.random.default_rng(0)
    noise = waveform_mel(0.1 * rng.standard_normal((1, 32000)).astype(np.float32)).numpy()
    silence = waveform_mel(np.zeros((1, 32000), np.float32)).numpy()
    values = audio_match(np.stack([noise, silence, noise]), np.stack([noise, silence, silence]))
    assert values[0] == pytest.approx(1.0) and values[1] == 1.0 and values[2] == 0.0
