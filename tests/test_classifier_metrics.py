"""Arithmetic of the classifier's loss and offset evaluation (PROTOCOL.md §3) on fixed φ."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from avsync_bench.classifier.eval import EvalItem, format_table, summarise
from avsync_bench.classifier.metrics import (
    bootstrap_ci,
    chance,
    contrastive_loss,
    offset_hits,
    pairwise_scores,
)
from avsync_bench.datasets import TestVideo


def test_loss_hand_computed_3x3():
    # phi / tau = [[ln2, ln3, 0], [0, 0, 0], [0, 0, 0]] with tau = 0.1 (audio rows, video columns)
    logits = torch.tensor([[math.log(2), math.log(3), 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    out = contrastive_loss((logits * 0.1)[None], tau=0.1)
    # rows (audio -> video): 2/(2+3+1) = 1/3, then 1/3, 1/3  -> mean CE ln 3
    assert out["av_loss"].item() == pytest.approx(math.log(3), abs=1e-6)
    # columns (video -> audio): col0 [ln2,0,0] -> 1/2; col1 [ln3,0,0] label 1 -> 1/5; col2 -> 1/3
    assert out["va_loss"].item() == pytest.approx(
        (math.log(2) + math.log(5) + math.log(3)) / 3, abs=1e-6
    )
    assert out["loss"].item() == pytest.approx((math.log(3) + math.log(30) / 3) / 2, abs=1e-6)
    # argmax: rows pick 1, 0, 0 (none on the diagonal); columns pick 0, 0, 0 (one on it)
    assert out["av_acc"].item() == 0.0
    assert out["va_acc"].item() == pytest.approx(1 / 3)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def test_loss_random_21x21_matches_numpy():
    rng = np.random.default_rng(3)
    phi = rng.normal(0, 2, size=(3, 21, 21))
    out = contrastive_loss(torch.from_numpy(phi), tau=0.1)
    av = np.mean([-_log_softmax(phi[b, p] / 0.1)[p] for b in range(3) for p in range(21)])
    va = np.mean([-_log_softmax(phi[b, :, q] / 0.1)[q] for b in range(3) for q in range(21)])
    assert out["av_loss"].item() == pytest.approx(av, rel=1e-5)
    assert out["va_loss"].item() == pytest.approx(va, rel=1e-5)
    assert out["loss"].item() == pytest.approx((av + va) / 2, rel=1e-5)


def test_pairwise_scores_is_every_pair():
    head = torch.nn.Bilinear(4, 4, 1)
    rng = torch.Generator().manual_seed(0)
    a, v = torch.randn(2, 5, 4, generator=rng), torch.randn(2, 5, 4, generator=rng)
    phi = pairwise_scores(lambda x, y: head(x, y), a, v)
    for b in range(2):
        for p in range(5):
            for q in range(5):
                assert phi[b, p, q].item() == pytest.approx(
                    head(a[b, p : p + 1], v[b, q : q + 1]).item(), abs=1e-6
                )


def test_offset_hits_hand_and_random():
    # one 3x3 video, centre 1: centre audio row [0, 1, 5] -> argmax 2; centre video column [3, 1, 0] -> 0
    phi = np.array([[[0, 3, 0], [0, 1, 5], [0, 0, 0]]], dtype=float)
    hits = offset_hits(phi, tolerances=(0, 1))
    assert hits["argmax"]["a2v"].tolist() == [2] and hits["argmax"]["v2a"].tolist() == [0]
    assert hits["a2v"][0].tolist() == [False] and hits["a2v"][1].tolist() == [True]
    # 31 clips: against direct loops, ties resolved to the first maximum like torch.argmax
    rng = np.random.default_rng(5)
    phi = rng.integers(0, 6, size=(40, 31, 31)).astype(float)
    hits = offset_hits(phi)
    for n in range(40):
        a2v = int(torch.argmax(torch.from_numpy(phi[n, 15, :])))
        v2a = int(torch.argmax(torch.from_numpy(phi[n, :, 15])))
        for t in (0, 1, 2, 5):
            assert hits["a2v"][t][n] == (abs(a2v - 15) <= t)
            assert hits["v2a"][t][n] == (abs(v2a - 15) <= t)
    assert chance(5) == pytest.approx(11 / 31) and chance(0) == pytest.approx(1 / 31)


def test_bootstrap_ci_brackets_the_mean():
    hits = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 1], dtype=float)
    lo, hi = bootstrap_ci(hits)
    assert lo < hits.mean() < hi and 0 <= lo and hi <= 1
    assert bootstrap_ci(hits) == (lo, hi)  # seeded
    assert bootstrap_ci(np.array([])) == (None, None)


def _video(name: str, cls: str) -> TestVideo:
    return TestVideo(f"{cls}/{name}.mp4", Path(f"/x/{cls}/{name}.mp4"), cls, cls)


def test_denominators_corrected_vs_official():
    # 3 listed: two valid (one hit at +-5, one miss), one too short
    items = [
        EvalItem(_video("a", "c1"), mels=torch.zeros(1), frames=torch.zeros(1)),
        EvalItem(_video("b", "c1"), mels=torch.zeros(1), frames=torch.zeros(1)),
        EvalItem(_video("c", "c2"), reason="too short: D = 3.000 s < 3.20 s needed"),
    ]
    phi = np.zeros((2, 31, 31))
    phi[0, 15, 17] = phi[0, 17, 15] = 1.0  # argmax 17: hit at +-5 and +-2, miss at +-1
    phi[1, 15, 0] = phi[1, 0, 15] = 1.0  # argmax 0: miss
    corrected = summarise(items, phi, "corrected")
    official = summarise(items, phi, "official")
    for result in (corrected, official):
        assert result["n_listed"] == 3 and result["n_valid"] == 2
        assert result["unusable"][0]["video"] == "c2/c.mp4"
        assert "too short" in result["unusable"][0]["reason"]
    assert corrected["overall"]["a2v"]["t5"]["value"] == pytest.approx(1 / 3)
    assert official["overall"]["a2v"]["t5"]["value"] == pytest.approx(1 / 2)
    assert official["overall"]["v2a"]["t2"]["value"] == pytest.approx(1 / 2)
    assert official["overall"]["v2a"]["t1"]["value"] == 0.0
    assert "valid examples only" in official["denominator"]
    assert corrected["per_class"]["c2"]["a2v"]["t5"]["value"] == 0.0
    assert corrected["per_class"]["c2"]["a2v"]["t5"]["value_valid_only"] is None
    table = format_table(official)
    assert "chance" in table and "35.48" in table and "too short" in table
