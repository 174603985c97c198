"""Bootstrap CIs, paired comparisons and per-class breakdowns (avsync_bench.stats), on synthetic
results folders written with the real writer (results.json, per_clip.csv, features.npz)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avsync_bench import resampling, stats
from avsync_bench.metrics import METRICS, FeatureSet
from avsync_bench.metrics.distribution import SMALL_SET_CLIPS, fid, fvd
from avsync_bench.metrics.frechet import gaussian_stats
from avsync_bench.results import FEATURES_FILE, write_results

PER_CLIP = {"ia": (0.38, 0.03), "it": (0.30, 0.02), "relsync": (0.45, 0.05)}
SHA = {"fid_inception": "f" * 64, "i3d": "1" * 64, "imagebind_huge": "b" * 64}


def make_results(
    metrics: dict, n_videos: int, n_clips: int, dataset="avsync15", protocol="official", **extra
) -> dict:
    """A results dict shaped like :func:`avsync_bench.scoring.score`'s (real weights)."""
    entries = {}
    for key, (value, n_gt, n_gen, std) in metrics.items():
        m = METRICS[key]
        entries[key] = {"value": value, "n_gt": n_gt, "n_gen": n_gen}
        if std is not None:
            entries[key]["std"] = std
        entries[key].update(
            label=m.label,
            lower_is_better=m.lower_is_better,
            display_scale=m.display_scale,
            source=m.source,
            warnings=[],
        )
    results = {
        "schema": 1,
        "tool": "avsync-bench",
        "version": "0.1.0",
        "created_utc": "2025-01-01T00:00:00+00:00",
        "protocol": protocol,
        "dataset": dataset,
        "split": "test",
        "data_root": "datasets/AVSync15",
        "predictions": "/preds",
        "clip_counts": {"videos": n_videos, "expected": n_clips, "scored": n_clips},
        "partial": False,
        "absent": [],
        "problems": [],
        "metrics": entries,
        "weights": {n: {"file": f"{n}.pt", "sha256": s, "standin": False} for n, s in SHA.items()},
        "standin": False,
        "injected_extractors": [],
        "extractors": {"fid_inception": {"version": "1"}, "i3d": {"version": "1"}},
        "device": "cpu",
        "dtype": "fp32",
        "cache": {"hits": 0, "misses": 0},
        "warnings": [],
    }
    results.update(extra)
    return results


def make_run(
    folder,
    n_videos: int = 20,
    clips_per_video: int = 3,
    n_classes: int = 4,
    dim: int = 8,
    shift: float = 0.5,
    offset: float = 0.0,
    seed: int = 0,
    gt_seed: int = 1234,
    **extra,
):
    """Write a synthetic results folder; return the folder.

    GT features are N(0, I) (fixed by ``gt_seed``, so two runs share their GT side); generated
    features are N(shift, I). Per-clip metric values are normal around PER_CLIP's means plus
    ``offset``. FID features (N, 11, dim), FVD features (N, dim).
    """
    gt_rng, rng = np.random.default_rng(gt_seed), np.random.default_rng(seed)
    n = n_videos * clips_per_video
    rows = []
    for v in range(n_videos):
        for c in range(clips_per_video):
            cls = f"class_{v % n_classes}"
            rows.append(
                {"clip": f"{cls}/v{v:03d}_clip-0{c}", "video": f"{cls}/v{v:03d}.mp4", "class": cls}
            )
    features = FeatureSet()
    features.gt["fid_inception"] = gt_rng.standard_normal((n, 11, dim)).astype(np.float32)
    features.gt["i3d"] = gt_rng.standard_normal((n, dim)).astype(np.float32)
    features.gen["fid_inception"] = (rng.standard_normal((n, 11, dim)) + shift).astype(np.float32)
    features.gen["i3d"] = (rng.standard_normal((n, dim)) + shift).astype(np.float32)
    metrics = {}
    f = fid(features.gt["fid_inception"], features.gen["fid_inception"])
    metrics["fid"] = (f.value, f.n_gt, f.n_gen, None)
    f = fvd(features.gt["i3d"], features.gen["i3d"])
    metrics["fvd"] = (f.value, f.n_gt, f.n_gen, None)
    for key, (mean, spread) in PER_CLIP.items():
        values = rng.normal(mean + offset, spread, n)
        for row, value in zip(rows, values):
            row[key] = float(value)
        metrics[key] = (float(values.mean()), n, n, float(values.std(ddof=1)))
    for index, row in enumerate(rows):
        row["clip_index"] = index % clips_per_video
    results = make_results(metrics, n_videos, n, **extra)
    write_results(results, rows, folder, features)
    return folder


