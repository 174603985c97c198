"""Clips: 12 frames at 6 fps plus their 2 s of audio, cut from a video by the protocol's rules.

This is the one place where frames are picked, cropped and resized and where audio windows are
cut and resampled (PROTOCOL.md §1, §8). Metrics receive :class:`Clip` objects (uint8 frames,
16 kHz audio) and apply only their own preprocessing.

Frame picking:
    * ``official``: timestamps at integer-µs resolution; frames from the seek point
      ``int(max(s, 0)·1e6)`` µs up to ``s + 2 + 1/12`` s; keep the first frame with
      ``pts >= target``, the target starting at ``s`` and growing by 1/6 after each kept frame;
      pad by repeating the last frame. This reproduces the official frame drop (a frame at exactly
      1/3 s is stored as 0.333333 and skipped; PROTOCOL.md §5.7, §9).
    * ``corrected``: exact timestamps; for each target ``s + i/6`` the nearest frame within half a
      source frame interval; targets past the end repeat the last frame.

Audio window:
    * ``official``: concatenate the codec frames with ``s <= pts <= s + 2`` as the official code saw
      them (codec-native layout, §1 "Stereo"), resample to 16 kHz (``torchaudio.functional.resample``);
      the mel later centre-crops to 32000 samples and uses channel 0 after subtracting the mean
      over all channels.
    * ``corrected``: the exact sample window ``[s, s + 2)`` at 16 kHz (zero-padded where the file
      has no audio, never wrapped); the mel uses the channel mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import avsync_bench  # noqa: F401  (compatibility shim before torchaudio/torchvision)
from avsync_bench.io.media import AudioFrame, MediaError, VideoFrame, decode_audio, decode_video
from avsync_bench.io.media import probe as probe_media
from avsync_bench.protocol import ClipSpec, ProtocolMode, ProtocolRules, rules_for

__all__ = [
    "Clip",
    "ClipPadding",
    "generated_clip_padding",
    "pick_frames_official",
    "pick_frames_corrected",
    "pick_frames",
    "cut_audio",
    "resize_frame",
    "resize_frames",
    "load_clips",
    "load_test_clips",
    "load_generated_clip",
    "clip_mel",
    "waveform_mel",
]

MEL_MEAN, MEL_STD = -4.268, 9.138
MEL_BINS, MEL_FRAMES = 128, 204


@dataclass
class Clip:
    """One benchmark clip.

    Attributes:
        frames: (num_frames, H, W, 3) uint8 RGB at the spec's size (quantised as ``round(x·255)``).
        audio: (channels, n) float32 at 16 kHz in [-1, 1]. ``official``: the official window
            (n is about 31951-32323, before the mel's centre crop; channels in the official
            layout). ``corrected``: exactly 32000 samples, true channels.
        start: clip start in seconds.
        mode: the protocol mode that cut it.
        frame_indices: decode-order index of the source frame behind each output frame.
        frame_pts: source timestamp (s) of each output frame.
        padded_frames: how many trailing frames repeat the last one because the video ended.
        mel: the clip's (1, 128, 204) mel once :func:`clip_mel` computed it (shared by every
            extractor that reads it), else None.
    """

    frames: np.ndarray
    audio: np.ndarray
    start: float
    mode: ProtocolMode
    frame_indices: list[int] = field(default_factory=list)
    frame_pts: list[float] = field(default_factory=list)
    padded_frames: int = 0
    mel: torch.Tensor | None = field(default=None, init=False, repr=False, compare=False)


def pick_frames_official(
    frames: list[VideoFrame], start: float, spec: ClipSpec, tolerance: float = 0.0
) -> tuple[list[int], int]:
    """Positions in ``frames`` the official picker keeps (see module docstring), padded to length,
    and how many trailing positions are padding.

    ``tolerance`` (s) is added to each pts before the ``>=`` test: 0 in the official dataset
    loader, 1e-6 in the official single-pair script (PROTOCOL.md §2 "CLI").

    Raises:
        MediaError: no frame at or after the seek point.
    """
    seek_us = int(max(start, 0.0) * 1e6)
    stop = start + spec.duration + (1.0 / spec.fps) / 2.0
    step = 1.0 / spec.fps
    target = start
    kept: list[int] = []
    for position, frame in enumerate(frames):
        if frame.pts_us < seek_us:
            continue
        pts = frame.pts_us * 1e-6
        if pts > stop:
            break
        if pts + tolerance >= target:
            kept.append(position)
            target += step
        if len(kept) == spec.num_frames:
            break
    if not kept:
        raise MediaError(f"no video frame at or after {start:.3f} s")
    padding = spec.num_frames - len(kept)
    return kept + [kept[-1]] * padding, padding


def pick_frames_corrected(
    frames: list[VideoFrame], start: float, spec: ClipSpec
) -> tuple[list[int], int]:
    """Positions of the nearest frame to each target ``start + i/fps`` (exact pts), and how many
    targets lay past the end of the video (they repeat the last frame).

    "Past the end" means more than half a source frame interval after the last frame.

    Raises:
        MediaError: no frames.
    """
    if not frames:
        raise MediaError(f"no video frame near {start:.3f} s")
    pts = np.array([f.pts for f in frames])
    interval = float(np.median(np.diff(pts))) if len(pts) > 1 else 1.0 / spec.fps
    picked, padding = [], 0
    for i in range(spec.num_frames):
        target = start + i / spec.fps
        if target > pts[-1] + interval / 2:
            picked.append(len(frames) - 1)
            padding += 1
            continue
        picked.append(int(np.argmin(np.abs(pts - target))))
    return picked, padding


def pick_frames(
    frames: list[VideoFrame], start: float, spec: ClipSpec, mode: ProtocolMode | ProtocolRules
) -> tuple[list[int], int]:
    """The positions the protocol's frame picker keeps and how many are padding
    (:attr:`ProtocolRules.frame_picker`).

    Raises:
        MediaError: no frame to pick.
    """
    rules = rules_for(mode)
    if rules.frame_picker == "first_at_or_after":
        return pick_frames_official(frames, start, spec, rules.pick_tolerance_s)
    if rules.frame_picker == "nearest":
        return pick_frames_corrected(frames, start, spec)
    raise ValueError(f"unknown frame picker {rules.frame_picker!r}")


def _resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    import torchaudio.functional as AF

    tensor = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    return AF.resample(tensor, orig_freq=rate, new_freq=target).numpy()


def cut_audio(
    frames: list[AudioFrame],
    start: float,
    spec: ClipSpec,
    mode: ProtocolMode | ProtocolRules,
    source: str = "",
) -> np.ndarray:
    """Cut a clip's audio from decoded codec frames (see module docstring).

    Args:
        frames: decoded audio frames covering at least ``[start, start + 2]``.
        start: clip start, seconds.
        spec: clip spec (duration, sample rate).
        mode: protocol mode or rules (:attr:`ProtocolRules.audio_window`).
        source: file name for error messages.

    Returns:
        (channels, n) float32 at ``spec.sample_rate``.

    Raises:
        MediaError: no audio in the window, or the sample rate changes inside the file.
    """
    end = start + spec.duration
    rates = {f.sample_rate for f in frames}
    if len(rates) > 1:
        raise MediaError(f"{source}: the audio sample rate changes inside the file")
    if rules_for(mode).audio_window == "codec_frames":
        seek_us = int(start * 1e6)
        kept = [
            f.native_view for f in frames if f.pts_us >= seek_us and start <= f.pts_us * 1e-6 <= end
        ]
        if not kept:
            raise MediaError(f"{source}: no audio frame between {start:.3f} s and {end:.3f} s")
        return _resample(np.concatenate(kept, axis=1), rates.pop(), spec.sample_rate)
    if not frames:
        raise MediaError(f"{source}: no audio between {start:.3f} s and {end:.3f} s")
    rate = rates.pop()
    first = frames[0].pts
    native = np.concatenate([f.samples for f in frames], axis=1)
    audio = _resample(native, rate, spec.sample_rate)
    offset = int(round((start - first) * spec.sample_rate))
    out = np.zeros((audio.shape[0], spec.num_samples), dtype=np.float32)
    lo, hi = max(offset, 0), min(offset + spec.num_samples, audio.shape[1])
    if hi > lo:
        out[:, lo - offset : hi - offset] = audio[:, lo:hi]
    return out


def resize_frame(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre-crop one frame to the target aspect ratio, then resize, as the official loader
    does (§1).

    Crop: ``int(h / (height/width))`` columns or ``int(w · height/width)`` rows, centred. Resize:
    bilinear with antialias on float [0, 1] frames (torchvision), then ``round(x·255)``. The crop
    is taken on the uint8 frame before the float conversion (the same values as cropping the
    float frame; it keeps a 7680x4320 frame's float copy to the cropped part). Every frame is
    resized on its own, so values do not depend on how frames are grouped.

    Args:
        frame: (H, W, 3) uint8 RGB.

    Returns:
        (height, width, 3) uint8.
    """
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    h, w = frame.shape[:2]
    target_ratio, ratio = height / width, h / w
    if target_ratio >= ratio:
        trimmed = int(h / target_ratio)
        left = (w - trimmed) // 2
        frame = frame[:, left : left + trimmed]
    else:
        trimmed = int(w * target_ratio)
        top = (h - trimmed) // 2
        frame = frame[top : top + trimmed]
    image = torch.from_numpy(np.ascontiguousarray(frame)[None]).permute(0, 3, 1, 2).float()
    image = image.div_(255.0)  # in place: the same values as `/ 255.0`, one float copy fewer
    image = TF.resize(image, [height, width], InterpolationMode.BILINEAR, antialias=True)
    image = TF.center_crop(image, [height, width])
    quantised = torch.round(image.clamp(0.0, 1.0) * 255.0).to(torch.uint8)
    return quantised[0].permute(1, 2, 0).contiguous().numpy()


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """:func:`resize_frame` on each of (T, H, W, 3) uint8 frames → (T, height, width, 3) uint8."""
    frames = np.asarray(frames)
    if len(frames) == 0:
        return np.zeros((0, height, width, 3), np.uint8)
    return np.stack([resize_frame(frame, height, width) for frame in frames])


