"""Clip protocol: frame picking, audio windows, resize and mel, against the official fixtures."""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction

import numpy as np
import pytest
import torch
from conftest import GALLERY, GOLDEN, frame_pattern, need_shared, write_test_video

from avsync_bench.clips import (
    clip_mel,
    cut_audio,
    load_clips,
    load_test_clips,
    pick_frames_official,
    resize_frames,
    waveform_mel,
)
from avsync_bench.io.media import AudioFrame, VideoFrame, probe
from avsync_bench.protocol import ClipSpec, ProtocolMode, eval_clip_starts

SPEC = ClipSpec()
OFFICIAL, CORRECTED = ProtocolMode.official, ProtocolMode.corrected


def _golden_pre():
    need_shared(GOLDEN / "preprocessing.json")
    from safetensors.torch import load_file

    meta = json.loads((GOLDEN / "preprocessing.json").read_text())
    return meta, load_file(str(GOLDEN / "preprocessing.safetensors"))


def _fake_video(pts_us: list[int]) -> list[VideoFrame]:
    empty = np.zeros((1, 1, 3), np.uint8)
    return [VideoFrame(i, us * 1e-6, us, empty) for i, us in enumerate(pts_us)]


def test_official_picker_matches_every_golden_selection_case():
    meta, _ = _golden_pre()
    for case in meta["selection_cases"]["video"]:
        positions, _ = pick_frames_official(_fake_video(case["pts_us"]), case["clip_start"], SPEC)
        assert positions == case["selected_indices"], case["name"]


def test_official_audio_cut_matches_golden_selection_cases():
    meta, _ = _golden_pre()
    for case in meta["selection_cases"]["audio"]:
        n = case["samples_per_frame"]
        rate = int(Fraction(case["time_base"]).denominator)
        frames = [
            AudioFrame(
                i,
                us * 1e-6,
                us,
                rate,
                np.full((1, n), i, np.float32),
                np.full((1, n), i, np.float32),
            )
            for i, us in enumerate(case["pts_us"])
        ]
        spec = ClipSpec(sample_rate=rate)  # no resampling: the payload keeps frame indices
        audio = cut_audio(frames, case["clip_start"], spec, OFFICIAL)
        kept = sorted(set(audio[0].astype(int).tolist()))
        assert kept == case["kept_frame_indices"], case["name"]
        assert audio.shape[1] == case["n_samples"]


def test_gallery_clips_reproduce_official_frames_audio_and_mel():
    meta, tensors = _golden_pre()
    need_shared(GALLERY)
    for v, video in enumerate(meta["videos"]):
        clips = load_test_clips(GALLERY / "videos" / video["path"], SPEC, OFFICIAL)
        assert [c.start for c in clips] == pytest.approx(video["clip_starts"])
        for c, (clip, gold) in enumerate(zip(clips, video["clips"])):
            key = f"v{v}_c{c}"
            assert clip.frame_indices == gold["video_frame_indices"], key
            hashes = [hashlib.sha256(f.tobytes()).hexdigest() for f in clip.frames]
            if hashes != gold["frames_u8_sha256"]:  # another FFmpeg build: ±1 allowed
                if f"{key}.frames_u8" in tensors:
                    diff = np.abs(clip.frames.astype(int) - tensors[f"{key}.frames_u8"].numpy())
                    assert diff.max() <= 1, key
                else:
                    means = clip.frames.reshape(12, -1).mean(1) / 255
                    assert means == pytest.approx(gold["frames_float_mean"], abs=2e-3), key
            np.testing.assert_allclose(clip.audio, tensors[f"{key}.audio_16k"].numpy(), atol=1e-5)
            mel = clip_mel(clip)
            torch.testing.assert_close(mel, tensors[f"{key}.mel_official"], atol=2e-4, rtol=0)


def test_corrected_mel_is_the_channel_mean_variant():
    _, tensors = _golden_pre()
    for v in range(3):
        mono = waveform_mel(tensors[f"v{v}_c0.audio_16k"].numpy().mean(0, keepdims=True))
        torch.testing.assert_close(mono, tensors[f"v{v}_c0.mel_channel_mean"], atol=2e-4, rtol=0)


def test_golden_demo_wav_mel():
    _, tensors = _golden_pre()
    torch.testing.assert_close(
        waveform_mel(tensors["demo.wav_clip_16k"]), tensors["demo.wav_mel"], atol=2e-4, rtol=0
    )


