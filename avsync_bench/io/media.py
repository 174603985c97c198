"""All media decoding and encoding of avsync-bench, through PyAV (bundled FFmpeg).

Nothing else in the package opens a media file. Decoding returns frames with their timestamps in
two forms: exact seconds (``pts · time_base`` as a float) and the integer microseconds that
torchvision's ``video_reader`` backend reported to the official ASVA code (best-effort pts
rescaled to µs, rounding half away from zero; ``golden/README.md`` §3). Which one a clip uses is
decided by the protocol (:mod:`avsync_bench.clips`), not here.

Only the requested time range is decoded: the decoder seeks to the keyframe before the range and
stops after it, so long files are never decoded whole.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from avsync_bench.errors import AVSyncBenchError

__all__ = [
    "MediaError",
    "MediaInfo",
    "VideoFrame",
    "AudioFrame",
    "probe",
    "decode_video",
    "decode_audio",
    "count_video_frames",
    "video_frame_times",
    "read_wav_or_audio",
    "write_clip",
    "one_open_per_file",
]


LARGE_FRAME_PIXELS = 1920 * 1088
LARGE_FRAME_THREADS = 4
"""Above LARGE_FRAME_PIXELS per frame (beyond 1080p) the video decoder uses at most
LARGE_FRAME_THREADS threads: FFmpeg's frame threading keeps one picture in flight per thread
(≈ 50 MB at 8K), so the default (one per core, up to 16) would make memory grow with the core
count. Decoded values do not depend on the thread count."""


class MediaError(AVSyncBenchError, RuntimeError):
    """A media file cannot be opened or lacks what is needed; the message names the file."""


@dataclass(frozen=True)
class MediaInfo:
    """Container metadata of one file.

    Durations are in seconds from the stream's own ``duration`` (the container's when a stream
    has none), as torchvision's ``video_reader`` metadata reports them. ``fps`` is the stream's
    average frame rate (frames/s); ``sample_rate`` in Hz; ``None`` fields mean "no such stream".
    """

    path: Path
    video_duration: float | None
    audio_duration: float | None
    fps: float | None
    width: int | None
    height: int | None
    sample_rate: int | None
    channels: int | None

    @property
    def av_duration(self) -> float:
        """D = min(video duration, audio duration) in seconds (PROTOCOL.md §1, "Decoding")."""
        if self.video_duration is None or self.audio_duration is None:
            raise MediaError(f"{self.path}: needs both a video and an audio stream")
        return min(self.video_duration, self.audio_duration)


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame: ``rgb`` (H, W, 3) uint8 (the decoded size, or what the decoder's
    ``transform`` returned for it); ``pts`` exact seconds; ``pts_us`` integer µs."""

    index: int
    pts: float
    pts_us: int
    rgb: np.ndarray


@dataclass(frozen=True)
class AudioFrame:
    """One decoded codec frame of audio.

    ``samples`` is (channels, n) float32 in [-1, 1] with the true channels. ``native_view`` is the
    same buffer as torchvision 0.16 handed it to the official code (codec-native memory layout,
    read as (n, channels) and reinterpreted with ``view(channels, n)``): equal to ``samples`` for
    planar formats such as AAC's ``fltp``, channel-scrambled for packed formats (PROTOCOL.md §1,
    "Stereo").
    """

    index: int
    pts: float
    pts_us: int
    sample_rate: int
    samples: np.ndarray
    native_view: np.ndarray


def _us(pts: int, time_base: Fraction) -> int:
    """Integer microseconds, rounding half away from zero (as the C++ decoder does)."""
    value = Fraction(pts) * time_base * 1_000_000
    return int(math.copysign(math.floor(abs(value) + Fraction(1, 2)), value))


UNREADABLE = "not a readable media file (empty, truncated or not a video)"


def _unreadable(path: Path, exc: Exception, during: str = "") -> MediaError:
    """The error for a file FFmpeg cannot read; FFmpeg's own text goes to ``detail``
    (shown with ``--verbose``)."""
    error = MediaError(f"{path}: {UNREADABLE}" + (f"; {during}" if during else ""))
    error.detail = f"FFmpeg: {exc}"
    return error


def _open(path: Path) -> av.container.InputContainer:
    shared = _SHARED.get()
    if shared is not None:
        return shared.borrow(Path(path))
    return _open_new(path)


def _open_new(path: Path) -> av.container.InputContainer:
    path = Path(path)
    if path.is_dir():
        raise MediaError(f"{path}: is a folder, not a media file")
    if not path.is_file():
        raise MediaError(f"{path}: file not found")
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise _unreadable(path, exc) from exc


class _Borrowed:
    """A shared container handed to one ``with`` block without closing it at the end."""

    def __init__(self, container):
        self.container = container

    def __enter__(self):
        return self.container

    def __exit__(self, *exc) -> None:
        return None

    def __getattr__(self, name):
        return getattr(self.container, name)


