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

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avsync_bench.errors import InputError
from avsync_bench.featurefile import frechet_features
from avsync_bench.metrics.distribution import SMALL_SET_CLIPS, MetricValue, fid, fvd
from avsync_bench.metrics.frechet import frechet_from_stats
from avsync_bench.results import FEATURES_FILE, FRECHET_FEATURES, load_results

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
DEFAULT_SEED = 0
DEFAULT_LEVEL = 0.95

METHOD = (
    "percentile bootstrap over test videos (videos drawn with replacement, each video's clips "
    "kept together); FID/FVD recomputed per resample with the Fréchet distance"
)

Progress = Callable[[str, int], Callable[[int], None]]
_FRECHET_METRICS = {"fid": fid, "fvd": fvd}


def _no_progress(_label: str, _total: int) -> Callable[[int], None]:
    return lambda _n: None


# ---------------------------------------------------------------------------------------------
# Loading a results folder
# ---------------------------------------------------------------------------------------------


@dataclass
class RunData:
    """One scoring run as read back from its results folder.

    Attributes:
        folder: the results folder. results: ``results.json`` as a dict.
        clips, videos, classes: (N,) str arrays, one entry per scored clip (evaluation order).
        per_clip: metric key → (N,) float64 raw per-clip values (from ``per_clip.csv``).
        features: ``"fid"`` / ``"fvd"`` → (gt, gen) per-clip features, (N, 11, 2048) / (N, 400)
            (from ``features.npz``); absent when the run did not save them.
        notes: what is missing and therefore has no interval.
    """

    folder: Path
    results: dict
    clips: np.ndarray
    videos: np.ndarray
    classes: np.ndarray
    per_clip: dict[str, np.ndarray] = field(default_factory=dict)
    features: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return str(self.folder)


def resolve_results_path(path: str | Path) -> Path:
    """``results.json`` given itself or its folder.

    Raises:
        ValueError: no ``results.json`` there.
    """
    path = Path(path)
    json_path = path / "results.json" if path.is_dir() else path
    if not json_path.is_file():
        raise InputError(f"{path}: no results.json (give a results folder or a results.json path)")
    return json_path


def load_run(path: str | Path) -> RunData:
    """Read ``results.json`` with the ``per_clip.csv`` and ``features.npz`` beside it.

    Raises:
        ValueError: not a results file, neither per-clip file present, or the two per-clip files
            list different clips (written by different runs).
    """
    json_path = resolve_results_path(path)
    folder = json_path.parent
    results = load_results(json_path)
    csv_path, npz_path = folder / "per_clip.csv", folder / FEATURES_FILE
    identity = None
    per_clip: dict[str, np.ndarray] = {}
    notes = []
    if csv_path.is_file():
        with csv_path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        identity = (
            np.array([r["clip"] for r in rows], dtype=str),
            np.array([r["video"] for r in rows], dtype=str),
            np.array([r["class"] for r in rows], dtype=str),
        )
        columns = rows[0].keys() if rows else []
        for key in results["metrics"]:
            if key not in FRECHET_FEATURES and key in columns:
                per_clip[key] = np.array([float(r[key]) for r in rows], dtype=np.float64)
    else:
        notes.append(f"{csv_path} absent: no intervals for the per-clip metrics")
    features: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if npz_path.is_file():
        with np.load(npz_path, allow_pickle=False) as data:
            npz_identity = (data["clip"], data["video"], data["class"])
            if identity is not None and not np.array_equal(identity[0], npz_identity[0]):
                raise InputError(
                    f"{npz_path} and {csv_path} list different clips (written by different runs?)"
                )
            identity = identity or npz_identity
            features.update(frechet_features(data, results["metrics"]))
    missing = [k.upper() for k in FRECHET_FEATURES if k in results["metrics"] and k not in features]
    if missing:
        notes.append(f"{npz_path} absent or without {'/'.join(missing)}: no interval for them")
    if identity is None:
        raise InputError(f"{folder}: neither per_clip.csv nor {FEATURES_FILE} beside results.json")
    return RunData(folder, results, *identity, per_clip=per_clip, features=features, notes=notes)


# ---------------------------------------------------------------------------------------------
# Resampling
# ---------------------------------------------------------------------------------------------


def video_groups(videos: np.ndarray) -> tuple[np.ndarray, int]:
    """(N,) group index of each clip's video (sorted video names → 0..V−1) and V."""
    names, inverse = np.unique(np.asarray(videos, dtype=str), return_inverse=True)
    return inverse.reshape(-1), len(names)


