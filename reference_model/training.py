"""Training AVSyncD with HF accelerate (PROTOCOL.md §4 "Training"; official recipe:
``configs/audio-cond_animation/avsync15_audio-cond_cfg.yaml`` of lzhangbj/ASVA).

One optimisation step, per sample:

1. Frames ``(3, 12, H, W)`` in [0, 1] → ``2x − 1`` → VAE posterior **sample** × 0.18215 →
   latents ``(4, 12, H/8, W/8)`` (frozen VAE, no grad).
2. Mel ``(1, 128, 204)`` → ImageBind audio tokens ``(229, 768)`` + segment masks ``(12, 229)``
   (frozen encoder, no grad). With probability ``audio_dropout`` (0.2) the sample's tokens and
   masks are replaced by those of the null audio, an all-zero normalised mel.
3. Class text → text states ``(77, D)`` (``text_dropout``, 0 in the paper, swaps in the
   empty-text states), repeated over the 12 frames.
4. DDPM noise (1000 steps, scaled_linear β 0.00085 → 0.012), ``t`` uniform in [0, 1000), noisy
   latents with **frame 0 replaced by its clean latent**; ε-prediction; MSE on frames 1..11.
5. AdamW over the ``_temp``/``_audio`` parameters only, grad-norm clip, constant LR.

Runs single-process on CPU (``avsync-bench train-reference``) and under ``accelerate launch`` on
many GPUs (``batch_size`` is per process; global batch = ``batch_size × processes ×
gradient_accumulation_steps``). Checkpoints ``checkpoint-N/`` hold ``accelerator.save_state``
(UNet, optimizer, LR scheduler, every process' RNG states, :class:`TrainState` with the step and
the noise generator) plus the UNet in the official layout ``checkpoint-N/modules/unet/``
(``save_pretrained``, safetensors). Resuming continues bit-exactly: data are a pure function of
``(seed, sample index)`` (:mod:`reference_model.train_data`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

import avsync_bench  # noqa: F401  (torch compatibility shim first)
from avsync_bench.protocol import ProtocolMode
from avsync_bench.training_loop import (
    StepLog,
    TrainState,
    latest_checkpoint,
    make_optimizer,
    optimizer_step,
    resumable_loader,
    resume_latest,
    save_checkpoint,
)
from reference_model.audio_encoder import repeat_over_frames
from reference_model.train_config import CONFIG_DIR, TrainConfig, load_config
from reference_model.train_models import TextEmbedder, TrainModels, build_models

__all__ = [
    "CONFIG_DIR",
    "TrainConfig",
    "TrainModels",
    "TrainState",
    "TextEmbedder",
    "load_config",
    "build_models",
    "encode_batch",
    "diffusion_loss",
    "latest_checkpoint",
    "train",
]


# ---------------------------------------------------------------------------------- loss


@torch.no_grad()
def encode_batch(
    models: TrainModels,
    batch: dict,
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Frozen encoders over a collated batch (:func:`reference_model.train_data.collate`).

    Returns float32 tensors on ``device``: ``latents`` (B, 4, F, H/8, W/8) (posterior sample ×
    ``scaling_factor``), ``audio`` (B, 229, 768) / ``audio_mask`` (B, F, 229) bool,
    ``null_audio`` / ``null_audio_mask`` of the all-zero normalised mel (same shapes), ``text`` and
    ``null_text`` (B, 77, D).
    """
    frames = batch["frames"].to(device=device, dtype=dtype)  # (B, 3, F, H, W) in [0, 1]
    b, _, f = frames.shape[:3]
    pixels = frames.transpose(1, 2).flatten(0, 1) * 2.0 - 1.0  # (B·F, 3, H, W)
    posterior = models.vae.encode(pixels).latent_dist
    latents = posterior.sample(generator=generator) * models.vae.config.scaling_factor
    latents = latents.unflatten(0, (b, f)).transpose(1, 2).float()
    mel = batch["mel"].to(device=device, dtype=dtype)
    _, audio, audio_mask = models.audio_encoder(mel, return_dict=False)
    _, null_audio, null_mask = models.audio_encoder(torch.zeros_like(mel), return_dict=False)
    return {
        "latents": latents.contiguous(),
        "audio": audio.float(),
        "audio_mask": audio_mask,
        "null_audio": null_audio.float(),
        "null_audio_mask": null_mask,
        "text": models.text(batch["class_text"]).to(device),
        "null_text": models.text([""] * b).to(device),
    }


