"""The command line end to end: generate static, score without and with stand-in weights."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
from conftest import GALLERY, need_shared, write_test_video

CLI = [sys.executable, "-m", "avsync_bench.cli"]


def run(args, tmp_path, **env):
    environment = {**os.environ, "AVSYNC_BENCH_HOME": str(tmp_path / "home"), **env}
    return subprocess.run(CLI + args, capture_output=True, text=True, cwd=tmp_path, env=environment)


def test_every_command_has_help(tmp_path):
    for args in (["--help"], ["score", "--help"], ["generate", "static", "--help"],
                 ["weights", "make-standins", "--help"], ["weights", "import", "--help"]):  # fmt: skip
        result = run(args, tmp_path)
        assert result.returncode == 0 and "Usage" in result.stdout, args


def test_generate_static_then_score(tiny_dataset, tmp_path):
    preds = tmp_path / "preds"
    result = run(
        ["generate", "static", "--data-root", str(tiny_dataset), "--out", str(preds)], tmp_path
    )
    assert result.returncode == 0, result.stderr
    files = sorted(p.relative_to(preds).as_posix() for p in preds.rglob("*.mp4"))
    assert files == [
        f"{v}_clip-0{i}.mp4" for v in ("dog_barking/a", "hammering/b") for i in range(3)
    ]
    with av.open(str(preds / files[0])) as container:
        assert container.streams.audio and container.streams.video[0].average_rate == 6
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 12 and np.abs(frames[0].astype(int) - frames[-1]).max() <= 2
    manifest = json.loads((preds / "generation.json").read_text())
    assert manifest["adapter"] == "static" and manifest["written"] == 6
    again = run(
        ["generate", "static", "--data-root", str(tiny_dataset), "--out", str(preds)], tmp_path
    )
    assert "0 written, 6 already present" in again.stderr.replace("\n", " ")

    score = ["score", str(preds), "--data-root", str(tiny_dataset), "--metrics", "fid,fvd"]
    missing = run(score, tmp_path)
    assert missing.returncode == 1
    assert "pt_inception-2015-12-05-6726825d.pth" in missing.stderr
    assert "i3d_torchscript.pt" in missing.stderr and "weights import" in missing.stderr

    made = run(["weights", "make-standins", str(tmp_path / "w")], tmp_path)
    assert made.returncode == 0, made.stderr
    scored = run(
        score + ["--weights-dir", str(tmp_path / "w"), "--out", str(tmp_path / "out")], tmp_path
    )
    assert scored.returncode == 0, scored.stderr
    assert "FID" in scored.stdout and "FVD" in scored.stdout and "STAND-IN" in scored.stdout
    results = json.loads((tmp_path / "out/results.json").read_text())
    assert results["standin"] is True and results["protocol"] == "official"
    assert results["clip_counts"] == {"videos": 2, "expected": 6, "scored": 6}
    assert results["weights"]["fid_inception"]["standin"] is True
    assert np.isfinite([m["value"] for m in results["metrics"].values()]).all()
    rows = list(csv.DictReader(open(tmp_path / "out/per_clip.csv")))
    assert [r["clip"] for r in rows] == files


def test_bad_inputs_exit_nonzero_with_a_message(tmp_path):
    result = run(["score", str(tmp_path / "nope"), "--data-root", str(tmp_path / "none")], tmp_path)
    assert result.returncode == 1 and "does not exist" in result.stderr


def test_gallery_static_generation_is_complete(tmp_path):
    need_shared(GALLERY)
    preds = tmp_path / "preds"
    result = run(
        ["generate", "static", "--data-root", str(GALLERY), "--out", str(preds), "--limit", "2"],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert len(list(Path(preds).rglob("*.mp4"))) == 6


def test_sync_score_single_pair(tiny_dataset, tmp_path):
    video = str(tiny_dataset / "videos/dog_barking/a.mp4")
    other = str(write_test_video(tmp_path / "other.mp4", 25, 2.5, click_every=0.3))
    weights = str(tmp_path / "w")
    made = run(
        ["weights", "make-standins", weights, "--names", "imagebind_huge,avsync_classifier"],
        tmp_path,
    )
    assert made.returncode == 0, made.stderr
    base = ["sync-score", "--video", video, "--weights-dir", weights]
    plain = run(base + ["--metric", "score"], tmp_path)
    assert plain.returncode == 0, plain.stderr
    phi = json.loads(plain.stdout)["value"]
    self_ref = json.loads(
        run(base + ["--metric", "relsync", "--ref-video", video], tmp_path).stdout
    )
    assert self_ref["value"] == 0.5 and self_ref["phi"] == phi == self_ref["phi_ref"]
    swapped = json.loads(run(base + ["--metric", "relsync", "--ref-audio", other], tmp_path).stdout)
    assert 0 < swapped["value"] < 1 and swapped["phi_ref"] != phi
    align = json.loads(run(base + ["--ref-video", video], tmp_path).stdout)
    assert align["metric"] == "alignsync" and align["relsync"] == 0.5 and 0 < align["p_align"] < 1
    assert align["value"] == align["p_align"] * 0.5
    bad = run(base + ["--metric", "relsync"], tmp_path)
    assert bad.returncode == 1 and "exactly one of --ref-video and --ref-audio" in bad.stderr