class _SharedContainer:
    """The most recently opened file's container, kept open for the next read of the same file."""

    def __init__(self):
        self.path: Path | None = None
        self.container = None

    def borrow(self, path: Path) -> _Borrowed:
        if self.container is not None and self.path == path:
            self.container.seek(0)  # rewind: every reader starts as on a fresh container
        else:
            self.close()
            self.container, self.path = _open_new(path), path
        return _Borrowed(self.container)

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
        self.container, self.path = None, None


_SHARED: contextvars.ContextVar[_SharedContainer | None] = contextvars.ContextVar(
    "avsync_bench_shared_container", default=None
)


@contextlib.contextmanager
def one_open_per_file() -> Iterator[None]:
    """Within this block, consecutive reads of the same file (:func:`probe`,
    :func:`decode_video`, :func:`decode_audio`, :func:`count_video_frames`) share one opened
    container (rewound with a seek to 0 between readers) instead of opening the file each time.
    Only the most recently opened file stays open; it is closed when the block ends. Values are
    those of separate opens (the decoders are flushed by the seek).
    """
    shared = _SharedContainer()
    token = _SHARED.set(shared)
    try:
        yield
    finally:
        _SHARED.reset(token)
        shared.close()


def _duration(stream, container) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def probe(path: str | Path) -> MediaInfo:
    """Read the container metadata of ``path`` without decoding.

    Raises:
        MediaError: the file is missing or not readable media.
    """
    path = Path(path)
    with _open(path) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        return MediaInfo(
            path=path,
            video_duration=_duration(video, container) if video else None,
            audio_duration=_duration(audio, container) if audio else None,
            fps=float(video.average_rate) if video and video.average_rate else None,
            width=video.codec_context.width if video else None,
            height=video.codec_context.height if video else None,
            sample_rate=audio.codec_context.sample_rate if audio else None,
            channels=audio.codec_context.channels if audio else None,
        )


def _seek(container, stream, start: float) -> None:
    if start > 0:
        container.seek(int(start / stream.time_base), stream=stream, backward=True, any_frame=False)


