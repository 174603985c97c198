"""Statistics over a results folder: bootstrap CIs, paired comparisons, per-class breakdowns.

Everything here is a pure function of what ``avsync-bench score`` leaves in its results folder
(:func:`avsync_bench.results.write_results`):

- ``results.json``: the point values, dataset, protocol, weights;
- ``per_clip.csv``: one row per scored clip with its ``video`` and ``class`` and the per-clip
  value of every per-clip metric (IA, IT, RelSync, AlignSync, AV-Align; raw scale, not ×100);
- ``features.npz``: per-clip FID features (N, 11, 2048) and FVD features (N, 400) of both sides.

Resampling unit. The test set is a sample of *videos*; its 3 clips per video are not independent
samples (they share the scene, the class and the audio track). Every bootstrap here therefore
draws the test videos with replacement (as many draws as there are videos) and gives each clip
the multiplicity of its video, so a video's clips always enter or leave a resample together.
Resamples come from ``numpy.random.default_rng(seed)`` (default seed 0) over the sorted video
names, so the same clip set and seed give the same resamples whatever the row order.

Per-clip metrics: each resample's value is the multiplicity-weighted mean of the per-clip values
(default 1000 resamples). FID / FVD: each resample's value is the Fréchet distance
(:func:`avsync_bench.metrics.frechet.frechet_from_stats`) between the Gaussian statistics of
the resampled GT and generated features; GT clip i and generated clip i are resampled together.
The statistics are weighted sums, not a recomputation from a materialised resample: per-clip
sums Σ_f x (N, d) are precomputed, and the second moment Σ_i w_i Σ_f x xᵀ is one symmetric
product of the drawn clips' (globally centred) rows scaled by √w. Materialising per-clip
outer-product sums instead would take N·d²·8 B = 15 GB for AVSync15's FID (450 clips, 2048-d).
The cost per resample is dominated by the Fréchet distance itself, computed by
:func:`frechet_cholesky` (the library's formula by a Cholesky route, ≈ 2× faster at 2048-d,
falling back to ``frechet_from_stats``). See the README's "Leaderboard" section for measured
times; hence the default 200 resamples for FID/FVD (the first 200 of the same resamples as the
per-clip metrics).

Intervals are percentile intervals (default 95 %: the 2.5th and 97.5th percentiles). A caveat
for FID/FVD: a resample repeats clips, which shrinks the effective sample, and the Fréchet
distance is biased upwards on small samples, so the bootstrap distribution sits above the point
value and the interval can exclude it (reported as a warning; ``boot_mean`` shows the shift).
In a paired difference of two runs on the same clips (:func:`compare`) the bias is similar on
both sides and largely cancels.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from avsync_bench.errors import InputError
from avsync_bench.metrics.distribution import SMALL_SET_CLIPS, MetricValue, fid, fvd
from avsync_bench.resampling import (
    DEFAULT_LEVEL,
    DEFAULT_SEED,
    FeatureMoments,
    frechet_boot,
    frechet_cholesky,
    frechet_from_factors,
    percentile_interval,
    resample_weights,
    video_groups,
    weighted_gaussian_stats,
)
from avsync_bench.results import FEATURES_FILE
from avsync_bench.run_data import RunData, load_run, resolve_results_path

__all__ = [
    "DEFAULT_RESAMPLES",
    "DEFAULT_FRECHET_RESAMPLES",
    "DEFAULT_SEED",
    "FEATURES_FILE",
    "RunData",
    "load_run",
    "resolve_results_path",
    "video_groups",
    "resample_weights",
    "weighted_gaussian_stats",
    "frechet_cholesky",
    "frechet_from_factors",
    "bootstrap",
    "compare",
    "per_class",
]

DEFAULT_RESAMPLES = 1000
"""Bootstrap resamples for the per-clip metrics (IA, IT, RelSync, AlignSync, AV-Align)."""
DEFAULT_FRECHET_RESAMPLES = 200
"""Bootstrap resamples for FID / FVD (the first ones of the same resample sequence)."""

METHOD = (
    "percentile bootstrap over test videos (videos drawn with replacement, each video's clips "
    "kept together); FID/FVD recomputed per resample with the Fréchet distance"
)

Progress = Callable[[str, int], Callable[[int], None]]
_FRECHET_METRICS = {"fid": fid, "fvd": fvd}


def _no_progress(_label: str, _total: int) -> Callable[[int], None]:
    return lambda _n: None


def _frechet_point(key: str, gt: np.ndarray, gen: np.ndarray) -> MetricValue:
    return _FRECHET_METRICS[key](gt, gen)


def _check_point(key: str, recomputed: float, stored: float, folder: Path) -> list[str]:
    if np.isclose(recomputed, stored, rtol=1e-6, atol=1e-9):
        return []
    return [
        f"{key.upper()} recomputed from {folder / FEATURES_FILE} is {recomputed:.6g}, "
        f"results.json says {stored:.6g}: the files come from different runs"
    ]


def _small_groups(n_videos: int) -> list[str]:
    if n_videos >= 2:
        return []
    return ["one test video only: every resample is the same set, the interval has zero width"]


# ---------------------------------------------------------------------------------------------
# One run: intervals
# ---------------------------------------------------------------------------------------------


def bootstrap(
    run: RunData | str | Path,
    n_resamples: int = DEFAULT_RESAMPLES,
    n_frechet: int = DEFAULT_FRECHET_RESAMPLES,
    seed: int = DEFAULT_SEED,
    level: float = DEFAULT_LEVEL,
    progress: Progress | None = None,
) -> dict:
    """Bootstrap percentile intervals for every metric of a run (see module docstring).

    Args:
        run: a :class:`RunData` or a results folder / ``results.json`` path.
        n_resamples: resamples for the per-clip metrics. n_frechet: resamples for FID/FVD
            (``min(n_frechet, n_resamples)`` of the same sequence).
        seed: seed of ``numpy.random.default_rng``. level: interval coverage (0.95).
        progress: ``progress(label, total) -> tick(n)`` (rich bars in the CLI).

    Returns:
        JSON-ready dict: ``method``, ``level``, ``seed``, ``n_videos``, ``n_clips``, ``metrics``
        (key → ``value`` (raw scale, as in results.json), ``low``, ``high`` (None without the
        per-clip file), ``n_resamples``, ``boot_mean``, ``warnings``) and ``warnings``.
    """
    run = run if isinstance(run, RunData) else load_run(run)
    progress = progress or _no_progress
    group, n_videos = video_groups(run.videos)
    weights = resample_weights(run.videos, n_resamples, seed)
    n_frechet = min(n_frechet, n_resamples)
    metrics = {}
    for key, entry in run.results["metrics"].items():
        warnings: list[str] = []
        boot = None
        if key in run.per_clip:
            values = run.per_clip[key]
            value = float(values.mean())
            if np.isfinite(values).all():
                boot = weights @ values / weights.sum(axis=1)
            else:
                warnings.append(f"{key}: non-finite per-clip values, no interval")
        elif key in run.features:
            gt, gen = run.features[key]
            point = _frechet_point(key, gt, gen)
            value = point.value
            warnings += point.warnings + _check_point(key, value, entry["value"], run.folder)
            tick = progress(f"bootstrap {entry.get('label', key)}", n_frechet)
            boot = frechet_boot(FeatureMoments(gt), FeatureMoments(gen), weights[:n_frechet], tick)
            failed = int((~np.isfinite(boot)).sum())
            if failed:
                warnings.append(f"{key}: {failed} of {n_frechet} resamples failed (no covariance)")
        else:
            value = entry["value"]
        row = {"value": value, "low": None, "high": None, "n_resamples": 0, "boot_mean": None}
        if boot is not None:
            low, high = percentile_interval(boot, level)
            row.update(low=low, high=high, n_resamples=len(boot))
            row["boot_mean"] = float(np.nanmean(boot)) if np.isfinite(boot).any() else None
            if low is not None and not low <= value <= high:
                warnings.append(
                    f"{key}: the point value {value:.6g} lies outside its interval "
                    f"[{low:.6g}, {high:.6g}] (resamples repeat clips; the Fréchet distance is "
                    "biased upwards on smaller effective samples)"
                )
        row["warnings"] = warnings
        metrics[key] = row
    return {
        "method": METHOD,
        "level": level,
        "seed": seed,
        "n_resamples": n_resamples,
        "n_frechet_resamples": n_frechet,
        "n_videos": n_videos,
        "n_clips": len(group),
        "metrics": metrics,
        "warnings": run.notes + _small_groups(n_videos),
    }


# ---------------------------------------------------------------------------------------------
# Two runs: paired comparison
# ---------------------------------------------------------------------------------------------


def _comparability(a: RunData, b: RunData) -> list[str]:
    problems = []
    for name in ("dataset", "protocol"):
        if a.results.get(name) != b.results.get(name):
            problems.append(f"{name}s differ (A: {a.results.get(name)}, B: {b.results.get(name)})")
    only_a = sorted(set(a.clips) - set(b.clips))
    only_b = sorted(set(b.clips) - set(a.clips))
    if only_a or only_b:

        def some(names):
            return ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")

        problems.append(
            f"clip sets differ: {len(only_a)} clip(s) only in A ({some(only_a)}), "
            f"{len(only_b)} only in B ({some(only_b)})"
        )
    return problems


def _align(b: RunData, order: np.ndarray) -> RunData:
    """``b`` with its clips in the order ``order`` (the same clip set)."""
    position = {name: i for i, name in enumerate(b.clips)}
    index = np.array([position[name] for name in order], dtype=np.int64)
    return RunData(
        b.folder,
        b.results,
        b.clips[index],
        b.videos[index],
        b.classes[index],
        per_clip={k: v[index] for k, v in b.per_clip.items()},
        features={k: (gt[index], gen[index]) for k, (gt, gen) in b.features.items()},
        notes=b.notes,
    )


def _p_better(diff: np.ndarray, lower_is_better: bool) -> float | None:
    finite = diff[np.isfinite(diff)]
    if not finite.size:
        return None
    better = finite < 0 if lower_is_better else finite > 0
    return float(better.mean() + 0.5 * (finite == 0).mean())


def compare(
    a: RunData | str | Path,
    b: RunData | str | Path,
    n_resamples: int = DEFAULT_RESAMPLES,
    n_frechet: int = DEFAULT_FRECHET_RESAMPLES,
    seed: int = DEFAULT_SEED,
    level: float = DEFAULT_LEVEL,
    progress: Progress | None = None,
) -> dict:
    """Paired comparison of two runs on the same clips: per metric A, B, A − B, a paired
    bootstrap percentile interval of A − B (the same video resamples applied to both runs) and
    the fraction of resamples in which A is better (direction-aware; ties count ½, so a run
    compared with itself gives 0.5).

    Raises:
        ValueError: the runs differ in dataset, protocol or clip set (all differences named).

    Returns:
        JSON-ready dict: ``a``, ``b`` (folders), ``dataset``, ``protocol``, ``n_videos``,
        ``n_clips``, ``seed``, ``level``, ``metrics`` (key → ``label``, ``lower_is_better``,
        ``display_scale``, ``a``, ``b``, ``diff``, ``low``, ``high``, ``p_a_better``,
        ``n_resamples``, ``warnings``), ``only_in_a``/``only_in_b`` (metric keys), ``warnings``.
    """
    a = a if isinstance(a, RunData) else load_run(a)
    b = b if isinstance(b, RunData) else load_run(b)
    problems = _comparability(a, b)
    if problems:
        raise InputError(f"cannot compare {a.label} (A) with {b.label} (B): " + "; ".join(problems))
    b = _align(b, a.clips)
    progress = progress or _no_progress
    group, n_videos = video_groups(a.videos)
    weights = resample_weights(a.videos, n_resamples, seed)
    n_frechet = min(n_frechet, n_resamples)
    warnings = [f"A: {n}" for n in a.notes] + [f"B: {n}" for n in b.notes]
    warnings += _small_groups(n_videos)
    for name, run in (("A", a), ("B", b)):
        if run.results.get("standin"):
            warnings.append(f"{name} was computed with stand-in weights: not a real score")
        if run.results.get("partial"):
            warnings.append(f"{name} is a partial run")
    shas_a = {k: w.get("sha256") for k, w in a.results.get("weights", {}).items()}
    shas_b = {k: w.get("sha256") for k, w in b.results.get("weights", {}).items()}
    differ = sorted(k for k in set(shas_a) & set(shas_b) if shas_a[k] != shas_b[k])
    if differ:
        warnings.append(f"weight files differ ({', '.join(differ)}): values may not be comparable")
    metrics = {}
    for key, entry in a.results["metrics"].items():
        if key not in b.results["metrics"]:
            continue
        lower = bool(entry["lower_is_better"])
        row_warnings: list[str] = []
        va, vb = entry["value"], b.results["metrics"][key]["value"]
        boot = None
        if key in a.per_clip and key in b.per_clip:
            delta = a.per_clip[key] - b.per_clip[key]
            if np.isfinite(delta).all():
                boot = weights @ delta / weights.sum(axis=1)
            else:
                row_warnings.append(f"{key}: non-finite per-clip values, no interval")
        elif key in a.features and key in b.features:
            tick = progress(f"paired bootstrap {entry.get('label', key)}", 2 * n_frechet)
            (gt_a, gen_a), (gt_b, gen_b) = a.features[key], b.features[key]
            if np.array_equal(gt_a, gt_b):  # one GT side: its factorisation serves both runs
                both = frechet_boot(FeatureMoments(gt_a), [FeatureMoments(gen_a), FeatureMoments(gen_b)],
                                     weights[:n_frechet], tick)  # fmt: skip
                boot = both[:, 0] - both[:, 1]
            else:
                boot_a = frechet_boot(
                    FeatureMoments(gt_a), FeatureMoments(gen_a), weights[:n_frechet], tick
                )
                boot_b = frechet_boot(
                    FeatureMoments(gt_b), FeatureMoments(gen_b), weights[:n_frechet], tick
                )
                boot = boot_a - boot_b
            for name, run in (("A", a), ("B", b)):
                point = _frechet_point(key, *run.features[key])
                row_warnings += [f"{name}: {w}" for w in point.warnings]
        else:
            row_warnings.append(
                f"{key}: per-clip values or features missing on a side, no interval"
            )
        row = {
            "label": entry.get("label", key),
            "lower_is_better": lower,
            "display_scale": entry.get("display_scale", 1.0),
            "a": va,
            "b": vb,
            "diff": va - vb,
            "low": None,
            "high": None,
            "p_a_better": None,
            "n_resamples": 0,
        }
        if boot is not None:
            row["low"], row["high"] = percentile_interval(boot, level)
            row["p_a_better"] = _p_better(boot, lower)
            row["n_resamples"] = len(boot)
        row["warnings"] = sorted(set(row_warnings), key=row_warnings.index)
        metrics[key] = row
    return {
        "a": str(a.folder),
        "b": str(b.folder),
        "dataset": a.results["dataset"],
        "protocol": a.results["protocol"],
        "method": METHOD.replace("percentile bootstrap", "paired percentile bootstrap"),
        "level": level,
        "seed": seed,
        "n_videos": n_videos,
        "n_clips": len(group),
        "metrics": metrics,
        "only_in_a": sorted(set(a.results["metrics"]) - set(b.results["metrics"])),
        "only_in_b": sorted(set(b.results["metrics"]) - set(a.results["metrics"])),
        "warnings": warnings,
    }


# ---------------------------------------------------------------------------------------------
# Per-class breakdown
# ---------------------------------------------------------------------------------------------


def per_class(run: RunData | str | Path) -> dict:
    """Metrics per class (the dataset's class folder).

    Per-clip metrics: the mean of the class's per-clip values (raw scale) and their unbiased std.
    FID / FVD: the Fréchet distance on the class's clips when it has at least 2 clips, always
    with the small-set warning (a class has far fewer than ``SMALL_SET_CLIPS`` clips: AVSync15
    has 30 a class, so these numbers rank classes only roughly and never compare with the
    full-set value); None with a reason below 2 clips.

    Returns:
        ``{class: {"n_clips", "n_videos", "metrics": {key: {"value", "std"?, "warnings"}}}}``,
        classes sorted by name.
    """
    run = run if isinstance(run, RunData) else load_run(run)
    out = {}
    for name in sorted(set(run.classes)):
        mask = run.classes == name
        n = int(mask.sum())
        metrics = {}
        for key in run.results["metrics"]:
            if key in run.per_clip:
                values = run.per_clip[key][mask]
                std = float(values.std(ddof=1)) if n > 1 else None
                metrics[key] = {"value": float(values.mean()), "std": std, "warnings": []}
            elif key in run.features:
                if n < 2:
                    reason = (
                        f"{key.upper()} needs at least 2 clips, class has {n}; below "
                        f"{SMALL_SET_CLIPS} clips it is biased anyway"
                    )
                    metrics[key] = {"value": None, "warnings": [reason]}
                    continue
                gt, gen = run.features[key]
                point = _frechet_point(key, gt[mask], gen[mask])
                metrics[key] = {"value": point.value, "warnings": point.warnings}
        out[name] = {
            "n_clips": n,
            "n_videos": int(len(set(run.videos[mask]))),
            "metrics": metrics,
        }
    return out
