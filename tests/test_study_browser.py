"""The user study end to end in a real browser: Playwright driving Debian's chromium against
`avsync-bench study serve` on 127.0.0.1, with a small study built from the AVSync15 gallery
(Static against the command adapter's output). Screenshots go to test-artifacts/study/."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import GALLERY, need_shared

pytest.importorskip("sqlalchemy", reason="the study extra is not installed")

from avsync_bench.study.models import open_database  # noqa: E402
from avsync_bench.study.store import StudySettings, create_study, invite, vote_rows  # noqa: E402
from baselines.command import CommandAdapter  # noqa: E402
from baselines.runner import run_adapter  # noqa: E402
from baselines.static import StaticAdapter  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REPO = Path(__file__).resolve().parents[1]
ARTEFACTS = REPO / "test-artifacts" / "study"
PAN = """
import sys
import av
import numpy as np
from PIL import Image
image = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
with av.open(sys.argv[2], "w") as out:
    stream = out.add_stream("libx264", rate=6)
    stream.width, stream.height, stream.pix_fmt = image.shape[1], image.shape[0], "yuv420p"
    for i in range(12):
        frame = av.VideoFrame.from_ndarray(np.roll(image, 6 * i, axis=1), format="rgb24")
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`avsync-bench study serve` in a subprocess; stopped by the test (and at the end)."""

    def __init__(self, db: str, port: int, env: dict, log: Path):
        self.args = [sys.executable, "-m", "avsync_bench.cli", "study", "serve", "gallery",
                     "--host", "127.0.0.1", "--port", str(port), "--db", db]  # fmt: skip
        self.url, self.env, self.log, self.process = f"http://127.0.0.1:{port}", env, log, None

    def start(self) -> None:
        handle = open(self.log, "a")
        self.process = subprocess.Popen(self.args, env=self.env, cwd=REPO, stdout=handle,
                                        stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("study serve exited:\n" + self.log.read_text()[-3000:])
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("study serve did not answer within 180 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def gallery_study(tmp_path_factory):
    need_shared(GALLERY)
    root = tmp_path_factory.mktemp("gallery_study")
    data = root / "data"
    lines = (GALLERY / "test.txt").read_text().split()[:1]
    for line in lines:
        (data / "videos" / line).parent.mkdir(parents=True, exist_ok=True)
        (data / "videos" / line).symlink_to(GALLERY / "videos" / line)
    (data / "test.txt").write_text("\n".join(lines) + "\n")
    shutil.copy(GALLERY / "class_mapping.json", data / "class_mapping.json")
    run_adapter(StaticAdapter(), root / "static", data_root=data)
    (root / "pan.py").write_text(PAN)
    adapter = CommandAdapter(f"{sys.executable} {root / 'pan.py'} {{image}} {{out}}", timeout=120)
    run_adapter(adapter, root / "command", data_root=data)
    db = f"sqlite:///{root / 'studies.db'}"
    settings = StudySettings(
        name="gallery", methods={"Static": root / "static", "Command": root / "command"},
        data_root=data, raters_per_item=1, participants=1, clips=(0, 1, 2), attention_rate=0.25,
        media_root=root / "media", seed=1,
    )  # fmt: skip
    summary = create_study(open_database(db), settings)
    (_, token), = invite(open_database(db), "gallery", 1)  # fmt: skip
    return root, db, summary, token


def test_participant_completes_the_study_in_chromium(gallery_study):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium package)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    root, db, summary, token = gallery_study
    n_pages = summary["assignments"]
    assert summary["items"] == 3 and n_pages == 4  # 3 clips + 1 attention check
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "AVSYNC_BENCH_HOME": str(root / "home")}
    server = Server(db, _free_port(), env, root / "serve.log")
    server.start()
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"{server.url}/p/{token}")
            page.screenshot(path=str(ARTEFACTS / "consent.png"))
            page.check("#agree")
            page.click("#start")
            for number in range(1, n_pages + 1):
                page.wait_for_selector(f"text=Item {number} of {n_pages}")
                page.wait_for_function(
                    "Array.from(document.querySelectorAll('video')).every(v => v.readyState >= 1)"
                    " && document.getElementById('cond-image').naturalWidth > 0",
                    timeout=30_000,
                )
                if number == 1:
                    page.click("#play")
                    page.wait_for_function(
                        "Array.from(document.querySelectorAll('video')).every(v => v.currentTime > 0.3)",
                        timeout=30_000,
                    )
                    times = page.eval_on_selector_all("video", "vs => vs.map(v => v.currentTime)")
                    assert max(times) - min(times) < 0.5, times  # played together
                    page.screenshot(path=str(ARTEFACTS / "item.png"), full_page=True)
                for question in ("iq", "fc", "sync"):
                    page.check(f"input[name={question}][value='{number % 2}']")
                page.check("input[data-slot='0'][value='flicker']")
                if number == 2:  # the server goes away: the vote fails, then is retried
                    server.stop()
                    page.click("#submit")
                    page.wait_for_selector("text=Could not reach the server")
                    page.screenshot(path=str(ARTEFACTS / "retry.png"), full_page=True)
                    server.start()
                    assert page.is_visible(f"text=Item {number} of {n_pages}")
                page.click("#submit")
            page.wait_for_selector(f"text=All {n_pages} items are done")
            page.screenshot(path=str(ARTEFACTS / "done.png"))
            admin = browser.new_page()
            admin.goto(f"{server.url}/admin?key={summary['admin_key']}")
            assert admin.inner_text("#progress").count(f"{n_pages} / {n_pages}") == 1
            browser.close()
    finally:
        server.stop()
    rows = vote_rows(open_database(db), "gallery")
    assert len(rows) == 3 * n_pages
    assert len({(r["item"], r["question"]) for r in rows}) == 3 * n_pages
    assert all(r["reasons"] == "flicker" for r in rows if r["slot"] == 0)
    assert all(r["time_on_page_s"] > 0 for r in rows)
    (ARTEFACTS / "votes.json").write_text(json.dumps(rows, indent=1, default=str))
