"""Scoring runs: GT cache reuse, interrupted cache writes, worker/batch independence."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_extractors import tiny_extractors

from avsync_bench import cache as cache_module
from avsync_bench.cache import FeatureCache
from avsync_bench.scoring import ScoreOptions, score
from baselines.runner import run_adapter
from baselines.static import StaticAdapter


@pytest.fixture(scope="module")
def preds(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("static")
    run_adapter(StaticAdapter(), out, data_root=tiny_dataset)
    return out


def _values(run):
    return {k: v["value"] for k, v in run.results["metrics"].items()}


def test_second_predictions_folder_recomputes_nothing_on_the_gt_side(
    tiny_dataset, preds, tmp_path, monkeypatch
):
    options = ScoreOptions(
        preds=preds, data_root=tiny_dataset, metrics="fid,fvd", cache_dir=tmp_path / "cache"
    )
    first = score(options, tiny_extractors())
    assert first.results["cache"] == {"hits": 0, "misses": 12}
    decoded = []
    import avsync_bench.extract as extract_module

    original = extract_module._Jobs.__getitem__
    monkeypatch.setattr(
        extract_module._Jobs,
        "__getitem__",
        lambda self, i: decoded.append(self.jobs[i].gt_needed) or original(self, i),
    )
    second = score(options, tiny_extractors())
    assert second.results["cache"] == {"hits": 12, "misses": 0}
    assert decoded == [[], []]  # both videos visited, no GT clip decoded
    assert _values(first) == _values(second)


def test_interrupted_cache_write_leaves_no_entry_and_the_next_run_resumes(
    tiny_dataset, preds, tmp_path, monkeypatch
):
    options = ScoreOptions(
        preds=preds, data_root=tiny_dataset, metrics="fid,fvd", cache_dir=tmp_path / "cache"
    )
    calls = {"n": 0}
    real_save = np.save

    def failing_save(handle, value, allow_pickle=False):
        calls["n"] += 1
        if calls["n"] == 4:
            handle.write(b"\x93NUMPY half")
            raise KeyboardInterrupt("simulated interruption")
        real_save(handle, value, allow_pickle=allow_pickle)

    monkeypatch.setattr(cache_module.np, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        score(options, tiny_extractors())
    monkeypatch.setattr(cache_module.np, "save", real_save)
    files = sorted((tmp_path / "cache").rglob("*"))
    assert [f for f in files if f.is_file()] and not [f for f in files if f.name.startswith(".tmp")]
    entries = [f for f in files if f.suffix == ".npy"]
    assert len(entries) == 3  # the three completed writes, nothing half-written
    resumed = score(options, tiny_extractors())
    assert resumed.results["cache"]["hits"] == 3
    fresh = score(
        ScoreOptions(preds=preds, data_root=tiny_dataset, metrics="fid,fvd", cache_dir=None),
        tiny_extractors(),
    )
    assert _values(resumed) == pytest.approx(_values(fresh), rel=1e-6)


def test_batch_size_and_workers_do_not_change_values(tiny_dataset, preds):
    """Batch invariance (issue #15 item 6): every network call has the same shape, so the
    features are bit-identical for any --batch-size and worker count."""
    base = score(
        ScoreOptions(
            preds=preds, data_root=tiny_dataset, metrics="fid,fvd", cache_dir=None, batch_size=1
        ),
        tiny_extractors(),
    )
    other = score(
        ScoreOptions(
            preds=preds,
            data_root=tiny_dataset,
            metrics="fid,fvd",
            cache_dir=None,
            workers=2,
            batch_size=5,
        ),
        tiny_extractors(),
    )
    assert _values(other) == _values(base)
    for name in ("fid_inception", "i3d"):
        for side in ("gt", "gen"):
            a, b = getattr(base.features, side)[name], getattr(other.features, side)[name]
            assert np.array_equal(a, b), (name, side)
    assert base.results["standin"] is True and base.results["injected_extractors"] == [
        "fid_inception",
        "i3d",
    ]


def test_cache_key_changes_with_every_input():
    from avsync_bench.protocol import ClipSpec, ProtocolMode

    base = dict(video_sha256="a", mode=ProtocolMode.official, spec=ClipSpec(), clip_index=0,
                extractor="i3d", extractor_version="1", weight_sha256s={"w": "x"})  # fmt: skip
    key = FeatureCache.key(**base)
    for field, value in [("video_sha256", "b"), ("mode", ProtocolMode.corrected), ("clip_index", 1),
                         ("extractor_version", "2"), ("weight_sha256s", {"w": "y"}),
                         ("spec", ClipSpec(128, 256))]:  # fmt: skip
        assert FeatureCache.key(**{**base, field: value}) != key, field


def test_weight_free_extractors_do_not_mark_a_run_as_standin(tiny_dataset, preds, tmp_path):
    from avsync_bench.weights.standins import make_standins

    make_standins(tmp_path / "w", ["i3d_torchscript"])
    store = tmp_path / "w" / "standins.json"
    store.unlink()  # the same file, now treated as a real (pinned) weight file
    options = ScoreOptions(
        preds=preds,
        data_root=tiny_dataset,
        metrics="fvd,av_align",
        weights_dir=tmp_path / "w",
        cache_dir=None,
    )
    run = score(options)
    assert run.results["standin"] is False and run.results["injected_extractors"] == []