@pytest.fixture(scope="module")
def run20(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("run20"), n_videos=20)


@pytest.fixture(scope="module")
def boot20(run20):
    return stats.bootstrap(run20)


def _width(row):
    return row["high"] - row["low"]


def test_resamples_keep_each_videos_clips_together():
    videos = np.array([f"v{i % 7}" for i in range(21)])[np.random.default_rng(0).permutation(21)]
    weights = stats.resample_weights(videos, 500, seed=0)
    assert weights.shape == (500, 21) and weights.dtype.kind == "i"
    for name in set(videos):
        clip_weights = weights[:, videos == name]
        assert (clip_weights == clip_weights[:, :1]).all(), name  # the 3 clips move together
    per_video = weights / 3  # each video has 3 clips
    assert np.allclose(per_video.sum(axis=1), 7)  # 7 draws of 7 videos per resample
    assert (weights.max(axis=0) > 0).all() and (weights == 0).any()  # real resampling
    assert np.array_equal(weights, stats.resample_weights(videos, 500, seed=0))
    assert not np.array_equal(weights, stats.resample_weights(videos, 500, seed=1))
    # the resamples follow the sorted video names, not the row order
    order = np.argsort(videos, kind="stable")
    assert np.array_equal(stats.resample_weights(videos[order], 500), weights[:, order])


@pytest.mark.parametrize("shape", [(9, 11, 5), (9, 5)])
def test_weighted_stats_equal_stats_of_the_repeated_set(shape):
    rng = np.random.default_rng(3)
    features = rng.standard_normal(shape) * 3 + 10  # an offset mean checks the centring
    weights = np.array([0, 1, 2, 0, 3, 1, 1, 0, 2])
    mean, cov = stats.weighted_gaussian_stats(features, weights)
    repeated = np.repeat(features, weights, axis=0).reshape(-1, shape[-1])
    ref_mean, ref_cov = gaussian_stats(repeated)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-10, atol=1e-12)


def test_cholesky_route_equals_the_reference_frechet_distance():
    from avsync_bench.metrics.frechet import frechet_from_stats

    rng = np.random.default_rng(5)
    for n, d in ((400, 64), (30, 64)):  # positive definite; rank-deficient (the fallback)
        x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d))
        y = rng.standard_normal((n, d)) * 1.3 + 0.2
        stats_x, stats_y = gaussian_stats(x), gaussian_stats(y)
        reference = frechet_from_stats(*stats_x, *stats_y)
        assert stats.frechet_cholesky(*stats_x, *stats_y) == pytest.approx(reference, rel=1e-9)
        scale = np.trace(stats_x[1])  # d(x, x) = 0 up to rounding (1e-4 when rank-deficient)
        self_distance = stats.frechet_cholesky(*stats_x, *stats_x)
        assert self_distance == pytest.approx(
            frechet_from_stats(*stats_x, *stats_x), abs=1e-9 * scale
        )
        assert abs(self_distance) < 1e-7 * scale


def test_features_npz_holds_per_clip_features_in_per_clip_order(run20):
    with np.load(run20 / FEATURES_FILE, allow_pickle=False) as data:
        assert data["fid_gt"].shape == (60, 11, 8) and data["fvd_gen"].shape == (60, 8)
        assert data["clip"][0] == "class_0/v000_clip-00" and data["video"][3] == "class_1/v001.mp4"
        assert str(data["protocol"]) == "official" and str(data["dataset"]) == "avsync15"
    run = stats.load_run(run20)
    assert list(run.per_clip) == ["ia", "it", "relsync"] and set(run.features) == {"fid", "fvd"}
    assert not run.notes


def test_ci_contains_the_point_value_and_narrows_with_more_clips(boot20, tmp_path):
    big = stats.bootstrap(make_run(tmp_path / "run200", n_videos=200))
    for boot in (boot20, big):
        assert boot["n_resamples"] == 1000 and boot["n_frechet_resamples"] == 200
        for key, row in boot["metrics"].items():
            assert row["low"] <= row["value"] <= row["high"], (key, row)
            expected = 200 if key in ("fid", "fvd") else 1000
            assert row["n_resamples"] == expected
    for key in boot20["metrics"]:
        assert _width(big["metrics"][key]) < _width(boot20["metrics"][key]), key
    # the point values are those of results.json
    stored = json.loads((tmp_path / "run200" / "results.json").read_text())["metrics"]
    for key, row in big["metrics"].items():
        assert row["value"] == pytest.approx(stored[key]["value"], rel=1e-9)


