"""Fréchet distance: golden official values, scipy's sqrtm formula, an analytic case."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import GOLDEN, need_shared
from scipy import linalg

from avsync_bench.metrics.distribution import fvd
from avsync_bench.metrics.frechet import frechet_distance, frechet_from_stats


def test_golden_official_cases_within_1e6_relative():
    need_shared(GOLDEN / "fid_fvd_math.json")
    from safetensors.numpy import load_file

    meta = json.loads((GOLDEN / "fid_fvd_math.json").read_text())
    tensors = load_file(str(GOLDEN / "fid_fvd_math.safetensors"))
    for case in meta["results"]:
        value = frechet_distance(tensors[f"{case['name']}.x1"], tensors[f"{case['name']}.x2"])
        assert value == pytest.approx(case["distance"], rel=1e-6, abs=1e-9), case["name"]


def _scipy_formula(x1, x2):
    mu1, mu2 = x1.mean(0), x2.mean(0)
    s1, s2 = np.cov(x1, rowvar=False), np.cov(x2, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_scipy_sqrtm_on_well_conditioned_inputs(seed):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(32, 32)) / 6 + np.eye(32)
    x1 = rng.normal(size=(400, 32)) @ mix
    x2 = rng.normal(size=(300, 32)) @ mix.T * 1.3 + 0.5
    assert frechet_distance(x1, x2) == pytest.approx(_scipy_formula(x1, x2), rel=1e-6)


def test_analytic_gaussians():
    # Diagonal covariances commute: d = |Δμ|² + Σ (σ1 − σ2)².
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    value = frechet_from_stats(mu1, np.diag(var1), mu2, np.diag(var2))
    expected = 5.0 + ((np.sqrt(var1) - np.sqrt(var2)) ** 2).sum()
    assert value == pytest.approx(expected, rel=1e-12)


def test_identical_sets_give_zero_and_order_does_not_matter():
    x = np.random.default_rng(3).normal(size=(200, 16))
    assert abs(frechet_distance(x, x)) < 1e-9
    assert frechet_distance(x, x[::-1]) == pytest.approx(0.0, abs=1e-9)


def test_fvd_refuses_fewer_than_two_clips():
    with pytest.raises(ValueError, match="at least 2 clips"):
        fvd(np.zeros((1, 400)), np.zeros((5, 400)))
