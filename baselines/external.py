"""Shared pieces of the adapters that run an external generator (``command``, ``codi``).

Inputs go out as files (the conditioning frame as a PNG, the clip's audio as a 16 kHz WAV); the
generator's video comes back as any file PyAV reads (any fps, size, codec, with or without audio)
and is normalised to the prediction format by :func:`normalise_video` with the protocol's own
frame picking (:func:`avsync_bench.clips.pick_frames` with the run's protocol rules,
from t = 0) and crop + resize (:func:`avsync_bench.clips.resize_frame`, as each frame is
decoded), so a generated clip is read the way ``score`` reads a clip.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
from PIL import Image

from avsync_bench.clips import cut_audio, pick_frames, pick_frames_corrected, resize_frame
from avsync_bench.io.media import MediaError, count_video_frames, decode_audio, decode_video
from avsync_bench.protocol import CORRECTED, ClipSpec, ProtocolMode, rules_for
from baselines.base import AdapterError, GenerationOutput

__all__ = ["write_png", "write_wav", "read_wav", "normalise_video", "text_tail"]


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 RGB image as a PNG (lossless) and return the path."""
    path = Path(path)
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), mode="RGB").save(path)
    return path


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write (channels, n) float audio in [-1, 1] as 16-bit PCM WAV (stdlib ``wave``).

    Values outside [-1, 1] are clipped. Returns the path.
    """
    path = Path(path)
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 2:
        raise ValueError(f"audio must be (channels, n), got {audio.shape}")
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(audio.shape[0])
        handle.setsampwidth(2)
        handle.setframerate(int(sample_rate))
        handle.writeframes(np.ascontiguousarray(pcm.T).tobytes())
    return path


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a 16-bit PCM WAV written by :func:`write_wav`: ((channels, n) float32, rate in Hz)."""
    with wave.open(str(path), "rb") as handle:
        if handle.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        channels, rate = handle.getnchannels(), handle.getframerate()
        data = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
    return (data.reshape(-1, channels).T / 32768.0).astype(np.float32), rate


def text_tail(text: str | bytes | None, lines: int = 15, chars: int = 2000) -> str:
    """The last ``lines`` lines (at most ``chars`` characters) of a process's output, stripped."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    tail = "\n".join((text or "").strip().splitlines()[-lines:])
    return tail[-chars:]


def _pick(frames, spec: ClipSpec, mode: ProtocolMode) -> list[int]:
    positions, _padding = pick_frames(frames, 0.0, spec, mode)
    return positions


def normalise_video(
    path: str | Path,
    spec: ClipSpec,
    mode: ProtocolMode,
    *,
    keep_audio: bool = False,
    min_frames: int | None = None,
    context: str = "",
) -> GenerationOutput:
    """Turn a generator's video file into one clip of the prediction format.

    Frames: decoded from t = 0 (``decode_video``), ``spec.num_frames`` of them picked at
    ``spec.fps`` by the protocol's rule for ``mode`` (``official``: first frame with
    ``pts >= target`` on µs timestamps, padding with the last frame; ``corrected``: nearest frame),
    then centre-cropped to the clip's aspect ratio and resized (bilinear, antialiased) to
    ``spec.height`` x ``spec.width``.

    Audio (``keep_audio``): the file's first audio track, the exact window [0, duration) resampled
    to ``spec.sample_rate`` (zero-padded where the track is shorter), downmixed to mono when it has
    more than 2 channels. Without ``keep_audio`` the audio is None (the runner muxes the GT clip's).

    Args:
        path: the generator's output file.
        spec: the clip spec (size, frames, fps, sample rate).
        mode: protocol mode whose frame-picking rule is used.
        keep_audio: return the file's own audio instead of None.
        min_frames: fewest video frames the file must hold (default ``spec.num_frames``).
        context: prefix for error messages (the clip name, the generator's stderr is appended by
            the caller).

    Returns:
        GenerationOutput with frames (num_frames, height, width, 3) uint8 and audio None or
        (channels, spec.num_samples) float32.

    Raises:
        AdapterError: missing/unreadable file, fewer than ``min_frames`` frames, a video that
            ends before the clip (more picked frames past its end than the protocol's
            ``max_repeated_frames``), no audio track when ``keep_audio``.
    """
    path = Path(path)
    prefix = f"{context}: " if context else ""
    min_frames = spec.num_frames if min_frames is None else min_frames
    if not path.is_file():
        raise AdapterError(f"{prefix}the generator wrote no output file ({path.name})")
    try:
        frames = decode_video(  # each frame resized as decoded: memory independent of resolution
            path, 0.0, spec.duration + 1.0, lambda rgb: resize_frame(rgb, spec.height, spec.width)
        )
        if len(frames) < min_frames:
            total = count_video_frames(path)
            if total < min_frames:
                raise AdapterError(
                    f"{prefix}the generator's video has {total} frame(s), fewer than {min_frames}"
                )
        _check_coverage(frames, spec, mode, prefix)
        images = np.stack([frames[p].rgb for p in _pick(frames, spec, mode)])
        audio = _own_audio(path, spec) if keep_audio else None
    except MediaError as exc:
        raise AdapterError(f"{prefix}cannot read the generator's output ({exc})") from exc
    return GenerationOutput(images, audio)


def _check_coverage(frames, spec: ClipSpec, mode: ProtocolMode, prefix: str) -> None:
    """Refuse a video that stops before the clip does: more of the ``spec.num_frames`` targets
    ``k / spec.fps`` lie past its end (as :func:`avsync_bench.clips.pick_frames_corrected`
    counts them, whatever the run's picker) than the protocol's ``max_repeated_frames`` (1).
    A lower frame rate that spans the 2 s (CoDi's 8 frames at 4 fps) passes; a 0.5 s video, whose
    picked frames would mostly repeat its last one, does not."""
    _positions, past = pick_frames_corrected(frames, 0.0, spec)
    limit = rules_for(mode).max_repeated_frames
    if past > limit:
        first, last = frames[0].pts, frames[-1].pts
        end = last + (last - first) / max(len(frames) - 1, 1)  # the last frame's display ends
        raise AdapterError(
            f"{prefix}the generator's video covers only {end:.2f} s of the {spec.duration:g} s "
            f"clip: {past} of the {spec.num_frames} frames picked at {spec.fps:g} fps would "
            f"repeat its last frame (the protocol allows {limit})"
        )


def _own_audio(path: Path, spec: ClipSpec) -> np.ndarray:
    frames = decode_audio(path, -1.0, spec.duration + 1.0)
    if not frames:
        raise MediaError(f"{path}: no audio in the first {spec.duration:g} s (--keep-audio)")
    audio = cut_audio(frames, 0.0, spec, CORRECTED, source=str(path))  # exact window
    if audio.shape[0] > 2:
        audio = audio.mean(axis=0, keepdims=True)
    return np.ascontiguousarray(audio, dtype=np.float32)
