"""The AV-sync classifier's own data: K clips per video at fixed spacing (PROTOCOL.md §3).

Training and :mod:`~avsync_bench.classifier.eval` read one video as K 2 s clips whose starts are
``first + k·shift`` (official ``avsync/data.py::AudioVideoAlignedMultiPairDataset``):

- training, ``random-compact``: K = 21, shift 0.2 s, ``first`` uniform in ``[0, D − 2 − 20·0.2]``,
  so a video needs D ≥ 6 s;
- evaluation, ``center-compact``: K = 31, shift 0.04 s, ``first = (D − 2 − 30·0.04) / 2``, so a
  video needs D ≥ 3.2 s.

Per clip k the frame times are ``s_k + i/6`` (i = 0..12; the first shifted by +1e-4 s, the 13th,
which bounds the audio, by −1e-4 s). Frames: the decoded frame with the **nearest** µs pts
(:func:`avsync_bench.models.sync_preprocess.nearest_pts_indices`), short side resized to
``image_size`` (bicubic), centre crop, CLIP normalisation
(:func:`~avsync_bench.models.sync_preprocess.classifier_data_frames`); optional independent
horizontal flip per clip. Audio: the codec frames with µs pts in ``[s_k + 1e-4, s_k + 2 − 1e-4]``
in the official native layout, resampled to 16 kHz, then the benchmark's mel
(:func:`avsync_bench.clips.waveform_mel`: centre crop 32000 samples, channel 0, (1, 128, 204)).
Decoding goes through :mod:`avsync_bench.io.media` only.

A video is *unusable* when it is missing, unreadable, lacks a stream, has D below what the K
clips need, or a frame rate below 12 fps (the official loader asserts ≥ 12); the official code
then silently takes the next video. Here :class:`Unusable` carries the reason, and callers list
and count every such video.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

import avsync_bench  # noqa: F401  (torch compatibility shim first)
from avsync_bench.clips import waveform_mel
from avsync_bench.datasets import DATASETS, DatasetError, TestVideo, load_split, resolve_root
from avsync_bench.io.media import MediaError, decode_audio, decode_video, probe
from avsync_bench.models.sync_preprocess import (
    ENDPOINT_SHIFT,
    classifier_data_frames,
    nearest_pts_indices,
)

__all__ = [
    "DataSpec",
    "Unusable",
    "MultiClipReader",
    "list_videos",
    "clip_starts",
    "TrainClipsDataset",
    "collate_clips",
]

#: Classifier-only datasets in release layout (``videos/<class>/<file>``, ``<split>.txt``).
CLASSIFIER_DATASETS = {"vggss": "VGGSS"}


@dataclass(frozen=True)
class DataSpec:
    """What the classifier sees of one video (PROTOCOL.md §3 "Classifier data").

    Attributes:
        num_clips: K clips per video (21 training, 31 evaluation).
        shift: spacing of consecutive clip starts, seconds (0.2 training, 0.04 evaluation).
        sampling: ``random-compact`` (training) or ``center-compact`` (evaluation).
        image_size: frame side after resize + centre crop, pixels (224).
        num_frames: frames per clip (12), at ``fps`` (6) frames/s, so a clip lasts 2 s.
        sample_rate: audio rate for the mel, Hz (16000).
        min_fps: videos below this frame rate are unusable (12, the official assertion).
    """

    num_clips: int = 21
    shift: float = 0.2
    sampling: str = "random-compact"
    image_size: int = 224
    num_frames: int = 12
    fps: int = 6
    sample_rate: int = 16000
    min_fps: float = 12.0

    @property
    def clip_duration(self) -> float:
        """Length of one clip in seconds (2.0)."""
        return self.num_frames / self.fps

    @property
    def needed_duration(self) -> float:
        """The shortest usable D in seconds: ``2 + (K − 1)·shift`` (6.0 training, 3.2 eval)."""
        return self.clip_duration + (self.num_clips - 1) * self.shift


class Unusable(Exception):
    """A video the classifier cannot read as K clips; ``reason`` says why (one line)."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


