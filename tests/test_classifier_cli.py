"""``eval-classifier`` and ``sync-sensitivity`` end to end on AVSync15 gallery videos."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import GALLERY, need_shared
from typer.testing import CliRunner

from avsync_bench.cli import app
from avsync_bench.models.sync_classifier import (
    AudioConv2DNet,
    AVSyncClassifier,
    FCHead,
    VideoR2Plus1DNet,
)

# lions_roaring is 3.50 s (usable: 31 clips 0.04 s apart need 3.2 s); the other two are 3.0 s.
SUBSET = [
    "lions_roaring/gallery_lions_roaring.mp4",
    "cap_gun_shooting/gallery_cap_gun_shooting.mp4",
    "dog_barking/gallery_dog_barking.mp4",
]


@pytest.fixture(scope="module")
def gallery_subset(tmp_path_factory):
    """A release-layout AVSync15 root listing three gallery videos (links, not copies)."""
    need_shared(GALLERY)
    root = tmp_path_factory.mktemp("gallery")
    for rel in SUBSET:
        (root / "videos" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "videos" / rel).symlink_to(GALLERY / "videos" / rel)
    # a second lions_roaring video, so the same-class swap exists
    (root / "videos" / "lions_roaring" / "copy.mp4").symlink_to(GALLERY / "videos" / SUBSET[0])
    shutil.copy(GALLERY / "class_mapping.json", root / "class_mapping.json")
    (root / "test.txt").write_text("\n".join(SUBSET) + "\n")
    (root / "pair.txt").write_text(f"{SUBSET[0]}\nlions_roaring/copy.mp4\n")
    return root


def test_eval_classifier_lists_short_videos(gallery_subset, tmp_path):
    runner = CliRunner()
    weights = tmp_path / "w"
    made = runner.invoke(
        app, ["weights", "make-standins", str(weights), "--names", "avsync_classifier"]
    )
    assert made.exit_code == 0, made.output
    out = tmp_path / "eval.json"
    # One run (31 clips of a 3.5 s video through the full-size R(2+1)D-18 stand-in), at 64 px
    # frames to keep the test short; both denominators are in the JSON whatever --protocol says.
    for protocol in ("official",):
        result = runner.invoke(
            app,
            [
                "eval-classifier",
                "--checkpoint", str(weights / "avsync_classifier"),
                "--dataset", "avsync15",
                "--data-root", str(gallery_subset),
                "--split", "test",
                "--protocol", protocol,
                "--image-size", "64",
                "--out", str(out),
            ],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        data = json.loads(out.read_text())
        assert data["n_listed"] == 3 and data["n_valid"] == 1 and data["standin"] is True
        short = {row["video"]: row["reason"] for row in data["unusable"]}
        assert set(short) == set(SUBSET[1:])
        assert all("too short" in reason and "3.20 s" in reason for reason in short.values())
        assert "STAND-IN" in result.output and "chance" in result.output
        assert "cap_gun_shooting/gallery_cap_gun_shooting.mp4: too short" in result.output
        a2v = data["overall"]["a2v"]["t5"]
        assert a2v["chance"] == pytest.approx(11 / 31)
        hit = next(row for row in data["per_video"] if row["video"] == SUBSET[0])
        assert 0 <= hit["a2v_argmax"] < 31
        expected = float(abs(hit["a2v_argmax"] - 15) <= 5)
        assert a2v["value"] == a2v["value_valid_only"] == expected  # official: valid only
        assert a2v["value_all_listed"] == pytest.approx(expected / 3)
        assert "valid examples only" in data["denominator"] and "1 valid" in result.output


def test_sync_sensitivity_end_to_end(gallery_subset, tmp_path):
    model = AVSyncClassifier(
        AudioConv2DNet(channels=(4, 4, 8, 8, 16)),
        VideoR2Plus1DNet(channels=(4, 4, 8, 8, 16)),
        FCHead(dim=16),
    )
    checkpoint = model.save_pretrained(tmp_path / "ckpt" / "modules")
    out = tmp_path / "sens"
    result = CliRunner().invoke(
        app,
        [
            "sync-sensitivity",
            "--dataset", "avsync15",
            "--data-root", str(gallery_subset),
            "--split", "pair",
            "--checkpoint", str(checkpoint),
            "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads((out / "result.json").read_text())
    assert data["overall"]["n_clips"] == 6  # 2 videos x 3 clips
    rows = data["per_clip"]
    # lions_roaring is 3.5 s: clip 0 starts at 0, so the -0.2 s window is outside the file
    first = next(r for r in rows if r["clip"] == 0)
    assert first["phi"]["shift-0.2"] is None and "outside" in first["na"]["shift-0.2"]
    # the two videos are the same file: the swapped audio is the true audio, so RelSync is 0.5
    assert all(r["phi"]["swap"] == pytest.approx(r["phi_true"], abs=1e-5) for r in rows)
    assert data["overall"]["corruptions"]["swap"]["relsync_mean"] == pytest.approx(0.5, abs=1e-5)
    assert "| lions_roaring | 6 |" in (out / "table.md").read_text()
