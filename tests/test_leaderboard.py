"""``avsync-bench leaderboard add|build`` and ``avsync-bench compare`` (avsync_bench.leaderboard)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_stats import make_run
from typer.testing import CliRunner

from avsync_bench import leaderboard as board
from avsync_bench.cli import app

REPO = Path(__file__).resolve().parents[1]
FULL = {"n_videos": 150}  # AVSync15's full test set: 150 videos, 450 clips


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three complete AVSync15 runs (synthetic features, real-weight metadata)."""
    base = tmp_path_factory.mktemp("runs")
    return {
        "good": make_run(base / "good", shift=0.2, offset=0.02, seed=1, **FULL),
        "worse": make_run(base / "worse", shift=0.6, seed=2, **FULL),
        "third": make_run(base / "third", shift=0.4, seed=3, **FULL),
    }


@pytest.fixture
def root(tmp_path):
    """An empty leaderboard folder with the repository's reported.json."""
    folder = tmp_path / "leaderboard"
    folder.mkdir()
    shutil.copy(REPO / "leaderboard" / "reported.json", folder / "reported.json")
    return folder


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def add(root, results, method, *extra):
    return cli("leaderboard", "add", results, "--method", method, "--root", root,
               "--frechet-resamples", 20, "--resamples", 200, *extra)  # fmt: skip


def _edit(src: Path, dst: Path, **changes) -> Path:
    shutil.copytree(src, dst)
    results = json.loads((dst / "results.json").read_text())
    for key, value in changes.items():
        target = results
        *path, last = key.split("__")
        for part in path:
            target = target[part]
        target[last] = value
    (dst / "results.json").write_text(json.dumps(results))
    return dst


def test_add_stores_the_entry_with_its_fields_and_intervals(root, runs):
    result = add(root, runs["good"] / "results.json", "AVSyncD (η=4)", "--checkpoint", "avsyncd_avsync15",
                 "--audio-guidance", 4.0, "--seed", 0, "--who", "tester")  # fmt: skip
    assert result.exit_code == 0, result.output
    path = root / "results" / "avsync15-official-AVSyncD-4.json"
    entry = json.loads(path.read_text())
    meta = entry["leaderboard"]
    assert meta["method"] == "AVSyncD (η=4)" and meta["checkpoint"] == "avsyncd_avsync15"
    assert meta["audio_guidance"] == 4.0 and meta["seed"] == 0 and meta["who"] == "tester"
    assert meta["added_utc"].endswith("+00:00")
    source = json.loads((runs["good"] / "results.json").read_text())
    assert {k: entry[k] for k in source} == source  # the results dict, unchanged
    ci = entry["bootstrap"]
    assert ci["seed"] == 0 and ci["n_videos"] == 150 and ci["n_clips"] == 450
    for key, row in ci["metrics"].items():
        assert row["low"] <= row["value"] <= row["high"], key
    again = add(root, runs["good"], "AVSyncD (η=4)")
    assert again.exit_code == 1 and "already exists (pass --replace" in again.output
    assert add(root, runs["good"], "AVSyncD (η=4)", "--replace").exit_code == 0


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"standin": True, "injected_extractors": ["i3d"]}, "computed with stand-in weights"),
        ({"partial": True, "absent": ["a", "b"]}, "partial run (partial: true, 2 clip(s) absent)"),
        ({"clip_counts__videos": 6}, "not the full test set: 6 test video(s) listed"),
    ],
)
def test_add_refuses_standin_partial_and_incomplete_runs(root, runs, tmp_path, changes, reason):
    bad = _edit(runs["good"], tmp_path / "bad", **changes)
    result = add(root, bad, "Bad")
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert f"{bad / 'results.json'} refused" in output and reason in output
    assert not list((root / "results").glob("*.json"))


def test_add_refuses_weights_or_protocol_differing_from_the_table(root, runs, tmp_path):
    assert add(root, runs["good"], "First").exit_code == 0
    other = _edit(runs["worse"], tmp_path / "w", weights__fid_inception__sha256="0" * 64,
                  extractors__i3d__version="2", dtype="bf16")  # fmt: skip
    result = add(root, other, "Second", "--no-bootstrap")
    output = " ".join(result.output.split())
    assert result.exit_code == 1
    assert (
        "weights differ from the table's existing entries: fid_inception sha256 000000000000…"
        in output
    )
    assert "in avsync15-official-First.json" in output
    assert "extractor i3d version 2 here, 1" in output and "dtype bf16 here, fp32" in output
    assert not (root / "results" / "avsync15-official-Second.json").exists()
    # another protocol mode is another table: no conflict there
    corrected = _edit(runs["worse"], tmp_path / "c", protocol="corrected",
                      weights__fid_inception__sha256="0" * 64)  # fmt: skip
    assert add(root, corrected, "Second", "--no-bootstrap").exit_code == 0


