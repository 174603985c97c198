"""A newcomer's first commands: --version, doctor, progress in logs, the interpreter-start
compatibility hook, and `leaderboard build` from any folder (issue 16)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import avsync_bench
from avsync_bench import doctor
from avsync_bench.cli import app
from avsync_bench.progress import progress_reporter

REPO = Path(__file__).resolve().parents[1]


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_version():
    result = cli("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"avsync-bench {avsync_bench.__version__}"


def test_doctor_reports_one_line_per_item_and_fails_on_problems(tmp_path, tiny_dataset):
    weights = tmp_path / "weights"
    result = cli("doctor", "--data-root", tiny_dataset, "--weights-dir", weights)
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    for item in ("import torch", "import torchvision", "import torchaudio", "compat layer", "CUDA"):
        assert any(item in line for line in lines), item
    for name in doctor.SCORE_WEIGHTS:  # a missing scoring weight is a problem, with the fix
        line = next(line for line in lines if f"weight {name}:" in line)
        assert line.startswith("FAIL") and "missing" in line and "avsync-bench weights" in line
    line = next(line for line in lines if "weight avsyncd_avsync15:" in line)
    assert line.startswith("info")  # optional weights are not problems
    line = next(line for line in lines if "test split" in line)
    assert line.startswith("warn") and "2 videos" in line and "150" in line

    missing_root = cli("doctor", "--data-root", tmp_path / "nowhere", "--weights-dir", weights)
    assert any(
        line.startswith("FAIL") and "does not exist" in line
        for line in missing_root.output.splitlines()
    )


def test_doctor_passes_and_catches_a_checksum_mismatch(tmp_path, tiny_dataset):
    weights = tmp_path / "weights"
    result = cli(
        "doctor", "--data-root", tiny_dataset, "--weights-dir", weights, "--metrics", "av_align"
    )
    assert result.exit_code == 0, result.output  # AV-Align needs no weights
    assert "no problems found" in result.output
    assert doctor.weights_for("fid,alignsync") == (
        "fid_inception",
        "imagebind_huge",
        "avsync_classifier",
    )

    weights.mkdir()
    (weights / "i3d_torchscript.pt").write_bytes(b"not the pinned file")
    (weights / "pins.json").write_text(json.dumps({"i3d_torchscript": "0" * 64}))
    result = cli(
        "doctor", "--data-root", tiny_dataset, "--weights-dir", weights, "--metrics", "fvd"
    )
    assert result.exit_code == 1
    line = next(line for line in result.output.splitlines() if "weight i3d_torchscript:" in line)
    assert line.startswith("FAIL") and "checksum mismatch" in line


def test_plain_progress_lines_when_not_a_terminal():
    buffer = io.StringIO()
    console = Console(file=buffer, width=200)
    assert not console.is_terminal
    with progress_reporter(console) as progress:
        tick = progress("imagebind: generated", 20)
        for _ in range(20):
            tick(1)
        progress("imagebind: ground truth", 0)(0)
    lines = buffer.getvalue().splitlines()
    assert lines[0] == "imagebind: generated: 0/20"
    assert any(line.startswith("imagebind: generated: 2/20 (10%)") for line in lines)
    assert any(line.startswith("imagebind: generated: 20/20 (100%) in") for line in lines)
    assert len([line for line in lines if line.startswith("imagebind: generated")]) == 11
    assert lines[-1] == "imagebind: ground truth: cached"  # no 0/0 bar, no clock


def test_generate_prints_progress_lines_in_a_log(tiny_dataset, tmp_path):
    result = cli("generate", "static", "--data-root", tiny_dataset, "--out", tmp_path / "p")
    assert result.exit_code == 0, result.output
    assert "generate static: 0/6" in result.output
    assert "generate static: 6/6 (100%) in" in result.output


def test_compat_applies_at_interpreter_start(tmp_path):
    """The installed .pth makes `import torchvision` (and pytorch_fid) work before, or without,
    `import avsync_bench`; checked in a fresh interpreter that processes the repository's .pth
    file from a site folder, as site-packages does."""
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    (site_dir / "avsync_bench_startup.pth").write_bytes(
        (REPO / "avsync_bench_startup.pth").read_bytes()
    )
    code = (
        "import site, sys; site.addsitedir(sys.argv[1])\n"
        "assert '_avsync_bench_startup' in sys.modules and 'torch' not in sys.modules\n"
        "import torchvision, torchvision.ops, torchaudio, pytorch_fid.inception\n"
        "import avsync_bench, warnings\n"
        "warnings.warn('pkg_resources is deprecated as an API', UserWarning)\n"
        "print('imports ok', avsync_bench._compat.ACTIVE)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(site_dir)],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "imports ok" in done.stdout
    assert "pkg_resources" not in done.stderr  # the warning ImageBind triggers is hidden


def test_leaderboard_build_from_another_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("leaderboard", "build", "--check")
    assert result.exit_code == 0, result.output
    assert str(REPO / "leaderboard" / "LEADERBOARD.md") in result.output.replace("\n", "")
    assert not (tmp_path / "leaderboard").exists()


def test_leaderboard_renders_source_notes_and_no_private_paths():
    text = (REPO / "leaderboard" / "LEADERBOARD.md").read_text()
    assert "300.82" in text and "349.1" in text and "re-release" in text
    reported = json.loads((REPO / "leaderboard" / "reported.json").read_text())
    for table in reported["tables"]:
        assert table["source_note"] in text or table.get("duplicate_of")
    for public in ("README.md", "leaderboard/LEADERBOARD.md", "leaderboard/reported.json"):
        body = (REPO / public).read_text()
        assert "../shared" not in body and "PROTOCOL.md" not in body, public


def test_animate_paths_fall_back_to_the_weights_store(tmp_path):
    from avsync_bench.cli.animate import store_fallback
    from avsync_bench.weights.store import MissingWeightsError

    store = tmp_path / "weights"
    with pytest.raises(MissingWeightsError) as missing:
        store_fallback(None, None, tmp_path / "ib.pth", "landscapes", store)
    assert missing.value.names == ["avsyncd_landscapes", "stable_diffusion_v1_5"]
    unet = store / "avsyncd_landscapes" / "ckpts" / "checkpoint-24000" / "modules" / "unet"
    unet.mkdir(parents=True)
    (unet / "config.json").write_text("{}")
    (store / "stable-diffusion-v1-5" / "vae").mkdir(parents=True)
    (store / "stable-diffusion-v1-5" / "vae" / "config.json").write_text("{}")
    (store / "imagebind_huge.pth").write_bytes(b"weights")
    checkpoint, sd15, imagebind = store_fallback(None, None, None, "landscapes", store)
    assert checkpoint == unet.parent.parent
    assert sd15 == store / "stable-diffusion-v1-5" and imagebind == store / "imagebind_huge.pth"
    given = tmp_path / "mine"
    assert store_fallback(given, None, None, "landscapes", store)[0] == given
