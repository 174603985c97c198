"""``avsync-bench extract``: predictions folder → per-clip features of both sides (``features.npz``).

Order of work: list and check every prediction (one report, before anything heavy); resolve every
weight file (one error naming all missing files); look the ground-truth features up in the
content-addressed cache; load the needed networks once; then stream: a PyTorch DataLoader (its
``--workers`` processes overlap decoding with extraction) yields one test video at a time (the GT
clips whose features are not cached, cut in one decoding of the GT file, and the generated files),
and every ``--batch-size`` clip pairs go through every network. Memory holds the networks, one
batch of clips and the per-clip features, never every decoded clip.

Each file is opened once (:func:`avsync_bench.io.media.one_open_per_file`: metadata, video and
audio from one container) and each clip's mel is computed once, in the decoding worker, and shared
by the extractors that read it. In a multi-process run (:mod:`avsync_bench.distributed`) clip i
goes to rank ``i mod N``; rank 0 gathers, re-orders, writes the cache and returns the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import avsync_bench
from avsync_bench.cache import FeatureCache, file_sha256
from avsync_bench.clips import Clip, clip_mel, load_clips, load_generated_clip
from avsync_bench.datasets import DATASETS, load_split, resolve_root
from avsync_bench.distributed import Distributed, merge_shards, shard_indices
from avsync_bench.errors import OptionError
from avsync_bench.featurefile import FORMAT, FORMAT_VERSION, FeatureFile
from avsync_bench.features import FeatureExtractor, get_extractor
from avsync_bench.io.media import one_open_per_file, probe
from avsync_bench.metrics import FeatureSet, checks_for, resolve_metrics
from avsync_bench.predictions import PredictionError, check_predictions
from avsync_bench.preflight import preflight
from avsync_bench.protocol import ProtocolMode, eval_clip_starts
from avsync_bench.scoring import ScoreOptions
from avsync_bench.weights.store import WeightStore

__all__ = ["extract", "cache_version", "MEL_READERS"]

Progress = Callable[[str, int], Callable[[int], None]]
MEL_READERS = {"mel", "imagebind", "avsync"}
"""Extractors that read each clip's mel (computed once per clip in the decoding worker)."""
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def cache_version(extractor: FeatureExtractor) -> str:
    """The extractor's version as recorded in cache keys: its version and its network batch."""
    return f"{extractor.version}+nb{extractor.batch_size}"


@dataclass
class _Job:
    """One test video's share of a rank: its scored clips (global index, clip index, generated
    file) and which of them need GT features."""

    video_path: Path
    clips: list[tuple[int, int, Path]]
    gt_needed: list[int] = field(default_factory=list)


class _Jobs(torch.utils.data.Dataset):
    def __init__(self, jobs: list[_Job], spec, mode: ProtocolMode, mel: bool):
        self.jobs, self.spec, self.mode, self.mel = jobs, spec, mode, mel

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, k: int) -> list[dict]:
        job = self.jobs[k]
        with one_open_per_file():
            starts = eval_clip_starts(probe(job.video_path).av_duration, self.spec, self.mode)
            # all clips of the video in one decoding even when only some are needed: audio cut
            # after a different seek point differs (AAC), so a clip's values must not depend on
            # which other clips were decoded with it (cache state, process count)
            gt = load_clips(job.video_path, starts, self.spec, self.mode) if job.gt_needed else []
        gt_by_index = {i: gt[i] for i in job.gt_needed}
        out = []
        for index, clip_index, gen_path in job.clips:
            with one_open_per_file():
                gen = load_generated_clip(gen_path, self.spec, self.mode)
            pair = {"index": index, "gt": gt_by_index.get(clip_index), "gen": gen}
            pair["gt_start"] = starts[clip_index]
            if self.mel:
                for clip in (pair["gt"], gen):
                    if clip is not None:
                        clip_mel(clip)
            out.append(pair)
        return out


def _identity(item):
    return item


def _no_progress(_label: str, _total: int) -> Callable[[int], None]:
    return lambda _n: None


def _build_extractors(options: ScoreOptions, names, given, device) -> dict[str, FeatureExtractor]:
    if options.dtype not in _DTYPES:
        raise OptionError(f"--dtype: unknown dtype {options.dtype!r}; choose fp32, bf16, fp16")
    extractors = {}
    for name in names:
        if name in given:
            extractors[name] = given[name]
            continue
        kwargs = {"dtype": _DTYPES[options.dtype]} if name == "imagebind" else {}
        extractors[name] = get_extractor(name)(device, **kwargs)
    return extractors


