"""``avsync-bench evaluate``: ``features.npz`` → metrics → ``results.json`` and ``per_clip.csv``.

A pure function of the feature file (:mod:`avsync_bench.featurefile`): no weights, no videos, no
network. Every metric comes from the metric registry (:data:`avsync_bench.metrics.METRICS`) and
every check beside them (the generated-audio check) from :data:`avsync_bench.metrics.CHECKS`;
FID/FVD are one Fréchet distance each, float64, over all the gathered features.
"""

from __future__ import annotations

import datetime as dt

from avsync_bench.featurefile import FeatureFile, FeatureFileError
from avsync_bench.metrics import MetricValue, checks_for, resolve_metrics
from avsync_bench.scoring import ScoreRun

__all__ = ["evaluate"]


def evaluate(ff: FeatureFile) -> ScoreRun:
    """Compute every metric of ``ff.meta["metrics"]`` and the checks they trigger.

    Returns:
        A :class:`~avsync_bench.scoring.ScoreRun`: the ``results.json`` dict, the per-clip rows
        (``per_clip.csv``: the clip's decoding facts, every per-clip value and extra column)
        and the features.

    Raises:
        FeatureFileError: a metric needs features the file lacks (names the extractor).
        ValueError: a metric cannot be computed (e.g. FVD on fewer than 2 clips).
    """
    metric_defs = resolve_metrics(ff.meta["metrics"])
    checks = checks_for(metric_defs)
    for definition in [*metric_defs, *checks]:
        for name in definition.extractors:
            if name not in ff.features.gt or name not in ff.features.gen:
                raise FeatureFileError(
                    f"features file: no '{name}' features, which {definition.key} needs"
                )
    values: dict[str, MetricValue] = {m.key: m.compute(ff.features) for m in metric_defs}
    clips = [row["clip"] for row in ff.rows]
    outcomes = {c.key: c.run(ff.features, clips) for c in checks}
    per_clip = []
    for position, row in enumerate(ff.rows):
        out = dict(row)
        for key, value in values.items():
            if value.per_clip is not None:
                out[key] = float(value.per_clip[position])
            for extra, column in value.per_clip_extra.items():
                out[extra] = float(column[position])
        for outcome in outcomes.values():
            for column, data in outcome.per_clip.items():
                out[column] = float(data[position])
        per_clip.append(out)
    results = _results(ff.meta, metric_defs, values)
    for key, outcome in outcomes.items():
        if outcome.entry is not None:
            results[key] = outcome.entry
        results["warnings"] += outcome.warnings
    return ScoreRun(results, per_clip, ff.features)


def _results(meta: dict, metric_defs, values: dict[str, MetricValue]) -> dict:
    metrics = {}
    for metric in metric_defs:
        value = values[metric.key]
        entry = {"value": value.value, "n_gt": value.n_gt, "n_gen": value.n_gen}
        if value.std is not None:
            entry["std"] = value.std
        entry.update(value.summary_extra)
        entry.update(
            label=metric.label,
            lower_is_better=metric.lower_is_better,
            display_scale=metric.display_scale,
            source=metric.source,
            warnings=value.warnings,
        )
        metrics[metric.key] = entry
    return {
        "schema": 1,
        "tool": "avsync-bench",
        "version": meta["version"],
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "protocol": meta["protocol"],
        "dataset": meta["dataset"],
        "split": meta["split"],
        "data_root": meta["data_root"],
        "predictions": meta["predictions"],
        "clip_counts": meta["clip_counts"],
        "partial": bool(meta["absent"]),
        "absent": meta["absent"],
        "absent_why": meta.get("absent_why", {}),
        "padding": meta.get("padding"),
        "problems": meta["problems"],
        "metrics": metrics,
        "weights": meta["weights"],
        "standin": meta["standin"],
        "injected_extractors": meta["injected_extractors"],
        "extractors": {n: {"version": e["version"]} for n, e in meta["extractors"].items()},
        "device": meta["device"],
        "dtype": meta["dtype"],
        "cache": meta["cache"],
        "warnings": [],
    }
