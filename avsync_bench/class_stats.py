"""Per-class bootstrap intervals, for one run and for a paired comparison of two runs.

The resampling rule is the one of :mod:`avsync_bench.stats` (test videos drawn with replacement,
each video's 3 clips kept together, 95 % percentile intervals, ``numpy.random.default_rng(seed)``),
applied inside each class: a class with V test videos is resampled by drawing V of its videos.

FID / FVD per class are Fréchet distances between a class's GT and generated clips. A class is
small (AVSync15: 10 videos, 30 clips, 330 FID frames), far fewer samples than feature dimensions,
so each covariance has rank ≤ m (its sample count) and the distance can be taken exactly in the
m-dimensional sample space: with Σ = AᵀA (A: the m centred rows scaled by √(wᵢ/(N−1))),
tr Σ = ‖A‖²_F and tr √(Σ₁Σ₂) = ‖A₁A₂ᵀ‖_* (the nuclear norm: the non-zero eigenvalues of Σ₁Σ₂ are
the squared singular values of A₁A₂ᵀ). This equals :func:`avsync_bench.metrics.frechet` 's value
(tested to 1e-6 relative) at a cost of O(m²d) instead of O(d³); when a side has more rows than
dimensions the full-dimension route (:func:`avsync_bench.stats.frechet_cholesky`) is used.
These per-class Fréchet values carry the small-set bias (they are not comparable with the
full-set value), and their intervals only show how stable the class ranking is.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from avsync_bench.resampling import (
    DEFAULT_LEVEL,
    DEFAULT_SEED,
    FeatureMoments,
    frechet_boot,
    frechet_cholesky,
    frechet_from_factors,
    percentile_interval,
    resample_weights,
)
from avsync_bench.run_data import RunData

__all__ = ["frechet_lowrank", "per_class_intervals", "paired_per_class", "class_frechet_plan"]

Progress = Callable[[str, int], Callable[[int], None]]


def frechet_lowrank(gt: np.ndarray, gen: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Fréchet distance between the GT and generated feature sets of some clips, float64.

    Args:
        gt, gen: (N, F, d) or (N, d) per-clip features (FID: F = 11 frames; FVD: one).
        weights: (N,) clip multiplicities (a bootstrap resample); default all ones.

    Returns:
        ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr √(Σ₁Σ₂) with unbiased covariances, computed in sample
        space when both sides have fewer rows than dimensions (see the module docstring).

    Raises:
        ValueError: fewer than 2 samples on a side.
    """
    weights = np.ones(len(gt)) if weights is None else np.asarray(weights)
    gt_moments, gen_moments = FeatureMoments(gt), FeatureMoments(gen)
    mu1, a1, n1 = gt_moments.factor(weights)
    mu2, a2, n2 = gen_moments.factor(weights)
    if a1.shape[0] > gt_moments.dim or a2.shape[0] > gen_moments.dim:
        return frechet_cholesky(*gt_moments.stats(weights), *gen_moments.stats(weights))
    return frechet_from_factors(mu1, a1, n1, mu2, a2, n2)


def _frechet_boot(gt: np.ndarray, gen: np.ndarray, weights: np.ndarray, tick) -> np.ndarray:
    """(B,) Fréchet distances of one class's resamples (NaN where one fails), by the routes of
    :func:`avsync_bench.resampling.frechet_boot` (moments computed once per class)."""
    return frechet_boot(FeatureMoments(gt), FeatureMoments(gen), weights, tick)


def _no_progress(_label: str, _total: int) -> Callable[[int], None]:
    return lambda _n: None


def class_frechet_plan(run: RunData, n_frechet: int, paired: bool = False) -> dict:
    """What the per-class FID/FVD intervals will cost, for the announcement before a long run.

    Returns:
        ``{"count": number of Fréchet distances, "seconds": estimate (one computation timed on
        the largest class, times the count)}``.
    """
    classes, counts = np.unique(run.classes, return_counts=True)
    keys = [k for k in run.results["metrics"] if k in run.features]
    eligible = int((counts >= 2).sum())
    count = len(keys) * eligible * (n_frechet + 1) * (2 if paired else 1)
    seconds = 0.0
    if count and eligible:
        mask = run.classes == classes[np.argmax(counts)]
        per_key = []
        for key in keys:
            gt, gen = run.features[key]
            frechet_lowrank(gt[mask], gen[mask])  # warm-up: the first call is several times slower
            began = time.perf_counter()
            frechet_lowrank(gt[mask], gen[mask])
            per_key.append(time.perf_counter() - began)
        seconds = sum(per_key) / len(keys) * count
    return {"count": count, "seconds": seconds}