def _weight_shas(extractor: FeatureExtractor, weights) -> dict[str, str]:
    shas = {w: weights[w].sha256 for w in extractor.weight_names if w in weights}
    if extractor.model is not None and not shas:
        shas = {"injected-model": extractor.model_digest()}
    return shas


def extract(
    options: ScoreOptions,
    extractors: dict[str, FeatureExtractor] | None = None,
    progress: Progress | None = None,
    dist: Distributed | None = None,
) -> FeatureFile | None:
    """Extract every feature the requested metrics need, for both sides (module docstring).

    Args:
        options: what to extract and how (``batch_size`` = clip pairs per step; it does not
            change any value, see :class:`avsync_bench.features.base.FeatureExtractor`).
        extractors: optional ready extractor instances by name (tests inject tiny networks).
        progress: ``progress(label, total)`` returns a ``tick(n)`` callback.
        dist: the process group (default: :meth:`Distributed.from_environment`).

    Returns:
        The :class:`FeatureFile` on rank 0 (clips in evaluation order); None on other ranks.

    Raises:
        DatasetError, PredictionError, MissingWeightsError, MediaError: as ``score``.
        RuntimeError: a gathered clip index missing or duplicated (a bug).
    """
    progress = progress or _no_progress
    dist = dist or Distributed.from_environment()
    preflight(  # before any heavy work: the cache folder is writable and the device exists
        {"--cache-dir ($AVSYNC_BENCH_HOME/features by default)": options.cache_dir}
        if dist.is_main
        else {},
        device=options.device,
    )
    mode = ProtocolMode(options.mode)
    spec = DATASETS[options.dataset].spec
    root = resolve_root(options.dataset, options.data_root)
    videos = load_split(options.dataset, root, "test")
    with one_open_per_file():  # the check's reads of one file share one container
        report = check_predictions(options.preds, videos, spec, mode, options.allow_padding)
    if report.problems and not options.allow_partial:
        raise PredictionError(report, "refusing to score (use --allow-partial to score anyway):")
    if not report.found:
        raise PredictionError(report, "no usable generated clip to score:")
    metric_defs = resolve_metrics(options.metrics)
    checks = checks_for(metric_defs)
    names = list(dict.fromkeys(e for d in [*metric_defs, *checks] for e in d.extractors))
    device = dist.device(options.device)
    extractors = _build_extractors(options, names, dict(extractors or {}), device)
    store = WeightStore(options.weights_dir)
    needed = [w for n in names if extractors[n].model is None for w in extractors[n].weight_names]
    weights = store.resolve_all(needed) if needed else {}

    # the scored clips, in evaluation order (video, then clip index)
    scored = [
        (video, i, video.clip_name(i))
        for video in videos
        for i in range(spec.num_clips)
        if video.clip_name(i) in report.found
    ]
    mine = shard_indices(len(scored), dist.rank, dist.world_size)
    cache = FeatureCache(options.cache_dir if dist.is_main else None)
    reader = FeatureCache(options.cache_dir)  # every rank reads; rank 0 alone writes
    shas = {n: _weight_shas(e, weights) for n, e in extractors.items()}
    keys, gt_cached, jobs = {}, {}, {}
    for index in mine:
        video, clip_index, name = scored[index]
        video_sha = file_sha256(video.path)
        for n, e in extractors.items():
            keys[(index, n)] = FeatureCache.key(
                video_sha, mode, spec, clip_index, n, cache_version(e), shas[n]
            )
            value = reader.get(keys[(index, n)])
            if value is not None:
                gt_cached[(index, n)] = value
        job = jobs.setdefault(video.rel, _Job(video.path, []))
        job.clips.append((index, clip_index, report.found[name]))
        if any((index, n) not in gt_cached for n in extractors):
            job.gt_needed.append(clip_index)

    for extractor in extractors.values():
        extractor.load(weights)
    texts = sorted({video.it_text(mode) for video, _, _ in scored})
    text_table = {}
    if dist.is_main:
        for n, e in extractors.items():
            if e.uses_text:
                text_table[n] = dict(zip(texts, e.embed_texts(texts)))

    loader = torch.utils.data.DataLoader(
        _Jobs(list(jobs.values()), spec, mode, bool(MEL_READERS & set(names))),
        batch_size=None,
        num_workers=options.workers,
        collate_fn=_identity,
    )
    tick = progress("extract" if dist.world_size == 1 else f"extract (rank {dist.rank})", len(mine))
    part: dict[int, dict] = {}
    pending: list[dict] = []

    def flush() -> None:
        for n, e in extractors.items():
            gt_pairs = [p for p in pending if (p["index"], n) not in gt_cached]
            if gt_pairs:
                values = e.extract([p["gt"] for p in gt_pairs], "gt")
                for p, value in zip(gt_pairs, values):
                    p["gt_values"][n] = value
                    cache.put(keys[(p["index"], n)], value)
            gen = e.extract([p["gen"] for p in pending], "gen")
            for p, value in zip(pending, gen):
                p["out"][n] = value
        for p in pending:
            computed = p["gt_values"]
            gt = {
                n: computed[n] if n in computed else gt_cached[(p["index"], n)] for n in extractors
            }
            part[p["index"]] = {
                "gt": gt,
                "gen": p["out"],
                "computed": sorted(computed),
                "row": _row_facts(p["gen"], p["gt_start"]),
            }
        tick(len(pending))
        pending.clear()

    for pairs in loader:
        for pair in pairs:
            pending.append({**pair, "out": {}, "gt_values": {}})
        if len(pending) >= options.batch_size:
            flush()
    if pending:
        flush()
    for extractor in extractors.values():
        extractor.release()

    parts = dist.gather({"clips": part, "hits": reader.hits, "misses": reader.misses})
    if not dist.is_main:
        return None
    ordered = merge_shards([p["clips"] for p in parts], len(scored))
    for index, entry in enumerate(ordered):
        if index % dist.world_size == 0:
            continue  # rank 0's own clips: written as they were extracted
        video, clip_index, _ = scored[index]
        video_sha = file_sha256(video.path)
        for n in entry["computed"]:
            version = cache_version(extractors[n])
            key = FeatureCache.key(video_sha, mode, spec, clip_index, n, version, shas[n])
            cache.put(key, entry["gt"][n])
    features = FeatureSet()
    for n in extractors:
        features.gt[n] = np.stack([entry["gt"][n] for entry in ordered])
        features.gen[n] = np.stack([entry["gen"][n] for entry in ordered])
        if n in text_table:
            features.text[n] = np.stack([text_table[n][v.it_text(mode)] for v, _, _ in scored])
    rows = [
        {
            "clip": name,
            "video": video.rel,
            "class": video.class_folder,
            "clip_index": clip_index,
            **entry["row"],
        }
        for (video, clip_index, name), entry in zip(scored, ordered)
    ]
    meta = _meta(options, mode, root, videos, report, metric_defs, weights, extractors, shas)
    meta["rows"] = rows
    meta["cache"] = {
        "hits": sum(p["hits"] for p in parts),
        "misses": sum(p["misses"] for p in parts),
    }
    meta["processes"] = dist.world_size
    return FeatureFile(meta, features)


