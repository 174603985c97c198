"""A self-contained static HTML report of one scoring run.

``build_report(results, out)`` writes ``out/index.html`` with: the metric table with bootstrap 95%
intervals (:func:`avsync_bench.stats.bootstrap`), per-class bar charts (matplotlib, inline SVG),
and — when the predictions folder and the dataset root are given — a gallery that plays each
generated clip beside its ground-truth clip with audio, sortable by any per-clip metric (worst
first by default). Media are copied/cut into ``out/media/``; the page loads nothing from the
network at view time (no external scripts, fonts or styles).
"""

from __future__ import annotations

import csv
import html
import io
import json
import shutil
from pathlib import Path

import numpy as np

from avsync_bench.errors import OptionError
from avsync_bench.stats import bootstrap, load_run, per_class

__all__ = ["build_report"]

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>avsync-bench report</title>
<style>
body{{font-family:sans-serif;margin:2em;max-width:1200px}} table{{border-collapse:collapse}}
td,th{{border:1px solid #bbb;padding:4px 8px;text-align:right}} th{{background:#eee}}
td:first-child{{text-align:left}} .warn{{color:#a60}} .chart{{display:inline-block;margin:4px}}
.clip{{display:flex;gap:12px;align-items:center;margin:8px 0;border-bottom:1px solid #ddd}}
video{{width:256px;height:256px;background:#000}}
</style>
<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message)));
</script>
</head><body>
<h1>avsync-bench report</h1>
<p>{summary}</p>
{warnings}
<h2>Metrics</h2>
<table id="metrics"><tr><th>metric</th><th>value</th><th>95% interval</th><th>better</th>
<th>n (GT / gen)</th></tr>
{rows}
</table>
<p>{method}</p>
<h2>Per class</h2>
<div id="charts">{charts}</div>
<h2>Gallery</h2>
{gallery}
<script>
function sortClips() {{
  const key = document.getElementById("sortkey").value;
  const asc = document.getElementById("sortdir").value === "asc";
  const box = document.getElementById("clips");
  const items = Array.from(box.children);
  items.sort((a, b) => (parseFloat(a.dataset[key]) - parseFloat(b.dataset[key])) * (asc ? 1 : -1));
  items.forEach(x => box.appendChild(x));
}}
document.addEventListener("DOMContentLoaded", () => {{
  if (document.getElementById("sortkey")) sortClips();
  const videos = Array.from(document.querySelectorAll("video"));
  let ready = 0;
  videos.forEach(v => v.addEventListener("loadedmetadata", () => {{
    ready += 1; document.body.dataset.videosReady = ready; }}));
  videos.forEach(v => v.addEventListener("error", () => window.__errors.push("video " + v.currentSrc)));
  setInterval(() => {{ document.body.dataset.errors = JSON.stringify(window.__errors); }}, 100);
}});
</script>
</body></html>
"""


def _svg_bar_chart(title: str, labels: list[str], values: list[float], scale: float) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 0.3 * len(labels) + 1.2))
    ax.barh(labels, np.asarray(values) * scale, color="#4a7ab5")
    ax.set_title(title)
    ax.invert_yaxis()
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def _gallery(out: Path, rows: list[dict], results: dict, preds: Path, data_root: Path) -> str:
    from avsync_bench.clips import load_clips
    from avsync_bench.datasets import DATASETS, load_split
    from avsync_bench.io.media import write_clip
    from avsync_bench.protocol import ProtocolMode

    dataset, metrics, mode = (
        results["dataset"],
        results["metrics"],
        ProtocolMode(results["protocol"]),
    )
    spec = DATASETS[dataset].spec
    videos = {v.rel: v for v in load_split(dataset, data_root)}
    keys = [k for k in metrics if k in rows[0]]
    items = []
    for row in rows:
        name = row["clip"]
        gen_target = out / "media" / "gen" / name
        gt_target = out / "media" / "gt" / name
        gen_target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(preds / name, gen_target)
        clip = load_clips(videos[row["video"]].path, [float(row["gt_start_s"])], spec, mode)[0]
        write_clip(
            gt_target, clip.frames, spec.fps, clip.audio[:, : spec.num_samples], spec.sample_rate
        )
        data = " ".join(f'data-{k}="{float(row[k]):.6g}"' for k in keys)
        values = ", ".join(
            f"{metrics[k]['label']} {float(row[k]) * metrics[k]['display_scale']:.2f}" for k in keys
        )
        items.append(
            f'<div class="clip" {data}><video controls preload="metadata" src="media/gen/{html.escape(name)}"></video>'
            f'<video controls preload="metadata" src="media/gt/{html.escape(name)}"></video>'
            f"<div><b>{html.escape(name)}</b><br>generated (left) · ground truth (right)<br>{values}</div></div>"
        )
    options = "".join(f'<option value="{k}">{metrics[k]["label"]}</option>' for k in keys)
    first_dir = "asc" if keys and not metrics[keys[0]]["lower_is_better"] else "desc"
    controls = (
        f'<p>sort by <select id="sortkey" onchange="sortClips()">{options}</select> '
        f'<select id="sortdir" onchange="sortClips()"><option value="{first_dir}">worst first</option>'
        f'<option value="{"desc" if first_dir == "asc" else "asc"}">best first</option></select></p>'
        if keys
        else ""
    )
    return controls + '<div id="clips">' + "".join(items) + "</div>"


def build_report(
    results: str | Path,
    out: str | Path,
    preds: str | Path | None = None,
    data_root: str | Path | None = None,
    n_resamples: int = 1000,
    n_frechet: int = 50,
) -> Path:
    """Write the report folder and return the path of ``index.html``.

    Args:
        results: a results folder (or its ``results.json``) written by ``avsync-bench score``.
        out: output folder (created).
        preds, data_root: the predictions folder and dataset root, for the video gallery.
        n_resamples, n_frechet: bootstrap resamples for per-clip metrics and for FID/FVD.

    Raises:
        ValueError: unreadable results, or ``preds`` given without ``data_root``.
    """
    if (preds is None) != (data_root is None):
        raise OptionError("--preds: the gallery needs both --preds and --data-root")
    run = load_run(results)
    res = run.results
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    intervals = bootstrap(run, n_resamples=n_resamples, n_frechet=n_frechet)
    rows_html = []
    for key, entry in res["metrics"].items():
        scale = entry.get("display_scale", 1.0)
        ci = intervals["metrics"].get(key, {})
        low, high = ci.get("low"), ci.get("high")
        interval = f"[{low * scale:.2f}, {high * scale:.2f}]" if low is not None else "—"
        label = entry["label"] + (" (×100)" if scale != 1 else "")
        rows_html.append(
            f"<tr><td>{html.escape(label)}</td><td>{entry['value'] * scale:.2f}</td><td>{interval}</td>"
            f"<td>{'↓' if entry['lower_is_better'] else '↑'}</td><td>{entry['n_gt']} / {entry['n_gen']}</td></tr>"
        )
    classes = per_class(run)
    charts = []
    for key, entry in res["metrics"].items():
        labels = [c for c in classes if classes[c]["metrics"].get(key, {}).get("value") is not None]
        if key in run.per_clip and labels:
            values = [classes[c]["metrics"][key]["value"] for c in labels]
            title = f"{entry['label']} per class" + (
                " (×100)" if entry.get("display_scale", 1) != 1 else ""
            )
            charts.append(
                f'<div class="chart">{_svg_bar_chart(title, labels, values, entry.get("display_scale", 1.0))}</div>'
            )
    if not charts:
        charts.append("<p>No per-clip metric in this run, so no per-class chart.</p>")
    gallery = "<p>Gallery not built (pass --preds and --data-root).</p>"
    if preds is not None:
        per_clip_rows = list(csv.DictReader(open(run.folder / "per_clip.csv")))
        gallery = _gallery(out, per_clip_rows, res, Path(preds), Path(data_root))
    flags = [res["protocol"], res["dataset"]] + (["PARTIAL"] if res.get("partial") else [])
    flags += ["STAND-IN WEIGHTS"] if res.get("standin") else []
    counts = res["clip_counts"]
    summary = (
        f"{' · '.join(flags)} — {counts['scored']}/{counts['expected']} clips of {counts['videos']} videos"
        f" — avsync-bench {html.escape(res['version'])}"
    )
    warnings = [w for e in res["metrics"].values() for w in e.get("warnings", [])]
    warnings += res.get("warnings", []) + intervals.get("warnings", [])
    page = _PAGE.format(
        summary=html.escape(summary),
        warnings="".join(f'<p class="warn">{html.escape(w)}</p>' for w in warnings),
        rows="\n".join(rows_html),
        method=html.escape(
            f"Intervals: {intervals.get('method', 'bootstrap')}, {n_resamples} resamples of test videos "
            f"({min(n_frechet, n_resamples)} for FID/FVD), seed {intervals.get('seed', 0)}."
        ),
        charts="".join(charts),
        gallery=gallery,
    )
    index = out / "index.html"
    index.write_text(page)
    (out / "intervals.json").write_text(json.dumps(intervals, indent=1, default=float))
    return index
