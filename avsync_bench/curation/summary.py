"""The curation summary: counts per step and class (JSON) and an HTML page with histograms.

The HTML page shows, per measurement, a histogram of every window's value (all windows, and the
windows that passed every threshold) with the thresholds drawn as vertical lines (matplotlib,
inline SVG, no external resources), then the counts per step and the table per class.
"""

from __future__ import annotations

import html
import io

import numpy as np

from avsync_bench.curation.settings import MEASUREMENTS, Thresholds

__all__ = ["build_summary", "render_html"]


def build_summary(frame, examples_before, examples, counts, dropped, split, release) -> dict:
    """Counts per step and per class (see ``docs/curation.md`` for each field)."""
    windows = frame[frame["window_index"] >= 0]
    per_video = frame.drop_duplicates("video")
    failed: dict[str, int] = {}
    for reason in windows["reason"]:
        if reason in ("kept", "class_below_min"):
            continue
        for part in reason.split(";"):
            failed[part] = failed.get(part, 0) + 1
    lines = {part: set(release[part]) for part in ("train", "test")}
    per_class = {}
    for folder, group in frame.groupby("class_folder", sort=True):
        win = group[group["window_index"] >= 0]
        ex = [e for e in examples if e["class_folder"] == folder]
        per_class[folder] = {
            "videos": int(group["video"].nunique()),
            "windows": int(len(win)),
            "windows_passed": int(win["passed"].sum()),
            "examples_before_class_filter": int(counts.get(folder, 0)),
            "class_kept": folder not in dropped and counts.get(folder, 0) > 0,
            "examples": len(ex),
            "train_videos": len({e["video"] for e in ex if split.get(e["video"]) == "train"}),
            "test_videos": len({e["video"] for e in ex if split.get(e["video"]) == "test"}),
        }
    errors = frame[(frame["window_index"] < 0) & frame["error"].notna()]
    return {
        "counts": {
            "videos": int(frame["video"].nunique()),
            "decode_errors": int(len(errors)),
            "videos_without_window": int(
                ((frame["window_index"] < 0) & frame["error"].isna()).sum()
            ),
            "scenes": int(per_video["n_scenes"].fillna(0).sum()),
            "scenes_too_short": int(per_video["n_short_scenes"].fillna(0).sum()),
            "windows": int(len(windows)),
            "windows_passed": int(windows["passed"].sum()),
            "windows_failed_by": dict(sorted(failed.items())),
            "windows_kept": int(windows["kept"].sum()),
            "windows_dropped": int((~windows["kept"]).sum()),
            "examples_before_class_filter": len(examples_before),
            "classes_with_examples": len(counts),
            "classes_dropped": dropped,
            "classes_kept": len(counts) - len(dropped),
            "examples": len(examples),
            "examples_written": len(lines["train"]) + len(lines["test"]),
            "train_examples": len(lines["train"]),
            "test_examples": len(lines["test"]),
        },
        "per_class": per_class,
        "decode_errors": [
            {"video": r.video, "error": r.error} for r in errors.itertuples(index=False)
        ],
        "write_errors": release["errors"],
    }


def _histogram(name: str, values: np.ndarray, passed: np.ndarray, bound: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 2.8))
    finite = np.isfinite(values)
    data = values[finite]
    if data.size:
        lo, hi = float(data.min()), float(data.max())
        for side in ("lower", "upper"):
            if bound.get(side) is not None:
                lo, hi = min(lo, bound[side]), max(hi, bound[side])
        span = hi - lo or max(abs(hi), 1e-6)
        bins = np.linspace(lo - 0.02 * span, hi + 0.02 * span, 41)
        ax.hist(data, bins=bins, color="#b8c7dc", label=f"all windows ({data.size})")
        ax.hist(values[finite & passed], bins=bins, color="#3b6ea8", label="passed all")
    for side, style in (("lower", "--"), ("upper", ":")):
        if bound.get(side) is not None:
            ax.axvline(
                bound[side], color="#c0392b", linestyle=style, label=f"{side} {bound[side]:.4g}"
            )
    ax.set_title(name)
    ax.set_ylabel("windows")
    ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def _pct(value) -> str:
    return "?" if value is None else f"{float(value):g}th"


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(summary: dict, frame, thresholds: Thresholds) -> str:
    """The summary page (self-contained HTML)."""
    windows = frame[frame["window_index"] >= 0]
    passed = windows["passed"].to_numpy(bool)
    charts = []
    for m in MEASUREMENTS:
        values = windows[m.name].to_numpy(float)
        chart = _histogram(m.name, values, passed, thresholds.bounds[m.name])
        charts.append(
            f'<figure class="chart" data-measurement="{m.name}">{chart}'
            f"<figcaption>{html.escape(m.description)} [{html.escape(m.unit)}]</figcaption></figure>"
        )
    counts = summary["counts"]
    count_rows = [
        [k, ", ".join(f"{a}: {b}" for a, b in v.items()) if isinstance(v, dict) else v]
        for k, v in counts.items()
    ]
    class_rows = [[c, *v.values()] for c, v in summary["per_class"].items()]
    class_header = ["class", *(next(iter(summary["per_class"].values()), {}).keys())]
    flags = []
    if summary.get("networks", {}).get("standin"):
        flags.append("STAND-IN networks: the measurements are not meaningful.")
    if summary.get("partial"):
        flags.append("PARTIAL: some examples could not be written.")
    banner = "".join(f'<p class="flag">{html.escape(f)}</p>' for f in flags)
    ref = summary.get("thresholds_reference", {})
    percentiles = summary.get("percentiles", {})
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>AVSync-AC curation summary</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 12px; }}
figure {{ margin: 0; width: 480px; }} figure svg {{ width: 100%; height: auto; }}
figcaption {{ font-size: 12px; color: #555; }}
table {{ border-collapse: collapse; font-size: 13px; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; }}
.flag {{ background: #fdecea; color: #a00; padding: 6px; font-weight: bold; }}
</style></head><body>
<h1>AVSync-AC curation summary</h1>{banner}
<p>{counts["videos"]} videos, {counts["windows"]} windows of {summary["settings"]["window"]} s
(stride {summary["settings"]["stride"]} s inside each scene); {counts["windows_kept"]} kept,
{counts["windows_dropped"]} dropped; {counts["examples"]} examples in {counts["classes_kept"]}
classes. Thresholds at the {_pct(percentiles.get("lower"))} (lower bounds) and
{_pct(percentiles.get("upper"))} (upper bounds) percentiles of the reference
{html.escape(str(ref.get("path", "")))} ({ref.get("windows", "?")} windows).</p>
<h2>Measurements</h2><div class="charts">{"".join(charts)}</div>
<h2>Counts</h2>{_table(["step", "count"], count_rows)}
<h2>Per class</h2>{_table(class_header, class_rows)}
</body></html>
"""
