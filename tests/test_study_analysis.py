"""The user study's statistics on synthetic vote tables with known answers (issue #14)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("choix", reason="the study extra is not installed")

from avsync_bench.study.analysis import GT_NAME, analyze  # noqa: E402

METHODS = ["A", "B", "C", "D"]
STRENGTH = {"A": 1.5, "B": 0.5, "C": 0.0, "D": -1.0}  # log-strengths of the simulated raters


def _row(item, rater, question, shown, chosen, attention=False):
    return {
        "item": item, "rater": rater, "question": question, "shown": ";".join(shown),
        "method": chosen, "slot": shown.index(chosen), "n_videos": len(shown),
        "attention": attention,
    }  # fmt: skip


def _luce_votes(n_items=150, raters=2, seed=0, questions=("iq", "sync")):
    rng = np.random.default_rng(seed)
    rows = []
    for item in range(n_items):
        for r in range(raters):
            shown = list(rng.permutation(METHODS))
            p = np.exp([STRENGTH[m] for m in shown])
            for q in questions:
                rows.append(_row(item, f"P{r}", q, shown, shown[rng.choice(4, p=p / p.sum())]))
    return rows


def test_bradley_terry_recovers_the_simulated_order_with_intervals():
    result = analyze(_luce_votes(), ["iq", "sync"], n_boot=60)
    for q in ("iq", "sync"):
        r = result["questions"][q]
        assert r["ranking"] == ["A", "B", "C", "D"]
        assert r["n_votes"] == 300 and sum(v["votes"] for v in r["votes"].values()) == 300
        bt = r["bradley_terry"]
        strengths = np.array([bt[m]["strength"] for m in METHODS])
        # ILSR recovers log-strengths up to a constant: compare centred values
        truth = np.array([STRENGTH[m] for m in METHODS])
        assert np.allclose(strengths, truth - truth.mean(), atol=0.45)
        for m in METHODS:
            low, high = bt[m]["ci95"]
            assert low <= bt[m]["strength"] <= high
            w = r["win_rate"][m]
            assert w["ci95"][0] <= w["value"] <= w["ci95"][1] and w["shown"] == 300
        assert r["win_rate"]["A"]["ci95"][0] > r["win_rate"]["D"]["ci95"][1]
        bias = r["position_bias"]["4"]
        assert sum(bias["votes_per_slot"]) == 300 and bias["chi2_p"] > 0.001


def test_identical_raters_agree_perfectly_and_random_ones_do_not():
    rng = np.random.default_rng(1)
    rows = []
    for item in range(40):
        shown = list(rng.permutation(METHODS))
        chosen = shown[rng.integers(4)]
        rows += [_row(item, rater, "fc", shown, chosen) for rater in ("P1", "P2", "P3")]
    result = analyze(rows, ["fc"], n_boot=20)
    assert result["questions"]["fc"]["agreement"]["krippendorff_alpha"] == pytest.approx(1.0)
    noisy = [dict(r, method=METHODS[rng.integers(4)]) for r in rows]
    alpha = analyze(noisy, ["fc"], n_boot=20)["questions"]["fc"]["agreement"]["krippendorff_alpha"]
    assert alpha < 0.3


def test_position_bias_is_detected():
    rows = []
    for item in range(60):  # the rater always picks the left video
        shown = ["A", "B"] if item % 2 else ["B", "A"]
        rows.append(_row(item, "P1", "sync", shown, shown[0]))
    bias = analyze(rows, ["sync"], n_boot=20)["questions"]["sync"]["position_bias"]["2"]
    assert bias["share_per_slot"] == [1.0, 0.0] and bias["chi2_p"] < 1e-6


def test_kendall_tau_against_metrics_respects_their_direction():
    results = {
        m: {"metrics": {
            "fvd": {"value": 100 - 10 * STRENGTH[m], "lower_is_better": True, "label": "FVD"},
            "ia": {"value": STRENGTH[m], "lower_is_better": False, "label": "IA"},
            "it": {"value": -STRENGTH[m], "lower_is_better": False, "label": "IT"},
        }}
        for m in METHODS
    }  # fmt: skip
    tau = analyze(_luce_votes(), ["iq"], results, n_boot=20)["questions"]["iq"]["kendall_tau"]
    assert tau["fvd"]["tau"] == pytest.approx(1.0) and tau["ia"]["tau"] == pytest.approx(1.0)
    assert tau["it"]["tau"] == pytest.approx(-1.0) and tau["ia"]["n_methods"] == 4


def test_attention_checks_are_counted_per_rater_and_kept_out_of_the_table():
    rows = _luce_votes(n_items=20, questions=("iq", "sync"))
    for rater, chosen in (("P0", GT_NAME), ("P1", "_attention_static")):
        for q in ("iq", "sync"):
            rows.append(_row(1000, rater, q, [GT_NAME, "_attention_static"], chosen, True))
    result = analyze(rows, ["iq", "sync"], n_boot=20)
    assert result["attention"]["per_rater"] == {
        "P0": {"checks": 1, "failed": 0},
        "P1": {"checks": 1, "failed": 1},
    }
    assert result["methods"] == METHODS


def test_no_votes_is_an_error():
    with pytest.raises(ValueError, match="no votes"):
        analyze([], ["iq"])
