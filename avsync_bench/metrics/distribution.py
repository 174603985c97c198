"""FID and FVD as pure functions of cached features (PROTOCOL.md §2).

Both are one Fréchet distance over the whole set (never an average over batches).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from avsync_bench.metrics.frechet import frechet_distance

__all__ = ["MetricValue", "fid", "fvd", "SMALL_SET_CLIPS"]

# Below this many clips a side, FID/FVD are dominated by covariance-estimation noise: the
# feature dimension (2048 / 400) exceeds the sample count, so Σ is rank-deficient and the value
# is biased upwards and not comparable with full-set numbers (450 clips on AVSync15).
SMALL_SET_CLIPS = 100


@dataclass
class MetricValue:
    """A metric's value with its sample counts.

    Attributes:
        value: the number (raw scale).
        n_gt, n_gen: samples on each side (frames for FID, clips for FVD and per-clip metrics).
        std: unbiased std over clips for per-clip metrics, else None.
        per_clip: (n_clips,) per-clip values for per-clip metrics, else None.
        warnings: human-readable caveats (e.g. a small set).
        per_clip_extra: further per-clip columns (e.g. φ_gt, φ_gen, P_align).
        summary_extra: further fields of the metric's ``results.json`` entry (e.g. AV-Align's
            ``gt_reference``).
    """

    value: float
    n_gt: int
    n_gen: int
    std: float | None = None
    per_clip: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)
    per_clip_extra: dict[str, np.ndarray] = field(default_factory=dict)
    summary_extra: dict[str, float] = field(default_factory=dict)


def _small_set(name: str, n_clips: int) -> list[str]:
    if n_clips >= SMALL_SET_CLIPS:
        return []
    return [
        f"{name} on {n_clips} clips a side: below {SMALL_SET_CLIPS} clips the covariance is "
        "rank-deficient and the value is biased; do not compare it with full-set numbers"
    ]


def fid(gt: np.ndarray, gen: np.ndarray) -> MetricValue:
    """FID from per-clip Inception features (N, 11, 2048) of frames 1..11, pooled over frames.

    Raises:
        ValueError: fewer than 2 frames a side or mismatched feature sizes.
    """
    x1 = gt.reshape(-1, gt.shape[-1])
    x2 = gen.reshape(-1, gen.shape[-1])
    value = frechet_distance(x1, x2)
    return MetricValue(value, len(x1), len(x2), warnings=_small_set("FID", min(len(gt), len(gen))))


def fvd(gt: np.ndarray, gen: np.ndarray) -> MetricValue:
    """FVD from per-clip I3D logits (N, 400).

    Raises:
        ValueError: fewer than 2 clips on a side.
    """
    if len(gt) < 2 or len(gen) < 2:
        raise ValueError(
            f"FVD needs at least 2 clips a side, got {len(gt)} GT and {len(gen)} generated"
        )
    value = frechet_distance(gt, gen)
    return MetricValue(value, len(gt), len(gen), warnings=_small_set("FVD", min(len(gt), len(gen))))
