"""IA, IT, RelSync, AlignSync: official arithmetic, validity checks with stand-in weights."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from conftest import GOLDEN, need_shared

from avsync_bench.clips import load_test_clips
from avsync_bench.datasets import load_split
from avsync_bench.features.imagebind import ImageBindFeatures
from avsync_bench.features.sync import SyncFeatures
from avsync_bench.metrics import METRICS, FeatureSet
from avsync_bench.metrics.per_clip import p_align_from_cosines, per_clip_value, relsync_values
from avsync_bench.protocol import ClipSpec, ProtocolMode
from avsync_bench.weights.standins import make_standins

SYNC_METRICS = ("ia", "it", "relsync", "alignsync")


def _scenario(name):
    need_shared(GOLDEN / "sync_classifier.json")
    return json.loads((GOLDEN / "sync_classifier.json").read_text())["metric_arithmetic"][name]


def test_official_evaluation_arithmetic_typical():
    case = _scenario("typical")
    inputs, official = case["inputs"], case["eval_py_outputs"]
    ia_frames = np.array(inputs["ia_gen_frames0to11"])[:, 1:]
    it_frames = np.array(inputs["it_gen_frames0to11"])[:, 1:]
    rel = relsync_values(inputs["phi_gt"], inputs["phi_gen"])
    align = p_align_from_cosines(inputs["ia_gt_first_frame"], ia_frames) * rel
    for ours, key in [
        (per_clip_value(ia_frames.mean(1)), "IA"),
        (per_clip_value(it_frames.mean(1)), "IT"),
        (per_clip_value(rel), "RelSync"),
        (per_clip_value(align), "AlignSync"),
    ]:
        assert ours.value == pytest.approx(official[f"{key}_mean"], abs=1e-6), key
        assert ours.std == pytest.approx(official[f"{key}_std"], abs=1e-6), key
    per_clip = [v["AlignSync"] for v in official["instance_metrics"].values()]
    np.testing.assert_allclose(align, per_clip, atol=1e-6)
    np.testing.assert_allclose(rel, case["cli_compute_relsync"], atol=1e-6)


def test_large_logits_stay_finite_where_the_official_script_gives_nan():
    case = _scenario("large_logits")
    inputs = case["inputs"]
    assert np.isnan(case["eval_py_outputs"]["RelSync_mean"])
    rel = relsync_values(inputs["phi_gt"], inputs["phi_gen"])
    assert np.isfinite(rel).all()
    np.testing.assert_allclose(rel, case["cli_compute_relsync"], atol=1e-6)
    ia_frames = np.array(inputs["ia_gen_frames0to11"])[:, 1:]
    align = p_align_from_cosines(inputs["ia_gt_first_frame"], ia_frames) * rel
    np.testing.assert_allclose(align, case["cli_compute_alignsync"], atol=1e-6)


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    folder = tmp_path_factory.mktemp("standins")
    return {w.name: w for w in make_standins(folder, ["imagebind_huge", "avsync_classifier"])}


@pytest.fixture(scope="module")
def gt_clips(tiny_dataset):
    videos = load_split("avsync15", tiny_dataset)
    spec = ClipSpec()
    clips = [c for v in videos for c in load_test_clips(v.path, spec, ProtocolMode.official)]
    texts = [v.it_text(ProtocolMode.official) for v in videos for _ in range(3)]
    return clips, texts


def _features(clips_gt, clips_gen, texts, standins, batch_size=4):
    features = FeatureSet()
    for extractor in (ImageBindFeatures("cpu", batch_size), SyncFeatures("cpu", batch_size)):
        extractor.load(standins)
        features.gt[extractor.name] = extractor.extract(clips_gt, "gt")
        features.gen[extractor.name] = extractor.extract(clips_gen, "gen")
        if extractor.uses_text:
            features.text[extractor.name] = extractor.embed_texts(texts)
        extractor.release()
    return {key: METRICS[key].compute(features) for key in SYNC_METRICS}, features


def test_embeddings_are_unit_norm(gt_clips, standins):
    clips, texts = gt_clips
    _, features = _features(clips[:2], clips[:2], texts[:2], standins)
    for array in (features.gt["imagebind"], features.gen["imagebind"], features.text["imagebind"]):
        np.testing.assert_allclose(np.linalg.norm(array, axis=-1), 1.0, atol=1e-5)


def test_gt_against_itself_gives_exactly_one_half(gt_clips, standins):
    clips, texts = gt_clips
    values, _ = _features(clips, clips, texts, standins)
    assert (values["relsync"].per_clip == 0.5).all()
    static = [replace(c, frames=np.repeat(c.frames[:1], 12, axis=0)) for c in clips]
    values, _ = _features(clips, static, texts, standins, batch_size=1)
    assert (
        values["relsync"].per_clip_extra["phi_gt"] != values["relsync"].per_clip_extra["phi_gen"]
    ).any()
    np.testing.assert_array_equal(values["alignsync"].per_clip_extra["p_align"], 0.5)
    assert (values["alignsync"].per_clip <= values["relsync"].per_clip).all()


def test_order_and_batch_size_change_nothing(gt_clips, standins):
    clips, texts = gt_clips
    gen = [replace(c, frames=c.frames[:, ::-1].copy()) for c in clips]  # a different "generation"
    base, _ = _features(clips, gen, texts, standins, batch_size=1)
    reordered, _ = _features(clips[::-1], gen[::-1], texts[::-1], standins, batch_size=5)
    for key in SYNC_METRICS:
        np.testing.assert_allclose(
            reordered[key].per_clip[::-1], base[key].per_clip, rtol=1e-5, atol=1e-7, err_msg=key
        )
        assert (base["alignsync"].per_clip <= base["relsync"].per_clip).all()


def test_score_with_every_metric_workers_batch_and_the_audio_check(
    tiny_dataset, standins, tmp_path
):
    from avsync_bench.io.media import write_clip
    from avsync_bench.scoring import ScoreOptions, score
    from baselines.runner import run_adapter
    from baselines.static import StaticAdapter

    preds = tmp_path / "preds"
    run_adapter(StaticAdapter(), preds, data_root=tiny_dataset)
    weights_dir = standins["imagebind_huge"].path.parent
    metrics = "ia,it,relsync,alignsync,av_align"
    options = dict(preds=preds, data_root=tiny_dataset, metrics=metrics, weights_dir=weights_dir)
    one = score(ScoreOptions(**options, cache_dir=None, batch_size=1))
    two = score(ScoreOptions(**options, cache_dir=tmp_path / "c", batch_size=6, workers=2))
    for key in metrics.split(","):
        assert two.results["metrics"][key]["value"] == pytest.approx(
            one.results["metrics"][key]["value"], rel=1e-5, abs=1e-8
        ), key
    assert one.results["standin"] and one.results["audio_check"]["flagged"] == []
    assert one.results["audio_check"]["min_correlation"] > 0.85  # threshold 0.75, with margin
    # Mux a window 0.25 s off (clicks fall between the right ones) into one file: flagged.
    clips = load_test_clips(
        load_split("avsync15", tiny_dataset)[1].path, ClipSpec(), ProtocolMode.official
    )
    target = preds / "dog_barking/a_clip-00.mp4"
    frames = np.repeat(clips[0].frames[:1], 12, axis=0)
    write_clip(target, frames, 6, np.roll(clips[0].audio[:, :32000], 4000, axis=1), 16000)
    flagged = score(ScoreOptions(**options, cache_dir=tmp_path / "c"))
    assert flagged.results["audio_check"]["flagged"] == ["dog_barking/a_clip-00.mp4"]
    assert any("differs from their GT clip" in w for w in flagged.results["warnings"])
