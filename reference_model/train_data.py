"""Training clips for AVSyncD (PROTOCOL.md §1 "Training clips", §4 "Training").

Each training sample is a random 2 s clip of one listed video: start uniform in ``[0, D − 2]``
(``D`` = the file's audio-video duration in s, :func:`avsync_bench.io.media.probe`), 12 frames at
6 fps cut and resized by :func:`avsync_bench.clips.load_clips`, a random horizontal flip, and the
clip's normalised ImageBind mel (:func:`avsync_bench.clips.clip_mel`).

Randomness is a pure function of ``(seed, global sample index)`` so that a resumed run draws
exactly the clips an uninterrupted run would: :class:`~avsync_bench.training_loop.TrainSampleSampler`
(shared with the classifier's trainer) yields ``(video_index, sample_index)`` keys for one process
of a multi-process run, starting at any micro-batch, and :class:`TrainClipDataset` derives the
clip start and the flip from the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

import avsync_bench  # noqa: F401  (torch compatibility shim first)
from avsync_bench.clips import clip_mel, load_clips
from avsync_bench.datasets import TestVideo
from avsync_bench.io.media import probe as probe_media
from avsync_bench.protocol import DEFAULT_MODE, ClipSpec, ProtocolMode
from avsync_bench.training_loop import TrainSampleSampler, epoch_permutation

__all__ = ["TrainClipDataset", "TrainSampleSampler", "epoch_permutation", "collate"]


class TrainClipDataset(Dataset):
    """Random training clips of a split, indexed by ``(video_index, sample_index)`` keys.

    Args:
        videos: the split (:func:`avsync_bench.datasets.load_split`), any split name.
        spec: clip size/length (``height``/``width`` in pixels, 12 frames at 6 fps, 16 kHz audio).
        mode: frame picking and audio cutting rules (``official`` reproduces the official loader).
        seed: seed of the per-sample start/flip draws.
        random_flip: flip horizontally with probability 0.5 (official ``randflip: True``).

    An item is a dict: ``frames`` (3, 12, H, W) float32 in [0, 1]; ``mel`` (1, 128, 204) float32
    (normalised ImageBind log-mel); ``class_text`` str; ``start`` float (s); ``flipped`` bool;
    ``video_index`` int; ``sample_index`` int.
    """

    def __init__(
        self,
        videos: Sequence[TestVideo],
        spec: ClipSpec,
        mode: ProtocolMode = DEFAULT_MODE,
        seed: int = 0,
        random_flip: bool = True,
    ) -> None:
        self.videos, self.spec, self.mode = list(videos), spec, ProtocolMode(mode)
        self.seed, self.random_flip = seed, random_flip
        self._durations: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self.videos)

    def duration(self, video_index: int) -> float:
        """The audio-video duration ``D`` (s) of one video (probed once, then cached)."""
        if video_index not in self._durations:
            self._durations[video_index] = probe_media(self.videos[video_index].path).av_duration
        return self._durations[video_index]

    def draw(self, video_index: int, sample_index: int) -> tuple[float, bool]:
        """The clip start (s, uniform in ``[0, max(D − 2, 0)]``) and the flip of one sample."""
        rng = np.random.default_rng([self.seed, sample_index])
        start = float(rng.uniform(0.0, max(self.duration(video_index) - self.spec.duration, 0.0)))
        flip = bool(rng.random() < 0.5) and self.random_flip
        return start, flip

    def load(self, video_index: int, start: float, flip: bool) -> dict:
        """One clip of video ``video_index`` at ``start`` (s), flipped when ``flip``."""
        video = self.videos[video_index]
        clip = load_clips(Path(video.path), [start], self.spec, self.mode)[0]
        frames = torch.from_numpy(np.ascontiguousarray(clip.frames))  # (T, H, W, 3) uint8
        frames = frames.permute(3, 0, 1, 2).float() / 255.0  # (3, T, H, W)
        if flip:
            frames = frames.flip(-1)
        return {
            "frames": frames.contiguous(),
            "mel": clip_mel(clip, self.spec).float(),
            "class_text": video.class_text,
            "start": start,
            "flipped": flip,
            "video_index": video_index,
        }

    def __getitem__(self, key: tuple[int, int] | int) -> dict:
        video_index, sample_index = (key, key) if isinstance(key, int) else key
        start, flip = self.draw(video_index, sample_index)
        item = self.load(video_index, start, flip)
        item["sample_index"] = sample_index
        return item


def collate(items: list[dict]) -> dict:
    """Stack items: ``frames`` (B, 3, 12, H, W), ``mel`` (B, 1, 128, 204), ``class_text`` list,
    the rest as lists."""
    out = {"frames": torch.stack([i["frames"] for i in items])}
    out["mel"] = torch.stack([i["mel"] for i in items])
    for key in items[0]:
        if key not in out:
            out[key] = [i[key] for i in items]
    return out
