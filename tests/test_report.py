"""The HTML report, opened in a real headless Chromium from a local HTTP server."""

from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from tiny_extractors import tiny_extractors

from avsync_bench.report import build_report
from avsync_bench.results import write_results
from avsync_bench.scoring import ScoreOptions, score
from baselines.runner import run_adapter
from baselines.static import StaticAdapter

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--autoplay-policy=no-user-gesture-required"]  # fmt: skip


@pytest.fixture(scope="module")
def report(tiny_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    preds = root / "preds"
    run_adapter(StaticAdapter(), preds, data_root=tiny_dataset)
    options = ScoreOptions(
        preds=preds, data_root=tiny_dataset, metrics="fid,fvd,av_align", cache_dir=None
    )
    run = score(options, tiny_extractors())
    write_results(run.results, run.per_clip, root / "scores", run.features)
    index = build_report(
        root / "scores", root / "site", preds, tiny_dataset, n_resamples=50, n_frechet=5
    )
    return index


def test_report_files(report):
    page = report.read_text()
    assert '<table id="metrics">' in page and "FID" in page and "AV-Align" in page
    assert page.count("<svg") >= 1  # per-class chart, inline
    assert len(list((report.parent / "media/gen").rglob("*.mp4"))) == 6
    assert len(list((report.parent / "media/gt").rglob("*.mp4"))) == 6
    assert not re.search(r"(src|href)=\"https?://", page)  # nothing fetched at view time
    intervals = json.loads((report.parent / "intervals.json").read_text())
    assert intervals["metrics"]["av_align"]["low"] is not None


def test_report_per_class_charts_banner_and_sync_markup(report):
    page = report.read_text()
    assert 'id="standin-banner"' in page  # the tiny extractors are injected: a stand-in run
    charts = dict(re.findall(r'<div class="chart" data-metric="(\w+)">(.*?)</div>', page, re.S))
    assert {"fid", "fvd", "av_align"} <= set(charts)  # FID/FVD per class too
    for key in ("fid", "fvd"):
        assert "ground truth vs itself = 0" in charts[key] and "all classes" in charts[key]
    assert "ground truth" in charts["av_align"]  # per-class GT markers
    per_class = json.loads((report.parent / "per_class.json").read_text())
    assert set(per_class) == {"dog_barking", "hammering"}
    for rows in per_class.values():
        assert rows["fid"]["value"] is not None and rows["fid"]["low"] is not None
        assert rows["av_align"]["low"] <= rows["av_align"]["high"]
    assert page.count("<video controls muted") == 6  # GT muted: the pair plays one sound
    assert "linkPair" in page and page.count('onclick="playBoth(this)"') == 6


def test_report_in_headless_chromium(report, tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium package)")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(report.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
    profile = tmp_path / "profile"
    try:
        dom = subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=8000", "--dump-dom",
             url + "?synctest=1"],
            capture_output=True, text=True, timeout=120,
        ).stdout  # fmt: skip
        shot = Path(__file__).resolve().parents[1] / "report-screenshot.png"
        subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--window-size=1280,1800",
             "--virtual-time-budget=8000", f"--screenshot={shot}", url],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        server.shutdown()
    assert '<table id="metrics">' in dom and "<svg" in dom
    assert dom.count("<video") == 12
    assert 'data-sync-play="1"' in dom, "playing the generated clip did not start its GT clip"
    assert 'data-sync-pause="1"' in dom, "pausing the generated clip did not pause its GT clip"
    ready = re.search(r'data-videos-ready="(\d+)"', dom)
    assert ready and int(ready.group(1)) >= 1, "no video's metadata loaded (codec not decodable?)"
    errors = re.search(r'data-errors="([^"]*)"', dom)
    assert errors and json.loads(errors.group(1).replace("&quot;", '"')) == []
    assert shot.is_file() and shot.stat().st_size > 10_000