def per_class_intervals(
    run: RunData,
    n_resamples: int = 1000,
    n_frechet: int = 50,
    seed: int = DEFAULT_SEED,
    level: float = DEFAULT_LEVEL,
    progress: Progress | None = None,
) -> dict:
    """Per-class values with bootstrap percentile intervals.

    Returns:
        ``{class: {key: {"value", "low", "high", "n_resamples"}}}`` on the raw scale; per-clip
        metrics: the class mean (``n_resamples`` resamples); FID/FVD: the class's Fréchet
        distance (``n_frechet`` resamples; ``value`` None below 2 clips).
    """
    progress = progress or _no_progress
    out: dict[str, dict] = {}
    names = sorted(set(run.classes))
    keys = [k for k in run.results["metrics"] if k in run.per_clip or k in run.features]
    frechet_keys = [k for k in keys if k in run.features]
    tick = progress("per-class FID/FVD intervals", len(frechet_keys) * len(names) * (n_frechet + 1))
    for name in names:
        mask = run.classes == name
        weights = resample_weights(run.videos[mask], n_resamples, seed)
        out[name] = {}
        for key in keys:
            row = {"value": None, "low": None, "high": None, "n_resamples": 0}
            if key in run.per_clip:
                values = run.per_clip[key][mask]
                row["value"] = float(values.mean())
                if np.isfinite(values).all():
                    boot = weights @ values / weights.sum(axis=1)
                    row["low"], row["high"] = percentile_interval(boot, level)
                    row["n_resamples"] = len(boot)
            elif mask.sum() >= 2:
                gt, gen = (f[mask] for f in run.features[key])
                row["value"] = frechet_lowrank(gt, gen)
                tick(1)
                boot = _frechet_boot(gt, gen, weights[:n_frechet], tick)
                row["low"], row["high"] = percentile_interval(boot, level)
                row["n_resamples"] = len(boot)
            else:
                tick(n_frechet + 1)
            out[name][key] = row
    return out


def paired_per_class(
    a: RunData,
    b: RunData,
    n_resamples: int = 1000,
    n_frechet: int = 50,
    seed: int = DEFAULT_SEED,
    level: float = DEFAULT_LEVEL,
    progress: Progress | None = None,
) -> dict:
    """Per class, A − B with a paired bootstrap interval (the same resamples for both runs).

    ``b`` must list the same clips in the same order as ``a`` (:func:`avsync_bench.stats.compare`
    checks and aligns). Returns ``{class: {key: {"a", "b", "diff", "low", "high"}}}``.
    """
    progress = progress or _no_progress
    names = sorted(set(a.classes))
    keys = [
        k
        for k in a.results["metrics"]
        if (k in a.per_clip and k in b.per_clip) or (k in a.features and k in b.features)
    ]
    frechet_keys = [k for k in keys if k in a.features]
    tick = progress(
        "per-class paired FID/FVD", 2 * len(frechet_keys) * len(names) * (n_frechet + 1)
    )
    out: dict[str, dict] = {}
    for name in names:
        mask = a.classes == name
        weights = resample_weights(a.videos[mask], n_resamples, seed)
        out[name] = {}
        for key in keys:
            row = {"a": None, "b": None, "diff": None, "low": None, "high": None}
            if key in a.per_clip:
                va, vb = a.per_clip[key][mask], b.per_clip[key][mask]
                row.update(a=float(va.mean()), b=float(vb.mean()), diff=float((va - vb).mean()))
                delta = va - vb
                if np.isfinite(delta).all():
                    boot = weights @ delta / weights.sum(axis=1)
                    row["low"], row["high"] = percentile_interval(boot, level)
            elif mask.sum() >= 2:
                fa = [f[mask] for f in a.features[key]]
                fb = [f[mask] for f in b.features[key]]
                row["a"], row["b"] = frechet_lowrank(*fa), frechet_lowrank(*fb)
                row["diff"] = row["a"] - row["b"]
                tick(2)
                boot = _frechet_boot(*fa, weights[:n_frechet], tick) - _frechet_boot(
                    *fb, weights[:n_frechet], tick
                )
                row["low"], row["high"] = percentile_interval(boot, level)
            else:
                tick(2 * (n_frechet + 1))
            out[name][key] = row
    return out