def decode_video(
    path: str | Path,
    start: float,
    end: float,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[VideoFrame]:
    """Decode the video frames whose exact pts lies in ``[start, end]`` seconds.

    Frames are converted to RGB24 by swscale with the AREA flag (as torchvision's decoder did).
    ``index`` is the frame's position in decode order counted from the first frame of the file,
    so indices are comparable across calls.

    ``transform`` (e.g. the protocol's crop and resize, :func:`avsync_bench.clips.resize_frame`)
    is applied to each (H, W, 3) uint8 frame as soon as it is decoded, so only its (smaller)
    output is kept: memory then grows with the output size, not the file's resolution.

    Raises:
        MediaError: missing file, no video stream, or a decoding failure.
    """
    path = Path(path)
    frames: list[VideoFrame] = []
    with _open(path) as container:
        if not container.streams.video:
            raise MediaError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        width, height = stream.codec_context.width or 0, stream.codec_context.height or 0
        if width * height > LARGE_FRAME_PIXELS:  # each frame thread holds a full-size picture
            stream.thread_count = LARGE_FRAME_THREADS
        time_base = stream.time_base
        rate = stream.average_rate or stream.guessed_rate
        _seek(container, stream, start)
        try:
            for frame in container.decode(stream):
                pts = frame.pts if frame.pts is not None else frame.dts
                if pts is None:
                    raise MediaError(f"{path}: video frame without a timestamp")
                seconds = float(pts * time_base)
                if seconds > end:
                    break
                if seconds < start:
                    continue
                start_pts = stream.start_time or 0
                index = round(float((pts - start_pts) * time_base * rate)) if rate else len(frames)
                rgb = frame.reformat(format="rgb24", interpolation="AREA").to_ndarray()
                if transform is not None:
                    rgb = transform(rgb)
                frames.append(VideoFrame(index, seconds, _us(pts, time_base), rgb))
        except av.error.FFmpegError as exc:
            raise _unreadable(path, exc, "video decoding failed") from exc
    return frames


_SAMPLE_SCALE = {"s16": 32768.0, "s16p": 32768.0, "s32": 2.0**31, "s32p": 2.0**31}


def _audio_arrays(frame: av.AudioFrame) -> tuple[np.ndarray, np.ndarray]:
    """(true channels, official native view), both (channels, n) float32."""
    fmt = frame.format.name
    channels = len(frame.layout.channels)
    data = frame.to_ndarray()
    if fmt.startswith("u8"):
        data = (data.astype(np.float32) - 128.0) / 128.0
    else:
        data = data.astype(np.float32) / np.float32(_SAMPLE_SCALE.get(fmt, 1.0))
    if frame.format.is_planar:
        samples = data.reshape(channels, -1)
        return samples, samples
    interleaved = data.reshape(-1)
    return interleaved.reshape(-1, channels).T.copy(), interleaved.reshape(channels, -1)


def decode_audio(path: str | Path, start: float, end: float) -> list[AudioFrame]:
    """Decode the audio codec frames whose exact pts lies in ``[start, end]`` seconds.

    Raises:
        MediaError: missing file, no audio stream, or a decoding failure.
    """
    path = Path(path)
    frames: list[AudioFrame] = []
    with _open(path) as container:
        if not container.streams.audio:
            raise MediaError(f"{path}: no audio track")
        stream = container.streams.audio[0]
        time_base = stream.time_base
        _seek(container, stream, start)
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    raise MediaError(f"{path}: audio frame without a timestamp")
                seconds = float(frame.pts * time_base)
                if seconds > end:
                    break
                if seconds < start:
                    continue
                samples, native = _audio_arrays(frame)
                index = round(float(frame.pts * time_base) * frame.sample_rate / frame.samples)
                frames.append(
                    AudioFrame(
                        index,
                        seconds,
                        _us(frame.pts, time_base),
                        frame.sample_rate,
                        samples,
                        native,
                    )
                )
        except av.error.FFmpegError as exc:
            raise _unreadable(path, exc, "audio decoding failed") from exc
    return frames


def video_frame_times(path: str | Path) -> list[VideoFrame]:
    """Every video frame's timestamps, decoded but not converted to RGB (``rgb`` is None).

    Meant for short generated clips: what the frame pickers need to tell which frames a clip
    window would use (padding checks) without the pixels.

    Raises:
        MediaError: missing or unreadable file, no video stream.
    """
    path = Path(path)
    frames: list[VideoFrame] = []
    with _open(path) as container:
        if not container.streams.video:
            raise MediaError(f"{path}: no video stream")
        stream = container.streams.video[0]
        time_base, start_pts = stream.time_base, stream.start_time or 0
        rate = stream.average_rate or stream.guessed_rate
        try:
            for frame in container.decode(stream):
                pts = frame.pts if frame.pts is not None else frame.dts
                if pts is None:
                    raise MediaError(f"{path}: video frame without a timestamp")
                index = round(float((pts - start_pts) * time_base * rate)) if rate else len(frames)
                frames.append(VideoFrame(index, float(pts * time_base), _us(pts, time_base), None))
        except av.error.FFmpegError as exc:
            raise _unreadable(path, exc, "video decoding failed") from exc
    return frames


def count_video_frames(path: str | Path) -> int:
    """Number of decodable video frames (decodes the file; meant for short generated clips)."""
    path = Path(path)
    with _open(path) as container:
        if not container.streams.video:
            raise MediaError(f"{path}: no video stream")
        try:
            return sum(1 for _ in container.decode(container.streams.video[0]))
        except av.error.FFmpegError as exc:
            raise _unreadable(path, exc, "video decoding failed") from exc


def read_wav_or_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a whole audio file (wav, mp3, m4a, or a video's audio track).

    Returns:
        (samples (channels, n) float32 in [-1, 1], sample rate in Hz).

    Raises:
        MediaError: missing file, no audio stream, or a decoding failure.
    """
    frames = decode_audio(path, 0.0, math.inf)
    if not frames:
        raise MediaError(f"{path}: the audio track is empty")
    rates = {f.sample_rate for f in frames}
    if len(rates) != 1:
        raise MediaError(f"{path}: the sample rate changes inside the file ({sorted(rates)})")
    return np.concatenate([f.samples for f in frames], axis=1), rates.pop()


def write_clip(
    path: str | Path,
    frames: np.ndarray,
    fps: int,
    audio: np.ndarray | None,
    sample_rate: int,
    *,
    crf: int = 18,
) -> None:
    """Write an H.264 mp4 with an optional AAC audio track (the prediction format).

    Args:
        path: output file; written to ``<path>.partial`` then renamed, so an interrupted write
            never leaves a file with the final name.
        frames: (T, H, W, 3) uint8 RGB; H and W must be even (yuv420p).
        fps: frames per second (integer; 6 for the benchmark's clips).
        audio: (channels, n) float32 in [-1, 1] or None for no audio track.
        sample_rate: audio sample rate in Hz.
        crf: x264 constant rate factor (18 ≈ visually lossless).

    Raises:
        ValueError: frames of the wrong shape/dtype or odd size.
    """
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"{path}: frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}"
        )
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"{path}: H.264 needs an even frame size, got {height}x{width}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with av.open(str(partial), mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"crf": str(crf)}
        audio_stream = None
        if audio is not None:
            audio = np.ascontiguousarray(np.asarray(audio, dtype=np.float32))
            layout = {1: "mono", 2: "stereo"}.get(audio.shape[0])
            if layout is None:
                raise ValueError(f"{path}: audio must have 1 or 2 channels, got {audio.shape[0]}")
            audio_stream = container.add_stream("aac", rate=sample_rate, layout=layout)
        for image in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode(None))
        if audio_stream is not None:
            frame = av.AudioFrame.from_ndarray(audio, format="fltp", layout=layout)
            frame.sample_rate = sample_rate
            frame.pts = 0
            container.mux(audio_stream.encode(frame))
            container.mux(audio_stream.encode(None))
    partial.replace(path)