def list_videos(dataset: str, data_root: str | Path | None, split: str) -> list[TestVideo]:
    """The listed videos of a split, sorted by list line.

    ``avsync15``/``landscapes``/``thegreatesthits`` use the benchmark's layouts
    (:func:`avsync_bench.datasets.load_split`); ``vggss`` is the classifier's dataset:
    ``videos/<class>/<file>`` with ``<split>.txt`` lines ``<class>/<file>`` (no class mapping;
    the class is the folder). Listed files that do not exist are kept here and reported as
    unusable when read.

    Raises:
        DatasetError: unknown dataset, missing root or list, malformed or duplicated lines.
    """
    if dataset in DATASETS:
        return load_split(dataset, resolve_root(dataset, data_root), split)
    if dataset not in CLASSIFIER_DATASETS:
        known = sorted([*DATASETS, *CLASSIFIER_DATASETS])
        raise DatasetError(f"unknown dataset {dataset!r}; choose one of {known}")
    root = Path(data_root) if data_root is not None else Path("datasets") / "VGGSS"
    list_path = root / f"{split}.txt"
    if not list_path.is_file():
        raise DatasetError(f"{list_path}: split list missing")
    videos, seen = [], set()
    for number, raw in enumerate(list_path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line in seen:
            raise DatasetError(f"{list_path}:{number}: {line} is listed twice")
        if line.count("/") != 1:
            raise DatasetError(f"{list_path}:{number}: expected <class>/<file>, got {line!r}")
        seen.add(line)
        folder = line.split("/")[0]
        videos.append(TestVideo(line, (root / "videos" / line).resolve(), folder, folder))
    if not videos:
        raise DatasetError(f"{list_path}: the list is empty")
    return sorted(videos, key=lambda v: v.rel)


def clip_starts(
    av_duration: float, spec: DataSpec, rng: np.random.Generator | None = None
) -> np.ndarray:
    """(K,) float64 clip starts in seconds (official ``random_compact_sample`` /
    ``center_compact_sample`` over ``[0, D − 2]``).

    Raises:
        ValueError: D < :attr:`DataSpec.needed_duration`, or ``random-compact`` without ``rng``.
    """
    span = av_duration - spec.clip_duration - (spec.num_clips - 1) * spec.shift
    if span < 0:
        raise ValueError(f"D = {av_duration:.3f} s < {spec.needed_duration:.2f} s needed")
    if spec.sampling == "center-compact":
        first = span / 2.0
    elif spec.sampling == "random-compact":
        if rng is None:
            raise ValueError("random-compact sampling needs a random generator")
        first = float(rng.uniform(0.0, span))
    else:
        raise ValueError(f"unknown sampling {spec.sampling!r}: random-compact | center-compact")
    return first + np.arange(spec.num_clips) * spec.shift


class MultiClipReader:
    """Reads K aligned clips of a video: mel (K, 1, 128, 204) and frames (K, 3, 12, S, S).

    Args:
        spec: the clip layout.
        cache_videos: keep this many files in memory (LRU): their decoded frames after the
            resize/crop/normalisation, and each clip mel keyed by the exact set of audio codec
            frames it was cut from. 0 (the paper recipe) decodes every time. Every cached value
            is a function of what it is keyed on, so caching changes no value; it only saves time
            on small synthetic or smoke-test sets.
    """

    def __init__(self, spec: DataSpec, cache_videos: int = 0):
        self.spec = spec
        self.cache_videos = int(cache_videos)
        self._cache: OrderedDict = OrderedDict()
        self._durations: dict[str, float] = {}

    def duration(self, path: str | Path) -> float:
        """D (s) of a usable video, probed once.

        Raises:
            Unusable: missing/unreadable file, missing stream, frame rate below ``min_fps``,
                D below :attr:`DataSpec.needed_duration`.
        """
        key = str(path)
        if key not in self._durations:
            if not Path(path).is_file():
                raise Unusable(path, "file not found")
            try:
                info = probe(path)
                duration = info.av_duration
            except MediaError as error:
                raise Unusable(path, f"unreadable: {error}") from error
            if info.fps is not None and info.fps < self.spec.min_fps:
                raise Unusable(path, f"frame rate {info.fps:.2f} fps < {self.spec.min_fps:g}")
            if duration < self.spec.needed_duration:
                raise Unusable(
                    path,
                    f"too short: D = {duration:.3f} s < {self.spec.needed_duration:.2f} s needed "
                    f"for {self.spec.num_clips} clips {self.spec.shift:g} s apart",
                )
            self._durations[key] = duration
        return self._durations[key]

    def _decoded(self, path: Path, lo: float, hi: float):
        key = str(path)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        try:
            if self.cache_videos > 0:
                lo, hi = 0.0, float("inf")  # cache the whole (small) file once
            video = decode_video(path, lo, hi)
            audio = decode_audio(path, lo, hi)
        except MediaError as error:
            raise Unusable(path, f"decoding failed: {error}") from error
        if not video or not audio:
            raise Unusable(path, f"no {'video' if not video else 'audio'} in {lo:.2f}-{hi:.2f} s")
        pts = np.array([f.pts_us * 1e-6 for f in video])
        rgb = torch.from_numpy(np.stack([f.rgb for f in video])).permute(0, 3, 1, 2)
        if self.cache_videos > 0:  # every frame transformed once (the transform is per frame)
            rgb = classifier_data_frames(rgb, size=self.spec.image_size)
        entry = (pts, rgb, audio, {})
        if self.cache_videos > 0:
            self._cache[key] = entry
            while len(self._cache) > self.cache_videos:
                self._cache.popitem(last=False)
        return entry

    def read(
        self, path: str | Path, starts: Sequence[float], flips: Sequence[bool] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The K clips starting at ``starts`` (s, ascending).

        Returns:
            ``(mel, frames)``: (K, 1, 128, 204) float32 normalised mels and
            (K, 3, 12, S, S) float32 CLIP-normalised frames (``S = image_size``), clip k flipped
            horizontally when ``flips[k]``.

        Raises:
            Unusable: decoding fails or a clip window has no audio or video.
        """
        spec, path = self.spec, Path(path)
        starts = np.asarray(starts, dtype=np.float64)
        times = starts[:, None] + np.arange(spec.num_frames + 1)[None, :] / spec.fps
        times[:, 0] += ENDPOINT_SHIFT
        times[:, -1] -= ENDPOINT_SHIFT
        pts, rgb, audio, mels = self._decoded(
            path, max(times[0, 0] - 1.0, 0.0), times[-1, -1] + 1.0
        )
        try:
            indices = nearest_pts_indices(pts, starts, spec.num_frames, spec.fps)
        except ValueError as error:
            raise Unusable(path, str(error)) from error
        if self.cache_videos > 0:  # already transformed: gather (K, n) → (K, 3, n, S, S)
            frames = rgb[torch.from_numpy(indices)].transpose(1, 2).contiguous()
        else:
            frames = classifier_data_frames(rgb, indices, size=spec.image_size)
        if flips is not None:
            for k, flip in enumerate(flips):
                if flip:
                    frames[k] = frames[k].flip(-1)
        mels = torch.stack(
            [self._mel(audio, times[k, 0], times[k, -1], path, mels) for k in range(len(starts))]
        )
        return mels, frames.contiguous()

    def _mel(self, audio, lo: float, hi: float, path: Path, cache: dict) -> torch.Tensor:
        import torchaudio.functional as AF

        kept = [f for f in audio if lo <= f.pts_us * 1e-6 <= hi]
        if not kept:
            raise Unusable(path, f"no audio frame between {lo:.3f} s and {hi:.3f} s")
        key = (kept[0].pts_us, kept[-1].pts_us)
        if key in cache:
            return cache[key]
        rate = kept[0].sample_rate
        if any(f.sample_rate != rate for f in kept):
            raise Unusable(path, "the audio sample rate changes inside the file")
        wave = torch.from_numpy(np.concatenate([f.native_view for f in kept], axis=1))
        wave = AF.resample(wave.float(), orig_freq=rate, new_freq=self.spec.sample_rate)
        mel = waveform_mel(wave.numpy())
        if self.cache_videos > 0:
            cache[key] = mel
        return mel


class TrainClipsDataset(Dataset):
    """Items keyed ``(video_index, sample_index)``: K aligned clips of one listed video.

    The clip offset and the K flips come from ``numpy.random.default_rng([seed, sample_index])``.
    An unusable video is replaced by the next listed one (wrapping), as the official loader does;
    the item's ``substituted`` lists ``(list line, reason)`` of each video passed over.

    Item: ``mels`` (K, 1, 128, 204) and ``frames`` (K, 3, 12, S, S) float32, ``video_index`` int,
    ``sample_index`` int, ``substituted`` list.
    """

    def __init__(
        self,
        videos: Sequence[TestVideo],
        spec: DataSpec,
        seed: int,
        random_flip: bool = True,
        cache_videos: int = 0,
    ):
        self.videos, self.spec, self.seed, self.random_flip = list(videos), spec, seed, random_flip
        self.reader = MultiClipReader(spec, cache_videos)
        self.unusable: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.videos)

    def scan(self) -> dict[int, str]:
        """Probe every listed video once (duration, frame rate; no decoding) and return
        ``{list index: reason}`` of the unusable ones, which later items pass over directly.

        Problems that only decoding reveals (a broken stream) are still found when first read.
        """
        for index, video in enumerate(self.videos):
            if index in self.unusable:
                continue
            try:
                self.reader.duration(video.path)
            except Unusable as error:
                self.unusable[index] = error.reason
        return dict(sorted(self.unusable.items()))

    def __getitem__(self, key) -> dict:
        video_index, sample_index = key
        rng = np.random.default_rng([self.seed, sample_index])
        substituted = []
        for attempt in range(len(self.videos)):
            index = (video_index + attempt) % len(self.videos)
            if index in self.unusable:
                substituted.append((self.videos[index].rel, self.unusable[index]))
                continue
            video = self.videos[index]
            try:
                starts = clip_starts(self.reader.duration(video.path), self.spec, rng)
                flips = (rng.random(self.spec.num_clips) < 0.5) & self.random_flip
                mels, frames = self.reader.read(video.path, starts, flips.tolist())
            except Unusable as error:
                self.unusable[index] = error.reason
                substituted.append((video.rel, error.reason))
                continue
            return {
                "mels": mels,
                "frames": frames,
                "video_index": index,
                "sample_index": sample_index,
                "substituted": substituted,
            }
        reasons = "; ".join(f"{rel}: {why}" for rel, why in substituted[:10])
        raise DatasetError(f"no usable video among the {len(self.videos)} listed ({reasons})")


def collate_clips(items: list[dict]) -> dict:
    """Stack items of :class:`TrainClipsDataset`: ``mels`` (B, K, 1, 128, 204), ``frames``
    (B, K, 3, 12, S, S); ``sample_index`` list; ``substituted`` concatenated."""
    return {
        "mels": torch.stack([i["mels"] for i in items]),
        "frames": torch.stack([i["frames"] for i in items]),
        "sample_index": [i["sample_index"] for i in items],
        "substituted": [s for i in items for s in i["substituted"]],
    }