def _make_clip(
    video: list[VideoFrame],
    audio: list[AudioFrame],
    start: float,
    spec: ClipSpec,
    mode: ProtocolMode | ProtocolRules,
    path: Path,
) -> Clip:
    rules = rules_for(mode)
    try:
        positions, padding = pick_frames(video, start, spec, rules)
    except MediaError as exc:
        raise MediaError(f"{path}: {exc}") from exc
    return Clip(
        frames=np.stack([video[p].rgb for p in positions]),  # resized as decoded
        audio=cut_audio(audio, start, spec, rules, source=str(path)),
        start=start,
        mode=rules.mode,
        frame_indices=[video[p].index for p in positions],
        frame_pts=[video[p].pts for p in positions],
        padded_frames=padding,
    )


def load_clips(
    path: str | Path, starts: list[float], spec: ClipSpec, mode: ProtocolMode | ProtocolRules
) -> list[Clip]:
    """Cut clips starting at ``starts`` (s) from one file, decoding only the span they need.

    Each frame is cropped and resized to the spec's size as it is decoded
    (:func:`resize_frame`), so the file's resolution never multiplies the memory held.

    Raises:
        MediaError: the file is unreadable or lacks video/audio in a window.
    """
    path = Path(path)
    lo = max(min(starts), 0.0) - 0.5
    hi = max(starts) + spec.duration + 0.5
    video = decode_video(path, lo, hi, lambda rgb: resize_frame(rgb, spec.height, spec.width))
    audio = decode_audio(path, lo, hi)
    if not video:
        raise MediaError(f"{path}: no video frames between {lo:.2f} s and {hi:.2f} s")
    if not audio:
        raise MediaError(f"{path}: no audio between {lo:.2f} s and {hi:.2f} s")
    return [_make_clip(video, audio, s, spec, mode, path) for s in starts]