def test_small_sets_carry_the_distribution_metrics_warning(boot20):
    assert boot20["n_clips"] == 60 < SMALL_SET_CLIPS
    for key in ("fid", "fvd"):
        assert any(
            f"below {SMALL_SET_CLIPS} clips" in w for w in boot20["metrics"][key]["warnings"]
        )
    assert not boot20["metrics"]["ia"]["warnings"]


def test_bootstrap_is_reproducible_with_its_seed(run20, boot20):
    assert stats.bootstrap(run20) == boot20
    other = stats.bootstrap(run20, seed=1, n_frechet=20)
    assert other["metrics"]["ia"]["low"] != boot20["metrics"]["ia"]["low"]
    assert other["seed"] == 1 and other["metrics"]["fid"]["n_resamples"] == 20


def test_compare_with_itself_gives_zero_and_even_odds(run20):
    result = stats.compare(run20, run20, n_frechet=30)
    assert set(result["metrics"]) == {"fid", "fvd", "ia", "it", "relsync"}
    for key, row in result["metrics"].items():
        assert row["diff"] == 0 and row["low"] == 0 and row["high"] == 0, key
        assert row["p_a_better"] == 0.5, key  # every resample is a tie, counted ½


def test_compare_is_direction_aware(tmp_path):
    # A: generated features closer to GT (lower FID/FVD) and higher per-clip values
    a = make_run(tmp_path / "a", shift=0.2, offset=0.05, seed=1)
    b = make_run(tmp_path / "b", shift=0.8, offset=0.0, seed=2)
    result = stats.compare(a, b, n_frechet=50)
    for key, row in result["metrics"].items():
        assert row["p_a_better"] > 0.95, (key, row)
        assert (row["high"] < 0) if row["lower_is_better"] else (row["low"] > 0), (key, row)
    flipped = stats.compare(b, a, n_frechet=50)
    for key, row in flipped["metrics"].items():
        assert row["p_a_better"] < 0.05, key
        assert row["diff"] == pytest.approx(-result["metrics"][key]["diff"])


