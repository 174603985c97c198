"""Training the AV-sync classifier (PROTOCOL.md §3): a synthetic sync task is learnt on CPU,
checkpoints round-trip through score's loader, and resuming is exact."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from classifier_synthetic import make_dataset

from avsync_bench.classifier.train import load_config, train
from avsync_bench.features.sync import SyncFeatures
from avsync_bench.models.sync_classifier import MODULE_NAMES
from avsync_bench.weights.store import ResolvedWeight


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Train videos (6.25 s: 21 clips 0.2 s apart need 6 s)."""
    root = tmp_path_factory.mktemp("flash")
    make_dataset(root, n_videos=12, duration=6.25, seed=0, split="train")
    return root


@pytest.fixture
def one_thread():
    """One torch thread for the test, restored after it (other tests see the default)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _cfg(root, out, **overrides):
    base = {"data_root": str(root), "output_dir": str(out), "image_size": 16, "batch_size": 1}
    return load_config("tiny-cpu", **{**base, **overrides})


def test_checkpoint_round_trip_and_exact_resume(synthetic, tmp_path, one_thread):
    cfg = _cfg(synthetic, tmp_path / "a", checkpointing_steps=2)
    full = train(cfg, max_steps=3, log=lambda _: None)
    checkpoint = tmp_path / "a" / "checkpoint-3"
    for name in MODULE_NAMES:
        assert (checkpoint / "modules" / name / "diffusion_pytorch_model.bin").is_file()
        assert (checkpoint / "modules" / name / "config.json").is_file()
    log = [
        json.loads(line) for line in (tmp_path / "a" / "train_log.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in log if "step" in r] == [1, 2, 3]

    # score's loader (the `avsync_classifier` weights) gives the trained model's φ exactly
    extractor = SyncFeatures()
    loaded = extractor.build(
        {"avsync_classifier": ResolvedWeight("avsync_classifier", checkpoint, "-", False)}
    )
    trained = full["classifier"].eval()
    generator = torch.Generator().manual_seed(0)
    mel = torch.randn(3, 1, 128, 204, generator=generator)
    frames = torch.randn(3, 3, 12, 16, 16, generator=generator)
    with torch.no_grad():
        assert torch.equal(loaded(mel, frames), trained(mel, frames))

    # resume from checkpoint-2 of a second run: the same step-3 loss and weights
    cfg_b = _cfg(synthetic, tmp_path / "b", checkpointing_steps=2)
    first = train(cfg_b, max_steps=2, log=lambda _: None)
    assert [r["loss"] for r in first["records"]] == [r["loss"] for r in full["records"][:2]]
    resumed = train(cfg_b, max_steps=3, resume=True, log=lambda _: None)
    assert [r["step"] for r in resumed["records"]] == [3]
    assert resumed["records"][0]["loss"] == full["records"][2]["loss"]
    for key, value in resumed["classifier"].state_dict().items():
        assert torch.equal(value, trained.state_dict()[key]), key


def test_tiny_config_learns_synthetic_sync(synthetic, tmp_path, one_thread):
    """Flash-at-click clips: within 100 steps (batch 1) the contrastive loss leaves chance level
    (ln 21 = 3.04) and the diagonal is picked more often than chance (1/21).

    Not asserted, because not reached on this CPU budget: the issue's target of >= 2x chance
    (71 %) on the 31-offset ±5 test of held-out clips. Measured (docs/classifier.md): 30-60 %
    after 300 steps, chance 35.5 %.
    """
    cfg = _cfg(synthetic, tmp_path / "run", learning_rate=3e-3, checkpointing_steps=1000)
    records = train(cfg, max_steps=100, log=lambda _: None)["records"]
    first = np.mean([r["loss"] for r in records[:20]])
    last = np.mean([r["loss"] for r in records[-20:]])
    acc = np.mean([(r["av_acc"] + r["va_acc"]) / 2 for r in records[-20:]])
    assert first > 2.95  # about ln 21: nothing learnt yet
    assert last < first - 0.2, (first, last)
    assert acc > 1.3 / 21, acc
