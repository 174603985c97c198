"""Two stages (extract → features.npz → evaluate), decode once, several processes (gloo)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import GALLERY, need_shared
from tiny_extractors import tiny_extractors
from typer.testing import CliRunner

from avsync_bench.cli import app
from avsync_bench.evaluate import evaluate
from avsync_bench.extract import extract
from avsync_bench.featurefile import FeatureFileError, load_features, save_features
from avsync_bench.features.sync import SyncFeatures
from avsync_bench.scoring import ScoreOptions, score
from baselines.runner import run_adapter
from baselines.static import StaticAdapter


class TinySync(torch.nn.Module):
    """(mels (B,1,128,204), frames (B,3,12,224,224)) → (B,) like the AV-sync classifier."""

    def forward(self, mels, frames):
        return mels.mean(dim=(1, 2, 3)) - frames.mean(dim=(1, 2, 3, 4))


def _extractors():
    out = tiny_extractors()
    out["avsync"] = SyncFeatures("cpu")
    out["avsync"].model = TinySync()
    return out


@pytest.fixture(scope="module")
def gallery_subset(tmp_path_factory):
    """One gallery video (3 clips) in the release layout, and the Static baseline's files."""
    gallery = need_shared(GALLERY)
    root = tmp_path_factory.mktemp("gallery2")
    (root / "videos").symlink_to(gallery / "videos", target_is_directory=True)
    shutil.copy(gallery / "class_mapping.json", root)
    (root / "test.txt").write_text("\n".join((gallery / "test.txt").read_text().split()[:1]) + "\n")
    preds = tmp_path_factory.mktemp("gallery2_preds")
    run_adapter(StaticAdapter(), preds, data_root=root)
    return root, preds


def _values(results):
    return {k: v["value"] for k, v in results["metrics"].items()}


def test_extract_then_evaluate_equals_score(gallery_subset, tmp_path):
    root, preds = gallery_subset
    options = ScoreOptions(
        preds=preds, data_root=root, metrics="fid,fvd,relsync,av_align", cache_dir=None
    )
    scored = score(options, _extractors())
    ff = extract(options, _extractors())
    path = save_features(tmp_path / "features.npz", ff)
    again = evaluate(load_features(path))
    assert _values(again.results) == _values(scored.results)
    strip = lambda r: {k: v for k, v in r.items() if k != "created_utc"}  # noqa: E731
    assert strip(again.results) == strip(scored.results)
    assert again.per_clip == scored.per_clip
    assert "audio_check" in again.results and "audio_match" in again.per_clip[0]
    meta = json.loads(str(np.load(path)["meta"]))
    assert meta["format_version"] == 1 and meta["extractors"]["i3d"]["weights"]


def test_cli_extract_evaluate_and_refusals(gallery_subset, tmp_path, monkeypatch):
    root, preds = gallery_subset
    monkeypatch.setenv("AVSYNC_BENCH_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    made = runner.invoke(app, ["weights", "make-standins", str(tmp_path / "w"), "--names",
                               "i3d_torchscript"])  # fmt: skip
    assert made.exit_code == 0, made.output
    common = ["--data-root", str(root), "--metrics", "fvd,av_align",
              "--weights-dir", str(tmp_path / "w"), "--no-cache"]  # fmt: skip
    one = runner.invoke(app, ["score", str(preds), *common, "--out", str(tmp_path / "score")])
    assert one.exit_code == 0, one.output
    ex = runner.invoke(app, ["extract", str(preds), *common, "--out", str(tmp_path / "ex")])
    assert ex.exit_code == 0, ex.output
    ev = runner.invoke(app, ["evaluate", str(tmp_path / "ex" / "features.npz"),
                             "--out", str(tmp_path / "ev")])  # fmt: skip
    assert ev.exit_code == 0, ev.output
    a = json.loads((tmp_path / "score" / "results.json").read_text())
    b = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert _values(a) == _values(b) and a["weights"] == b["weights"]
    assert (tmp_path / "score" / "per_clip.csv").read_text() == (
        tmp_path / "ev" / "per_clip.csv"
    ).read_text()
    features = str(tmp_path / "ex" / "features.npz")
    wrong = runner.invoke(app, ["evaluate", features, "--protocol", "corrected"])
    assert wrong.exit_code == 1 and "field 'protocol' is 'official'" in wrong.output
    other = load_features(features)
    other.meta["extractors"]["i3d"]["weights"] = {"i3d_torchscript": "0" * 64}
    save_features(tmp_path / "other" / "features.npz", other)
    like = runner.invoke(app, ["evaluate", features, "--like", str(tmp_path / "other")])
    assert like.exit_code == 1 and "extractors.i3d.weights" in like.output
    assert "Traceback" not in like.output
    other.meta["format_version"] = 99
    save_features(tmp_path / "v99" / "features.npz", other)
    with pytest.raises(FeatureFileError, match="format_version"):
        load_features(tmp_path / "v99")


