"""AVSyncD training loop (reference_model/training.py) on the tiny CPU config.

(a) a fixed batch is overfitted (loss ≥ 2x lower within 25 steps, fixed noise/timesteps, no
dropout); (b) save → resume gives the same next-step loss and weights as an uninterrupted run;
(c) only ``_temp``/``_audio`` parameters change; (d) the CLI trains, checkpoints and resumes.
Models are 32x32 here (the config's 64x64 works too, ~2x slower).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import GALLERY
from safetensors.torch import load_file

import avsync_bench  # noqa: F401  (torch compatibility shim first)
from avsync_bench.datasets import load_split
from reference_model.train_data import TrainClipDataset, collate
from reference_model.training import (
    build_models,
    diffusion_loss,
    encode_batch,
    latest_checkpoint,
    load_config,
    train,
)

SMALL = {"height": 32, "width": 32}


def _log(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "train_log.jsonl").read_text().splitlines()]


def test_configs_load_and_document_every_key():
    from reference_model.training import CONFIG_DIR, TrainConfig

    paper = load_config("avsync15")
    assert (paper.learning_rate, paper.adam_weight_decay, paper.max_grad_norm) == (1e-4, 1e-2, 1.0)
    assert paper.batch_size * 8 * paper.gradient_accumulation_steps == 64
    assert (paper.audio_dropout, paper.text_dropout, paper.max_train_steps) == (0.2, 0.0, 37000)
    assert paper.mixed_precision == "fp16" and paper.gradient_checkpointing
    assert paper.lr_scheduler == "constant"
    tiny = load_config(CONFIG_DIR / "tiny-cpu.yaml", split="test")
    assert (
        tiny.model_kind == "tiny" and tiny.split == "test" and tiny.unet_config["norm_eps"] == 1e-5
    )
    text = (CONFIG_DIR / "avsync15.yaml").read_text()
    assert all(
        f.name in text for f in TrainConfig.__dataclass_fields__.values() if f.name != "extra"
    )


def test_overfits_a_fixed_batch(tiny_dataset):
    root, split = (GALLERY, "test") if GALLERY.is_dir() else (tiny_dataset, "test")
    cfg = load_config("tiny-cpu", **SMALL)
    torch.manual_seed(0)
    models = build_models(cfg)
    videos = load_split("avsync15", root, split)[:2]
    dataset = TrainClipDataset(videos, cfg.clip_spec, seed=0)
    batch = collate([dataset[(0, 0)], dataset[(1, 1)]])
    assert batch["frames"].shape == (2, 3, 12, 32, 32) and batch["mel"].shape == (2, 1, 128, 204)
    generator = torch.Generator().manual_seed(0)
    encoded = encode_batch(models, batch, "cpu", generator=generator)
    assert encoded["latents"].shape == (2, 4, 12, 4, 4)
    noise = torch.randn(encoded["latents"].shape, generator=generator)
    timesteps = torch.tensor([500, 700])
    params = [p for _, p in models.unet.trainable_named_parameters()]
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2)
    losses = []
    for _ in range(25):
        loss = diffusion_loss(
            models.unet, models.noise_scheduler, encoded, noise=noise, timesteps=timesteps
        )
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        losses.append(loss.item())
    print(f"overfit: loss {losses[0]:.4f} -> {losses[-1]:.4f} ({losses[0] / losses[-1]:.1f}x)")
    assert losses[0] / losses[-1] >= 2.0, losses


@pytest.fixture(scope="module")
def resumed_runs(tiny_dataset, tmp_path_factory):
    """Run A: 3 steps straight (checkpoints at 2 and 3). Run B: checkpoint-2 of A, resumed."""
    base = tmp_path_factory.mktemp("train")
    common = dict(SMALL, data_root=str(tiny_dataset), split="test", checkpointing_steps=2)
    cfg_a = load_config("tiny-cpu", output_dir=str(base / "a"), **common)
    train(cfg_a, max_steps=3)
    (base / "b").mkdir()
    shutil.copytree(base / "a" / "checkpoint-2", base / "b" / "checkpoint-2")
    cfg_b = load_config("tiny-cpu", output_dir=str(base / "b"), **common)
    summary = train(cfg_b, max_steps=3, resume=True)
    return base, cfg_a, summary


def test_resume_matches_uninterrupted_run(resumed_runs):
    base, _, summary = resumed_runs
    straight, resumed = _log(base / "a"), _log(base / "b")
    assert [r["step"] for r in straight] == [1, 2, 3] and [r["step"] for r in resumed] == [3]
    assert summary["step"] == 3
    assert abs(straight[2]["loss"] - resumed[0]["loss"]) <= 1e-6, (straight, resumed)
    weights_a = load_file(
        str(base / "a/checkpoint-3/modules/unet/diffusion_pytorch_model.safetensors")
    )
    weights_b = load_file(
        str(base / "b/checkpoint-3/modules/unet/diffusion_pytorch_model.safetensors")
    )
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert latest_checkpoint(base / "a").name == "checkpoint-3"
    for name in ("optimizer.bin", "scheduler.bin", "random_states_0.pkl", "model.safetensors"):
        assert (base / "a" / "checkpoint-2" / name).is_file(), name


def test_only_temp_and_audio_parameters_change(resumed_runs):
    base, cfg, _ = resumed_runs
    initial = build_models(cfg).unet.state_dict()
    trained = load_file(
        str(base / "a/checkpoint-3/modules/unet/diffusion_pytorch_model.safetensors")
    )
    assert trained.keys() == initial.keys()
    changed = {k for k in initial if not torch.equal(initial[k], trained[k])}
    assert changed, "no parameter changed"
    assert all("_temp" in k or "_audio" in k for k in changed), sorted(changed)[:5]
    assert any("_audio" in k for k in changed) and any("_temp" in k for k in changed)


def test_cli_trains_and_resumes(tmp_path):
    if not GALLERY.is_dir():
        pytest.skip(f"{GALLERY} is absent (the shared gallery clips live beside the repo in CI)")
    from typer.testing import CliRunner

    from avsync_bench.cli import app

    out = tmp_path / "run"
    args = ["train-reference", "--config", "tiny-cpu", "--split", "test"]
    args += ["--data-root", str(GALLERY), "--output-dir", str(out)]
    first = CliRunner().invoke(app, [*args, "--max-steps", "3"])
    assert first.exit_code == 0, first.output
    assert (out / "checkpoint-3" / "modules" / "unet" / "config.json").is_file()
    assert (
        out / "checkpoint-3" / "modules" / "unet" / "diffusion_pytorch_model.safetensors"
    ).is_file()
    second = CliRunner().invoke(app, [*args, "--max-steps", "5", "--resume"])
    assert second.exit_code == 0, second.output
    assert "resumed from" in second.output and "at step 3" in second.output
    assert [r["step"] for r in _log(out)] == [1, 2, 3, 4, 5]
    assert (out / "checkpoint-5").is_dir()
    assert all(r["s_per_step"] > 0 and r["samples_per_s"] > 0 for r in _log(out))
