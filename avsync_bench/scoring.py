"""``avsync-bench score``: dataset → clips → features (cached on the GT side) → metrics → results.

Order of work: list and check every prediction (one report, before anything heavy); resolve every
weight file (one error naming all missing files); decode the ground-truth clips whose features
are not cached and every generated clip (PyTorch DataLoader workers overlap decoding with the
rest); run each extractor once over both sides, releasing it before loading the next; compute
the metrics as pure functions of the features.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import avsync_bench
from avsync_bench.cache import FeatureCache, file_sha256
from avsync_bench.clips import Clip, load_clips, load_generated_clip
from avsync_bench.datasets import DATASETS, TestVideo, load_split, resolve_root
from avsync_bench.features import FeatureExtractor, get_extractor
from avsync_bench.features.mel import MATCH_MEASURE, MATCH_THRESHOLD, audio_match
from avsync_bench.io.media import probe
from avsync_bench.metrics import AUDIO_METRICS, FeatureSet, MetricDef, MetricValue, resolve_metrics
from avsync_bench.predictions import PredictionError, PredictionReport, check_predictions
from avsync_bench.preflight import preflight
from avsync_bench.protocol import DEFAULT_MODE, ClipSpec, ProtocolMode, eval_clip_starts
from avsync_bench.weights.store import WeightStore, default_home

__all__ = ["ScoreOptions", "ScoreRun", "score"]

Progress = Callable[[str, int], Callable[[int], None]]


@dataclass
class ScoreOptions:
    """Inputs of one scoring run (CLI flags of ``avsync-bench score``).

    Attributes:
        preds: predictions folder. dataset / data_root: see :mod:`avsync_bench.datasets`.
        metrics: metric keys (``"fid,fvd"``, ``"all"`` = FID, FVD, IA, IT, RelSync, AlignSync,
            AV-Align). mode: protocol mode (§8).
        weights_dir: weights folder (default ``$AVSYNC_BENCH_HOME/weights``).
        cache_dir: GT feature cache (default ``$AVSYNC_BENCH_HOME/features``; None disables).
        batch_size: clips per extractor batch (results do not depend on it).
        workers: DataLoader worker processes for decoding (results do not depend on it).
        device: torch device for the extractors. allow_partial: score an incomplete set.
        dtype: ImageBind's precision, ``fp32`` (default), or ``bf16``/``fp16`` on a GPU.
        allow_padding: score clips whose window needs more padding than the protocol's limits.
    """

    preds: Path
    dataset: str = "avsync15"
    data_root: Path | None = None
    metrics: str | list[str] = "all"
    mode: ProtocolMode = DEFAULT_MODE
    weights_dir: Path | None = None
    cache_dir: Path | None = field(default_factory=lambda: default_home() / "features")
    batch_size: int = 16
    workers: int = 0
    device: str = "cpu"
    allow_partial: bool = False
    dtype: str = "fp32"
    allow_padding: bool = False


@dataclass
class ScoreRun:
    """What a scoring run produced: the results dict (``results.json``), per-clip rows, and the
    features of the scored clips in ``per_clip`` order (``features.npz``, for bootstrap CIs)."""

    results: dict
    per_clip: list[dict]
    features: FeatureSet | None = None


class _ClipJobs(torch.utils.data.Dataset):
    """Decoding jobs: (path, starts) → the clips; ``starts=None`` reads a generated clip."""

    def __init__(self, jobs: list[tuple[Path, list[float] | None]], spec: ClipSpec, mode):
        self.jobs, self.spec, self.mode = jobs, spec, mode

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, index: int) -> list[Clip]:
        path, starts = self.jobs[index]
        if starts is None:
            return [load_generated_clip(path, self.spec, self.mode)]
        return load_clips(path, starts, self.spec, self.mode)


def _unwrap(batch):
    return batch[0]


def _decode(jobs, spec, mode, workers: int, tick: Callable[[int], None]) -> list[list[Clip]]:
    loader = torch.utils.data.DataLoader(
        _ClipJobs(jobs, spec, mode), batch_size=1, num_workers=workers, collate_fn=_unwrap
    )
    out = []
    for clips in loader:
        out.append(clips)
        tick(1)
    return out


def _no_progress(_label: str, _total: int) -> Callable[[int], None]:
    return lambda _n: None


def _extract(extractor: FeatureExtractor, clips: Sequence[Clip], side: str, tick) -> np.ndarray:
    chunks = []
    for begin in range(0, len(clips), extractor.batch_size):
        part = clips[begin : begin + extractor.batch_size]
        chunks.append(extractor.extract(part, side))
        tick(len(part))
    shape = (0, *extractor.shape(side))
    return np.concatenate(chunks) if chunks else np.zeros(shape, np.float32)


def score(
    options: ScoreOptions,
    extractors: dict[str, FeatureExtractor] | None = None,
    progress: Progress | None = None,
) -> ScoreRun:
    """Score a predictions folder (see module docstring).

    Args:
        options: what to score and how.
        extractors: optional ready extractor instances by name (tests inject tiny networks);
            others are built from the weights folder.
        progress: ``progress(label, total)`` returns a ``tick(n)`` callback (rich bars in the CLI).

    Raises:
        DatasetError: bad dataset root or list. PredictionError: problems in the predictions
        folder (all listed) without ``allow_partial``. MissingWeightsError: absent weights (all
        named). MediaError: a file that cannot be decoded.
    """
    progress = progress or _no_progress
    preflight(
        {"--cache-dir ($AVSYNC_BENCH_HOME/features by default)": options.cache_dir},
        device=options.device,
    )
    mode = ProtocolMode(options.mode)
    info = DATASETS[options.dataset]
    spec = info.spec
    root = resolve_root(options.dataset, options.data_root)
    videos = load_split(options.dataset, root, "test")
    report = check_predictions(options.preds, videos, spec, mode, options.allow_padding)
    if report.problems and not options.allow_partial:
        raise PredictionError(report, "refusing to score (use --allow-partial to score anyway):")
    if not report.found:
        raise PredictionError(report, "no usable generated clip to score:")
    metric_defs = resolve_metrics(options.metrics)

    extractors = dict(extractors or {})
    names = list(dict.fromkeys(e for m in metric_defs for e in m.extractors))
    if {m.key for m in metric_defs} & AUDIO_METRICS:
        names.append("mel")  # checks each generated file's audio against its GT clip
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if options.dtype not in dtypes:
        raise ValueError(f"unknown dtype {options.dtype!r}; choose fp32, bf16 or fp16")
    for name in names:
        if name not in extractors:
            kwargs = {"dtype": dtypes[options.dtype]} if name == "imagebind" else {}
            extractors[name] = get_extractor(name)(options.device, options.batch_size, **kwargs)
    store = WeightStore(options.weights_dir)
    needed = [w for n in names if extractors[n].model is None for w in extractors[n].weight_names]
    weights = store.resolve_all(needed) if needed else {}

    cache = FeatureCache(options.cache_dir)
    gt_clips = _gt_clip_table(videos, spec, mode)
    scored = [row for row in gt_clips if row["clip"] in report.found]
    gt_keys = _gt_keys(scored, extractors, weights, mode, spec)
    gt_features = {n: {} for n in names}
    for row in scored:
        for name in names:
            cached = cache.get(gt_keys[(row["clip"], name)])
            if cached is not None:
                gt_features[name][row["clip"]] = cached
    to_decode = sorted(
        {row["video"].rel for row in scored for n in names if row["clip"] not in gt_features[n]}
    )
    by_video = {v.rel: v for v in videos}
    tick = progress("decode ground truth", len(to_decode))
    decoded = _decode(
        [(by_video[r].path, _starts(by_video[r], spec, mode)) for r in to_decode],
        spec,
        mode,
        options.workers,
        tick,
    )
    gt_decoded = {
        by_video[rel].clip_name(i): clip
        for rel, clips in zip(to_decode, decoded)
        for i, clip in enumerate(clips)
    }
    pred_names = [row["clip"] for row in scored]
    tick = progress("decode generated", len(pred_names))
    pred_clips = [
        c[0]
        for c in _decode(
            [(report.found[n], None) for n in pred_names], spec, mode, options.workers, tick
        )
    ]

    features = FeatureSet()
    texts = [row["video"].it_text(mode) for row in scored]
    for name in names:
        extractor = extractors[name]
        extractor.load(weights)
        missing = [n for n in pred_names if n not in gt_features[name]]
        tick = progress(f"{name}: ground truth", len(missing))
        values = _extract(extractor, [gt_decoded[n] for n in missing], "gt", tick)
        for clip_name, value in zip(missing, values):
            cache.put(gt_keys[(clip_name, name)], value)
            gt_features[name][clip_name] = value
        tick = progress(f"{name}: generated", len(pred_clips))
        features.gen[name] = _extract(extractor, pred_clips, "gen", tick)
        features.gt[name] = np.stack([gt_features[name][n] for n in pred_names])
        if extractor.uses_text:
            unique = sorted(set(texts))
            table = dict(zip(unique, extractor.embed_texts(unique)))
            features.text[name] = np.stack([table[t] for t in texts])
        extractor.release()

    values: dict[str, MetricValue] = {m.key: m.compute(features) for m in metric_defs}
    match = audio_match(features.gt["mel"], features.gen["mel"]) if "mel" in names else None
    per_clip = _per_clip_rows(scored, pred_clips, values, match)
    results = _results(
        options, mode, root, videos, report, metric_defs, values, weights, extractors, cache
    )
    if match is not None:
        flagged = [row["clip"] for row, m in zip(per_clip, match) if not m >= MATCH_THRESHOLD]
        results["audio_check"] = {
            "measure": MATCH_MEASURE,
            "threshold": MATCH_THRESHOLD,
            "min_correlation": float(np.nanmin(match)) if np.isfinite(match).any() else None,
            "flagged": flagged,
        }
        if flagged:
            results["warnings"].append(
                f"{len(flagged)} generated clip(s) carry audio that differs from their GT clip's "
                f"audio (spectrogram correlation < {MATCH_THRESHOLD}): {', '.join(flagged[:5])}"
                + (" ..." if len(flagged) > 5 else "")
                + ". The audio-based metrics read the generated file's own audio."
            )
    return ScoreRun(results, per_clip, features)


def _starts(video: TestVideo, spec: ClipSpec, mode: ProtocolMode) -> list[float]:
    return eval_clip_starts(probe(video.path).av_duration, spec, mode)


def _gt_clip_table(videos: list[TestVideo], spec: ClipSpec, mode: ProtocolMode) -> list[dict]:
    rows = []
    for video in videos:
        for index, start in enumerate(_starts(video, spec, mode)):
            rows.append(
                {
                    "clip": video.clip_name(index),
                    "video": video,
                    "clip_index": index,
                    "gt_start": start,
                }
            )
    return rows


def _gt_keys(rows, extractors, weights, mode, spec) -> dict[tuple[str, str], str]:
    keys = {}
    hashes = {}
    for row in rows:
        video = row["video"]
        if video.rel not in hashes:
            hashes[video.rel] = file_sha256(video.path)
        for name, extractor in extractors.items():
            shas = {w: weights[w].sha256 for w in extractor.weight_names if w in weights}
            if extractor.model is not None and not shas:
                shas = {"injected-model": extractor.model_digest()}
            keys[(row["clip"], name)] = FeatureCache.key(
                hashes[video.rel], mode, spec, row["clip_index"], name, extractor.version, shas
            )
    return keys


def _per_clip_rows(
    scored, pred_clips: list[Clip], values: dict[str, MetricValue], match
) -> list[dict]:
    rows = []
    for position, (row, clip) in enumerate(zip(scored, pred_clips)):
        out = {
            "clip": row["clip"],
            "video": row["video"].rel,
            "class": row["video"].class_folder,
            "clip_index": row["clip_index"],
            "gt_start_s": round(row["gt_start"], 6),
            "gen_start_s": round(clip.start, 6),
            "gen_frame_indices": " ".join(map(str, clip.frame_indices)),
            "gen_padded_frames": clip.padded_frames,
        }
        for key, value in values.items():
            if value.per_clip is not None:
                out[key] = float(value.per_clip[position])
            for extra, column in value.per_clip_extra.items():
                out[extra] = float(column[position])
        if match is not None:
            out["audio_match"] = float(match[position])
        rows.append(out)
    return rows


def _results(options, mode, root, videos, report: PredictionReport, metric_defs: list[MetricDef],
             values, weights, extractors, cache) -> dict:  # fmt: skip
    weights_info = {name: w.provenance() for name, w in weights.items()}
    injected = sorted(n for n, e in extractors.items() if e.injected)
    metrics = {}
    for metric in metric_defs:
        value = values[metric.key]
        entry = {"value": value.value, "n_gt": value.n_gt, "n_gen": value.n_gen}
        if value.std is not None:
            entry["std"] = value.std
        if "av_align_gt" in value.per_clip_extra:
            entry["gt_reference"] = float(np.mean(value.per_clip_extra["av_align_gt"]))
        entry.update(
            label=metric.label,
            lower_is_better=metric.lower_is_better,
            display_scale=metric.display_scale,
            source=metric.source,
            warnings=value.warnings,
        )
        metrics[metric.key] = entry
    absent = report.absent
    return {
        "schema": 1,
        "tool": "avsync-bench",
        "version": avsync_bench.__version__,
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "protocol": mode.value,
        "dataset": options.dataset,
        "split": "test",
        "data_root": str(root),
        "predictions": str(Path(options.preds).resolve()),
        "clip_counts": {
            "videos": len(videos),
            "expected": len(report.expected),
            "scored": len(report.found),
        },
        "partial": bool(absent),
        "absent": absent,
        "absent_why": report.why_absent(),
        "padding": report.padding_record(),
        "problems": [str(p) for p in report.problems],
        "metrics": metrics,
        "weights": weights_info,
        "standin": any(w.standin for w in weights.values()) or bool(injected),
        "injected_extractors": injected,
        "extractors": {n: {"version": e.version} for n, e in extractors.items()},
        "device": options.device,
        "dtype": options.dtype,
        "cache": {"hits": cache.hits, "misses": cache.misses},
        "warnings": [],
    }
