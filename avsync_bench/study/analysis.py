"""What the votes say: the paper's vote table and the statistics behind it.

Input: the rows of :func:`avsync_bench.study.store.vote_rows` (one per vote). Attention-check
rows are set apart (they compare the GT clip with the Static baseline on shifted audio, not the
methods). Per question:

* ``votes``: votes per method and their share (the paper's Table 1 user-study columns: 300
  votes per question for 150 items × 2 raters).
* ``win_rate``: votes won / times shown, with a percentile bootstrap interval over items
  (items resampled with replacement, all votes of an item kept together).
* ``bradley_terry``: strengths log π (mean 0) fitted by choix's ILSR on the top-1 choices
  (the winner preferred to every other video shown; for two videos this is the Bradley–Terry
  model itself; small ridge ``alpha`` so that a method that never wins stays finite), with the
  same item bootstrap for the interval; methods ranked by strength.
* ``agreement``: Krippendorff's α (nominal: the chosen method) over items rated by several
  raters; 1 means identical choices; None when undefined (e.g. a single rater per item).
* ``position_bias``: share of votes for each screen slot against 1/n, with a χ² goodness-of-fit
  p-value (for two videos: the left and right win rates).
* ``kendall_tau``: Kendall's τ between the human ranking (Bradley–Terry strengths) and each
  automatic metric present in every method's ``results.json`` (oriented so that larger is
  better: a positive τ means the metric agrees with the raters).

``attention``: per rater, attention checks answered and failed (the GT clip not chosen on the
``sync`` question, or on any question when the study does not ask ``sync``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np
from scipy import stats

from avsync_bench.errors import InputError

__all__ = ["analyze", "bradley_terry", "krippendorff_alpha", "GT_NAME"]

GT_NAME = "_attention_gt"


def bradley_terry(n_methods: int, choices: list[tuple[int, list[int]]], alpha: float = 0.01):
    """Strengths (n_methods,) float64, log scale with mean 0, from top-1 choices.

    ``choices``: (winner index, [indices of the other videos shown]). Fitted with
    ``choix.ilsr_top1`` (Luce's choice axiom; Bradley–Terry for pairs), regularised by ``alpha``.
    """
    import choix

    params = choix.ilsr_top1(n_methods, choices, alpha=alpha, max_iter=1000, tol=1e-10)
    return np.asarray(params, dtype=np.float64) - np.mean(params)


def krippendorff_alpha(matrix: np.ndarray) -> float | None:
    """Nominal Krippendorff's α of a (raters, units) matrix of category codes (NaN = not rated),
    or None when it is undefined (fewer than two pairable values, or a single category)."""
    import krippendorff

    pairable = np.sum(~np.isnan(matrix), axis=0) >= 2
    values = matrix[:, pairable]
    if values.size == 0 or len(set(values[~np.isnan(values)].tolist())) < 2:
        return None
    return float(krippendorff.alpha(reliability_data=values, level_of_measurement="nominal"))


def _interval(samples: np.ndarray, level: float = 0.95) -> list[float | None]:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return [None, None]
    q = (1 - level) / 2
    return [float(np.quantile(samples, q)), float(np.quantile(samples, 1 - q))]


def _question(rows: list[dict], methods: list[str], n_boot: int, seed: int) -> dict:
    index = {m: i for i, m in enumerate(methods)}
    items = sorted({r["item"] for r in rows})
    by_item = defaultdict(list)
    for r in rows:
        by_item[r["item"]].append(r)
    votes = Counter(r["method"] for r in rows)
    shown = Counter(m for r in rows for m in r["shown"].split(";"))

    def tallies(sample_items):
        wins, seen, choices = np.zeros(len(methods)), np.zeros(len(methods)), []
        for item in sample_items:
            for r in by_item[item]:
                shown_ids = [index[m] for m in r["shown"].split(";")]
                winner = index[r["method"]]
                wins[winner] += 1
                seen[shown_ids] += 1
                choices.append((winner, [s for s in shown_ids if s != winner]))
        return wins, seen, choices

    wins, seen, choices = tallies(items)
    strengths = bradley_terry(len(methods), choices)
    rng = np.random.default_rng(seed)
    boot_rate, boot_bt = [], []
    for _ in range(n_boot):
        sample = [items[i] for i in rng.integers(0, len(items), len(items))]
        w, s, c = tallies(sample)
        with np.errstate(invalid="ignore", divide="ignore"):
            boot_rate.append(w / s)
        boot_bt.append(bradley_terry(len(methods), c))
    boot_rate, boot_bt = np.array(boot_rate), np.array(boot_bt)
    raters = sorted({r["rater"] for r in rows})
    matrix = np.full((len(raters), len(items)), np.nan)
    col = {item: j for j, item in enumerate(items)}
    for r in rows:
        matrix[raters.index(r["rater"]), col[r["item"]]] = index[r["method"]]
    slots = defaultdict(Counter)
    for r in rows:
        slots[r["n_videos"]][r["slot"]] += 1
    bias = {}
    for n, counts in sorted(slots.items()):
        observed = [counts.get(s, 0) for s in range(n)]
        total = sum(observed)
        p = float(stats.chisquare(observed).pvalue) if total else None
        bias[str(n)] = {
            "votes_per_slot": observed,
            "share_per_slot": [o / total for o in observed],
            "expected_share": 1 / n,
            "chi2_p": None if p is None or math.isnan(p) else p,
        }
    order = np.argsort(-strengths, kind="stable")
    return {
        "n_votes": len(rows),
        "n_items": len(items),
        "votes": {m: {"votes": votes[m], "share": votes[m] / len(rows)} for m in methods},
        "win_rate": {
            m: {
                "value": float(wins[i] / seen[i]) if seen[i] else None,
                "ci95": _interval(boot_rate[:, i]),
                "shown": shown[m],
            }
            for i, m in enumerate(methods)
        },
        "bradley_terry": {
            m: {"strength": float(strengths[i]), "ci95": _interval(boot_bt[:, i])}
            for i, m in enumerate(methods)
        },
        "ranking": [methods[i] for i in order],
        "agreement": {"krippendorff_alpha": krippendorff_alpha(matrix), "raters": len(raters)},
        "position_bias": bias,
    }


def _attention(rows: list[dict], questions: list[str]) -> dict:
    decisive = ["sync"] if "sync" in questions else list(questions)
    per_rater: dict[str, dict] = defaultdict(lambda: {"checks": 0, "failed": 0})
    by_check = defaultdict(list)
    for r in rows:
        by_check[(r["rater"], r["item"])].append(r)
    for (rater, _item), votes in sorted(by_check.items()):
        per_rater[rater]["checks"] += 1
        failed = any(v["method"] != GT_NAME for v in votes if v["question"] in decisive)
        per_rater[rater]["failed"] += int(failed)
    return {"decisive_questions": decisive, "per_rater": dict(per_rater)}


def _kendall(question: dict, methods: list[str], results: dict[str, dict]) -> dict:
    if set(results) != set(methods):
        return {}
    keys = set.intersection(*(set(results[m].get("metrics", {})) for m in methods))
    out = {}
    strengths = [question["bradley_terry"][m]["strength"] for m in methods]
    for key in sorted(keys):
        entries = [results[m]["metrics"][key] for m in methods]
        values = [e.get("value") for e in entries]
        if any(v is None for v in values):
            continue
        sign = -1.0 if entries[0].get("lower_is_better") else 1.0
        tau = stats.kendalltau(strengths, [sign * float(v) for v in values])
        out[key] = {
            "tau": None if math.isnan(tau.statistic) else float(tau.statistic),
            "p": None if math.isnan(tau.pvalue) else float(tau.pvalue),
            "n_methods": len(methods),
            "label": entries[0].get("label", key),
        }
    return out


def analyze(
    rows: list[dict],
    questions: list[str],
    results: dict[str, dict] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """The study's statistics (see the module docstring) as a JSON-ready dict.

    Args:
        rows: vote rows (``vote_rows``); attention rows are recognised by ``attention``.
        questions: the study's questions, in order.
        results: method name → its ``results.json`` dict, for Kendall τ (None: skipped).
        n_boot: bootstrap resamples over items (intervals are 95 % percentile intervals).

    Raises:
        ValueError: no votes on the methods yet.
    """
    main = [r for r in rows if not r["attention"]]
    if not main:
        raise InputError("no votes yet: nothing to analyse")
    methods = sorted({m for r in main for m in r["shown"].split(";")})
    out = {"methods": methods, "questions": {}, "n_bootstrap": n_boot, "seed": seed}
    for q in questions:
        q_rows = [r for r in main if r["question"] == q]
        if not q_rows:
            continue
        result = _question(q_rows, methods, n_boot, seed)
        result["kendall_tau"] = _kendall(result, methods, results or {})
        out["questions"][q] = result
    out["attention"] = _attention([r for r in rows if r["attention"]], questions)
    return out
