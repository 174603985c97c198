"""Sync metrics for one (video, audio) pair, like the official ``scripts/avsync_metric.py``.

Inputs: a video (its first 2 s, 12 frames at 6 fps from t = 0, through the benchmark's clip path:
protocol frame picking, centre crop, 256x256 resize) and an audio (the video's own track when
none is given; a ``.wav``/any audio file: its first 2 s resampled to 16 kHz; an ``.mp4``: its
audio track's window [0, 2] s). Metrics (PROTOCOL.md §2, §9 "CLI"):

* ``score``: the raw classifier logit φ(audio, video).
* ``relsync``: softmax([φ_ref, φ(audio, video)])[1] with φ_ref = φ(ref audio, video) for
  ``ref_audio`` or φ(audio, ref video) for ``ref_video``.
* ``alignsync``: RelSync against ``ref_video`` times P_align, where both IA terms use the same
  audio: a_0 = IA(ref frame 0, audio), a_i = IA(video frame i, audio).

Deviation from the official script: frames go through the benchmark's 256x256 clip path before
the classifier's 224 squash (the script squashes the native frames), so a pair scores exactly as
the same clip does inside ``avsync-bench score``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

import avsync_bench  # noqa: F401
from avsync_bench.clips import Clip, load_clips
from avsync_bench.features.imagebind import ImageBindFeatures
from avsync_bench.features.sync import SyncFeatures
from avsync_bench.io.media import read_wav_or_audio
from avsync_bench.metrics.per_clip import p_align
from avsync_bench.preflight import preflight
from avsync_bench.protocol import ClipSpec, ProtocolMode
from avsync_bench.weights.store import WeightStore

__all__ = ["load_pair_clip", "load_pair_audio", "sync_pair"]

SPEC = ClipSpec()


def load_pair_clip(video: str | Path, mode: ProtocolMode) -> Clip:
    """The first 2 s of ``video`` as a clip (12 frames from t = 0, its own audio window)."""
    return load_clips(video, [0.0], SPEC, mode)[0]


def load_pair_audio(path: str | Path, mode: ProtocolMode) -> np.ndarray:
    """(channels, n) float32 16 kHz: the first 2 s of an audio file or a video's audio track."""
    path = Path(path)
    if path.suffix.lower() in {".mp4", ".mov", ".mkv", ".webm"}:
        return load_pair_clip(path, mode).audio
    import torchaudio.functional as AF

    samples, rate = read_wav_or_audio(path)
    audio = AF.resample(torch.from_numpy(samples), rate, SPEC.sample_rate).numpy()
    audio = audio[:, : SPEC.num_samples]
    if mode is ProtocolMode.corrected and audio.shape[1] < SPEC.num_samples:
        audio = np.pad(audio, ((0, 0), (0, SPEC.num_samples - audio.shape[1])))
    return np.ascontiguousarray(audio, dtype=np.float32)


def sync_pair(
    video: str | Path,
    audio: str | Path | None = None,
    ref_video: str | Path | None = None,
    ref_audio: str | Path | None = None,
    metric: str = "alignsync",
    mode: ProtocolMode = ProtocolMode.official,
    weights_dir: str | Path | None = None,
    device: str = "cpu",
) -> dict:
    """Compute one sync metric for a pair (see module docstring).

    Returns:
        ``{"metric", "value", "phi", "phi_ref"?, "p_align"?, "standin"}``; RelSync/AlignSync raw
        (not ×100).

    Raises:
        ValueError: a missing or contradictory reference. MissingWeightsError: absent weights.
        PreflightError: ``device`` does not exist (checked before decoding).
    """
    if metric not in {"score", "relsync", "alignsync"}:
        raise ValueError(f"unknown metric {metric!r}; choose score, relsync or alignsync")
    if metric == "relsync" and (ref_video is None) == (ref_audio is None):
        raise ValueError("relsync needs exactly one of --ref-video and --ref-audio")
    if metric == "alignsync" and (ref_video is None or ref_audio is not None):
        raise ValueError("alignsync needs --ref-video (and no --ref-audio)")
    preflight(device=device)
    mode = ProtocolMode(mode)
    clip = load_pair_clip(video, mode)
    if audio is not None:
        clip = replace(clip, audio=load_pair_audio(audio, mode))
    names = ["avsync_classifier"] + (["imagebind_huge"] if metric == "alignsync" else [])
    weights = WeightStore(weights_dir).resolve_all(names)
    sync = SyncFeatures(device, batch_size=1)  # one pair per pass: equal inputs give equal φ
    sync.load(weights)
    pairs = [clip]
    if ref_audio is not None:
        pairs.append(replace(clip, audio=load_pair_audio(ref_audio, mode)))
    ref_clip = None
    if ref_video is not None:
        ref_clip = replace(load_pair_clip(ref_video, mode), audio=clip.audio)
        pairs.append(ref_clip)
    phis = sync.extract(pairs).reshape(-1).astype(np.float64)
    sync.release()
    out = {
        "metric": metric,
        "phi": float(phis[0]),
        "standin": any(w.standin for w in weights.values()),
    }
    if metric == "score":
        out["value"] = out["phi"]
        return out
    out["phi_ref"] = float(phis[1])
    relsync = float(1.0 / (1.0 + np.exp(phis[1] - phis[0])))
    out["value"] = relsync
    if metric == "alignsync":
        imagebind = ImageBindFeatures(device, batch_size=11)
        imagebind.load(weights)
        align = float(
            p_align(imagebind.extract([ref_clip], "gt"), imagebind.extract([clip], "gen"))[0]
        )
        imagebind.release()
        out.update(p_align=align, relsync=relsync, value=align * relsync)
    return out
