"""Frames are resized as they are decoded (issue 15 §4): a clip never holds more than its output
frames, with exactly the pixel values of the old path (decode everything, pick, resize the batch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import GALLERY, need_shared, write_test_video

import avsync_bench.io.media as media
from avsync_bench.clips import (
    load_clips,
    load_test_clips,
    pick_frames_corrected,
    pick_frames_official,
)
from avsync_bench.datasets import load_split
from avsync_bench.io.media import decode_video, probe
from avsync_bench.protocol import ClipSpec, ProtocolMode, eval_clip_starts
from baselines.external import normalise_video

SPEC = ClipSpec()


def _old_resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """The batch resize as it was before frames were resized at decode time (verbatim)."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    images = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    h, w = images.shape[-2:]
    target_ratio, ratio = height / width, h / w
    if target_ratio >= ratio:
        trimmed = int(h / target_ratio)
        left = (w - trimmed) // 2
        images = images[..., left : left + trimmed]
    else:
        trimmed = int(w * target_ratio)
        top = (h - trimmed) // 2
        images = images[..., top : top + trimmed, :]
    images = TF.resize(images, [height, width], InterpolationMode.BILINEAR, antialias=True)
    images = TF.center_crop(images, [height, width])
    quantised = torch.round(images.clamp(0.0, 1.0) * 255.0).to(torch.uint8)
    return quantised.permute(0, 2, 3, 1).contiguous().numpy()


def _old_frames(path, starts, spec, mode):
    """Old path: decode the span at full size, pick, stack, resize the 12 frames together."""
    lo, hi = max(min(starts), 0.0) - 0.5, max(starts) + spec.duration + 0.5
    video = decode_video(path, lo, hi)
    picker = pick_frames_official if mode is ProtocolMode.official else pick_frames_corrected
    out = []
    for start in starts:
        positions, _ = picker(video, start, spec)
        out.append(
            _old_resize_frames(np.stack([video[p].rgb for p in positions]), spec.height, spec.width)
        )
    return out


@pytest.fixture
def held_sizes(monkeypatch):
    """Record the largest frame every decode_video call returned (what a clip build holds)."""
    sizes = []
    real = media.decode_video

    def recording(*args, **kwargs):
        frames = real(*args, **kwargs)
        sizes.extend(f.rgb.shape for f in frames)
        return frames

    monkeypatch.setattr("avsync_bench.clips.decode_video", recording)
    monkeypatch.setattr("baselines.external.decode_video", recording)
    return sizes


def test_gallery_clips_bit_identical_to_the_old_path(held_sizes):
    need_shared(GALLERY)
    for video in load_split("avsync15", GALLERY)[::8]:  # 2 videos (13 and 25 fps)
        for mode in (ProtocolMode.official, ProtocolMode.corrected):
            starts = eval_clip_starts(probe(video.path).av_duration, SPEC, mode)
            new = load_test_clips(video.path, SPEC, mode)
            for clip, old in zip(new, _old_frames(video.path, starts, SPEC, mode)):
                assert np.array_equal(clip.frames, old), (video.rel, mode, clip.start)
    assert held_sizes and set(held_sizes) == {(256, 256, 3)}  # never a 640x360 source frame


def test_large_generated_file_held_at_output_size(tmp_path, held_sizes):
    path = write_test_video(tmp_path / "big.mp4", 12, 2.0, size=(288, 1024), sample_rate=16000)
    for spec, mode in ((SPEC, ProtocolMode.official), (ClipSpec(128, 256), ProtocolMode.corrected)):
        clip = load_clips(path, [0.0], spec, mode)[0]
        assert np.array_equal(clip.frames, _old_frames(path, [0.0], spec, mode)[0])
        normalised = normalise_video(path, spec, mode)
        assert np.array_equal(normalised.frames, clip.frames)
    assert set(held_sizes) == {(256, 256, 3), (128, 256, 3)}
