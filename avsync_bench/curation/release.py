"""Writing the curated dataset in the AVSync15 release layout (PROTOCOL.md §1 "Layout").

``OUT/videos/<class>/<source stem>_<start>_<end>.mp4`` (times in s, 2 decimals, as AVSync15's
``<ytid>_000014_000024_6.5_9.5.mp4`` names), ``OUT/train.txt`` and ``OUT/test.txt`` (lines
``<class>/<file>.mp4``, sorted) and ``OUT/class_mapping.json`` (class folder → text).

Each example is re-encoded from its source (:func:`avsync_bench.io.media.write_clip`: H.264
crf 18, AAC): frames at the source's frame rate rounded to an integer, each output frame the
nearest source frame to ``start + i/fps`` (:func:`avsync_bench.clips.pick_frames_corrected`), so
picture and sound stay aligned; the audio is the exact sample window at the source's own sample
rate (:func:`avsync_bench.clips.cut_audio`, corrected mode), its channels kept (more than two are
averaged to mono, as the encoder takes one or two). An odd frame height or width loses its last
row or column (H.264 needs even sizes). Files already present are kept (resume); files of an
earlier run that are no longer examples are removed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import avsync_bench  # noqa: F401
from avsync_bench.clips import cut_audio, pick_frames_corrected
from avsync_bench.io.media import MediaError, decode_audio, decode_video, probe, write_clip
from avsync_bench.protocol import ClipSpec, ProtocolMode

__all__ = ["example_name", "write_example", "write_release"]


def example_name(video: str, start: float, end: float) -> str:
    """``<class>/<stem>_<start>_<end>.mp4`` of an example of ``video`` (``<class>/<file>``)."""
    folder, file = video.split("/", 1)
    stem = Path(file).with_suffix("").as_posix().replace("/", "_")
    return f"{folder}/{stem}_{start:.2f}_{end:.2f}.mp4"


def write_example(source: Path, target: Path, start: float, end: float) -> None:
    """Cut ``[start, end]`` s of ``source`` into ``target`` (see module docstring).

    Raises:
        MediaError: the source cannot be decoded in that range.
    """
    info = probe(source)
    fps = max(int(round(info.fps or 0)), 1)
    count = max(int(round((end - start) * fps)), 1)
    video = decode_video(source, max(start - 0.5, 0.0), end + 0.5)
    if not video:
        raise MediaError(f"{source}: no video frames between {start:.2f} s and {end:.2f} s")
    positions, _ = pick_frames_corrected(video, start, ClipSpec(num_frames=count, fps=fps))
    frames = np.stack([video[p].rgb for p in positions])
    height, width = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
    frames = np.ascontiguousarray(frames[:, :height, :width])
    audio_frames = decode_audio(source, max(start - 0.5, 0.0), end + 0.5)
    rate = info.sample_rate or audio_frames[0].sample_rate
    spec = ClipSpec(num_frames=count, fps=fps, sample_rate=rate)
    audio = cut_audio(audio_frames, start, spec, ProtocolMode.corrected, str(source))
    if audio.shape[0] > 2:
        audio = audio.mean(axis=0, keepdims=True)
    write_clip(target, frames, fps, audio, rate)


def write_release(
    out: Path,
    examples: list[dict],
    split: dict[str, str],
    sources: dict[str, str],
    class_texts: dict[str, str],
    progress=None,
) -> dict:
    """Write the release layout for ``examples`` (from :func:`~.decide.filter_classes`).

    Args:
        examples: kept segments ``{"video", "class_folder", "start", "end", ...}``.
        split: ``{video: "train" | "test"}``.
        sources: ``{video: source file path}``.
        class_texts: ``{class folder: text}`` for ``class_mapping.json``.
        progress: optional callable ``tick(n)``.

    Returns:
        ``{"train": [lines], "test": [lines], "errors": [{"video", "example", "error"}]}``.
    """
    out = Path(out)
    lines: dict[str, list[str]] = {"train": [], "test": []}
    errors = []
    wanted = set()
    for example in examples:
        name = example_name(example["video"], example["start"], example["end"])
        target = out / "videos" / name
        wanted.add(target)
        if not target.is_file():
            try:
                write_example(
                    Path(sources[example["video"]]), target, example["start"], example["end"]
                )
            except (MediaError, ValueError, RuntimeError) as exc:
                errors.append({"video": example["video"], "example": name, "error": str(exc)})
                continue
        lines[split[example["video"]]].append(name)
        if progress:
            progress(1)
    videos = out / "videos"
    if videos.is_dir():
        for stale in videos.rglob("*"):
            if stale.is_file() and stale not in wanted:
                stale.unlink()
    for part in ("train", "test"):
        lines[part].sort()
        (out / f"{part}.txt").write_text("".join(f"{line}\n" for line in lines[part]))
    classes = sorted({e["class_folder"] for e in examples})
    mapping = {c: class_texts.get(c, c) for c in classes}
    (out / "class_mapping.json").write_text(json.dumps(mapping, indent=1, sort_keys=True) + "\n")
    return {**lines, "errors": errors}
