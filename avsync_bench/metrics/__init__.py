"""Metric registry: each metric names the feature extractors it needs and is a pure function of
their features (ground-truth side, generated side)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from avsync_bench.metrics.distribution import MetricValue, fid, fvd

__all__ = ["MetricDef", "METRICS", "MetricValue", "resolve_metrics"]


@dataclass(frozen=True)
class MetricDef:
    """One metric.

    Attributes:
        key: CLI name (``fid``).
        label: the field's standard name (``FID``).
        extractors: feature extractors whose features ``compute`` receives, in order.
        lower_is_better: direction for tables.
        display_scale: factor for the table (100 for IA, IT, RelSync, AlignSync, as the paper
            prints them); JSON keeps raw values.
        compute: ``(gt_features..., gen_features...) -> MetricValue``.
    """

    key: str
    label: str
    extractors: tuple[str, ...]
    lower_is_better: bool
    display_scale: float
    compute: Callable[..., MetricValue]


METRICS: dict[str, MetricDef] = {
    m.key: m
    for m in [
        MetricDef("fid", "FID", ("fid_inception",), True, 1.0, fid),
        MetricDef("fvd", "FVD", ("i3d",), True, 1.0, fvd),
    ]
}


def resolve_metrics(names: str | list[str]) -> list[MetricDef]:
    """Parse ``"fid,fvd"`` (or ``"all"``) into metric definitions.

    Raises:
        ValueError: an unknown metric name.
    """
    if isinstance(names, str):
        names = [n.strip().lower() for n in names.split(",") if n.strip()]
    if names == ["all"]:
        return list(METRICS.values())
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {sorted(METRICS)} or 'all'")
    return [METRICS[n] for n in dict.fromkeys(names)]
