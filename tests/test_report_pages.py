"""Per-class intervals (sample-space Fréchet) and the A-vs-B page of `compare --html`."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from test_stats import make_run
from typer.testing import CliRunner

from avsync_bench.class_stats import frechet_lowrank, per_class_intervals
from avsync_bench.cli import app
from avsync_bench.compare_page import worst_clips
from avsync_bench.metrics.frechet import frechet_from_stats
from avsync_bench.stats import load_run, weighted_gaussian_stats


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("pages")
    a = make_run(base / "a", n_videos=12, shift=0.2, offset=0.02, seed=1, dim=64)
    b = make_run(base / "b", n_videos=12, shift=0.6, seed=2, dim=64, standin=True)
    return a, b


def test_sample_space_frechet_equals_the_library():
    rng = np.random.default_rng(0)
    gt = rng.standard_normal((9, 11, 300))
    gen = gt + 0.3 * rng.standard_normal(gt.shape) + 0.1
    weights = rng.integers(0, 3, 9)
    expected = frechet_from_stats(
        *weighted_gaussian_stats(gt, weights), *weighted_gaussian_stats(gen, weights)
    )
    assert frechet_lowrank(gt, gen, weights) == pytest.approx(expected, rel=1e-6)
    small = rng.standard_normal((40, 8))  # more rows than dimensions: full-dimension route
    assert frechet_lowrank(small, small + 1.0) == pytest.approx(8.0, rel=1e-9)


def test_per_class_intervals_bracket_the_class_values(two_runs):
    run = load_run(two_runs[0])
    classes = per_class_intervals(run, n_resamples=200, n_frechet=20)
    assert sorted(classes) == sorted(set(run.classes))
    for rows in classes.values():
        for key in ("fid", "fvd", "ia", "relsync"):
            row = rows[key]
            assert row["low"] is not None and row["low"] <= row["high"]
            if key in ("ia", "relsync"):  # means of resampled means bracket the class mean
                assert row["low"] <= row["value"] <= row["high"]


def test_compare_html_page(two_runs, tmp_path):
    a, b = two_runs
    out = tmp_path / "ab"
    result = CliRunner().invoke(
        app,
        ["compare", str(a), str(b), "--resamples", "100", "--frechet-resamples", "10",
         "--html", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert re.search(r"compare: \d+ Fréchet distance\(s\) \(FID 22 at 64-d, FVD 22 at 64-d, "
                     r"\d+ per class", result.output)  # fmt: skip
    assert "estimated" in result.output
    page = (out / "index.html").read_text()
    assert '<table id="paired">' in page and "B: STAND-IN WEIGHTS" in page
    charts = re.findall(r'<div class="chart" data-metric="(\w+)"><svg', page)
    assert {"fid", "fvd", "ia", "it", "relsync"} <= set(charts)
    assert "95% interval" in page  # error bars' legend, as SVG text
    data = json.loads((out / "compare.json").read_text())
    assert data["per_class"]["class_0"]["fid"]["low"] is not None
    run_a, run_b = load_run(a), load_run(b)
    worst = worst_clips(run_a, run_b, "relsync", lower_is_better=False, n=5)
    assert worst["a"][0]["clip"] == run_a.clips[np.argmin(run_a.per_clip["relsync"])]
    assert [w["a"] for w in worst["a"]] == sorted(w["a"] for w in worst["a"])
    assert page.count('data-metric="relsync" data-side="a"') == 1
    table = page.split('data-metric="relsync" data-side="b"')[1].split("</table>")[0]
    assert table.count("<tr>") == 6  # header + the 5 worst clips of B


def test_small_set_bootstrap_takes_the_exact_sample_space_route(tmp_path):
    """Fewer samples than dimensions (a gallery at 2048-d): the resamples equal the library's."""
    from avsync_bench.resampling import FeatureMoments, frechet_boot, resample_weights

    run = load_run(make_run(tmp_path / "small", n_videos=4, dim=200, seed=3))
    gt, gen = run.features["fid"]
    assert gt.shape[0] * gt.shape[1] <= gt.shape[-1]
    weights = resample_weights(run.videos, 6, seed=0)
    boot = frechet_boot(FeatureMoments(gt), FeatureMoments(gen), weights, lambda _n: None)
    expected = [
        frechet_from_stats(*weighted_gaussian_stats(gt, w), *weighted_gaussian_stats(gen, w))
        for w in weights
    ]
    np.testing.assert_allclose(boot, expected, rtol=1e-6)