def test_each_file_is_opened_once_and_each_mel_computed_once(tiny_dataset, tmp_path, monkeypatch):
    """Issue #9 item 4: GT files opened once (metadata + both clips' windows), generated files
    once by the listing check and once by the decoder; one mel per clip shared by the
    classifier and the audio check."""
    preds = tmp_path / "preds"
    run_adapter(StaticAdapter(), preds, data_root=tiny_dataset)
    opened: Counter = Counter()
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda path, *a, **k: opened.update([Path(path).name]) or
                        real_open(path, *a, **k))  # fmt: skip
    import avsync_bench.clips as clips

    mels = []
    real_mel = clips.waveform_mel
    monkeypatch.setattr(clips, "waveform_mel", lambda *a, **k: mels.append(1) or real_mel(*a, **k))
    options = ScoreOptions(preds=preds, data_root=tiny_dataset, metrics="fvd,relsync",
                           cache_dir=None)  # fmt: skip
    run = score(options, _extractors())
    assert run.results["clip_counts"]["scored"] == 6
    assert opened["a.mp4"] == 1 and opened["b.mp4"] == 1, opened
    generated = {name: n for name, n in opened.items() if "_clip-" in name}
    assert len(generated) == 6 and set(generated.values()) == {2}, generated
    assert len(mels) == 12  # 6 clips × (GT, generated), read by "avsync" and "mel"


def _rank_main(rank, world, port, preds, data_root, cache, out):
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        from avsync_bench.distributed import Distributed

        options = ScoreOptions(preds=Path(preds), data_root=Path(data_root),
                               metrics="fid,fvd,relsync", cache_dir=Path(cache),
                               allow_partial=True, batch_size=2)  # fmt: skip
        run = score(options, _extractors(), dist=Distributed(rank, world))
        assert (run is None) == (rank != 0)
        if run is not None:
            save_features(Path(out) / "features.npz", run.feature_file)
            Path(out, "results.json").write_text(json.dumps(run.results))
    finally:
        torch.distributed.destroy_process_group()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_one_two_three_processes_give_the_same_results(tiny_dataset, tmp_path):
    """5 clips (not a multiple of 2 or 3) on 1, 2 and 3 gloo processes: identical features and
    values; rank 0 alone writes the cache, each clip's GT entry exactly once."""
    preds = tmp_path / "preds"
    run_adapter(StaticAdapter(), preds, data_root=tiny_dataset)
    (preds / "hammering" / "b_clip-02.mp4").unlink()
    runs = {}
    for world in (1, 2, 3):
        out, cache = tmp_path / f"out{world}", tmp_path / f"cache{world}"
        args = (world, _free_port(), str(preds), str(tiny_dataset), str(cache), str(out))
        # every world size in fresh processes alike (the same thread settings for all)
        torch.multiprocessing.spawn(_rank_main, args=args, nprocs=world, join=True)
        runs[world] = (json.loads((out / "results.json").read_text()), load_features(out))
        entries = list(cache.rglob("*.npy"))
        assert len(entries) == 5 * len(runs[world][1].meta["extractors"])  # once per clip
    base, base_ff = runs[1]
    assert base["clip_counts"]["scored"] == 5
    for world in (2, 3):
        results, ff = runs[world]
        for key, value in _values(base).items():
            assert _values(results)[key] == pytest.approx(value, rel=1e-6, abs=1e-12), key
        assert ff.rows == base_ff.rows and ff.meta["processes"] == world
        for side in ("gt", "gen"):
            for name, array in getattr(base_ff.features, side).items():
                np.testing.assert_array_equal(
                    getattr(ff.features, side)[name], array, err_msg=f"{side} {name} x{world}"
                )
