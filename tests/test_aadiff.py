"""AADiff baseline on a tiny random Stable Diffusion (rule weights, CPU, no downloads)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from avsync_bench.cli import app
from avsync_bench.predictions import check_clip_file
from avsync_bench.protocol import ClipSpec
from baselines.aadiff import (
    AADiffAdapter,
    attention_scales,
    build_tiny_sd,
    frame_amplitudes,
    smooth,
    source_words,
)
from baselines.base import GenerationInput

SR, FRAMES, N = 16000, 12, 32000
WINDOW = N / FRAMES  # 2666.7 samples = 1/6 s


@pytest.fixture(scope="module")
def tiny_sd():
    return build_tiny_sd()


def loud_audio(loud_frames, level=0.5) -> np.ndarray:
    """(1, 32000) low noise with a full-window 440 Hz tone in ``loud_frames``."""
    rng = np.random.default_rng(0)
    audio = 0.001 * rng.standard_normal(N)
    t = np.arange(N) / SR
    for f in loud_frames:
        a, b = int(np.ceil(f * WINDOW)), int(np.floor((f + 1) * WINDOW))
        audio[a:b] += level * np.sin(2 * np.pi * 440 * t[a:b])
    return audio[None].astype(np.float32)


def make_inputs(audio, size=64, text="lions roaring") -> GenerationInput:
    spec = ClipSpec(size, size)
    yy, xx = np.mgrid[:size, :size]
    frame = np.stack([xx * 4, yy * 4, (xx + yy) * 2], axis=-1).clip(0, 255).astype(np.uint8)
    return GenerationInput(
        "lions_roaring/x_clip-00.mp4", frame, audio, text, "lions_roaring", spec, 0
    )


def test_amplitude_is_rms_per_frame_then_smoothed():
    audio = loud_audio([3, 8], level=0.5)
    rms = frame_amplitudes(audio, FRAMES)
    assert rms.shape == (FRAMES,)
    assert rms[3] == pytest.approx(0.5 / np.sqrt(2), rel=0.02)  # RMS of a sine = peak/√2
    assert rms[8] == pytest.approx(0.5 / np.sqrt(2), rel=0.02)
    quiet = np.delete(rms, [3, 8])
    assert quiet.max() < 0.002
    # stereo is averaged to mono
    assert np.allclose(frame_amplitudes(np.repeat(audio, 2, axis=0), FRAMES), rms)

    smoothed = smooth(rms, 3)
    assert smoothed[3] == pytest.approx((rms[2] + rms[3] + rms[4]) / 3)
    assert smoothed[0] == pytest.approx((rms[0] + rms[1]) / 2)  # truncated at the ends
    assert smoothed[2] == pytest.approx(smoothed[4], rel=1e-3) and smoothed[2] > 100 * smoothed[0]
    assert np.array_equal(smooth(rms, 1), rms)
    with pytest.raises(ValueError):
        smooth(rms, 2)

    scales = attention_scales(audio, FRAMES, window=3, gain=2.0)
    assert scales.max() == pytest.approx(3.0) and scales.min() >= 1.0
    assert set(np.flatnonzero(scales > 2.0)) == {2, 3, 4, 7, 8, 9}
    assert np.allclose(attention_scales(np.zeros((1, N)), FRAMES), 1.0)


def test_source_words_and_token_positions(tiny_sd):
    assert source_words("playing cello") == ["cello"]
    assert source_words("lions roaring") == ["lions", "roaring"]
    ids, positions = tiny_sd.tokenizer.encode("playing cello", ["cello"])
    assert ids.shape == (77,) and ids[0] == 49406 and ids[3] == 49407
    assert positions == [2]


def test_attention_on_source_token_follows_amplitude(tiny_sd):
    adapter = AADiffAdapter(tiny_sd, strength=0.6, steps=4, size=64)
    inputs = make_inputs(loud_audio([6]))
    _, positions = tiny_sd.tokenizer.encode(inputs.class_text, source_words(inputs.class_text))
    records = []

    def record(name, probs):  # (2F·heads, Q, K)
        records.append(probs.detach().clone())

    for proc in adapter.processors.values():
        proc.recorder = record
    try:
        adapter.generate(inputs)
    finally:
        for proc in adapter.processors.values():
            proc.recorder = None
    scales = adapter.last_scales
    loud, silent = int(np.argmax(scales)), int(np.argmin(scales))
    assert scales[loud] == pytest.approx(3.0) and scales[silent] < 1.05
    assert records

    def mass(probs, frame):  # conditional rows of one frame: mean attention on source tokens
        rows = probs.view(2 * FRAMES, -1, *probs.shape[1:])[FRAMES + frame]
        return rows[..., positions].sum(-1).mean().item()

    for probs in records:
        assert mass(probs, loud) > mass(probs, silent)
    # first UNet call: every frame has the same latents, so the ratio is exactly the scale
    first = records[0]
    ratio = scales[loud] / scales[silent]
    assert mass(first, loud) / mass(first, silent) == pytest.approx(ratio, rel=1e-4)
    # unconditional rows are untouched (softmax rows still sum to 1)
    uncond = first.view(2 * FRAMES, -1, *first.shape[1:])[:FRAMES]
    assert torch.allclose(uncond.sum(-1), torch.ones(()), atol=1e-5)


def test_frame0_is_the_input_vae_round_trip(tiny_sd):
    adapter = AADiffAdapter(tiny_sd, strength=0.6, steps=2, size=64)
    inputs = make_inputs(loud_audio([2]))
    frames = adapter.generate(inputs).frames
    assert frames.shape == (FRAMES, 64, 64, 3) and frames.dtype == np.uint8
    vae = tiny_sd.vae
    with torch.no_grad():
        x = torch.from_numpy(inputs.first_frame).permute(2, 0, 1)[None].float() / 127.5 - 1
        decoded = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
    expected = ((decoded[0].permute(1, 2, 0) + 1) * 127.5).round().numpy()
    assert np.abs(frames[0].astype(np.float64) - expected).max() <= 1
    assert not np.array_equal(frames[1], frames[0])


def test_generate_aadiff_tiny_random_writes_valid_clips(
    tiny_sd, tiny_dataset, tmp_path, monkeypatch
):
    monkeypatch.setenv("AVSYNC_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("baselines.aadiff.build_tiny_sd", lambda: tiny_sd)  # built once
    out = tmp_path / "preds"
    args = ["generate", "aadiff", "--tiny-random", "--steps", "2", "--limit", "1"]
    args += ["--data-root", str(tiny_dataset), "--out", str(out), "--device", "cpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.mp4"))
    assert written == [f"dog_barking/a_clip-0{i}.mp4" for i in range(3)]
    spec = ClipSpec(256, 256)
    assert all(check_clip_file(rel, out / rel, spec) is None for rel in written)
    assert (out / "generation.json").is_file()
