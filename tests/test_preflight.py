"""Refuse early, lose nothing (issue 15 §1) and never overwrite results silently (issue 16 §2)."""

from __future__ import annotations

import json

import pytest
import torch
from tiny_extractors import tiny_extractors
from typer.testing import CliRunner

import avsync_bench.extract as extract_module
from avsync_bench.cli import app
from avsync_bench.preflight import PreflightError, preflight
from avsync_bench.scoring import ScoreOptions, score
from baselines.runner import run_adapter
from baselines.static import StaticAdapter


@pytest.fixture(scope="module")
def preds(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("preds")
    assert len(run_adapter(StaticAdapter(), out, data_root=tiny_dataset).written) == 6
    return out


@pytest.fixture
def no_heavy_work(monkeypatch):
    """Decoding fails the test: a check that comes after it came too late."""

    def boom(*_args, **_kwargs):
        raise AssertionError("decoding started before the pre-flight checks")

    monkeypatch.setattr(extract_module._Jobs, "__getitem__", boom)


@pytest.fixture(scope="module")
def scored(tiny_dataset, preds):
    """One real scoring run (tiny FID/FVD networks) that the CLI tests below reuse."""
    return score(ScoreOptions(preds, data_root=tiny_dataset, metrics="fid,fvd", cache_dir=None),
                 tiny_extractors())  # fmt: skip


@pytest.fixture
def tiny_cli(monkeypatch, scored):
    """`avsync-bench score` returning ``scored`` (the CLI's own checks and writing still run)."""
    monkeypatch.setattr(
        "avsync_bench.cli.score.score", lambda options, progress=None, **_kw: scored
    )


def _score_args(preds, dataset, out, *extra):
    return ["score", str(preds), "--data-root", str(dataset), "--metrics", "fid,fvd",
            "--out", str(out), "--no-cache", *extra]  # fmt: skip


def test_unwritable_out_cache_and_missing_device_refused_first(
    tiny_dataset, preds, tmp_path, monkeypatch, no_heavy_work
):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    result = CliRunner().invoke(app, _score_args(preds, tiny_dataset, blocker / "out"))
    assert result.exit_code == 1
    assert f"--out: cannot create {blocker / 'out'}: {blocker} is a file" in result.output
    monkeypatch.setenv("AVSYNC_BENCH_HOME", str(blocker / "home"))
    options = ScoreOptions(preds, data_root=tiny_dataset, metrics="fid", cache_dir=blocker / "c")
    with pytest.raises(
        PreflightError,
        match=r"--cache-dir \(\$AVSYNC_BENCH_HOME/features by default\): cannot create",
    ):
        score(options, tiny_extractors())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    options = ScoreOptions(
        preds, data_root=tiny_dataset, metrics="fid", cache_dir=None, device="cuda"
    )
    with pytest.raises(PreflightError, match="--device: 'cuda': no usable CUDA device"):
        score(options, tiny_extractors())
    with pytest.raises(PreflightError, match="--device: 'gpu0' is not a torch device"):
        preflight(device="gpu0")


def test_generate_and_sync_score_check_before_work(tiny_dataset, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    runner = CliRunner()
    result = runner.invoke(
        app, ["generate", "static", "--data-root", str(tiny_dataset), "--out", str(blocker / "p")]
    )
    assert result.exit_code == 1 and f"{blocker} is a file" in result.output
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(
        "avsync_bench.sync_pair.load_pair_clip",
        lambda *a: (_ for _ in ()).throw(AssertionError("decoded before the device check")),
    )
    result = runner.invoke(
        app,
        ["sync-score", "--video", str(tmp_path / "v.mp4"), "--device", "cuda", "--metric", "score"],
    )
    assert result.exit_code == 1 and "no usable CUDA device" in result.output


def test_results_refused_unless_force(tiny_dataset, preds, tmp_path, tiny_cli):
    out = tmp_path / "scores"
    runner = CliRunner()
    first = runner.invoke(app, _score_args(preds, tiny_dataset, out))
    assert first.exit_code == 0, first.output
    created = json.loads((out / "results.json").read_text())["created_utc"]
    (out / "results.json").write_text(
        json.dumps({**json.loads((out / "results.json").read_text()), "created_utc": "earlier"})
    )
    again = runner.invoke(app, _score_args(preds, tiny_dataset, out))
    assert again.exit_code == 1
    assert "already holds results of an earlier run" in again.output and "--force" in again.output
    assert "per_clip.csv" in again.output and "created earlier" in again.output
    assert json.loads((out / "results.json").read_text())["created_utc"] == "earlier"
    forced = runner.invoke(app, _score_args(preds, tiny_dataset, out, "--force"))
    assert forced.exit_code == 0, forced.output
    assert json.loads((out / "results.json").read_text())["created_utc"] >= created


def test_results_saved_to_a_fallback_when_out_fails_at_the_end(
    tiny_dataset, preds, tmp_path, monkeypatch, scored
):
    out = tmp_path / "scores"

    def score_then_break_out(options, progress=None, **_kw):
        out.write_text("something else took the name")  # --out is no longer a folder
        return scored

    monkeypatch.setattr("avsync_bench.cli.score.score", score_then_break_out)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    result = CliRunner().invoke(app, _score_args(preds, tiny_dataset, out))
    assert result.exit_code == 1
    (fallback,) = list(work.glob("avsync-bench-results-*"))
    assert f"the results were written to {fallback}" in result.output.replace("\n", "")
    results = json.loads((fallback / "results.json").read_text())
    assert set(results["metrics"]) == {"fid", "fvd"}
    assert (fallback / "per_clip.csv").is_file() and (fallback / "features.npz").is_file()
