"""Pieces shared by the run report (:mod:`avsync_bench.report`) and the A-vs-B page
(:mod:`avsync_bench.compare_page`): page skeleton, banners, per-class charts with intervals and
reference lines (matplotlib, inline SVG; nothing is fetched at view time)."""

from __future__ import annotations

import html
import io

import numpy as np

__all__ = ["CSS", "banner", "class_chart", "gt_reference", "page"]

CSS = """
body{font-family:sans-serif;margin:2em;max-width:1250px;color:#222}
table{border-collapse:collapse;margin:6px 0}
td,th{border:1px solid #bbb;padding:4px 8px;text-align:right} th{background:#eee}
td:first-child,th:first-child{text-align:left} .warn{color:#a60;margin:2px 0}
.banner{padding:10px 14px;margin:10px 0;border-radius:4px;font-weight:bold}
.banner.standin{background:#fde2e1;border:2px solid #c0392b;color:#8e1b10}
.banner.partial{background:#fff3cd;border:2px solid #d4a017;color:#6b4e00}
.chart{display:inline-block;margin:4px;vertical-align:top}
.clip{display:flex;gap:12px;align-items:center;margin:8px 0;border-bottom:1px solid #ddd;padding-bottom:6px}
video{width:256px;height:256px;background:#000} .note{color:#555;font-size:90%}
.better{color:#1a7f37} .worse{color:#b42318}
"""


def page(title: str, body: str, script: str = "") -> str:
    """A complete HTML document (inline CSS, error capture for the browser tests)."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>{CSS}</style>
<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message)));
</script>
</head><body>
{body}
<script>
{script}
document.addEventListener("DOMContentLoaded", () => {{
  setInterval(() => {{ document.body.dataset.errors = JSON.stringify(window.__errors); }}, 100);
}});
</script>
</body></html>
"""


def banner(results: dict, who: str = "") -> str:
    """Red banner for stand-in weights, amber banner for a partial run ('' when neither)."""
    prefix = f"{who}: " if who else ""
    parts = []
    if results.get("standin"):
        parts.append(
            f'<div class="banner standin" id="standin-banner">{html.escape(prefix)}STAND-IN WEIGHTS '
            "— computed with deterministic stand-in weights (a dry run of the pipeline): these "
            "numbers are not scores, and the leaderboard refuses them.</div>"
        )
    if results.get("partial"):
        counts = results.get("clip_counts", {})
        absent = results.get("absent") or results.get("missing") or []
        listed = ", ".join(map(str, absent[:5])) + (" …" if len(absent) > 5 else "")
        parts.append(
            f'<div class="banner partial" id="partial-banner">{html.escape(prefix)}PARTIAL RUN — '
            f"{counts.get('scored', '?')} of {counts.get('expected', '?')} test clips scored"
            + (f" (absent: {html.escape(listed)})" if listed else "")
            + "; not comparable with complete runs.</div>"
        )
    return "".join(parts)


def gt_reference(key: str) -> tuple[float | None, str]:
    """The ground truth's own value of a metric (raw scale) and how it is known.

    FID/FVD of the GT against itself is 0; RelSync of the GT against itself is exactly 0.5.
    IA, IT and AlignSync need the GT clips' frames 1..11 through ImageBind, which ``score`` does
    not compute, so there is no line for them (AV-Align's GT value is per clip: see the chart).
    """
    if key in ("fid", "fvd"):
        return 0.0, "ground truth vs itself = 0"
    if key == "relsync":
        return 0.5, "ground truth vs itself = 0.5"
    return None, ""


def class_chart(
    title: str,
    labels: list[str],
    values: list[float | None],
    lows: list[float | None],
    highs: list[float | None],
    scale: float = 1.0,
    reference: tuple[float | None, str] = (None, ""),
    per_class_reference: list[float | None] | None = None,
    overall: float | None = None,
    zero_line: bool = False,
) -> str:
    """A horizontal bar chart (inline SVG) of per-class values with their intervals.

    Args:
        values, lows, highs: raw-scale values and interval bounds (None: no bar / no error bar).
        scale: display factor (×100 metrics). reference: (raw value, label) of a vertical
            ground-truth line. per_class_reference: a GT marker per class (AV-Align).
        overall: the all-classes value, drawn as a dotted line. zero_line: a line at 0
            (differences).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    vals = np.array([np.nan if v is None else v * scale for v in values], dtype=float)
    low = np.array([np.nan if v is None else v * scale for v in lows], dtype=float)
    high = np.array([np.nan if v is None else v * scale for v in highs], dtype=float)
    plt.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable, selectable
    fig, ax = plt.subplots(figsize=(5.8, 0.3 * len(labels) + 1.9))
    y = np.arange(len(labels))
    colors = ["#4a7ab5" if np.isfinite(v) and v >= 0 else "#c46a4a" for v in vals]
    ax.barh(y, np.nan_to_num(vals), color=colors, alpha=0.85)
    has_ci = np.isfinite(low) & np.isfinite(high) & np.isfinite(vals)
    if has_ci.any():
        err = np.vstack([np.clip(vals - low, 0, None), np.clip(high - vals, 0, None)])
        ax.errorbar(vals[has_ci], y[has_ci], xerr=err[:, has_ci], fmt="none", ecolor="#222",
                    capsize=3, lw=1, label="95% interval")  # fmt: skip
    ref_value, ref_label = reference
    if ref_value is not None:
        ax.axvline(ref_value * scale, color="#c0392b", ls="--", lw=1.5, label=ref_label)
    if per_class_reference is not None:
        ref = np.array([np.nan if v is None else v * scale for v in per_class_reference])
        ax.scatter(ref, y, marker="|", s=200, color="#c0392b", zorder=3, label="ground truth")
    if overall is not None:
        ax.axvline(overall * scale, color="#555", ls=":", lw=1.5, label="all classes")
    if zero_line:
        ax.axvline(0, color="#222", lw=1)
    ax.set_yticks(y, labels)
    ax.set_title(title, fontsize=10)
    ax.invert_yaxis()
    if ax.get_legend_handles_labels()[0]:  # below the axes, never over the bars
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3,
                  frameon=False)  # fmt: skip
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]
