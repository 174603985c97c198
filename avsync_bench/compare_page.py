"""The A-vs-B HTML page written by ``avsync-bench compare A B --html DIR``.

Contents: stand-in/partial banners for either run; the paired table of
:func:`avsync_bench.stats.compare` (A, B, A − B with its 95% paired bootstrap interval,
P(A better)); per class, a chart of A − B with paired intervals for every metric
(:func:`avsync_bench.class_stats.paired_per_class`; a zero line; bars coloured by sign);
and, for every per-clip metric, the worst clips of A and the worst clips of B with both runs'
values. Static: inline SVG, no network at view time.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from avsync_bench.report_html import banner, class_chart, page
from avsync_bench.stats import RunData

__all__ = ["build_compare_page", "worst_clips"]


def _fmt(value, scale: float, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value * scale:{'+' if signed else ''}.2f}"


def worst_clips(a: RunData, b: RunData, key: str, lower_is_better: bool, n: int = 5) -> dict:
    """The ``n`` worst clips of A and of B on a per-clip metric (B aligned to A's clip order).

    Returns:
        ``{"a": [...], "b": [...]}``, each a list of ``{"clip", "class", "a", "b"}`` (raw scale),
        worst first (highest values first when lower is better).
    """
    va, vb = a.per_clip[key], b.per_clip[key]
    out = {}
    for side, values in (("a", va), ("b", vb)):
        order = np.argsort(-values if lower_is_better else values, kind="stable")[:n]
        out[side] = [
            {
                "clip": str(a.clips[i]),
                "class": str(a.classes[i]),
                "a": float(va[i]),
                "b": float(vb[i]),
            }
            for i in order
        ]
    return out


def _table(result: dict) -> str:
    level = round(100 * result["level"])
    head = (
        "<tr><th>metric</th><th>A</th><th>B</th><th>A − B</th>"
        f"<th>{level}% interval of A − B</th><th>P(A better)</th><th>resamples</th></tr>"
    )
    rows = []
    for row in result["metrics"].values():
        scale = row["display_scale"]
        label = (
            row["label"]
            + (" (×100)" if scale != 1 else "")
            + (" ↓" if row["lower_is_better"] else " ↑")
        )
        interval = (
            f"[{_fmt(row['low'], scale, True)}, {_fmt(row['high'], scale, True)}]"
            if row["low"] is not None
            else "–"
        )
        verdict = ""
        if row["low"] is not None and (row["low"] > 0 or row["high"] < 0):
            a_better = (row["high"] < 0) == row["lower_is_better"]
            verdict = (
                ' <span class="better">A better</span>'
                if a_better
                else ' <span class="worse">B better</span>'
            )
        p = "–" if row["p_a_better"] is None else f"{row['p_a_better']:.3f}"
        rows.append(
            f"<tr><td>{html.escape(label)}</td><td>{_fmt(row['a'], scale)}</td>"
            f"<td>{_fmt(row['b'], scale)}</td><td>{_fmt(row['diff'], scale, True)}</td>"
            f"<td>{interval}{verdict}</td><td>{p}</td><td>{row['n_resamples']}</td></tr>"
        )
    return f'<table id="paired">{head}{"".join(rows)}</table>'


def _class_charts(result: dict, per_class: dict) -> str:
    labels = sorted(per_class)
    charts = []
    for key, row in result["metrics"].items():
        cells = [per_class[c].get(key) for c in labels]
        if not any(c and c["diff"] is not None for c in cells):
            continue
        scale = row["display_scale"]
        title = f"{row['label']}: A − B per class" + (" (×100)" if scale != 1 else "")
        title += " (A better: < 0)" if row["lower_is_better"] else " (A better: > 0)"
        svg = class_chart(
            title,
            labels,
            [c["diff"] if c else None for c in cells],
            [c["low"] if c else None for c in cells],
            [c["high"] if c else None for c in cells],
            scale,
            overall=row["diff"],
            zero_line=True,
        )
        charts.append(f'<div class="chart" data-metric="{key}">{svg}</div>')
    return "".join(charts) or "<p>No per-class values.</p>"


def _worst(result: dict, a: RunData, b: RunData, n: int) -> str:
    parts = []
    for key, row in result["metrics"].items():
        if key not in a.per_clip or key not in b.per_clip:
            continue
        scale = row["display_scale"]
        worst = worst_clips(a, b, key, row["lower_is_better"], n)
        label = html.escape(row["label"] + (" (×100)" if scale != 1 else ""))
        for side in ("a", "b"):
            lines = "".join(
                f"<tr><td>{html.escape(w['clip'])}</td><td>{html.escape(w['class'])}</td>"
                f"<td>{_fmt(w['a'], scale)}</td><td>{_fmt(w['b'], scale)}</td></tr>"
                for w in worst[side]
            )
            parts.append(
                f'<div class="chart"><h3>{label}: worst clips of {side.upper()}</h3>'
                f'<table class="worst" data-metric="{key}" data-side="{side}"><tr><th>clip</th>'
                f"<th>class</th><th>A</th><th>B</th></tr>{lines}</table></div>"
            )
    return "".join(parts) or "<p>No per-clip metric in both runs.</p>"


def build_compare_page(
    result: dict, a: RunData, b: RunData, per_class: dict, out: str | Path, n_worst: int = 5
) -> Path:
    """Write ``out/index.html`` (and ``out/compare.json``); return the page's path.

    Args:
        result: :func:`avsync_bench.stats.compare`'s dict. a, b: the two runs, ``b`` aligned to
            ``a``'s clip order. per_class: :func:`avsync_bench.class_stats.paired_per_class`.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    warnings = [w for row in result["metrics"].values() for w in row["warnings"]]
    warnings += result["warnings"]
    summary = (
        f"{result['dataset']} · {result['protocol']} · {result['n_clips']} clips of "
        f"{result['n_videos']} videos · {html.escape(result['method'])}, seed {result['seed']}"
    )
    body = f"""<h1>A vs B</h1>
<p><b>A</b>: {html.escape(result["a"])}<br><b>B</b>: {html.escape(result["b"])}</p>
{banner(a.results, "A")}{banner(b.results, "B")}
<p>{summary}</p>
{"".join(f'<p class="warn">{html.escape(w)}</p>' for w in dict.fromkeys(warnings))}
<h2>Paired differences</h2>
{_table(result)}
<p class="note">The same test-video resamples are applied to both runs; "A better" / "B better"
marks intervals that exclude 0.</p>
<h2>Per class: A − B</h2>
<p class="note">Bars: the class's A − B; whiskers: its paired 95% interval; dotted line: A − B
over all classes. Per-class FID/FVD use only the class's clips (biased upwards on both sides).</p>
<div id="class-charts">{_class_charts(result, per_class)}</div>
<h2>Worst clips of each run</h2>
<div id="worst">{_worst(result, a, b, n_worst)}</div>"""
    index = out / "index.html"
    index.write_text(page("avsync-bench: A vs B", body))
    data = {**result, "per_class": per_class}
    (out / "compare.json").write_text(json.dumps(data, indent=1, default=float, ensure_ascii=False))
    return index
