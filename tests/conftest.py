"""Shared fixtures: paths to ../shared (skipped when absent) and synthetic media made with PyAV."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import avsync_bench  # noqa: F401

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
GOLDEN = SHARED / "golden"
GALLERY = SHARED / "data" / "avsync15-gallery"


def need_shared(path: Path = SHARED) -> Path:
    """Skip the test when ``../shared`` (or a file in it) is absent, e.g. on a user's machine."""
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared test data lives beside the repo in CI)")
    return path


def frame_pattern(index: int, height: int, width: int) -> np.ndarray:
    """A frame that encodes its index: a bright square whose x position is the index, on a
    background whose grey level is 8·index (mod 256)."""
    image = np.full((height, width, 3), (8 * index) % 256, dtype=np.uint8)
    x = (index * 4) % max(width - 16, 1)
    image[height // 2 - 8 : height // 2 + 8, x : x + 16] = (255, 40, 40)
    return image


def write_test_video(
    path: Path,
    fps: Fraction | int | float,
    duration: float,
    size: tuple[int, int] = (96, 128),
    sample_rate: int = 44100,
    channels: int = 2,
    audio: bool = True,
    click_every: float = 0.5,
    right_silent: bool = False,
) -> Path:
    """Write an H.264/AAC mp4: frames from :func:`frame_pattern`, audio = clicks every
    ``click_every`` s over low noise (the right channel silent when ``right_silent``)."""
    fps = Fraction(fps).limit_denominator(1001) if not isinstance(fps, Fraction) else fps
    height, width = size
    path.parent.mkdir(parents=True, exist_ok=True)
    n_frames = int(round(duration * fps))
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"crf": "10"}
        stream = None
        if audio:
            layout = "stereo" if channels == 2 else "mono"
            stream = container.add_stream("aac", rate=sample_rate, layout=layout)
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(frame_pattern(i, height, width), format="rgb24")
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if stream is not None:
            n = int(duration * sample_rate)
            rng = np.random.default_rng(0)
            wave = 0.01 * rng.standard_normal(n).astype(np.float32)
            for t in np.arange(0.1, duration, click_every):
                s = int(t * sample_rate)
                wave[s : s + 200] += 0.8 * np.hanning(min(200, n - s)).astype(np.float32)
            data = np.stack([wave] * channels)
            if right_silent and channels == 2:
                data[1] = 0.0
            chunk = 1024
            for begin in range(0, n, chunk):
                part = np.ascontiguousarray(data[:, begin : begin + chunk])
                af = av.AudioFrame.from_ndarray(part, format="fltp", layout=layout)
                af.sample_rate = sample_rate
                af.pts = begin
                container.mux(stream.encode(af))
            container.mux(stream.encode(None))
    return path


def make_dataset(root: Path, videos: dict[str, dict]) -> Path:
    """An AVSync15-layout dataset: ``videos`` maps ``class/file.mp4`` to write_test_video kwargs."""
    classes = sorted({rel.split("/")[0] for rel in videos})
    (root / "videos").mkdir(parents=True, exist_ok=True)
    for rel, kwargs in videos.items():
        write_test_video(root / "videos" / rel, **kwargs)
    (root / "test.txt").write_text("\n".join(sorted(videos)) + "\n")
    (root / "train.txt").write_text("")
    (root / "class_mapping.json").write_text(json.dumps({c: c.replace("_", " ") for c in classes}))
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """Two short synthetic videos (25 fps and 29.97 fps, stereo 44.1 kHz) in AVSync15 layout."""
    root = tmp_path_factory.mktemp("tiny_dataset")
    return make_dataset(
        root,
        {
            "dog_barking/a.mp4": {"fps": 25, "duration": 3.0},
            "hammering/b.mp4": {"fps": Fraction(30000, 1001), "duration": 2.6},
        },
    )
