"""Balanced, seeded assignment plans of the user study (issue #14)."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict

import numpy as np
import pytest

pytest.importorskip("sqlalchemy", reason="the study extra is not installed")

from avsync_bench.study.assignment import bundles, layouts, plan  # noqa: E402


def _spread(counter: Counter, keys) -> int:
    values = [counter.get(k, 0) for k in keys]
    return max(values) - min(values)


@pytest.mark.parametrize("n_items,k,n_raters", [(30, 2, 5), (150, 2, 15), (7, 3, 3), (11, 1, 4)])
def test_best_of_plan_gives_each_item_k_distinct_raters_and_balanced_slots(n_items, k, n_raters):
    m = 4
    planned = plan("best-of", m, n_items, k, n_raters, seed=3)
    raters_of = defaultdict(list)
    for p in planned:
        raters_of[p.item].append(p.rater)
    assert sorted(raters_of) == list(range(n_items))
    assert all(len(r) == k and len(set(r)) == k for r in raters_of.values())
    per_rater = Counter(p.rater for p in planned)
    assert max(per_rater.values()) - min(per_rater.values()) <= 1
    for rater in range(n_raters):  # positions 0..L-1, each once
        positions = sorted(p.position for p in planned if p.rater == rater)
        assert positions == list(range(len(positions)))
    slot_counts = Counter((method, slot) for p in planned for slot, method in enumerate(p.layout))
    for method in range(m):
        assert _spread(slot_counts, [(method, s) for s in range(m)]) <= 1
    assert all(sorted(p.layout) == list(range(m)) for p in planned)


@pytest.mark.parametrize("m,total", [(2, 9), (3, 25), (4, 31), (5, 17), (4, 300)])
def test_pairwise_layouts_balance_pairs_and_sides(m, total):
    result = layouts("pairwise", m, total, np.random.default_rng(1))
    assert len(result) == total
    pairs = Counter(tuple(sorted(p)) for p in result)
    assert _spread(pairs, list(itertools.combinations(range(m), 2))) <= 1
    left = Counter(p[0] for p in result)
    right = Counter(p[1] for p in result)
    for method in range(m):
        assert abs(left[method] - right[method]) <= 1, (method, left, right)


def test_plan_is_reproducible_from_its_seed():
    a = plan("best-of", 3, 20, 2, 4, seed=7)
    assert a == plan("best-of", 3, 20, 2, 4, seed=7)
    b = plan("best-of", 3, 20, 2, 4, seed=8)
    assert [p.layout for p in a] != [p.layout for p in b]
    assert len({p.seed for p in a}) == len(a)


def test_bad_plans_are_refused():
    with pytest.raises(ValueError, match="fewer than --raters-per-item"):
        bundles(10, 3, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="at least 2 methods"):
        layouts("best-of", 1, 5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="--format"):
        layouts("ranking", 3, 5, np.random.default_rng(0))