def diffusion_loss(
    unet: torch.nn.Module,
    noise_scheduler,
    encoded: dict[str, torch.Tensor],
    *,
    audio_dropout: float = 0.0,
    text_dropout: float = 0.0,
    loss_on_first_frame: bool = False,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
    timesteps: torch.Tensor | None = None,
    audio_keep: torch.Tensor | None = None,
) -> torch.Tensor:
    """The AVSyncD denoising loss (0-d float32) of one encoded batch (:func:`encode_batch`).

    Draws, from ``generator`` (on the latents' device) unless given: per-sample keep masks
    (``audio_keep``/text, bool (B,), keep with probability ``1 − dropout``), ``timesteps`` int64
    (B,) uniform in [0, num_train_timesteps), ``noise`` like the latents. Frame 0 of the noisy input
    is the clean latent; the MSE covers frames 1..F−1 (all frames if ``loss_on_first_frame``).
    """
    latents = encoded["latents"]
    b, _, f = latents.shape[:3]
    device = latents.device

    def keep_mask(p: float) -> torch.Tensor:
        if p <= 0:
            return torch.ones(b, dtype=torch.bool, device=device)
        return torch.rand(b, generator=generator, device=device) >= p

    if audio_keep is None:
        audio_keep = keep_mask(audio_dropout)
    text_keep = keep_mask(text_dropout)
    if timesteps is None:
        timesteps = torch.randint(
            0, noise_scheduler.config.num_train_timesteps, (b,), generator=generator, device=device
        )
    if noise is None:
        noise = torch.randn(latents.shape, generator=generator, device=device)
    audio_keep = audio_keep.to(device)
    audio = torch.where(audio_keep[:, None, None], encoded["audio"], encoded["null_audio"])
    mask = torch.where(audio_keep[:, None, None], encoded["audio_mask"], encoded["null_audio_mask"])
    text = torch.where(text_keep[:, None, None], encoded["text"], encoded["null_text"])
    noisy = noise_scheduler.add_noise(latents, noise, timesteps.to(device))
    noisy = torch.cat([latents[:, :, :1], noisy[:, :, 1:]], dim=2)
    if noise_scheduler.config.prediction_type == "epsilon":
        target = noise
    elif noise_scheduler.config.prediction_type == "v_prediction":
        target = noise_scheduler.get_velocity(latents, noise, timesteps.to(device))
    else:
        raise ValueError(f"unsupported prediction_type {noise_scheduler.config.prediction_type}")
    prediction = unet(
        noisy,
        timesteps.to(device),
        repeat_over_frames(text, f),
        repeat_over_frames(audio, f),
        audio_attention_mask=mask,
    ).sample
    first = 0 if loss_on_first_frame else 1
    return F.mse_loss(prediction[:, :, first:].float(), target[:, :, first:].float())