def test_build_is_deterministic_and_shows_every_reported_row(root, runs):
    for name, method in (("good", "Good"), ("worse", "Worse")):
        assert add(root, runs[name], method).exit_code == 0
    assert cli("leaderboard", "build", "--root", root).exit_code == 0
    first = (root / "LEADERBOARD.md").read_bytes()
    assert cli("leaderboard", "build", "--root", root).exit_code == 0
    assert (root / "LEADERBOARD.md").read_bytes() == first
    text = first.decode()
    assert "added_utc" not in text and "+00:00" not in text  # no timestamps
    lines = text.splitlines()
    reported = json.loads((root / "reported.json").read_text())
    for table in reported["tables"]:
        if table.get("duplicate_of"):
            assert f"`{table['id']}`" in text
            continue
        assert f"### Reported: {table['caption']}" in text
        for row in table["rows"]:
            cells = [
                "–" if row["values"].get(k) is None else f"{row['values'][k]:.{spec['decimals']}f}"
                for k, spec in table["metrics"].items()
            ]
            hits = [
                line for line in lines
                if row["method"] in line and f"| {row.get('inputs') or '–'} |" in line
                and [c.strip().strip("*") for c in line.strip("|").split("|")[2:]] == cells
            ]  # fmt: skip
            assert hits, (table["id"], row["method"], cells)
    # computed table: arrows, ×100, bold best, ± intervals, clip counts; no stray sections
    assert "| FID ↓ | IA ×100 ↑ | IT ×100 ↑ | FVD ↓ | RelSync ×100 ↑ |" in text
    good = next(line for line in lines if line.startswith("| Good |"))
    worse = next(line for line in lines if line.startswith("| Worse |"))
    assert good.count("**") == 10 and "**" not in worse  # Good is best in all 5 columns
    assert " ± " in good and "450/450" in good
    assert "## Refused files" not in text
    assert text.count("No computed entries yet") == 5  # 6 tables, avsync15/official is filled


def test_build_lists_refused_files_and_check_detects_staleness(root, runs):
    assert cli("leaderboard", "build", "--root", root).exit_code == 0
    assert cli("leaderboard", "build", "--root", root, "--check").exit_code == 0
    (root / "results").mkdir(exist_ok=True)
    (root / "results" / "broken.json").write_text("{not json")
    entry = json.loads((runs["good"] / "results.json").read_text())
    entry.update(standin=True, leaderboard={"method": "Fake"})
    (root / "results" / "avsync15-official-Fake.json").write_text(json.dumps(entry))
    stale = cli("leaderboard", "build", "--root", root, "--check")
    assert stale.exit_code == 1 and "is stale" in stale.output
    result = cli("leaderboard", "build", "--root", root)
    assert result.exit_code == 0 and "refused: broken.json" in result.output
    text = (root / "LEADERBOARD.md").read_text()
    assert "## Refused files" in text
    assert "| `avsync15-official-Fake.json` | computed with stand-in weights" in text
    assert "| `broken.json` | cannot read results" in text
    assert cli("leaderboard", "build", "--root", root, "--check").exit_code == 0


def test_checked_in_leaderboard_is_up_to_date():
    folder = REPO / "leaderboard"
    assert (folder / board.OUTPUT_FILE).read_text(encoding="utf-8") == board.render(folder), (
        "leaderboard/LEADERBOARD.md is stale: run `avsync-bench leaderboard build`"
    )


def test_compare_command_prints_the_paired_table(runs, tmp_path):
    out = tmp_path / "compare.json"
    result = CliRunner().invoke(
        app,
        [
            "compare",
            str(runs["good"]),
            str(runs["worse"] / "results.json"),
            "--frechet-resamples",
            "20",
            "--resamples",
            "200",
            "--json",
            str(out),
        ],  # fmt: skip
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    for column in ("metric", "A − B", "95% CI of A − B", "P(A better)"):
        assert column in result.output
    assert "FID ↓" in result.output and "IA (x100) ↑" in result.output
    saved = json.loads(out.read_text())
    assert saved["metrics"]["fid"]["p_a_better"] == 1.0 and saved["n_clips"] == 450
    refused = cli("compare", runs["good"], tmp_path / "nowhere")
    assert refused.exit_code == 1 and "no results.json" in refused.output
