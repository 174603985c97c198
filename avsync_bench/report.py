"""A self-contained static HTML report of one scoring run.

``build_report(results, out)`` writes ``out/index.html`` with:

- a red banner for stand-in weights and an amber one for a partial run;
- the metric table with bootstrap 95% intervals (:func:`avsync_bench.stats.bootstrap`);
- a per-class chart for **every** metric, FID and FVD included (:func:`avsync_bench.stats.per_class`),
  each bar with its 95% interval (videos of the class resampled,
  :func:`avsync_bench.class_stats.per_class_intervals`), the all-classes value as a dotted line and
  the ground truth's own value where it is known (FID/FVD 0, RelSync 50, AV-Align per class; see
  :func:`avsync_bench.report_html.gt_reference`);
- when the predictions folder and the dataset root are given, a gallery that plays each generated
  clip beside its ground-truth clip **in sync** (play, pause, seek and speed mirrored; the GT is
  muted unless its sound is chosen), sortable by any per-clip metric (worst first by default).

Media are copied/cut into ``out/media/``; ``intervals.json`` and ``per_class.json`` hold the numbers.
The page loads nothing from the network at view time (no external scripts, fonts or styles).
"""

from __future__ import annotations

import csv
import html
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from avsync_bench.class_stats import class_frechet_plan, frechet_lowrank, per_class_intervals
from avsync_bench.errors import OptionError
from avsync_bench.progress import format_seconds, frechet_estimate
from avsync_bench.report_html import banner, class_chart, gt_reference, page
from avsync_bench.stats import bootstrap, load_run

__all__ = ["build_report", "frechet_plan"]

_GALLERY_SCRIPT = """
function sortClips() {
  const key = document.getElementById("sortkey").value;
  const asc = document.getElementById("sortdir").value === "asc";
  const box = document.getElementById("clips");
  const items = Array.from(box.children);
  items.sort((a, b) => (parseFloat(a.dataset[key]) - parseFloat(b.dataset[key])) * (asc ? 1 : -1));
  items.forEach(x => box.appendChild(x));
}
function linkPair(gen, gt) {
  // play, pause, seek and speed of either video are mirrored on the other
  const mirror = (src, dst) => {
    src.addEventListener("play", () => {
      if (Math.abs(dst.currentTime - src.currentTime) > 0.05) dst.currentTime = src.currentTime;
      if (dst.paused) dst.play().catch(() => {});
    });
    src.addEventListener("pause", () => { if (!dst.paused) dst.pause(); });
    src.addEventListener("seeked", () => {
      if (Math.abs(dst.currentTime - src.currentTime) > 0.05) dst.currentTime = src.currentTime;
    });
    src.addEventListener("ratechange", () => { dst.playbackRate = src.playbackRate; });
  };
  mirror(gen, gt); mirror(gt, gen);
}
function setSound(select) {
  const pair = select.closest(".clip");
  const [gen, gt] = pair.querySelectorAll("video");
  gen.muted = select.value !== "gen"; gt.muted = select.value !== "gt";
}
function playBoth(button) {
  const [gen, gt] = button.closest(".clip").querySelectorAll("video");
  gen.currentTime = 0; gt.currentTime = 0; gen.play().catch(() => {});
}
document.addEventListener("DOMContentLoaded", () => {
  if (document.getElementById("sortkey")) sortClips();
  document.querySelectorAll(".clip").forEach(pair => {
    const [gen, gt] = pair.querySelectorAll("video"); linkPair(gen, gt);
  });
  const videos = Array.from(document.querySelectorAll("video"));
  let ready = 0;
  videos.forEach(v => v.addEventListener("loadedmetadata", () => {
    ready += 1; document.body.dataset.videosReady = ready; }));
  videos.forEach(v => v.addEventListener("error", () => window.__errors.push("video " + v.currentSrc)));
  if (location.search.includes("synctest")) {  // used by the browser test
    const first = document.querySelector(".clip");
    if (first) {
      const [gen, gt] = first.querySelectorAll("video");
      gen.muted = true;
      gt.addEventListener("play", () => { document.body.dataset.syncPlay = "1"; });
      gt.addEventListener("pause", () => { document.body.dataset.syncPause = "1"; });
      gen.play().then(() => setTimeout(() => gen.pause(), 300)).catch(e => window.__errors.push(String(e)));
    }
  }
});
"""