def _row_facts(gen: Clip, gt_start: float) -> dict:
    return {
        "gt_start_s": round(gt_start, 6),
        "gen_start_s": round(gen.start, 6),
        "gen_frame_indices": " ".join(map(str, gen.frame_indices)),
        "gen_padded_frames": gen.padded_frames,
    }


def _meta(options, mode, root, videos, report, metric_defs, weights, extractors, shas) -> dict:
    injected = sorted(n for n, e in extractors.items() if e.injected)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tool": "avsync-bench",
        "version": avsync_bench.__version__,
        "protocol": mode.value,
        "dataset": options.dataset,
        "split": "test",
        "data_root": str(root),
        "predictions": str(Path(options.preds).resolve()),
        "metrics": [m.key for m in metric_defs],
        "clip_counts": {
            "videos": len(videos),
            "expected": len(report.expected),
            "scored": len(report.found),
        },
        "absent": report.absent,
        "absent_why": report.why_absent(),
        "padding": report.padding_record(),
        "problems": [str(p) for p in report.problems],
        "weights": {name: w.provenance() for name, w in weights.items()},
        "standin": any(w.standin for w in weights.values()) or bool(injected),
        "injected_extractors": injected,
        "extractors": {
            n: {"version": e.version, "network_batch": e.batch_size, "weights": shas[n]}
            for n, e in extractors.items()
        },
        "device": options.device,
        "dtype": options.dtype,
    }
