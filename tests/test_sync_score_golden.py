"""``avsync-bench sync-score --protocol official`` against the official single-pair script.

Every case of ``../shared/golden/cli_sync/cases.json`` runs through the command line (its ``cli``
arguments plus ``--weights-dir``) and is checked at the README's tolerances: the tight tier
(1e-5) where our kept frames and waveform hash like the official ones, else φ 5e-3 / RelSync
1e-3; self-references exactly 0.5; the error cases exit 1 with a message naming the file.
The classifier is written by our own stand-in rule code and checked against the state-dict
content sha256s of ``cases.json``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED, need_shared
from typer.testing import CliRunner

from avsync_bench.cli import app
from avsync_bench.sync_pair import load_pair_clip, pair_waveform
from avsync_bench.weights.standins import make_standins

CLI_SYNC = SHARED / "golden" / "cli_sync"
PREFIXES = {
    "avsync15-gallery/": SHARED / "data" / "avsync15-gallery",
    "asva-assets/": SHARED / "data" / "asva-assets",
    "synth/": CLI_SYNC / "synth",
}


def media(rel: str) -> str:
    for prefix, root in PREFIXES.items():
        if rel.startswith(prefix):
            return str(root / rel[len(prefix) :])
    return rel


def content_sha256(state: dict) -> str:
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode("utf-8"))
        digest.update(state[key].contiguous().numpy().tobytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def golden():
    need_shared(CLI_SYNC / "cases.json")
    return json.loads((CLI_SYNC / "cases.json").read_text())


@pytest.fixture(scope="module")
def classifier_dir(golden, tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    make_standins(folder, ["avsync_classifier"])
    for module, expected in golden["classifier"]["state_dict_content_sha256"].items():
        path = folder / "avsync_classifier" / "modules" / module / "diffusion_pytorch_model.bin"
        state = torch.load(path, map_location="cpu", weights_only=True)
        assert content_sha256(state) == expected, module
    return folder


def _hashes_match(case: dict) -> bool:
    """True when every input's kept frames and waveform hash like the official run's."""
    roles = {"video": "video", "ref_video": "ref_video", "audio": "audio", "ref_audio": "ref_audio"}
    args = case["official_args"]
    for role, key in roles.items():
        inter = case["intermediate"].get(key)
        if not inter or not args.get(role):
            continue
        if role in ("video", "ref_video"):
            clip = load_pair_clip(media(args[role]), "official")
            hashes = [hashlib.sha256(f.tobytes()).hexdigest() for f in clip.frames]
            if hashes != inter["frame_rgb24_sha256"]:
                return False
        else:
            waveform, _rate, _frames = pair_waveform(media(args[role]), "official")
            if hashlib.sha256(waveform.tobytes()).hexdigest() != inter["waveform_float32_sha256"]:
                return False
    return True


def test_every_cli_sync_case(golden, classifier_dir):
    runner = CliRunner()
    tol = golden["tolerance"]["suggested"]
    tight = tol["when_frames_and_audio_hashes_match"]
    tiers = {}
    for case in golden["cases"]:
        args = [media(a) if "/" in a else a for a in case["cli"][1:]]
        result = runner.invoke(app, args + ["--weights-dir", str(classifier_dir)])
        expected = case["expected"]
        if expected["status"] == "error":
            assert result.exit_code == 1, (case["id"], result.output)
            assert "error:" in result.stderr and "Traceback" not in result.output
            assert Path(media(case["official_args"]["video"])).name in result.stderr
            continue
        assert result.exit_code == 0, (case["id"], result.output, result.exception)
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        assert len(lines) == 1, lines  # one JSON line on stdout
        out = json.loads(lines[0])
        assert out["protocol"] == "official" and out["rules"] == "official-single-pair"
        exact = _hashes_match(case)
        tiers[case["id"]] = "tight" if exact else "default"
        if case["metric"] == "avsync_score":
            atol = tight["avsync_score_atol"] if exact else tol["avsync_score_atol"]
            assert abs(out["value"] - expected["avsync_score"]) <= atol, (case["id"], out)
        else:
            if expected["relsync"] == 0.5:
                assert out["value"] == 0.5, (case["id"], out)
            atol = tight["relsync_atol"] if exact else tol["relsync_atol"]
            assert abs(out["value"] - expected["relsync"]) <= atol, (case["id"], out)
            phi_atol = tight["avsync_score_atol"] if exact else tol["avsync_score_atol"]
            assert abs(out["phi"] - expected["phi_video"]) <= phi_atol, case["id"]
            assert abs(out["phi_ref"] - expected["phi_reference"]) <= phi_atol, case["id"]
    # On the FFmpeg build the fixtures were made with, every ok case reaches the tight tier.
    assert len(tiers) == 18
    print("tiers:", json.dumps(tiers))


def test_error_cases_name_what_is_short(golden, classifier_dir):
    runner = CliRunner()
    by_id = {c["id"][:2]: c for c in golden["cases"]}
    expect = {"f1": "no audio track", "f2": "11 distinct frame(s)", "f3": "9 distinct frame(s)"}
    for key, text in expect.items():
        args = [media(a) if "/" in a else a for a in by_id[key]["cli"][1:]]
        result = runner.invoke(app, args + ["--weights-dir", str(classifier_dir)])
        assert result.exit_code == 1 and text in result.stderr, (key, result.stderr)
    # ... in the corrected mode too (issue #9: refused in both modes).
    five = media(by_id["f2"]["cli"][3])
    result = runner.invoke(
        app, ["sync-score", "--video", five, "--metric", "score", "--protocol", "corrected"]
    )
    assert result.exit_code == 1 and "distinct frame(s) found in the first 2 s" in result.stderr
    assert Path(five).name in result.stderr


def test_frame_picking_matches_the_official_indices(golden):
    """The kept pts (µs) of every ok input equal the official ``picked_pts_us``."""
    for case in golden["cases"]:
        for role in ("video", "ref_video"):
            inter = case["intermediate"].get(role)
            if case["expected"]["status"] != "ok" or not inter:
                continue
            clip = load_pair_clip(media(case["official_args"][role]), "official")
            pts_us = [round(p * 1e6) for p in clip.frame_pts]
            assert np.abs(np.array(pts_us) - inter["picked_pts_us"]).max() <= 1, case["id"]