def test_compare_pairs_clips_by_name_not_by_row_order(run20, tmp_path):
    import csv

    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    (shuffled / "results.json").write_text((run20 / "results.json").read_text())
    with (run20 / "per_clip.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    order = np.random.default_rng(0).permutation(len(rows))
    with np.load(run20 / FEATURES_FILE) as data:
        arrays = {k: data[k] for k in data.files}
    for key in ("clip", "video", "class", "clip_index", "fid_gt", "fid_gen", "fvd_gt", "fvd_gen"):
        arrays[key] = arrays[key][order]
    np.savez(shuffled / FEATURES_FILE, **arrays)
    with (shuffled / "per_clip.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[i] for i in order)
    result = stats.compare(run20, shuffled, n_frechet=10)
    for row in result["metrics"].values():
        assert row["low"] == pytest.approx(0, abs=1e-9) and row["high"] == pytest.approx(
            0, abs=1e-9
        )
    # the same resamples whatever the row order (sums differ only by rounding)
    mine, ref = stats.bootstrap(shuffled, n_frechet=10), stats.bootstrap(run20, n_frechet=10)
    for key, row in ref["metrics"].items():
        for field in ("value", "low", "high"):
            assert mine["metrics"][key][field] == pytest.approx(row[field], rel=1e-12), key


def test_compare_refuses_other_clips_dataset_or_protocol(run20, tmp_path):
    other = make_run(tmp_path / "other", n_videos=19, dataset="landscapes", protocol="corrected")
    with pytest.raises(ValueError) as info:
        stats.compare(run20, other)
    message = str(info.value)
    assert "datasets differ (A: avsync15, B: landscapes)" in message
    assert "protocols differ (A: official, B: corrected)" in message
    assert "clip sets differ: 3 clip(s) only in A (class_3/v019_clip-00" in message
    assert "0 only in B" in message


def test_per_class_breakdown(run20):
    run = stats.load_run(run20)
    table = stats.per_class(run)
    assert list(table) == ["class_0", "class_1", "class_2", "class_3"]
    cls = table["class_1"]
    mask = run.classes == "class_1"
    assert cls["n_clips"] == 15 and cls["n_videos"] == 5
    assert cls["metrics"]["ia"]["value"] == pytest.approx(run.per_clip["ia"][mask].mean())
    gt, gen = run.features["fid"]
    assert cls["metrics"]["fid"]["value"] == pytest.approx(fid(gt[mask], gen[mask]).value)
    assert any(f"below {SMALL_SET_CLIPS} clips" in w for w in cls["metrics"]["fvd"]["warnings"])


def test_per_class_skips_frechet_metrics_below_two_clips(tmp_path):
    run = stats.load_run(make_run(tmp_path / "one", n_videos=2, clips_per_video=1, n_classes=2))
    table = stats.per_class(run)
    assert table["class_0"]["metrics"]["fid"]["value"] is None
    assert "at least 2 clips" in table["class_0"]["metrics"]["fid"]["warnings"][0]
    assert table["class_0"]["metrics"]["ia"]["value"] == pytest.approx(run.per_clip["ia"][0])


def test_ties_count_half():
    assert stats._p_better(np.array([0.0, 0.0, -1.0, 1.0]), lower_is_better=True) == 0.5
    assert stats._p_better(np.array([-1.0, -2.0, 0.0, 1.0]), lower_is_better=True) == 0.625
    assert stats._p_better(np.array([-1.0, -2.0, 0.0, 1.0]), lower_is_better=False) == 0.375


def test_score_saves_features_for_the_bootstrap(tiny_dataset, tmp_path):
    from tiny_extractors import tiny_extractors

    from avsync_bench.scoring import ScoreOptions, score
    from baselines.runner import run_adapter
    from baselines.static import StaticAdapter

    preds = tmp_path / "preds"
    run_adapter(StaticAdapter(), preds, data_root=tiny_dataset)
    options = ScoreOptions(preds=preds, data_root=tiny_dataset, metrics="fid,fvd", cache_dir=None)
    scored = score(options, tiny_extractors())
    out = tmp_path / "scores"
    write_results(scored.results, scored.per_clip, out, scored.features)
    with np.load(out / FEATURES_FILE, allow_pickle=False) as data:
        assert data["fid_gt"].shape == data["fid_gen"].shape == (6, 11, 16)
        assert data["fvd_gt"].shape == (6, 8)
        assert list(data["clip"]) == [row["clip"] for row in scored.per_clip]
        assert list(data["video"]) == ["dog_barking/a.mp4"] * 3 + ["hammering/b.mp4"] * 3
    boot = stats.bootstrap(out, n_resamples=50, n_frechet=20)
    assert boot["n_videos"] == 2 and boot["n_clips"] == 6
    for key in ("fid", "fvd"):
        row = boot["metrics"][key]
        assert row["value"] == pytest.approx(scored.results["metrics"][key]["value"], rel=1e-6)
        assert row["low"] is not None and row["n_resamples"] == 20
    write_results(scored.results, scored.per_clip, out)  # no features: a stale file goes
    assert not (out / FEATURES_FILE).exists()
    assert "no interval" in " ".join(stats.bootstrap(out, n_resamples=20)["warnings"])


def test_factor_routes_equal_the_reference_and_share_the_gt_side():
    """Issue #10: the N-dimensional route (clips × frames < d) and the shared GT factorisation
    give the library's Fréchet distance of the explicitly weighted statistics."""
    from avsync_bench.metrics.frechet import frechet_from_stats

    rng = np.random.default_rng(3)
    for shape in ((12, 5, 90), (40, 24)):  # 60 rows < 90-d (N-dim route); 40 rows > 24-d
        gt, gen = rng.standard_normal(shape) + 0.1, rng.standard_normal(shape) * 1.2
        videos = np.array([f"v{i // 3}" for i in range(shape[0])])
        weights = stats.resample_weights(videos, 4)
        boot = resampling.frechet_boot(
            resampling.FeatureMoments(gt), resampling.FeatureMoments(gen), weights, lambda n: 0
        )
        reference = [
            frechet_from_stats(
                *stats.weighted_gaussian_stats(gt, w), *stats.weighted_gaussian_stats(gen, w)
            )
            for w in weights
        ]
        np.testing.assert_allclose(boot, reference, rtol=1e-6)
        pair = resampling.frechet_boot(
            resampling.FeatureMoments(gt),
            [resampling.FeatureMoments(gen), resampling.FeatureMoments(gt)],
            weights,
            lambda n: 0,
        )
        np.testing.assert_array_equal(pair[:, 0], boot)
        assert np.abs(pair[:, 1]).max() < 1e-9 * np.trace(np.cov(gt.reshape(-1, shape[-1]).T))
