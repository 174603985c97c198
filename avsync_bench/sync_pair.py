"""Sync metrics for one (video, audio) pair, like the official ``scripts/avsync_metric.py``.

Metrics (PROTOCOL.md §2, "CLI"):

* ``score``: the raw classifier logit φ(audio, video).
* ``relsync``: softmax([φ_ref, φ(audio, video)])[1] with φ_ref = φ(ref audio, video) for
  ``ref_audio`` or φ(audio, ref video) for ``ref_video``.
* ``alignsync``: RelSync against ``ref_video`` times P_align, where both IA terms use the same
  audio: a_0 = IA(ref frame 0, audio), a_i = IA(video frame i, audio).

How inputs are read is decided by the single-pair rules (:data:`~avsync_bench.protocol.
OFFICIAL_SINGLE_PAIR` / :data:`~avsync_bench.protocol.CORRECTED_SINGLE_PAIR`):

* ``official`` (default) reproduces the official script exactly: frames decoded from t = 0 while
  pts ≤ 2 + 1/12 s, a frame kept when ``pts + 1e-6 >= k/6`` (k = 0..11), the kept frames at their
  native size straight into the classifier transform (squash to 224, no 256x256 step); audio from
  the video's own track (or ``--audio``): for an ``.mp4`` the decoded codec frames with
  0 ≤ pts ≤ 2.0 s as the decoder hands them, for any other file its first ``int(sr·2)`` samples,
  then resampled to 16 kHz. With ``--audio`` the video needs no audio track.
* ``corrected`` reads the pair as the corrected benchmark reads a clip starting at 0: nearest-frame
  picking, centre crop and 256x256 resize, the exact 2 s audio window, channel-mean mel.

Refused in both modes (``InputError`` naming the file): fewer than 12 distinct frames in the
first 2 s (the official script's assertion), audio covering less than 2 s minus the rules'
``max_audio_padding_s`` (0.1 s), NaN or infinite audio samples, a video without an audio track
when no ``--audio`` is given.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

import avsync_bench  # noqa: F401
from avsync_bench.clips import Clip, _resample, cut_audio, pick_frames, resize_frames
from avsync_bench.errors import InputError, OptionError
from avsync_bench.io.media import decode_audio, decode_video, read_wav_or_audio
from avsync_bench.preflight import preflight
from avsync_bench.protocol import DEFAULT_MODE, ClipSpec, ProtocolMode, ProtocolRules, rules_for

__all__ = ["load_pair_clip", "pair_waveform", "load_pair_audio", "sync_pair", "METRICS"]

SPEC = ClipSpec()
METRICS = ("score", "relsync", "alignsync")
_VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"}


def _rules(mode: ProtocolMode | str | ProtocolRules) -> ProtocolRules:
    return rules_for(mode, single_pair=True)


def load_pair_clip(video: str | Path, mode: ProtocolMode | str | ProtocolRules) -> Clip:
    """The first 2 s of ``video``'s frames as a clip (its ``audio`` is left empty).

    Returns:
        A :class:`Clip` whose ``frames`` are (12, H, W, 3) uint8: native size under rules with
        ``classifier_frames == "native"`` (official), else cropped and resized to 256x256.

    Raises:
        MediaError: unreadable file or no video stream. InputError: fewer than 12 distinct
        frames in the first 2 s (more repeats than ``max_repeated_frames``).
    """
    rules, path = _rules(mode), Path(video)
    frames = decode_video(path, -0.5, SPEC.duration + 0.5)
    if not frames:
        raise InputError(f"{path}: no video frame in the first {SPEC.duration:g} s")
    positions, padding = pick_frames(frames, 0.0, SPEC, rules)
    distinct = len(set(positions))
    if SPEC.num_frames - distinct > rules.max_repeated_frames:
        raise InputError(
            f"{path}: video too short: {distinct} distinct frame(s) found in the first "
            f"{SPEC.duration:g} s; a pair needs {SPEC.num_frames} ({SPEC.num_frames} frames at "
            f"{SPEC.fps} fps from t = 0)"
        )
    chosen = np.stack([frames[p].rgb for p in positions])
    if rules.classifier_frames != "native":
        chosen = resize_frames(chosen, SPEC.height, SPEC.width)
    return Clip(
        frames=chosen,
        audio=np.zeros((1, 0), np.float32),
        start=0.0,
        mode=rules.mode,
        frame_indices=[frames[p].index for p in positions],
        frame_pts=[frames[p].pts for p in positions],
        padded_frames=padding,
    )


def _check_audio(path: Path, native: np.ndarray, seconds: float, rules: ProtocolRules) -> None:
    if not np.isfinite(native).all():
        raise InputError(f"{path}: audio contains NaN or infinite samples")
    if seconds < SPEC.duration - rules.max_audio_padding_s - 1e-9:
        raise InputError(
            f"{path}: audio too short: {seconds:.2f} s of audio in the first {SPEC.duration:g} s; "
            f"a pair needs {SPEC.duration:g} s (at most {rules.max_audio_padding_s:g} s missing)"
        )


def pair_waveform(
    path: str | Path, mode: ProtocolMode | str | ProtocolRules
) -> tuple[np.ndarray, int, list | None]:
    """The audio of ``path`` before resampling, as the single-pair rules read it.

    Returns:
        ``(waveform, rate, frames)``: (channels, n) float32 in [-1, 1] at ``rate`` Hz, and the
        decoded codec frames for video containers (None for audio files). Official ``.mp4``:
        the codec frames with 0 ≤ pts ≤ 2.0 s (integer µs) concatenated in the layout the
        decoder hands them (what the official ``load_audio`` returns); audio files: the first
        ``int(rate·2)`` samples. Corrected video containers: the true channels of the frames
        covering [0, 2] s.

    Raises:
        MediaError: unreadable file or no audio track. InputError: NaN/infinite samples, or less
        than ``2 − max_audio_padding_s`` seconds of audio in the first 2 s.
    """
    rules, path = _rules(mode), Path(path)
    suffix = path.suffix.lower()
    codec_frames = rules.audio_window == "codec_frames" and suffix == ".mp4"
    if codec_frames or (rules.audio_window == "exact" and suffix in _VIDEO_SUFFIXES):
        frames = decode_audio(path, -0.5, SPEC.duration + 0.5)
        inside = [f for f in frames if 0 <= f.pts_us and f.pts_us * 1e-6 <= SPEC.duration]
        if not inside:
            raise InputError(f"{path}: no audio in the first {SPEC.duration:g} s")
        rate = inside[0].sample_rate
        end = min(inside[-1].pts + inside[-1].samples.shape[1] / rate, SPEC.duration)
        seconds = end if codec_frames else end - max(inside[0].pts, 0.0)
        parts = [f.native_view if codec_frames else f.samples for f in inside]
        waveform = np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)
        _check_audio(path, waveform, seconds, rules)
        return waveform, rate, frames
    samples, rate = read_wav_or_audio(path)
    waveform = np.ascontiguousarray(samples[:, : int(rate * SPEC.duration)], dtype=np.float32)
    _check_audio(path, waveform, min(samples.shape[1] / rate, SPEC.duration), rules)
    return waveform, rate, None


def load_pair_audio(path: str | Path, mode: ProtocolMode | str | ProtocolRules) -> np.ndarray:
    """(channels, n) float32 16 kHz: the first 2 s of an audio file or a video's audio track,
    read as the single-pair rules say (module docstring; :func:`pair_waveform`).

    Raises:
        MediaError / InputError: as :func:`pair_waveform`.
    """
    rules, path = _rules(mode), Path(path)
    waveform, rate, frames = pair_waveform(path, rules)
    if frames is not None and rules.audio_window == "exact":
        audio = cut_audio(frames, 0.0, SPEC, rules, source=str(path))
    elif frames is not None or rules.audio_file_window == "first_then_resample":
        audio = _resample(waveform, rate, SPEC.sample_rate)
    else:
        audio = _resample(read_wav_or_audio(path)[0], rate, SPEC.sample_rate)
        audio = audio[:, : SPEC.num_samples]
        if audio.shape[1] < SPEC.num_samples:
            audio = np.pad(audio, ((0, 0), (0, SPEC.num_samples - audio.shape[1])))
    return np.ascontiguousarray(audio, dtype=np.float32)


def _own_audio(video: Path, rules: ProtocolRules) -> np.ndarray:
    from avsync_bench.io.media import probe

    if probe(video).audio_duration is None:
        raise InputError(f"{video}: no audio track; give the audio with --audio")
    return load_pair_audio(video, rules)


def sync_pair(
    video: str | Path,
    audio: str | Path | None = None,
    ref_video: str | Path | None = None,
    ref_audio: str | Path | None = None,
    metric: str = "alignsync",
    mode: ProtocolMode | str | ProtocolRules = DEFAULT_MODE,
    weights_dir: str | Path | None = None,
    device: str = "cpu",
) -> dict:
    """Compute one sync metric for a pair (see module docstring).

    Returns:
        ``{"metric", "value", "phi", "phi_ref"?, "p_align"?, "relsync"?, "protocol", "rules",
        "standin"}``; RelSync/AlignSync raw (not ×100), in [0, 1]; φ unbounded.

    Raises:
        OptionError: an unknown metric, a missing or contradictory reference.
        InputError / MediaError: an input that cannot be scored (names the file).
        MissingWeightsError: absent weights.
        PreflightError: ``device`` does not exist (checked before decoding).
    """
    if metric not in METRICS:
        raise OptionError(f"--metric: unknown metric {metric!r}; choose {', '.join(METRICS)}")
    if metric == "relsync" and (ref_video is None) == (ref_audio is None):
        raise OptionError("--ref-video: relsync needs exactly one of --ref-video and --ref-audio")
    if metric == "alignsync" and (ref_video is None or ref_audio is not None):
        raise OptionError("--ref-video: alignsync needs --ref-video (and no --ref-audio)")
    preflight(device=device)
    rules = _rules(mode)
    video = Path(video)
    clip = load_pair_clip(video, rules)
    waveform = _own_audio(video, rules) if audio is None else load_pair_audio(audio, rules)
    clip = replace(clip, audio=waveform)
    pairs = [clip]
    if ref_audio is not None:
        pairs.append(replace(clip, audio=load_pair_audio(ref_audio, rules)))
    ref_clip = None
    if ref_video is not None:
        ref_clip = replace(load_pair_clip(ref_video, rules), audio=clip.audio)
        pairs.append(ref_clip)
    return _score_pairs(pairs, ref_clip, metric, rules, weights_dir, device)


def _score_pairs(pairs, ref_clip, metric, rules, weights_dir, device) -> dict:
    from avsync_bench.features.imagebind import ImageBindFeatures
    from avsync_bench.features.sync import SyncFeatures
    from avsync_bench.metrics.per_clip import p_align
    from avsync_bench.weights.store import WeightStore

    names = ["avsync_classifier"] + (["imagebind_huge"] if metric == "alignsync" else [])
    weights = WeightStore(weights_dir).resolve_all(names)
    sync = SyncFeatures(device, batch_size=1)  # one pair per pass: equal inputs give equal φ
    sync.load(weights)
    phis = sync.extract(pairs).reshape(-1).astype(np.float64)
    sync.release()
    out = {
        "metric": metric,
        "phi": float(phis[0]),
        "protocol": rules.mode.value,
        "rules": rules.name,
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
            p_align(imagebind.extract([ref_clip], "gt"), imagebind.extract([pairs[0]], "gen"))[0]
        )
        imagebind.release()
        out.update(p_align=align, relsync=relsync, value=align * relsync)
    return out
