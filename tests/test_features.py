"""Feature extractors: golden metric inputs, batch/worker independence, stand-in files."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from conftest import GOLDEN, need_shared
from tiny_extractors import tiny_extractors

from avsync_bench.clips import load_test_clips
from avsync_bench.datasets import load_split
from avsync_bench.features.i3d import I3DFeatures
from avsync_bench.features.inception import InceptionFeatures
from avsync_bench.features.transforms import clip_normalise, fid_inputs, fvd_inputs
from avsync_bench.protocol import ClipSpec, ProtocolMode
from avsync_bench.weights.standins import make_standins


def _golden():
    need_shared(GOLDEN / "preprocessing.json")
    from safetensors.torch import load_file

    meta = json.loads((GOLDEN / "preprocessing.json").read_text())
    return meta["derived"], load_file(str(GOLDEN / "preprocessing.safetensors"))


def test_fid_inputs_match_official_preprocessing():
    derived, tensors = _golden()
    frames = tensors["v0_c1.frames_u8"].numpy()
    ours = fid_inputs(frames[1:])
    torch.testing.assert_close(ours, tensors["derived.fid_input_frames1to11"], atol=1e-5, rtol=0)
    digest = hashlib.sha256(ours.numpy().tobytes()).hexdigest()
    if digest != derived["fid_input_frames1to11_sha256_f32"]:
        pytest.fail("FID input differs bitwise from the official one")


def test_fvd_and_clip_inputs_match_official_sums():
    derived, tensors = _golden()
    frames = tensors["v0_c1.frames_u8"].numpy()
    fvd = fvd_inputs(frames[None])
    assert fvd.shape == (1, 3, 12, 224, 224)
    sums = fvd[0].double().sum(dim=(0, 2, 3)).numpy()
    np.testing.assert_allclose(sums, derived["fvd_input_per_frame_sum_f64"], rtol=1e-6)
    torch.testing.assert_close(fvd.half(), tensors["derived.fvd_input_f16"], atol=1e-3, rtol=0)
    sync = clip_normalise(frames)
    np.testing.assert_allclose(
        sync.double().sum(dim=(1, 2, 3)).numpy(), derived["sync_input_per_frame_sum_f64"], rtol=1e-6
    )


@pytest.fixture(scope="module")
def tiny_clips(tiny_dataset):
    videos = load_split("avsync15", tiny_dataset)
    spec = ClipSpec()
    return [c for v in videos for c in load_test_clips(v.path, spec, ProtocolMode.official)]


@pytest.mark.parametrize("name", ["fid_inception", "i3d"])
def test_features_do_not_depend_on_batch_size(tiny_clips, name):
    one = tiny_extractors(batch_size=1)[name]
    many = tiny_extractors(batch_size=5)[name]
    a, b = one.extract(tiny_clips), many.extract(tiny_clips)
    assert a.shape == (6, *one.feature_shape)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * np.abs(a).max())
    reordered = one.extract(tiny_clips[::-1])[::-1]
    np.testing.assert_allclose(a, reordered, rtol=1e-5, atol=1e-6 * np.abs(a).max())


def test_standin_files_load_through_the_real_loaders(tmp_path, tiny_clips):
    resolved = {w.name: w for w in make_standins(tmp_path, ["fid_inception", "i3d_torchscript"])}
    assert all(w.standin for w in resolved.values())
    inception = InceptionFeatures(batch_size=11)
    inception.load(resolved)
    features = inception.extract(tiny_clips[:1])
    assert features.shape == (1, 11, 2048) and np.isfinite(features).all()
    inception.release()
    assert inception.model is None
    i3d = I3DFeatures(batch_size=2)
    i3d.load(resolved)
    logits = i3d.extract(tiny_clips[:2])
    assert logits.shape == (2, 400) and np.isfinite(logits).all()
    assert not np.allclose(logits[0], logits[1])