def resample_weights(videos: np.ndarray, n_resamples: int, seed: int = DEFAULT_SEED) -> np.ndarray:
    """(B, N) int64 clip multiplicities of ``n_resamples`` video-level bootstrap resamples.

    Each resample draws V of the V test videos with replacement; a clip's weight is the number
    of times its video was drawn, so the clips of one video always share one weight.
    """
    group, n_videos = video_groups(videos)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_videos, size=(n_resamples, n_videos))
    flat = draws + n_videos * np.arange(n_resamples)[:, None]
    counts = np.bincount(flat.ravel(), minlength=n_resamples * n_videos)
    return counts.reshape(n_resamples, n_videos)[:, group]


class _Moments:
    """Per-clip moments of one side's features for weighted Gaussian statistics.

    Args:
        features: (N, F, d) (F samples per clip: FID's 11 frames) or (N, d) (FVD).
    """

    def __init__(self, features: np.ndarray):
        x = np.asarray(features, dtype=np.float64)
        x = x.reshape(len(x), -1, x.shape[-1])
        self.frames, self.dim = x.shape[1], x.shape[2]
        self.center = x.reshape(-1, self.dim).mean(axis=0)  # centring keeps Σ w x xᵀ accurate
        self.x = x - self.center
        self.sums = self.x.sum(axis=1)  # (N, d) per-clip sums

    def stats(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean (d,) and unbiased covariance (d, d) of the set where clip i appears w_i times."""
        weights = np.asarray(weights, dtype=np.float64)
        n = weights.sum() * self.frames
        if n < 2:
            raise InputError(f"a covariance needs at least 2 samples, got {n:g}")
        drawn = np.flatnonzero(weights)
        mean = weights[drawn] @ self.sums[drawn] / n
        rows = self.x[drawn] * np.sqrt(weights[drawn])[:, None, None]
        rows = rows.reshape(-1, self.dim)
        second = rows.T @ rows  # Σ_i w_i Σ_f x xᵀ (one symmetric product)
        cov = (second - n * np.outer(mean, mean)) / (n - 1)
        return self.center + mean, cov

    def factor(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Mean (d,), rows A (r, d) with Σ = AᵀA / (n − 1), and n, for clip weights ``weights``.

        A's rows are √w_i (x_if − μ) for the r = (drawn clips) × F frames: the covariance's
        factor, never formed as a d × d matrix.
        """
        weights = np.asarray(weights, dtype=np.float64)
        n = weights.sum() * self.frames
        if n < 2:
            raise InputError(f"a covariance needs at least 2 samples, got {n:g}")
        drawn = np.flatnonzero(weights)
        mean = weights[drawn] @ self.sums[drawn] / n
        rows = (self.x[drawn] - mean) * np.sqrt(weights[drawn])[:, None, None]
        return self.center + mean, rows.reshape(-1, self.dim), n


def weighted_gaussian_stats(
    features: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and unbiased covariance (d, d), float64, of the feature set in which clip i
    (``features[i]``: (F, d) or (d,)) appears ``weights[i]`` times; equals
    :func:`avsync_bench.metrics.frechet.gaussian_stats` of the explicitly repeated set."""
    return _Moments(features).stats(weights)


def _interval(boot: np.ndarray, level: float) -> tuple[float | None, float | None]:
    finite = boot[np.isfinite(boot)]
    if not finite.size:
        return None, None
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def frechet_cholesky(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    factor: np.ndarray | bool | None = None,
) -> float:
    """:func:`~avsync_bench.metrics.frechet.frechet_from_stats` by a faster route when Σ1 is
    positive definite: with Σ1 = L Lᵀ (Cholesky), Σ1Σ2 is similar to the symmetric PSD matrix
    Lᵀ Σ2 L, so tr √(Σ1Σ2) = Σ √λᵢ(Lᵀ Σ2 L): one Cholesky factorisation and one
    eigenvalues-only decomposition instead of a full eigen-decomposition plus one (≈ 2× faster
    at 2048-d; equal to 1e-9 relative, tested). Falls back to ``frechet_from_stats`` (same
    value, same fallbacks and errors) when Σ1 is not numerically positive definite (fewer
    distinct samples than dimensions) or an eigenvalue is clearly negative. ``factor``: Σ1's
    Cholesky factor when already computed (``False``: known not to exist), shared by several
    Σ2 (the paired bootstrap's two runs share the GT side).
    """
    if factor is None:
        factor = _cholesky_or_none(sigma1)
    if factor is False:
        return frechet_from_stats(mu1, sigma1, mu2, sigma2)
    inner = factor.T @ sigma2 @ factor
    eigenvalues = np.linalg.eigvalsh((inner + inner.T) / 2.0)
    if not np.isfinite(eigenvalues).all() or eigenvalues.min() < -1e-6:  # √ > 1e-3 "imaginary"
        return frechet_from_stats(mu1, sigma1, mu2, sigma2)
    tr_covmean = float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def frechet_from_factors(
    mu1: np.ndarray, a1: np.ndarray, n1: float, mu2: np.ndarray, a2: np.ndarray, n2: float
) -> float:
    """The Fréchet distance when Σk = AkᵀAk / (nk − 1) with few rows (r1, r2 < d): the nonzero
    eigenvalues of Σ1Σ2 are the squared singular values of A1A2ᵀ / √((n1−1)(n2−1)), so
    tr √(Σ1Σ2) = Σ σᵢ(A1A2ᵀ) / √((n1−1)(n2−1)): an r1 × r2 SVD instead of d × d
    decompositions (the "N-dimensional route"; exact, and free of the √(rounding noise) that
    the d-dimensional route adds from the d − r zero eigenvalues)."""
    c1, c2 = n1 - 1.0, n2 - 1.0
    singular = np.linalg.svd(a1 @ a2.T, compute_uv=False)
    diff = mu1 - mu2
    trace1 = float(np.einsum("ij,ij->", a1, a1)) / c1
    trace2 = float(np.einsum("ij,ij->", a2, a2)) / c2
    return float(diff @ diff + trace1 + trace2 - 2.0 * singular.sum() / np.sqrt(c1 * c2))


def _frechet_boot(
    gt: _Moments, gen: _Moments | list[_Moments], weights: np.ndarray, tick: Callable[[int], None]
) -> np.ndarray:
    """(B,) Fréchet distances of the resamples (or (B, K) for K generated sides sharing one GT
    side: the GT statistics and their factorisation are computed once per resample)."""
    gens = gen if isinstance(gen, list) else [gen]
    out = np.full((len(weights), len(gens)), np.nan)
    for b, w in enumerate(weights):
        try:
            mu1, a1, n1 = gt.factor(w)
        except ValueError:
            tick(len(gens))
            continue
        shared = None
        for k, side in enumerate(gens):
            try:
                mu2, a2, n2 = side.factor(w)
                if len(a1) < gt.dim and len(a2) < side.dim:
                    out[b, k] = frechet_from_factors(mu1, a1, n1, mu2, a2, n2)
                    continue
                if shared is None:
                    sigma1 = a1.T @ a1 / (n1 - 1.0)
                    shared = (sigma1, _cholesky_or_none(sigma1))
                sigma2 = a2.T @ a2 / (n2 - 1.0)
                out[b, k] = frechet_cholesky(mu1, shared[0], mu2, sigma2, factor=shared[1])
            except (ValueError, np.linalg.LinAlgError):
                pass  # counted below as a failed resample
            finally:
                tick(1)
    return out if isinstance(gen, list) else out[:, 0]


def _cholesky_or_none(sigma: np.ndarray) -> np.ndarray | bool:
    try:
        return np.linalg.cholesky(sigma)
    except np.linalg.LinAlgError:
        return False


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
            boot = _frechet_boot(_Moments(gt), _Moments(gen), weights[:n_frechet], tick)
            failed = int((~np.isfinite(boot)).sum())
            if failed:
                warnings.append(f"{key}: {failed} of {n_frechet} resamples failed (no covariance)")
        else:
            value = entry["value"]
        row = {"value": value, "low": None, "high": None, "n_resamples": 0, "boot_mean": None}
        if boot is not None:
            low, high = _interval(boot, level)
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
                both = _frechet_boot(_Moments(gt_a), [_Moments(gen_a), _Moments(gen_b)],
                                     weights[:n_frechet], tick)  # fmt: skip
                boot = both[:, 0] - both[:, 1]
            else:
                boot_a = _frechet_boot(_Moments(gt_a), _Moments(gen_a), weights[:n_frechet], tick)
                boot_b = _frechet_boot(_Moments(gt_b), _Moments(gen_b), weights[:n_frechet], tick)
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
            row["low"], row["high"] = _interval(boot, level)
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
