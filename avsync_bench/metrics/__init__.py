"""Metric registry: each metric names the feature extractors it needs and is a pure function of
their features (ground-truth side, generated side, per-clip text embeddings)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from avsync_bench.errors import OptionError
from avsync_bench.metrics.distribution import MetricValue, fid, fvd
from avsync_bench.metrics.per_clip import alignsync, ia, it, per_clip_value, relsync

__all__ = [
    "FeatureSet",
    "MetricDef",
    "METRICS",
    "MetricValue",
    "resolve_metrics",
    "CHECKS",
    "CheckDef",
    "CheckResult",
    "checks_for",
]


@dataclass
class FeatureSet:
    """Features of the scored clips, in evaluation order, by extractor name.

    ``gt[name]`` and ``gen[name]`` are (N, ...) arrays; ``text[name]`` is (N, D) for extractors
    that embed each clip's IT text.
    """

    gt: dict[str, np.ndarray] = field(default_factory=dict)
    gen: dict[str, np.ndarray] = field(default_factory=dict)
    text: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricDef:
    """One metric.

    Attributes:
        key: CLI name (``fid``). label: the field's standard name (``FID``).
        extractors: feature extractors whose features ``compute`` reads.
        lower_is_better: direction for tables.
        display_scale: factor for tables (100 for IA, IT, RelSync, AlignSync, as the paper prints
            them); JSON keeps raw values.
        compute: ``FeatureSet -> MetricValue``.
        source: where the definition comes from.
    """

    key: str
    label: str
    extractors: tuple[str, ...]
    lower_is_better: bool
    display_scale: float
    compute: Callable[[FeatureSet], MetricValue]
    source: str


def _av_align(f: FeatureSet) -> MetricValue:
    value = per_clip_value(f.gen["av_align"])
    value.per_clip_extra = {"av_align_gt": f.gt["av_align"].reshape(-1)}
    value.summary_extra = {"gt_reference": float(np.mean(value.per_clip_extra["av_align_gt"]))}
    return value


METRICS: dict[str, MetricDef] = {
    m.key: m
    for m in [
        MetricDef("fid", "FID", ("fid_inception",), True, 1.0,
                  lambda f: fid(f.gt["fid_inception"], f.gen["fid_inception"]), "docs/protocol.md §2 FID"),
        MetricDef("fvd", "FVD", ("i3d",), True, 1.0,
                  lambda f: fvd(f.gt["i3d"], f.gen["i3d"]), "docs/protocol.md §2 FVD"),
        MetricDef("ia", "IA", ("imagebind",), False, 100.0,
                  lambda f: ia(f.gen["imagebind"]), "docs/protocol.md §2 IA/IT; paper Eq. 3"),
        MetricDef("it", "IT", ("imagebind",), False, 100.0,
                  lambda f: it(f.gen["imagebind"], f.text["imagebind"]), "docs/protocol.md §2 IA/IT"),
        MetricDef("relsync", "RelSync", ("avsync",), False, 100.0,
                  lambda f: relsync(f.gt["avsync"], f.gen["avsync"]), "docs/protocol.md §2 RelSync"),
        MetricDef("alignsync", "AlignSync", ("imagebind", "avsync"), False, 100.0,
                  lambda f: alignsync(f.gt["imagebind"], f.gen["imagebind"], f.gt["avsync"], f.gen["avsync"]),
                  "docs/protocol.md §2 AlignSync"),
        MetricDef("av_align", "AV-Align", ("av_align",), False, 1.0, _av_align,
                  "Yariv et al., AAAI 2024 (extra column, not RelSync)"),
    ]
}  # fmt: skip

AUDIO_METRICS = {"ia", "relsync", "alignsync", "av_align"}
"""Metrics that read the generated file's own audio (checked against the GT clip's audio)."""


@dataclass
class CheckResult:
    """What a check adds to a run: per-clip columns, a ``results.json`` entry, warnings."""

    per_clip: dict[str, np.ndarray] = field(default_factory=dict)
    entry: dict | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CheckDef:
    """A check run beside the metrics (not a metric): its extractors are extracted whenever one
    of ``applies_to`` is scored; ``run(features, clip_names)`` gives a :class:`CheckResult`."""

    key: str
    extractors: tuple[str, ...]
    applies_to: frozenset[str]
    run: Callable[[FeatureSet, list[str]], CheckResult]


def _audio_check(f: FeatureSet, clips: list[str]) -> CheckResult:
    from avsync_bench.features.mel import MATCH_MEASURE, MATCH_THRESHOLD, audio_match

    match = audio_match(f.gt["mel"], f.gen["mel"])
    flagged = [clip for clip, m in zip(clips, match) if not m >= MATCH_THRESHOLD]
    entry = {
        "measure": MATCH_MEASURE,
        "threshold": MATCH_THRESHOLD,
        "min_correlation": float(np.nanmin(match)) if np.isfinite(match).any() else None,
        "flagged": flagged,
    }
    warnings = []
    if flagged:
        warnings.append(
            f"{len(flagged)} generated clip(s) carry audio that differs from their GT clip's "
            f"audio (spectrogram correlation < {MATCH_THRESHOLD}): {', '.join(flagged[:5])}"
            + (" ..." if len(flagged) > 5 else "")
            + ". The audio-based metrics read the generated file's own audio."
        )
    return CheckResult({"audio_match": match}, entry, warnings)


CHECKS: dict[str, CheckDef] = {
    "audio_check": CheckDef("audio_check", ("mel",), frozenset(AUDIO_METRICS), _audio_check),
}
"""Checks run beside the metrics, by ``results.json`` key."""


def checks_for(metric_defs: list[MetricDef]) -> list[CheckDef]:
    """The checks that the scored metrics trigger."""
    keys = {m.key for m in metric_defs}
    return [c for c in CHECKS.values() if c.applies_to & keys]


def resolve_metrics(names: str | list[str]) -> list[MetricDef]:
    """Parse ``"fid,fvd"`` (or ``"all"``) into metric definitions.

    Raises:
        ValueError: an unknown metric name.
    """
    if isinstance(names, str):
        names = [n.strip().lower().replace("-", "_") for n in names.split(",") if n.strip()]
    if names == ["all"]:
        return list(METRICS.values())
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise OptionError(
            f"--metrics: unknown metric(s) {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(METRICS)} or all"
        )
    return [METRICS[n] for n in dict.fromkeys(names)]
