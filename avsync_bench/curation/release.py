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
from avsync_bench.protocol import CORRECTED, ClipSpec

__all__ = ["example_name", "write_example", "write_examples", "write_release"]


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
    audio = cut_audio(audio_frames, start, spec, CORRECTED, str(source))
    if audio.shape[0] > 2:
        audio = audio.mean(axis=0, keepdims=True)
    write_clip(target, frames, fps, audio, rate)


def write_examples(jobs: list[dict]) -> list[str | None]:
    """Write each job with :func:`write_example`; one error message (or None) per job."""
    errors = []
    for job in jobs:
        try:
            write_example(Path(job["source"]), Path(job["target"]), job["start"], job["end"])
            errors.append(None)
        except (MediaError, ValueError, RuntimeError, OSError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    return errors


def write_release(
    out: Path,
    examples: list[dict],
    split: dict[str, str],
    sources: dict[str, str],
    class_texts: dict[str, str],
    writer=None,
) -> dict:
    """Write the release layout for ``examples`` (from :func:`~.decide.filter_classes`).

    Args:
        examples: kept segments ``{"video", "class_folder", "start", "end", ...}``.
        split: ``{video: "train" | "test"}``.
        sources: ``{video: source file path}``.
        class_texts: ``{class folder: text}`` for ``class_mapping.json``.
        writer: writes a list of jobs ``{"source", "target", "start", "end"}`` and returns one
            error message (or None) per job; default :func:`write_examples` (in-process).

    Returns:
        ``{"train": [lines], "test": [lines], "errors": [{"video", "example", "error"}]}``.
    """
    out = Path(out)
    lines: dict[str, list[str]] = {"train": [], "test": []}
    jobs, wanted = [], set()
    for example in examples:
        name = example_name(example["video"], example["start"], example["end"])
        target = out / "videos" / name
        wanted.add(target)
        job = {"source": sources[example["video"]], "target": str(target), "name": name}
        jobs.append({**job, "start": example["start"], "end": example["end"]})
    todo = [job for job in jobs if not Path(job["target"]).is_file()]
    failures = dict(zip([j["target"] for j in todo], (writer or write_examples)(todo)))
    errors = []
    for job, example in zip(jobs, examples):
        if failures.get(job["target"]):
            errors.append(
                {
                    "video": example["video"],
                    "example": job["name"],
                    "error": failures[job["target"]],
                }
            )
            continue
        lines[split[example["video"]]].append(job["name"])
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