# ---------------------------------------------------------------------------------- loop


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    max_steps: int | None = None,
    videos: Sequence | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Run (or resume) training until ``max_steps`` (default ``cfg.max_train_steps``) optimizer
    steps. Returns ``{"step", "losses" (per logged step), "s_per_step", "output_dir"}``.

    ``videos`` overrides the split (a list of :class:`avsync_bench.datasets.TestVideo`). Logs go to
    ``log`` (stdout) and ``<output_dir>/train_log.jsonl`` (one JSON object per step: ``step``,
    ``loss`` (mean over accumulation and processes), ``lr``, ``s_per_step``, ``samples_per_s``).
    """
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed

    from avsync_bench.datasets import load_split, resolve_root
    from reference_model.train_data import TrainClipDataset, collate

    max_steps = cfg.max_train_steps if max_steps is None else max_steps
    output_dir = Path(cfg.output_dir)
    accelerator = Accelerator(
        mixed_precision=cfg.mixed_precision,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        project_config=ProjectConfiguration(project_dir=str(output_dir)),
    )
    set_seed(cfg.seed)  # model construction and (real runs) fresh module initialisation
    models = build_models(cfg)
    unet = models.unet
    if cfg.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(
        cfg.mixed_precision, torch.float32
    )
    for frozen in (models.vae, models.audio_encoder):
        frozen.to(accelerator.device)
        if weight_dtype != torch.float32:
            frozen.to(dtype=weight_dtype)

    params = [p for _, p in unet.trainable_named_parameters()]
    optimizer, lr_scheduler = make_optimizer(params, cfg, accelerator.num_processes, max_steps)
    unet, optimizer, lr_scheduler = accelerator.prepare(unet, optimizer, lr_scheduler)
    generator = torch.Generator(device=accelerator.device)
    generator.manual_seed(cfg.seed * 7919 + accelerator.process_index)
    state = TrainState(generator)
    accelerator.register_for_checkpointing(state)
    if resume:
        resume_latest(accelerator, output_dir, state, log)

    if videos is None:
        root = resolve_root(cfg.dataset, cfg.data_root)
        videos = load_split(cfg.dataset, root, cfg.split)
    dataset = TrainClipDataset(
        videos, cfg.clip_spec, ProtocolMode(cfg.clip_mode), cfg.seed, cfg.random_flip
    )
    loader = resumable_loader(dataset, cfg, accelerator, state, collate)

    global_batch = cfg.batch_size * accelerator.num_processes * cfg.gradient_accumulation_steps
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "train_config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg)))
    steps = StepLog(output_dir / "train_log.jsonl", global_batch, "samples_per_s")

    def save_modules(checkpoint: Path) -> None:  # the official layout, safetensors
        accelerator.unwrap_model(unet).save_pretrained(
            checkpoint / "modules" / "unet", safe_serialization=True
        )

    batches = iter(loader)
    steps.pause()
    while state.step < max_steps:
        batch = next(batches)
        with accelerator.accumulate(unet):
            encoded = encode_batch(models, batch, accelerator.device, weight_dtype, generator)
            loss = diffusion_loss(
                unet,
                models.noise_scheduler,
                encoded,
                audio_dropout=cfg.audio_dropout,
                text_dropout=cfg.text_dropout,
                loss_on_first_frame=cfg.loss_on_first_frame,
                generator=generator,
            )
            optimizer_step(accelerator, loss, params, optimizer, lr_scheduler, cfg.max_grad_norm)
        steps.add_micro({"loss": loss})
        if not accelerator.sync_gradients:
            continue
        state.step += 1
        record = steps.end_step(accelerator, state.step, lr_scheduler.get_last_lr()[0])
        if accelerator.is_main_process and (
            state.step % cfg.log_every == 0 or state.step in (1, max_steps)
        ):
            log(
                f"step {state.step}/{max_steps} loss {record['loss']:.5f} lr {record['lr']:.2e} "
                f"{record['s_per_step']:.3f} s/step {record['samples_per_s']:.2f} samples/s"
            )
        if state.step % cfg.checkpointing_steps == 0 or state.step == max_steps:
            save_checkpoint(
                accelerator, output_dir, state.step, save_modules, cfg.checkpoints_total_limit
            )
            steps.pause()
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return {
        "step": state.step,
        "losses": steps.records,
        "s_per_step": steps.s_per_step,
        "output_dir": str(output_dir),
    }