def test_resize_crops_to_aspect_then_resizes():
    frames = np.stack([frame_pattern(i, 360, 640) for i in range(2)])
    out = resize_frames(frames, 256, 256)
    assert out.shape == (2, 256, 256, 3) and out.dtype == np.uint8
    # The centre crop drops 140 px on each side, so the background grey stays and the square at
    # x=0..16 (outside the crop) disappears from frame 0.
    assert (out[0] == 0).all()
    wide = resize_frames(frames, 128, 256)
    assert wide.shape == (2, 128, 256, 3)


@pytest.mark.parametrize("fps", [13, 25, Fraction(30000, 1001)])
def test_sampling_at_various_frame_rates(tmp_path, fps):
    path = write_test_video(tmp_path / "v.mp4", fps, 3.0)
    for mode in (OFFICIAL, CORRECTED):
        clips = load_test_clips(path, SPEC, mode)
        assert len(clips) == 3
        for clip in clips:
            assert clip.frames.shape == (12, 256, 256, 3)
            targets = [clip.start + i / 6 for i in range(12)]
            pts = np.array(clip.frame_pts)
            assert (np.diff(pts) >= 0).all()
            if mode is CORRECTED:  # nearest frame: within half a source frame of the target
                assert np.abs(pts - targets).max() <= 0.5 / float(fps) + 1e-6
                assert clip.audio.shape == (2, 32000)
            else:  # first frame at/after the target on µs timestamps: never early
                assert (pts >= np.array(targets) - 1e-6).all()


def test_exact_30fps_official_drop_and_corrected_fix(tmp_path):
    path = write_test_video(tmp_path / "v30.mp4", 30, 2.5)
    official = load_clips(path, [0.0], SPEC, OFFICIAL)[0]
    corrected = load_clips(path, [0.0], SPEC, CORRECTED)[0]
    assert official.frame_indices == [0, 5, 11, 15, 20, 26, 30, 35, 41, 45, 50, 56]
    assert corrected.frame_indices == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55]


def test_stereo_official_uses_left_channel_corrected_the_mean(tmp_path):
    path = write_test_video(tmp_path / "st.mp4", 25, 2.5, right_silent=True)
    official = load_clips(path, [0.0], SPEC, OFFICIAL)[0]
    corrected = load_clips(path, [0.0], SPEC, CORRECTED)[0]
    assert official.audio.shape[0] == 2 and np.abs(official.audio[1]).max() < 1e-3
    left = official.audio[:1] - official.audio.mean()
    torch.testing.assert_close(clip_mel(official), waveform_mel(left + official.audio.mean()))
    expected = waveform_mel(corrected.audio.mean(0, keepdims=True))
    torch.testing.assert_close(clip_mel(corrected), expected)
    assert not torch.allclose(clip_mel(official), clip_mel(corrected), atol=1e-2)


def test_video_barely_two_seconds_long(tmp_path):
    path = write_test_video(tmp_path / "short.mp4", 25, 2.04)
    info = probe(path)
    starts = eval_clip_starts(info.av_duration, SPEC, OFFICIAL)
    assert starts[0] == 0.0 and 0 <= starts[-1] < 0.05
    for mode in (OFFICIAL, CORRECTED):
        clips = load_test_clips(path, SPEC, mode)
        assert all(c.frames.shape == (12, 256, 256, 3) for c in clips)


def test_shorter_than_two_seconds_pads_in_corrected_mode(tmp_path):
    path = write_test_video(tmp_path / "tiny.mp4", 25, 1.6)
    starts = eval_clip_starts(probe(path).av_duration, SPEC, OFFICIAL)
    assert starts[-1] < 0  # the official linspace goes negative
    assert eval_clip_starts(probe(path).av_duration, SPEC, CORRECTED) == [0.0, 0.0, 0.0]
    clip = load_test_clips(path, SPEC, CORRECTED)[0]
    assert clip.padded_frames >= 2  # 1.6 s holds 10 frames at 6 fps
    assert clip.audio.shape == (2, 32000)
    assert np.abs(clip.audio[:, -3000:]).max() == 0.0  # zero padding, not wrapped audio
    official = load_test_clips(path, SPEC, OFFICIAL)[2]
    assert official.start < 0 and official.frame_indices[:3] == [0, 1, 2]  # negative-start quirk
