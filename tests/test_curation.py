"""AVSync-AC curation (issue #13): reasons on test-made media, resume, Ray vs local, the gallery.

Networks: ``--tiny-networks`` (ImageBind in the stand-in configuration with rule weights, exactly
the ``make-standins`` file, and a one-convolution classifier), so the network measurements are
computed through the real code paths but are not meaningful; the made media are therefore kept or
dropped by the signal measurements, with the network bounds set where every window passes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

pytest.importorskip("scenedetect")
pytest.importorskip("pyarrow")

from conftest import GALLERY, need_shared  # noqa: E402
from curation_media import make_media  # noqa: E402

from avsync_bench.cli import app  # noqa: E402
from avsync_bench.curation import CurationSettings, NetworkSpec, Thresholds, curate  # noqa: E402
from avsync_bench.curation.decide import decide_windows  # noqa: E402
from avsync_bench.curation.measure import sync_stage, window_starts  # noqa: E402
from avsync_bench.curation.pipeline import list_videos, measure_videos, read_parts  # noqa: E402
from avsync_bench.curation.settings import CurationError  # noqa: E402
from avsync_bench.io.media import probe  # noqa: E402

TINY = NetworkSpec(tiny=True)
BOUNDS = {
    "pixel_diff": {"lower": 0.5, "upper": 30.0},
    "semantic_diff": {"lower": None, "upper": None},
    "audio_peak": {"lower": 0.05, "upper": None},
    "ia": {"lower": -1.0, "upper": None},
    "it": {"lower": -1.0, "upper": None},
    "psync": {"lower": 0.1, "upper": None},
}
EXPECTED = {
    "flash/flash.mp4": {"kept"},
    "static/static.mp4": {"pixel_diff_low"},
    "silent/silent.mp4": {"audio_peak_low"},
    "fastpan/fastpan.mp4": {"pixel_diff_high"},
    "cut/cut.mp4": {"kept"},
    "broken/broken.mp4": {"decode_error"},
}


def _invoke(*args: str):
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def _tree_digest(root: Path) -> dict[str, str]:
    files = [p for p in (root / "videos").rglob("*") if p.is_file()]
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files
    }


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("curation")
    make_media(root / "videos")
    thresholds = Thresholds(BOUNDS, {}, {"note": "set by hand for the test media"}, {}, {})
    thresholds.settings = CurationSettings().to_dict()
    thresholds.networks = TINY.identity()
    thresholds.save(root / "thresholds.json")
    return root


@pytest.fixture(scope="module")
def curated(media) -> Path:
    out = media / "out"
    _invoke(
        "curate", str(media / "videos"), "--thresholds", str(media / "thresholds.json"),
        "--tiny-networks", "--out", str(out), "--min-per-class", "1", "--block-size", "2",
    )  # fmt: skip
    return out


def test_made_media_kept_or_dropped_for_the_right_reason(curated):
    frame = pd.read_parquet(curated / "windows.parquet")
    assert set(frame["video"]) == set(EXPECTED)
    for video, reasons in EXPECTED.items():
        assert set(frame.loc[frame["video"] == video, "reason"]) == reasons, video
    broken = frame[frame["video"] == "broken/broken.mp4"].iloc[0]
    assert broken["window_index"] == -1 and "broken.mp4" in broken["error"]
    # the hard cut at 2 s: two scenes, the first too short, no window across the cut
    cut = frame[frame["video"] == "cut/cut.mp4"]
    assert (cut["n_scenes"] == 2).all() and (cut["n_short_scenes"] == 1).all()
    assert np.allclose(cut["scene_start"], 2.0, atol=0.05) and (cut["start"] >= 1.95).all()
    assert list(cut["start"] - cut["scene_start"]) == [0.0, 0.5]
    summary = json.loads((curated / "summary.json").read_text())
    counts = summary["counts"]
    windows = frame[frame["window_index"] >= 0]
    assert counts["windows"] == len(windows) == 10
    assert counts["windows_kept"] + counts["windows_dropped"] == counts["windows"]
    assert counts["windows_kept"] == int(windows["kept"].sum()) == 4
    assert counts["decode_errors"] == 1 and counts["scenes_too_short"] == 1
    assert summary["standin"] is True
    lines = (curated / "test.txt").read_text().split() + (curated / "train.txt").read_text().split()
    assert sorted(lines) == ["cut/cut_2.00_5.50.mp4", "flash/flash_0.00_3.50.mp4"]
    assert json.loads((curated / "class_mapping.json").read_text()) == {
        "cut": "cut",
        "flash": "flash",
    }
    for line in lines:
        info = probe(curated / "videos" / line)
        assert abs(info.av_duration - 3.5) < 0.1 and info.sample_rate == 16000
    page = (curated / "summary.html").read_text()
    assert page.count('class="chart"') == 6 and "STAND-IN" in page


def test_resume_after_a_kill_gives_identical_outputs(media, curated):
    out = media / "resumed"

    class Killed(Exception):
        pass

    def kill_after_first(block):
        raise Killed(block.name)

    options = dict(min_per_class=1, block_size=2)
    with pytest.raises(Killed):
        curate(
            media / "videos",
            media / "thresholds.json",
            TINY,
            out,
            on_block=kill_after_first,
            **options,
        )
    assert len(list((out / "parts").glob("*.parquet"))) == 1
    assert not (out / "windows.parquet").exists()
    summary = curate(media / "videos", media / "thresholds.json", TINY, out, **options)
    assert summary["blocks"] == {"total": 3, "resumed": 1}
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "windows.parquet"), pd.read_parquet(curated / "windows.parquet")
    )
    for name in ("train.txt", "test.txt", "class_mapping.json"):
        assert (out / name).read_text() == (curated / name).read_text()
    assert _tree_digest(out) == _tree_digest(curated)
    # a rerun of a finished run measures nothing
    again = curate(media / "videos", media / "thresholds.json", TINY, out, **options)
    assert again["blocks"] == {"total": 3, "resumed": 3} and again["counts"] == summary["counts"]


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def test_ray_backend_gives_the_same_windows_and_decisions(media, curated, ray_session):
    items = list_videos(media / "videos")
    files, info = measure_videos(
        items, media / "ray-parts", TINY, CurationSettings(), backend="ray", block_size=2
    )
    assert info["skipped"] == 0 and [f.name for f in files] == sorted(
        p.name for p in (curated / "parts").glob("*.parquet")
    )
    thresholds = Thresholds.load(media / "thresholds.json")
    ray_frame = decide_windows(read_parts(files), thresholds)
    local = decide_windows(read_parts(sorted((curated / "parts").glob("*.parquet"))), thresholds)
    keys = ["video", "window_index", "scene_index", "start", "end", "reason", "passed", "error"]
    pd.testing.assert_frame_equal(ray_frame[keys], local[keys])
    for column in ("pixel_diff", "semantic_diff", "audio_peak", "ia", "it", "psync"):
        np.testing.assert_allclose(ray_frame[column], local[column], rtol=1e-5, atol=1e-7)


def test_thresholds_from_other_networks_are_refused(media, tmp_path):
    data = json.loads((media / "thresholds.json").read_text())
    data["networks"] = {"imagebind_huge": "0" * 64, "avsync_classifier": "1" * 64, "standin": False}
    (tmp_path / "t.json").write_text(json.dumps(data))
    with pytest.raises(CurationError, match="other networks"):
        curate(media / "videos", tmp_path / "t.json", TINY, tmp_path / "out")
    result = CliRunner().invoke(
        app, ["curate", str(media / "videos"), "--thresholds", str(tmp_path / "t.json"),
              "--tiny-networks", "--out", str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code == 1 and "other networks" in result.output


def test_psync_is_the_softmax_over_audio_shifts_at_shift_zero():
    settings = CurationSettings()
    grid = np.arange(21)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    seen = {}

    class Fake:
        def phi(self, clips, mels):
            seen["clips"] = clips
            return np.array([[0.0, 1.0, 2.0, 1.0, 0.0], [5.0, 0.0, 0.0, 0.0, 0.0]])

    work = {
        "error": None,
        "grids": [grid],
        "mels": np.zeros((2, 5, 1, 128, 204), np.float32),
        "windows": [{"scene_index": 0, "scene_k": 0}, {"scene_index": 0, "scene_k": 1}],
    }
    sync_stage([work], Fake(), settings)
    e = np.exp([0.0, 1.0, 2.0, 1.0, 0.0])
    assert work["windows"][0]["psync"] == pytest.approx(e[2] / e.sum())
    assert work["windows"][1]["psync"] == pytest.approx(1 / (np.exp(5) + 4))
    # the video clip: grid frames 3..14 (start + 0.5 s at 6 fps), then 6..17 for the next window
    assert [int(c[0, 0, 0]) for c in seen["clips"][0]] == list(range(3, 15))
    assert [int(c[0, 0, 0]) for c in seen["clips"][1]] == list(range(6, 18))


def test_gallery_calibrate_then_curate_end_to_end(tmp_path):
    gallery = need_shared(GALLERY)
    from avsync_bench.clips import load_test_clips
    from avsync_bench.datasets import load_split
    from avsync_bench.protocol import ClipSpec, ProtocolMode

    thresholds_path, out = tmp_path / "thresholds.json", tmp_path / "AVSyncAC"
    _invoke(
        "curate", "calibrate", "--reference", str(gallery), "--tiny-networks",
        "--out", str(thresholds_path),
    )  # fmt: skip
    data = json.loads(thresholds_path.read_text())
    reference = pd.read_parquet(tmp_path / "thresholds.json.calibration" / "windows.parquet")
    assert data["reference"]["path"] == str(gallery.resolve()) and data["reference"]["videos"] == 15
    assert data["percentiles"] == {"lower": 5.0, "upper": 95.0}
    expected = np.percentile(reference["pixel_diff"].dropna(), [5, 95])
    assert [data["thresholds"]["pixel_diff"][s] for s in ("lower", "upper")] == pytest.approx(
        expected
    )
    assert data["thresholds"]["audio_peak"]["upper"] is None
    # Curating the same videos with the same settings gives the same blocks: reuse them (the
    # resume path) instead of measuring the gallery a second time.
    shutil.copytree(tmp_path / "thresholds.json.calibration" / "parts", out / "parts")
    _invoke(
        "curate", str(gallery / "videos"), "--thresholds", str(thresholds_path),
        "--tiny-networks", "--out", str(out), "--min-per-class", "1",
    )  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["blocks"]["resumed"] == summary["blocks"]["total"]
    frame = pd.read_parquet(out / "windows.parquet")
    settings = CurationSettings()
    for video in (gallery / "test.txt").read_text().split():
        rows = frame[frame["video"] == video]
        assert len(rows) >= 1, video
        if rows["n_scenes"].iloc[0] == 1:
            duration = probe(gallery / "videos" / video).av_duration
            assert len(rows[rows["window_index"] >= 0]) == len(
                window_starts(0.0, duration, settings)
            )
    windows = frame[frame["window_index"] >= 0]
    c = summary["counts"]
    assert c["windows"] == len(windows) == c["windows_kept"] + c["windows_dropped"]
    assert c["windows_kept"] == int(windows["kept"].sum()) > 0
    assert set(windows.loc[windows["kept"], "reason"]) == {"kept"}
    assert not set(windows.loc[~windows["kept"], "reason"]) & {"kept"}
    # one video per class in the gallery: ceil(0.1 * 1) = 1 test video per class, no train
    assert (out / "train.txt").read_text() == ""
    assert len(load_split("avsync15", out, "test")) == c["examples"] == c["test_examples"] > 0
    spec = ClipSpec()
    for video in load_split("avsync15", out, "test"):
        clips = load_test_clips(video.path, spec, ProtocolMode.official)
        assert len(clips) == 3 and clips[0].frames.shape == (12, 256, 256, 3)
