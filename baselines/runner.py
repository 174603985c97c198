"""Run an adapter over a dataset's test clips and write the prediction format.

For every test video the protocol's 3 GT clips are cut (:mod:`avsync_bench.clips`); each clip's
frame 0, audio and class text go to the adapter; its 12 frames are written as
``<out>/<list line minus .mp4>_clip-NN.mp4`` (H.264, 6 fps) with the clip's audio muxed in
unchanged (16 kHz AAC; the official window centre-cropped to 2 s where longer), or the audio the
adapter returned (:class:`baselines.base.GenerationOutput`), e.g. a generator's own soundtrack.

Resumable: outputs that already exist and pass the prediction checks are skipped; files are
written under a temporary name and renamed, so an interruption never leaves a partial file with
a final name. A clip that fails is recorded and the run continues; the report lists failures.
``generation.json`` beside the outputs records the adapter, its settings, seeds and versions.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import avsync_bench
from avsync_bench.clips import load_test_clips
from avsync_bench.datasets import DATASETS, load_split, resolve_root
from avsync_bench.errors import OptionError
from avsync_bench.io.media import MediaError, write_clip
from avsync_bench.predictions import check_clip_file
from avsync_bench.protocol import DEFAULT_MODE, ProtocolMode
from baselines.base import Adapter, AdapterError, GenerationInput, GenerationOutput

__all__ = ["GenerationReport", "run_adapter"]


@dataclass
class GenerationReport:
    """Counts of a generation run and the clips that failed (name → reason)."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _fit_audio(audio: np.ndarray, n: int) -> np.ndarray:
    if audio.shape[1] > n:
        begin = (audio.shape[1] - n) // 2
        audio = audio[:, begin : begin + n]
    return np.ascontiguousarray(audio, dtype=np.float32)


def _checked_output(result, spec) -> GenerationOutput:
    """An adapter's return value as a validated GenerationOutput (raises AdapterError)."""
    output = result if isinstance(result, GenerationOutput) else GenerationOutput(result)
    frames = np.asarray(output.frames)
    expected = (spec.num_frames, spec.height, spec.width, 3)
    if frames.shape != expected or frames.dtype != np.uint8:
        raise AdapterError(
            f"adapter returned {frames.shape} {frames.dtype}, expected {expected} uint8"
        )
    audio = output.audio
    if audio is not None:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 2 or audio.shape[0] not in (1, 2) or audio.shape[1] == 0:
            raise AdapterError(
                f"adapter returned audio of shape {audio.shape}, expected (1 or 2, n) at "
                f"{spec.sample_rate} Hz"
            )
        audio = _fit_audio(audio, spec.num_samples)
    return GenerationOutput(frames, audio)


def run_adapter(
    adapter: Adapter,
    out: str | Path,
    dataset: str = "avsync15",
    data_root: str | Path | None = None,
    mode: ProtocolMode = DEFAULT_MODE,
    seed: int = 0,
    limit: int | None = None,
    classes: list[str] | None = None,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
) -> GenerationReport:
    """Generate every test clip of ``dataset`` with ``adapter`` into ``out``.

    Args:
        limit: only the first ``limit`` test videos (after the class filter).
        classes: only these class folders.
        seed: the seed given to every clip (the official evaluation reseeds each clip with 0).

    Raises:
        DatasetError: bad dataset root or list; ValueError: unknown class names.
    """
    spec = DATASETS[dataset].spec
    root = resolve_root(dataset, data_root)
    videos = load_split(dataset, root, "test")
    if classes:
        unknown = sorted(set(classes) - {v.class_folder for v in videos})
        if unknown:
            raise OptionError(f"--classes: unknown class folder(s) {unknown}")
        videos = [v for v in videos if v.class_folder in classes]
    if limit is not None:
        videos = videos[:limit]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = GenerationReport()
    tick = progress(f"generate {adapter.name}", len(videos) * spec.num_clips) if progress else None
    try:
        _generate_all(adapter, videos, out, spec, mode, seed, report, tick)
    finally:
        adapter.close()
    _write_manifest(out, adapter, dataset, mode, seed, report)
    return report


def _generate_all(adapter, videos, out: Path, spec, mode, seed, report, tick) -> None:
    for video in videos:
        names = [video.clip_name(i) for i in range(spec.num_clips)]
        todo = [i for i, n in enumerate(names) if check_clip_file(n, out / n, spec) is not None]
        report.skipped += [n for i, n in enumerate(names) if i not in todo]
        if todo:
            try:
                clips = load_test_clips(video.path, spec, mode)
            except MediaError as exc:
                report.failed.update({names[i]: str(exc) for i in todo})
                todo = []
            for i in todo:
                clip = clips[i]
                inputs = GenerationInput(
                    name=names[i],
                    first_frame=clip.frames[0],
                    audio=_fit_audio(clip.audio, spec.num_samples),
                    class_text=video.class_text,
                    class_folder=video.class_folder,
                    spec=spec,
                    seed=seed,
                    mode=ProtocolMode(mode),
                )
                try:
                    output = _checked_output(adapter.generate(inputs), spec)
                    audio = inputs.audio if output.audio is None else output.audio
                    write_clip(out / names[i], output.frames, spec.fps, audio, spec.sample_rate)
                    report.written.append(names[i])
                except (AdapterError, MediaError, RuntimeError, ValueError) as exc:
                    report.failed[names[i]] = str(exc)
        if tick:
            tick(spec.num_clips)


def _write_manifest(out: Path, adapter: Adapter, dataset, mode, seed, report) -> None:
    manifest = {
        "tool": "avsync-bench",
        "version": avsync_bench.__version__,
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "adapter": adapter.name,
        "adapter_config": adapter.config(),
        "dataset": dataset,
        "protocol": ProtocolMode(mode).value,
        "seed": seed,
        "seed_rule": "every clip uses the same seed (the official evaluation reseeds each clip)",
        "written": len(report.written),
        "skipped_existing": len(report.skipped),
        "failed": report.failed,
    }
    (out / "generation.json").write_text(json.dumps(manifest, indent=2) + "\n")