def load_test_clips(
    path: str | Path, spec: ClipSpec, mode: ProtocolMode | ProtocolRules
) -> list[Clip]:
    """The test clips of one ground-truth video at ``linspace(0, D − 2, 3)`` (§1)."""
    rules = rules_for(mode)
    info = probe_media(path)
    return load_clips(path, rules.eval_clip_starts(info.av_duration, spec), spec, rules)


def load_generated_clip(
    path: str | Path, spec: ClipSpec, mode: ProtocolMode | ProtocolRules
) -> Clip:
    """A generated file read back as its centred clip, as the official evaluation does (§2)."""
    rules = rules_for(mode)
    info = probe_media(path)
    return load_clips(path, [rules.generated_clip_start(info.av_duration, spec)], spec, rules)[0]


@dataclass(frozen=True)
class ClipPadding:
    """How much of a generated clip's window is padding (issue #15 item 2).

    Attributes:
        repeated_frames: of the 12 frame times ``s + k/6``, how many find no frame of their own
            (0..11): the video ends early or is slower than 6 fps. Measured with nearest-frame
            reading in every mode, so the official picker's own drop of the frame at exactly
            1/3 s on a complete 6 fps file does not count as padding.
        audio_missing_s: seconds of the 2 s audio window the file's audio does not cover
            (zero-filled in ``corrected``, absent in ``official``).
        start_clamped_s: how far a negative window start (file shorter than 2 s) was moved to 0.
    """

    repeated_frames: int
    audio_missing_s: float
    start_clamped_s: float

    #: Below this many seconds, missing audio or clamping is rounding (AAC frame edges), not padding.
    NOISE_S = 0.02

    @property
    def needed(self) -> bool:
        """True when the window needed any padding (frames repeated, audio missing, clamping)."""
        return (
            self.repeated_frames > 0
            or self.audio_missing_s > self.NOISE_S
            or self.start_clamped_s > self.NOISE_S
        )

    def exceeds(self, rules: ProtocolRules) -> bool:
        """True when the padding is over the rules' limits (the clip is refused unless allowed)."""
        return (
            self.repeated_frames > rules.max_repeated_frames
            or self.audio_missing_s > rules.max_audio_padding_s + 1e-9
        )

    def describe(self, spec: ClipSpec | None = None) -> str:
        """E.g. ``"9 of 12 frames repeated, 1.50 s of audio missing, start clamped by 0.75 s"``."""
        spec = spec or ClipSpec()
        parts = [f"{self.repeated_frames} of {spec.num_frames} frames repeated"]
        if self.audio_missing_s > self.NOISE_S:
            parts.append(f"{self.audio_missing_s:.2f} s of audio missing")
        if self.start_clamped_s > self.NOISE_S:
            parts.append(f"start clamped by {self.start_clamped_s:.2f} s")
        return ", ".join(parts)

    def record(self) -> dict:
        """JSON-ready (``results.json`` → ``padding``)."""
        return {
            "repeated_frames": self.repeated_frames,
            "audio_missing_s": round(self.audio_missing_s, 4),
            "start_clamped_s": round(self.start_clamped_s, 4),
        }