def _gallery(out: Path, rows: list[dict], results: dict, preds: Path, data_root: Path, tick) -> str:
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
        tick(1)
        data = " ".join(f'data-{k}="{float(row[k]):.6g}"' for k in keys)
        values = ", ".join(
            f"{metrics[k]['label']} {float(row[k]) * metrics[k]['display_scale']:.2f}" for k in keys
        )
        src = html.escape(name)
        items.append(
            f'<div class="clip" {data}><video controls preload="metadata" src="media/gen/{src}"></video>'
            f'<video controls muted preload="metadata" src="media/gt/{src}"></video>'
            f"<div><b>{src}</b><br>generated (left) · ground truth (right), played in sync<br>"
            '<button onclick="playBoth(this)">▶ both from the start</button> sound: '
            '<select onchange="setSound(this)"><option value="gen">generated</option>'
            '<option value="gt">ground truth</option></select>'
            f"<br>{values}</div></div>"
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


def frechet_plan(
    run, n_frechet: int, paired: bool = False, per_class: bool = True
) -> tuple[int, float, str]:
    """(number of Fréchet distances, estimated seconds, a one-line description) of the FID/FVD
    intervals of ``run`` (both runs when ``paired``): full-set resamples plus the point values,
    and, when ``per_class``, the per-class resamples."""
    n_frechet = max(0, n_frechet)
    sides = 2 if paired else 1
    count, seconds, parts = 0, 0.0, []
    for key in (k for k in run.results["metrics"] if k in run.features):
        gt, gen = run.features[key]
        dim, rows = gt.shape[-1], gt.size // gt.shape[-1]
        n = sides * (n_frechet + 1)
        count += n
        if rows <= dim:  # resamples take the sample-space route (resampling.frechet_boot)
            frechet_lowrank(gt, gen)  # warm-up
            began = time.perf_counter()
            frechet_lowrank(gt, gen)
            seconds += (time.perf_counter() - began) * (n - sides) + frechet_estimate(dim, sides)
        else:
            seconds += frechet_estimate(dim, n)
        parts.append(f"{key.upper()} {n} at {dim}-d")
    per_class = (
        class_frechet_plan(run, n_frechet, paired) if per_class else {"count": 0, "seconds": 0}
    )
    if per_class["count"]:
        parts.append(f"{per_class['count']} per class (sample-space route)")
    count += per_class["count"]
    seconds += per_class["seconds"]
    text = f"{count} Fréchet distance(s)" + (f" ({', '.join(parts)})" if parts else "")
    return count, seconds, text + f", estimated {format_seconds(seconds)} on this machine"


def _gt_av_align(run) -> dict[str, float]:
    """Per class, the mean AV-Align of the GT clips (``av_align_gt`` in per_clip.csv)."""
    path = run.folder / "per_clip.csv"
    if "av_align" not in run.results["metrics"] or not path.is_file():
        return {}
    with path.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("av_align_gt") not in (None, "")]
    by_class: dict[str, list[float]] = {}
    for row in rows:
        by_class.setdefault(row["class"], []).append(float(row["av_align_gt"]))
    return {c: sum(v) / len(v) for c, v in by_class.items()}


def _charts(run, res: dict, classes: dict) -> list[str]:
    labels = sorted(classes)
    gt_av_align = _gt_av_align(run)
    charts = []
    for key, entry in res["metrics"].items():
        rows = [classes[c].get(key) for c in labels]
        if not any(r and r["value"] is not None for r in rows):
            continue
        scale = entry.get("display_scale", 1.0)
        title = f"{entry['label']} per class" + (" (×100)" if scale != 1 else "")
        title += " ↓" if entry["lower_is_better"] else " ↑"
        per_class_gt = None
        if key == "av_align" and gt_av_align:
            per_class_gt = [gt_av_align.get(c) for c in labels]
        reference = gt_reference(key)
        note = "" if reference[0] is not None or per_class_gt is not None else (
            '<div class="note">No ground-truth line: its own value needs ImageBind on the GT '
            "clips' frames 1..11, which score does not compute.</div>"
        )  # fmt: skip
        if key in run.features:
            note += (
                '<div class="note">Per-class Fréchet distances use about 1/15 of the clips: '
                "biased upwards, for ranking classes only.</div>"
            )
        svg = class_chart(
            title,
            labels,
            [r["value"] if r else None for r in rows],
            [r["low"] if r else None for r in rows],
            [r["high"] if r else None for r in rows],
            scale,
            reference=reference,
            per_class_reference=per_class_gt,
            overall=entry["value"],
        )
        charts.append(f'<div class="chart" data-metric="{key}">{svg}{note}</div>')
    return charts


