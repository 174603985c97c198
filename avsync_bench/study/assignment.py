"""Balanced, seeded assignment of items to raters and of methods to screen positions.

Two formats (issue #14):

* ``best-of``: every assignment shows all M methods side by side and the rater picks the best
  (the paper's Table 1 study, M = 4). The slot order comes from random Latin squares: blocks of M
  assignments, each block the M cyclic rotations of a fresh random permutation, so every method
  sits in every slot exactly once per block and, over the whole study, each (method, slot) count
  differs from any other by at most 1.
* ``pairwise``: every assignment shows two methods. The T assignments are spread over the
  M(M−1)/2 pairs as evenly as possible (counts within ±1), each pair is shown ⌊c/2⌋ times each
  way round, and the pairs shown an odd number of times are oriented along an Euler circuit, so
  every method is on the left and on the right equally often within ±1.

The layouts are then shuffled and dealt to the (item, rater) slots; each assignment records its
own seed (drawn from the study seed), so the whole plan is reproducible from the study seed.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

from avsync_bench.errors import OptionError

__all__ = ["FORMATS", "PlannedAssignment", "bundles", "layouts", "plan"]

FORMATS = ("best-of", "pairwise")


@dataclass(frozen=True)
class PlannedAssignment:
    """Item ``item`` (index into the item list) for rater bundle ``rater`` at ``position``.

    ``layout`` holds method indices in slot order (slot 0 is the left-most video)."""

    rater: int
    item: int
    position: int
    layout: tuple[int, ...]
    seed: int


def bundles(n_items: int, k: int, n_raters: int, rng: np.random.Generator) -> list[list[int]]:
    """Deal ``n_items`` items, each to exactly ``k`` distinct raters out of ``n_raters``.

    Items are shuffled, their k copies laid out consecutively and dealt round robin, so copies
    of one item land on k different raters and bundle sizes differ by at most 1.

    Raises:
        ValueError: ``k < 1`` or fewer raters than ``k``.
    """
    if k < 1:
        raise OptionError(f"--raters-per-item must be at least 1, got {k}")
    if n_raters < k:
        raise OptionError(
            f"--participants {n_raters} is fewer than --raters-per-item {k}: an item cannot be "
            "shown twice to one participant"
        )
    order = rng.permutation(n_items)
    out: list[list[int]] = [[] for _ in range(n_raters)]
    for s, item in enumerate(np.repeat(order, k)):
        out[s % n_raters].append(int(item))
    return out


def _best_of_layouts(n_methods: int, total: int, rng: np.random.Generator) -> list[tuple]:
    result: list[tuple] = []
    while len(result) < total:
        base = rng.permutation(n_methods)
        block = [tuple(int(m) for m in np.roll(base, r)) for r in rng.permutation(n_methods)]
        result.extend(block[: total - len(result)])
    return result


def _euler_orient(edges: list[tuple[int, int]], rng: np.random.Generator) -> list[tuple]:
    """Orient undirected ``edges`` so every vertex has |out − in| ≤ 1 (Euler circuits after
    joining the odd-degree vertices to a dummy vertex)."""
    degree = Counter(v for e in edges for v in e)
    dummy = -1
    all_edges = list(edges) + [(v, dummy) for v in sorted(degree) if degree[v] % 2]
    adjacency: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for index, (a, b) in enumerate(all_edges):
        adjacency[a].append((b, index))
        adjacency[b].append((a, index))
    for v in adjacency:
        rng.shuffle(adjacency[v])
    used = [False] * len(all_edges)
    oriented: list[tuple[int, int]] = []
    for start in list(adjacency):
        stack, path_edges = [(start, None)], []
        while stack:  # Hierholzer, iteratively; records the edges in circuit order
            v, via = stack[-1]
            while adjacency[v] and used[adjacency[v][-1][1]]:
                adjacency[v].pop()
            if adjacency[v]:
                w, index = adjacency[v].pop()
                used[index] = True
                stack.append((w, (v, w, index)))
            else:
                stack.pop()
                if via is not None:
                    path_edges.append(via)
        oriented += [(a, b) for a, b, index in path_edges if index < len(edges)]
    return oriented


def _pairwise_layouts(n_methods: int, total: int, rng: np.random.Generator) -> list[tuple]:
    pairs = list(itertools.combinations(range(n_methods), 2))
    counts = np.full(len(pairs), total // len(pairs))
    counts[rng.permutation(len(pairs))[: total % len(pairs)]] += 1
    result: list[tuple] = []
    odd: list[tuple[int, int]] = []
    for (a, b), c in zip(pairs, counts):
        result += [(a, b)] * (c // 2) + [(b, a)] * (c // 2)
        if c % 2:
            odd.append((a, b))
    return result + _euler_orient(odd, rng)


def layouts(fmt: str, n_methods: int, total: int, rng: np.random.Generator) -> list[tuple]:
    """``total`` slot orders (tuples of method indices), balanced as the module describes.

    Raises:
        ValueError: unknown format, or fewer than 2 methods.
    """
    if n_methods < 2:
        raise OptionError(f"a study compares at least 2 methods, got {n_methods}")
    if fmt == "best-of":
        return _best_of_layouts(n_methods, total, rng)
    if fmt == "pairwise":
        return _pairwise_layouts(n_methods, total, rng)
    raise OptionError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")


def plan(
    fmt: str, n_methods: int, n_items: int, k: int, n_raters: int, seed: int
) -> list[PlannedAssignment]:
    """The full assignment plan of a study (without attention checks), reproducible from ``seed``.

    Every item is given to exactly ``k`` distinct raters; the rater's item order is shuffled;
    layouts are balanced over the whole study and dealt at random.
    """
    rng = np.random.default_rng(seed)
    dealt = bundles(n_items, k, n_raters, rng)
    total = n_items * k
    shuffled = layouts(fmt, n_methods, total, rng)
    order = rng.permutation(total)
    seeds = rng.integers(0, 2**31 - 1, size=total)
    out, counter = [], 0
    for rater, items in enumerate(dealt):
        for position, item in enumerate(rng.permutation(items)):
            out.append(
                PlannedAssignment(
                    rater,
                    int(item),
                    position,
                    shuffled[order[counter]],
                    int(seeds[counter]),
                )
            )
            counter += 1
    return out