def generated_clip_padding(
    video: list[VideoFrame],
    audio_span: tuple[float, float],
    av_duration: float,
    spec: ClipSpec,
    mode: ProtocolMode | ProtocolRules,
) -> ClipPadding:
    """The padding of a generated file's clip window, from its frame timestamps alone.

    Args:
        video: the file's decoded frames (timestamps suffice; see
            :func:`avsync_bench.io.media.video_frame_times`).
        audio_span: (first sample, end of last sample) of the file's audio, seconds.
        av_duration: D = min(video, audio duration), seconds (the window is centred: §2).
        spec, mode: clip spec and protocol (rules).
    """
    rules = rules_for(mode)
    raw = (av_duration - spec.duration) / 2.0
    start = rules.generated_clip_start(av_duration, spec)
    positions, _padding = pick_frames_corrected(video, start, spec)
    first, end = audio_span
    covered = max(0.0, min(start + spec.duration, end) - max(start, first))
    return ClipPadding(
        repeated_frames=spec.num_frames - len(set(positions)),
        audio_missing_s=max(0.0, spec.duration - covered),
        start_clamped_s=max(0.0, start - raw),
    )


def waveform_mel(waveform: np.ndarray | torch.Tensor, spec: ClipSpec | None = None) -> torch.Tensor:
    """ImageBind's log-mel of a 16 kHz waveform, as the official ``waveform_to_melspectrogram``.

    Centre-crops to 32000 samples when longer, subtracts the mean over all channels, takes the
    Kaldi fbank of **channel 0** (ImageBind's ``waveform2melspec``: 128 bins, 25 ms Hanning frames,
    10 ms shift, zero-padded to 204 frames), then normalises as ``(x + 4.268) / 9.138`` (§1).

    Args:
        waveform: (channels, n) float32 at 16 kHz.

    Returns:
        (1, 128, 204) float32.
    """
    from imagebind.data import waveform2melspec

    spec = spec or ClipSpec()
    tensor = torch.as_tensor(np.asarray(waveform, dtype=np.float32)).clone()
    if tensor.ndim != 2:
        raise ValueError(f"waveform must be (channels, n), got {tuple(tensor.shape)}")
    if tensor.shape[1] > spec.num_samples:
        begin = (tensor.shape[1] - spec.num_samples) // 2
        tensor = tensor[:, begin : begin + spec.num_samples].contiguous()
    mel = waveform2melspec(tensor, spec.sample_rate, MEL_BINS, MEL_FRAMES)
    return (mel - MEL_MEAN) / MEL_STD


def clip_mel(clip: Clip, spec: ClipSpec | None = None) -> torch.Tensor:
    """The (1, 128, 204) float32 mel of a clip: channel 0 after the channel mean is subtracted
    (``official``) or the channel mean (``corrected``), as :attr:`ProtocolRules.audio_channels`
    says; see :func:`waveform_mel`. Computed
    once per clip and kept in ``clip.mel`` (for the default spec)."""
    if clip.mel is not None and spec is None:
        return clip.mel
    audio = clip.audio
    if rules_for(clip.mode).audio_channels == "mean":
        audio = audio.mean(axis=0, keepdims=True)
    mel = waveform_mel(audio, spec)
    if spec is None:
        clip.mel = mel
    return mel