def build_report(
    results: str | Path,
    out: str | Path,
    preds: str | Path | None = None,
    data_root: str | Path | None = None,
    n_resamples: int = 1000,
    n_frechet: int = 50,
    progress: Callable | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Write the report folder and return the path of ``index.html``.

    Args:
        results: a results folder (or its ``results.json``) written by ``avsync-bench score``.
        out: output folder (created).
        preds, data_root: the predictions folder and dataset root, for the video gallery.
        n_resamples, n_frechet: bootstrap resamples for per-clip metrics and for FID/FVD (the
            full set and each class).
        progress: ``progress(label, total) -> tick(n)``; log: prints what is being done.

    Raises:
        ValueError: unreadable results, or ``preds`` given without ``data_root``.
    """
    log = log or (lambda _text: None)
    if (preds is None) != (data_root is None):
        raise OptionError("--preds: the gallery needs both --preds and --data-root")
    log(f"reading {results}")
    run = load_run(results)
    res = run.results
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _, _, plan = frechet_plan(run, min(n_frechet, n_resamples))
    log(f"intervals: {n_resamples} resamples per metric; {plan}")
    intervals = bootstrap(run, n_resamples=n_resamples, n_frechet=n_frechet, progress=progress)
    log("per-class values and intervals")
    classes = per_class_intervals(run, n_resamples, min(n_frechet, n_resamples), progress=progress)
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
    log("charts")
    charts = _charts(run, res, classes) or ["<p>No metric with per-class values in this run.</p>"]
    gallery = "<p>Gallery not built (pass --preds and --data-root).</p>"
    if preds is not None:
        per_clip_rows = list(csv.DictReader(open(run.folder / "per_clip.csv")))
        log(f"gallery: copying {len(per_clip_rows)} generated clips and cutting their GT clips")
        tick = (progress or (lambda _l, _t: lambda _n: None))("gallery clips", len(per_clip_rows))
        gallery = _gallery(out, per_clip_rows, res, Path(preds), Path(data_root), tick)
    flags = [res["protocol"], res["dataset"]] + (["PARTIAL"] if res.get("partial") else [])
    flags += ["STAND-IN WEIGHTS"] if res.get("standin") else []
    counts = res["clip_counts"]
    summary = (
        f"{' · '.join(flags)} — {counts['scored']}/{counts['expected']} clips of {counts['videos']} videos"
        f" — avsync-bench {res['version']}"
    )
    warnings = [w for e in res["metrics"].values() for w in e.get("warnings", [])]
    warnings += res.get("warnings", []) + intervals.get("warnings", [])
    method = (
        f"Intervals: {intervals.get('method', 'bootstrap')}, {n_resamples} resamples of test videos "
        f"({min(n_frechet, n_resamples)} for FID/FVD), seed {intervals.get('seed', 0)}. Per-class "
        "intervals resample the videos of each class the same way."
    )
    body = f"""<h1>avsync-bench report</h1>
{banner(res)}
<p>{html.escape(summary)}</p>
{"".join(f'<p class="warn">{html.escape(w)}</p>' for w in warnings)}
<h2>Metrics</h2>
<table id="metrics"><tr><th>metric</th><th>value</th><th>95% interval</th><th>better</th>
<th>n (GT / gen)</th></tr>
{"".join(rows_html)}
</table>
<p>{html.escape(method)}</p>
<h2>Per class</h2>
<p class="note">Bars: the class value; whiskers: its 95% interval; red dashed line or marks: the
ground truth's own value; dotted line: the value over all classes.</p>
<div id="charts">{"".join(charts)}</div>
<h2>Gallery</h2>
{gallery}"""
    index = out / "index.html"
    log(f"writing {index}")
    index.write_text(page("avsync-bench report", body, _GALLERY_SCRIPT))
    (out / "intervals.json").write_text(json.dumps(intervals, indent=1, default=float))
    (out / "per_class.json").write_text(json.dumps(classes, indent=1, default=float))
    return index
