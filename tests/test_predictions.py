"""Prediction listing: every problem is reported, incomplete sets are refused or labelled."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import write_test_video
from tiny_extractors import tiny_extractors

from avsync_bench.datasets import load_split
from avsync_bench.io.media import write_clip
from avsync_bench.predictions import PredictionError, check_predictions
from avsync_bench.protocol import ClipSpec
from avsync_bench.scoring import ScoreOptions, score
from baselines.runner import run_adapter
from baselines.static import StaticAdapter

SPEC = ClipSpec()


@pytest.fixture(scope="module")
def static_preds(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("preds")
    report = run_adapter(StaticAdapter(), out, data_root=tiny_dataset)
    assert len(report.written) == 6 and not report.failed
    return out


def _copy(src, tmp_path):
    dst = tmp_path / "preds"
    shutil.copytree(src, dst)
    return dst


def test_complete_folder_has_no_problem(tiny_dataset, static_preds):
    report = check_predictions(static_preds, load_split("avsync15", tiny_dataset), SPEC)
    assert report.complete and report.problems == []
    assert report.expected[0] == "dog_barking/a_clip-00.mp4"


def test_every_listing_problem_in_one_report(tiny_dataset, static_preds, tmp_path):
    preds = _copy(static_preds, tmp_path)
    (preds / "dog_barking/a_clip-00.mp4").unlink()  # missing
    (preds / "dog_barking/a_clip-01.mp4").write_bytes(b"not a video")  # unreadable
    write_clip(
        preds / "dog_barking/a_clip-02.mp4", np.zeros((12, 64, 64, 3), np.uint8), 6, None, 16000
    )
    write_clip(
        preds / "hammering/b_clip-00.mp4",
        np.zeros((5, 64, 64, 3), np.uint8),
        6,
        np.zeros((1, 32000), np.float32),
        16000,
    )  # too few frames
    shutil.copy(preds / "hammering/b_clip-01.mp4", preds / "dog_barking/b_clip-01.mp4")  # duplicate
    shutil.copy(preds / "hammering/b_clip-01.mp4", preds / "hammering/b_clip-03.mp4")  # extra
    report = check_predictions(preds, load_split("avsync15", tiny_dataset), SPEC)
    kinds = {(p.kind, p.path) for p in report.problems}
    assert kinds == {
        ("missing", "dog_barking/a_clip-00.mp4"),
        ("unreadable", "dog_barking/a_clip-01.mp4"),
        ("no_audio", "dog_barking/a_clip-02.mp4"),
        ("too_few_frames", "hammering/b_clip-00.mp4"),
        ("duplicate", "dog_barking/b_clip-01.mp4"),
        ("extra", "hammering/b_clip-03.mp4"),
    }
    assert sorted(report.absent) == sorted(
        ["dog_barking/a_clip-00.mp4", "dog_barking/a_clip-01.mp4", "dog_barking/a_clip-02.mp4",
         "hammering/b_clip-00.mp4"]
    )  # fmt: skip
    text = report.summary()
    assert "2/6 expected clips usable" in text and "too_few_frames" in text


def test_prefix_sharing_names_do_not_match(tiny_dataset, static_preds, tmp_path):
    preds = _copy(static_preds, tmp_path)
    shutil.move(preds / "hammering/b_clip-02.mp4", preds / "hammering/b_clip-02_v2.mp4")
    report = check_predictions(preds, load_split("avsync15", tiny_dataset), SPEC)
    assert {(p.kind, p.path) for p in report.problems} == {
        ("missing", "hammering/b_clip-02.mp4"),
        ("extra", "hammering/b_clip-02_v2.mp4"),
    }


def test_incomplete_set_refused_then_labelled_partial(tiny_dataset, static_preds, tmp_path):
    preds = _copy(static_preds, tmp_path)
    (preds / "hammering/b_clip-02.mp4").unlink()
    options = ScoreOptions(preds=preds, data_root=tiny_dataset, metrics="fid,fvd", cache_dir=None)
    with pytest.raises(PredictionError, match="missing"):
        score(options, extractors=tiny_extractors())
    options.allow_partial = True
    run = score(options, extractors=tiny_extractors())
    assert run.results["partial"] is True
    assert run.results["absent"] == ["hammering/b_clip-02.mp4"]
    assert run.results["clip_counts"] == {"videos": 2, "expected": 6, "scored": 5}
    assert run.results["metrics"]["fvd"]["n_gt"] == 5 and len(run.per_clip) == 5


def test_generated_clips_of_any_size_and_fps_are_read(tiny_dataset, static_preds, tmp_path):
    preds = _copy(static_preds, tmp_path)
    odd = write_test_video(tmp_path / "odd.mp4", 25, 2.0, size=(120, 200), sample_rate=22050)
    shutil.copy(odd, preds / "dog_barking/a_clip-00.mp4")
    run = score(
        ScoreOptions(preds=preds, data_root=tiny_dataset, metrics="fid,fvd", cache_dir=None),
        tiny_extractors(),
    )
    row = run.per_clip[0]
    assert row["clip"] == "dog_barking/a_clip-00.mp4"
    assert row["gen_frame_indices"].split()[:3] == ["0", "5", "9"]  # official picker at 25 fps
