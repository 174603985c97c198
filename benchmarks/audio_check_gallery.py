"""Calibration of the generated-audio check (issue 15 §3): scores of correct and wrong audio.

On every test clip of a dataset (the 15-video AVSync15 gallery by default) this writes generated
files the way a user would (the clip's frames with an audio window muxed in, AAC, 16 kHz), reads
each back as ``score`` does (the generated clip's audio window, as
:func:`avsync_bench.clips.load_generated_clip` cuts it, without decoding video) and compares its mel
with the GT clip's mel by :func:`avsync_bench.features.mel.audio_match`:

* ``correct``: the GT clip's own audio window (the Static baseline's files);
* ``offset ±44 ms``: the window moved by 44 ms either way (a correct file whose audio sits a
  constant 44 ms off, inside the ±60 ms search);
* ``shift 0.5 s`` / ``shift 1.0 s``: the window moved by 0.5 / 1.0 s (earlier where the video
  ends);
* ``swapped``: the same clip of the next video (another class).

It prints min / median / max per kind and the margins around the threshold, for the current check
and, for comparison, the previous envelope check. Both protocol modes by default. ``--load``
re-reports mels saved by an earlier ``--save`` without re-encoding.

    python benchmarks/audio_check_gallery.py --data-root ../shared/data/avsync15-gallery
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

import numpy as np

from avsync_bench.clips import Clip, clip_mel, cut_audio
from avsync_bench.datasets import DATASETS, load_split
from avsync_bench.features.mel import MATCH_THRESHOLD, audio_match
from avsync_bench.io.media import decode_audio, probe, write_clip
from avsync_bench.protocol import ProtocolMode, eval_clip_starts, generated_clip_start


def previous_check(gt: np.ndarray, gen: np.ndarray) -> np.ndarray:
    """The check before issue 15 §3, for comparison: best Pearson correlation over ±6 frames of
    the smoothed log-energy envelopes (median-clamped, 7-frame Hann)."""

    def envelope(mel):
        log_mel = mel[0].astype(np.float64) * 9.138 - 4.268
        energy = np.log(np.exp(log_mel).sum(axis=0) + 1e-10)[:198]
        energy = np.maximum(energy, np.median(energy))
        kernel = np.hanning(9)[1:-1]
        return np.convolve(energy, kernel / kernel.sum(), mode="same")

    out = []
    for g, p in zip(gt, gen):
        a, b = envelope(g), envelope(p)
        if a.std() < 1e-6 or b.std() < 1e-6:
            out.append(1.0 if a.std() < 1e-6 and b.std() < 1e-6 else 0.0)
            continue
        n, best = len(a), -1.0
        for lag in range(-6, 7):
            x, y = a[max(lag, 0) : n + min(lag, 0)], b[max(-lag, 0) : n + min(-lag, 0)]
            best = max(best, float(np.corrcoef(x, y)[0, 1]))
        out.append(best)
    return np.array(out)


KINDS = ("correct", "offset +44 ms", "offset -44 ms", "shift 0.5 s", "shift 1.0 s", "swapped")
WRONG = ("shift 0.5 s", "shift 1.0 s", "swapped")


def _fit(audio: np.ndarray, n: int) -> np.ndarray:
    if audio.shape[1] > n:  # centre crop, as the generation runner does
        begin = (audio.shape[1] - n) // 2
        audio = audio[:, begin : begin + n]
    return np.ascontiguousarray(audio, dtype=np.float32)


def _audio(path: Path, start: float, spec, mode) -> np.ndarray:
    """The clip audio at ``start`` exactly as :func:`avsync_bench.clips.load_clips` cuts it
    (same decoded span, same :func:`~avsync_bench.clips.cut_audio`), without decoding video."""
    frames = decode_audio(path, max(start, 0.0) - 0.5, start + spec.duration + 0.5)
    return cut_audio(frames, start, spec, mode, source=str(path))


def _window(path: Path, start: float, shift: float, duration: float, spec, mode) -> np.ndarray:
    """The audio window moved by ``shift`` s (the other way where the video ends)."""
    moved = start + shift
    if moved + spec.duration > duration or moved < 0:
        moved = start - shift
    moved = min(max(moved, 0.0), max(duration - spec.duration, 0.0))
    return _audio(path, moved, spec, mode)


def _mel(audio: np.ndarray, start: float, mode) -> np.ndarray:
    clip = Clip(frames=np.zeros((0, 1, 1, 3), np.uint8), audio=audio, start=start, mode=mode)
    return clip_mel(clip).numpy()


def collect(data_root: Path, dataset: str, mode: ProtocolMode, folder: Path) -> dict:
    """{kind: (gt mels (N, 1, 128, 204), generated mels (N, 1, 128, 204))}.

    Generated files get 12 black 16x16 frames (the check reads only the audio) and are read back
    with the generated clip's start (:func:`~avsync_bench.protocol.generated_clip_start`).
    """
    spec = DATASETS[dataset].spec
    videos = load_split(dataset, data_root)
    durations = {v.rel: probe(v.path).av_duration for v in videos}
    starts = {v.rel: eval_clip_starts(durations[v.rel], spec, mode) for v in videos}
    gt_audio = {v.rel: [_audio(v.path, s, spec, mode) for s in starts[v.rel]] for v in videos}
    frames = np.zeros((spec.num_frames, 16, 16, 3), np.uint8)
    out: dict[str, tuple[list, list]] = {k: ([], []) for k in KINDS}
    for k, video in enumerate(videos):
        duration = durations[video.rel]
        other = videos[(k + 1) % len(videos)]

        for i, start in enumerate(starts[video.rel]):
            audios = {
                "correct": gt_audio[video.rel][i],
                "offset +44 ms": _window(video.path, start, 0.044, duration, spec, mode),
                "offset -44 ms": _window(video.path, start, -0.044, duration, spec, mode),
                "shift 0.5 s": _window(video.path, start, 0.5, duration, spec, mode),
                "shift 1.0 s": _window(video.path, start, 1.0, duration, spec, mode),
                "swapped": gt_audio[other.rel][i],
            }
            gt_mel = _mel(gt_audio[video.rel][i], start, mode)
            for kind, audio in audios.items():
                path = folder / f"{k}_{i}_{kind.replace(' ', '_')}.mp4"
                write_clip(path, frames, spec.fps, _fit(audio, spec.num_samples), 16000)
                gen_start = generated_clip_start(probe(path).av_duration, spec, mode)
                out[kind][0].append(gt_mel)
                out[kind][1].append(_mel(_audio(path, gen_start, spec, mode), gen_start, mode))
                path.unlink()
    return {kind: (np.stack(gt), np.stack(gen)) for kind, (gt, gen) in out.items()}


def report(mels: dict, label: str) -> None:
    for name, check, threshold in (
        ("audio_match", audio_match, MATCH_THRESHOLD),
        ("previous envelope check", previous_check, 0.8),
    ):
        print(f"\n{label}: {name} (threshold {threshold})\n")
        print("| kind | n | min | median | max | flagged |")
        print("|---|---|---|---|---|---|")
        scores = {kind: check(gt, gen) for kind, (gt, gen) in mels.items()}
        for kind, values in scores.items():
            print(
                f"| {kind} | {len(values)} | {values.min():.3f} | {np.median(values):.3f} | "
                f"{values.max():.3f} | {int((values < threshold).sum())} |"
            )
        lowest_right = min(scores[k].min() for k in KINDS if k not in WRONG)
        highest_wrong = max(scores[k].max() for k in WRONG)
        print(
            f"\nlowest correct / ±44 ms: {lowest_right:.3f} (margin above the threshold "
            f"{lowest_right - threshold:+.3f}); highest wrong: {highest_wrong:.3f} (margin below "
            f"{threshold - highest_wrong:+.3f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, help="dataset root (not needed with --load)")
    parser.add_argument("--dataset", default="avsync15")
    parser.add_argument("--modes", default="official,corrected")
    parser.add_argument("--save", type=Path, help="also save the mels to <this>.<mode>.npz")
    parser.add_argument("--load", type=Path, help="report mels saved with --save (no decoding)")
    args = parser.parse_args()
    print(f"{platform.platform()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}")
    for name in args.modes.split(","):
        mode = ProtocolMode(name)
        if args.load:
            saved = np.load(args.load.with_suffix(f".{name}.npz"))
            mels = {k: (saved[f"{k}|a"], saved[f"{k}|b"]) for k in KINDS}
        else:
            with tempfile.TemporaryDirectory() as folder:
                mels = collect(args.data_root, args.dataset, mode, Path(folder))
        if args.save:
            arrays = {f"{k}|{side}": v[j] for k, v in mels.items() for j, side in enumerate("ab")}
            np.savez(args.save.with_suffix(f".{name}.npz"), **arrays)
        report(mels, f"{args.dataset}, {mode.value} protocol, {len(mels['correct'][0])} clips")


if __name__ == "__main__":
    main()
