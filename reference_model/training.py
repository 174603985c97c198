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
import json
import math
import re
import shutil
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

import avsync_bench  # noqa: F401  (torch compatibility shim first)
from avsync_bench.errors import InputError
from avsync_bench.protocol import ClipSpec, ProtocolMode
from reference_model.audio_encoder import (
    IMAGEBIND_HUGE_AUDIO_CONFIG,
    TINY_AUDIO_CONFIG,
    ImageBindSegmaskAudioEncoder,
    repeat_over_frames,
)
from reference_model.unet import AudioUNet3DConditionModel

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

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
SECTIONS = ("model", "data", "train", "optim", "noise", "output")


@dataclass
class TrainConfig:
    """Every training option; the YAML files in :data:`CONFIG_DIR` document each key.

    The YAML groups keys in sections (``model``, ``data``, ``train``, ``optim``, ``noise``,
    ``output``); :func:`load_config` flattens them into these fields.
    """

    # model
    model_kind: str = "sd15"  # "sd15" (SD-1.5 + ImageBind-huge) or "tiny" (rule weights)
    pretrained_sd: str | None = None
    imagebind_checkpoint: str | None = None
    weights_dir: str | None = None
    unet_config: dict | None = None
    vae_config: dict | None = None
    audio_encoder_config: dict | str | None = None
    text_encoder: str = "precomputed"  # "precomputed" | "clip" | "random"
    text_embeddings: str | None = None
    audio_encoder_train_mode: bool = True
    # data
    dataset: str = "avsync15"
    data_root: str | None = None
    split: str = "train"
    height: int = 256
    width: int = 256
    num_frames: int = 12
    fps: int = 6
    clip_mode: str = "official"
    random_flip: bool = True
    num_workers: int = 4
    # train
    seed: int = 123
    batch_size: int = 4
    gradient_accumulation_steps: int = 2
    max_train_steps: int = 37000
    mixed_precision: str = "fp16"
    gradient_checkpointing: bool = True
    audio_dropout: float = 0.2
    text_dropout: float = 0.0
    loss_on_first_frame: bool = False
    # optim
    learning_rate: float = 1e-4
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_weight_decay: float = 1e-2
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    lr_scheduler: str = "constant"
    lr_warmup_steps: int = 0
    # noise
    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012
    beta_schedule: str = "scaled_linear"
    prediction_type: str = "epsilon"
    # output
    output_dir: str = "exps/avsyncd"
    checkpointing_steps: int = 1000
    checkpoints_total_limit: int | None = None
    log_every: int = 10
    extra: dict = field(default_factory=dict)

    @property
    def clip_spec(self) -> ClipSpec:
        """The clip size and length (``height``×``width`` px, ``num_frames`` at ``fps``)."""
        return ClipSpec(
            height=self.height, width=self.width, num_frames=self.num_frames, fps=self.fps
        )


def load_config(path: str | Path, **overrides) -> TrainConfig:
    """Read a YAML training config (sections flattened) and apply non-None ``overrides``.

    A bare name (``tiny-cpu``, ``avsync15``) is looked up in :data:`CONFIG_DIR`.

    Raises:
        ValueError: unknown keys or sections, or a missing file.
    """
    path = Path(path)
    if not path.is_file():
        candidate = CONFIG_DIR / (path.name if path.suffix else f"{path.name}.yaml")
        if not candidate.is_file():
            raise InputError(f"training config {path} not found (nor {candidate})")
        path = candidate
    raw = yaml.safe_load(path.read_text()) or {}
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    flat: dict = {}
    for section, values in raw.items():
        if section not in SECTIONS or not isinstance(values, dict):
            raise InputError(f"{path}: unknown section {section!r}; expected one of {SECTIONS}")
        for key, value in values.items():
            if key not in names:
                raise InputError(f"{path}: unknown key {section}.{key}")
            flat[key] = value
    flat.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(flat) - names
    if unknown:
        raise InputError(f"unknown config overrides {sorted(unknown)}")
    return TrainConfig(**flat)


# ---------------------------------------------------------------------------------- text


class TextEmbedder:
    """Class text → text-encoder states ``(B, 77, D)`` float32, cached per text.

    Sources (``TrainConfig.text_encoder``):
        ``precomputed``: the dataset's ``class_clip_text_encodings_stable-diffusion-v1-5.pt``
            (a mapping class text → (77, 768) or (1, 77, 768) SD-1.5 CLIP last hidden states),
            used by the official trainer; the empty text falls back to all zeros if absent.
        ``clip``: SD-1.5's ``CLIPTokenizer``/``CLIPTextModel`` from ``<sd>/tokenizer`` and
            ``<sd>/text_encoder`` (padding to 77, last hidden state).
        ``random``: a deterministic stand-in for tests and CPU smoke runs (no tokenizer files exist
            offline): ``N(0, 1)`` states from a generator seeded with the text's CRC-32.
    """

    def __init__(
        self,
        kind: str,
        dim: int,
        embeddings_path: str | Path | None = None,
        sd_path: str | Path | None = None,
    ) -> None:
        self.kind, self.dim = kind, dim
        self._cache: dict[str, torch.Tensor] = {}
        self._table: dict[str, torch.Tensor] | None = None
        self._clip = None
        if kind == "precomputed":
            if embeddings_path is None:
                raise InputError("text_encoder 'precomputed' needs model.text_embeddings (a .pt)")
            table = torch.load(Path(embeddings_path), map_location="cpu", weights_only=True)
            if not isinstance(table, dict):
                raise InputError(f"{embeddings_path}: expected a mapping class text -> tensor")
            self._table = {k: v.reshape(77, -1).float() for k, v in table.items()}
        elif kind == "clip":
            if sd_path is None:
                raise InputError("text_encoder 'clip' needs the SD-1.5 folder")
            from transformers import CLIPTextModel, CLIPTokenizer

            self._clip = (
                CLIPTokenizer.from_pretrained(Path(sd_path) / "tokenizer"),
                CLIPTextModel.from_pretrained(Path(sd_path) / "text_encoder").eval(),
            )
        elif kind != "random":
            raise InputError(f"unknown text_encoder {kind!r}: precomputed | clip | random")

    def _one(self, text: str) -> torch.Tensor:
        if text in self._cache:
            return self._cache[text]
        if self.kind == "random":
            generator = torch.Generator().manual_seed(zlib.crc32(text.encode("utf-8")))
            value = torch.randn(77, self.dim, generator=generator)
        elif self.kind == "precomputed":
            if text in self._table:
                value = self._table[text]
            elif text == "":
                value = torch.zeros(77, self.dim)
            else:
                raise KeyError(f"class text {text!r} not in the precomputed text encodings")
        else:
            tokenizer, model = self._clip
            ids = tokenizer(
                [text], padding="max_length", max_length=77, truncation=True, return_tensors="pt"
            ).input_ids
            with torch.no_grad():
                value = model(ids)[0][0].float()
        self._cache[text] = value
        return value

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        """``(len(texts), 77, D)`` float32 on the CPU."""
        return torch.stack([self._one(t) for t in texts])


# ---------------------------------------------------------------------------------- models


@dataclass
class TrainModels:
    """The pieces of one training run: trainable ``unet``, frozen ``vae`` and
    ``audio_encoder``, the DDPM ``noise_scheduler`` and the ``text`` embedder."""

    unet: AudioUNet3DConditionModel
    vae: torch.nn.Module
    audio_encoder: ImageBindSegmaskAudioEncoder
    noise_scheduler: object
    text: TextEmbedder


def _noise_scheduler(cfg: TrainConfig):
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=cfg.num_train_timesteps,
        beta_start=cfg.beta_start,
        beta_end=cfg.beta_end,
        beta_schedule=cfg.beta_schedule,
        prediction_type=cfg.prediction_type,
        clip_sample=False,
        steps_offset=1,
    )


def _resolve_weight(cfg: TrainConfig, name: str) -> Path:
    from avsync_bench.weights.store import WeightStore

    return WeightStore(cfg.weights_dir).resolve(name).path


def build_models(cfg: TrainConfig) -> TrainModels:
    """Build the models of ``cfg.model_kind``.

    ``tiny``: ``unet_config``/``vae_config`` (the golden tiny configs) with the deterministic
    weight rule (:func:`avsync_bench.weights.rule.apply_rule`), then the zero-initialised
    ``conv_temp``/``attn_temp`` output weights restored as in a fresh model so that training
    starts from the identity residuals; audio encoder ``TINY_AUDIO_CONFIG`` with rule weights and
    a default ``final_layer_norm``. ``sd15``: ``AudioUNet3DConditionModel.from_pretrained_2d`` and
    ``AutoencoderKL`` from the SD-1.5 folder (``pretrained_sd`` or weights ``stable_diffusion_v1_5``),
    ImageBind-huge's audio trunk from ``imagebind_checkpoint`` (or weights ``imagebind_huge``).

    The UNet's non-``_temp``/``_audio`` parameters are frozen; the VAE and the audio encoder are
    frozen entirely (float32 here; :func:`train` casts them for mixed precision).
    """
    from diffusers import AutoencoderKL

    from avsync_bench.weights.rule import apply_rule

    if cfg.model_kind == "tiny":
        if cfg.unet_config is None or cfg.vae_config is None:
            raise InputError("model_kind 'tiny' needs model.unet_config and model.vae_config")
        unet = AudioUNet3DConditionModel(**cfg.unet_config)
        fresh = {
            k: v.clone()
            for k, v in unet.state_dict().items()
            if "_temp" in k and v.is_floating_point() and not v.any()
        }
        apply_rule(unet)
        unet.load_state_dict(fresh, strict=False)  # keep the zero-initialised temporal outputs
        vae = apply_rule(AutoencoderKL(**cfg.vae_config))
        audio_config = cfg.audio_encoder_config or "tiny"
        if isinstance(audio_config, str):
            audio_config = {"tiny": TINY_AUDIO_CONFIG, "huge": IMAGEBIND_HUGE_AUDIO_CONFIG}[
                audio_config
            ]
        audio_encoder = apply_rule(ImageBindSegmaskAudioEncoder(**audio_config))
        audio_encoder.final_layer_norm.reset_parameters()
        sd_path = cfg.pretrained_sd
    elif cfg.model_kind == "sd15":
        sd_path = cfg.pretrained_sd or _resolve_weight(cfg, "stable_diffusion_v1_5")
        unet = AudioUNet3DConditionModel.from_pretrained_2d(
            sd_path, subfolder="unet", config_overrides=cfg.unet_config
        )
        vae = AutoencoderKL.from_pretrained(sd_path, subfolder="vae")
        imagebind = cfg.imagebind_checkpoint or _resolve_weight(cfg, "imagebind_huge")
        audio_encoder = ImageBindSegmaskAudioEncoder.from_imagebind_checkpoint(imagebind)
    else:
        raise InputError(f"unknown model_kind {cfg.model_kind!r}: sd15 | tiny")
    unet.freeze_non_trainable()
    unet.train()
    vae.requires_grad_(False).eval()
    audio_encoder.requires_grad_(False)
    audio_encoder.train(cfg.audio_encoder_train_mode)  # official quirk: drop-path active
    text = TextEmbedder(
        cfg.text_encoder, unet.config.cross_attention_dim, cfg.text_embeddings, sd_path
    )
    return TrainModels(unet, vae, audio_encoder, _noise_scheduler(cfg), text)


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


# ---------------------------------------------------------------------------------- state


class TrainState:
    """Checkpointed loop state (``accelerator.register_for_checkpointing``): the optimizer
    ``step`` and the process' noise/dropout/timestep ``generator`` state."""

    def __init__(self, generator: torch.Generator) -> None:
        self.step = 0
        self.generator = generator

    def state_dict(self) -> dict:
        return {"step": self.step, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.generator.set_state(state["generator"].cpu())


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The ``checkpoint-N`` folder with the largest N that has finished saving, or None."""
    found = []
    for path in Path(output_dir).glob("checkpoint-*"):
        match = re.fullmatch(r"checkpoint-(\d+)", path.name)
        if match and (path / "train_state.json").is_file():
            found.append((int(match.group(1)), path))
    return max(found)[1] if found else None


def _prune(output_dir: Path, limit: int | None) -> None:
    if not limit:
        return
    done = sorted(
        (int(p.name.split("-")[1]), p)
        for p in output_dir.glob("checkpoint-*")
        if re.fullmatch(r"checkpoint-\d+", p.name)
    )
    for _, path in done[: max(len(done) - limit, 0)]:
        shutil.rmtree(path, ignore_errors=True)


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
    from diffusers.optimization import get_scheduler
    from torch.utils.data import DataLoader

    from avsync_bench.datasets import load_split, resolve_root
    from reference_model.train_data import TrainClipDataset, TrainSampleSampler, collate

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
    optimizer = torch.optim.AdamW(
        params,
        lr=cfg.learning_rate,
        betas=(cfg.adam_beta1, cfg.adam_beta2),
        weight_decay=cfg.adam_weight_decay,
        eps=cfg.adam_epsilon,
    )
    lr_scheduler = get_scheduler(
        cfg.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=cfg.lr_warmup_steps * accelerator.num_processes,
        num_training_steps=max(max_steps, 1) * accelerator.num_processes,
    )
    unet, optimizer, lr_scheduler = accelerator.prepare(unet, optimizer, lr_scheduler)
    generator = torch.Generator(device=accelerator.device)
    generator.manual_seed(cfg.seed * 7919 + accelerator.process_index)
    state = TrainState(generator)
    accelerator.register_for_checkpointing(state)

    if resume:
        checkpoint = latest_checkpoint(output_dir)
        if checkpoint is None:
            log(f"no checkpoint in {output_dir}; starting from step 0")
        else:
            accelerator.load_state(str(checkpoint))
            log(f"resumed from {checkpoint} at step {state.step}")

    if videos is None:
        root = resolve_root(cfg.dataset, cfg.data_root)
        videos = load_split(cfg.dataset, root, cfg.split)
    dataset = TrainClipDataset(
        videos, cfg.clip_spec, ProtocolMode(cfg.clip_mode), cfg.seed, cfg.random_flip
    )
    sampler = TrainSampleSampler(
        len(dataset),
        cfg.batch_size,
        cfg.seed,
        accelerator.process_index,
        accelerator.num_processes,
        start_micro_batch=state.step * cfg.gradient_accumulation_steps,
    )
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        collate_fn=collate,
        num_workers=cfg.num_workers,
        generator=torch.Generator(),  # keep the global RNG untouched by the loader
        persistent_workers=False,
    )

    global_batch = cfg.batch_size * accelerator.num_processes * cfg.gradient_accumulation_steps
    log_path = output_dir / "train_log.jsonl"
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "train_config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg)))
    losses: list[dict] = []
    micro_losses: list[torch.Tensor] = []
    step_times: list[float] = []
    tick = time.perf_counter()
    batches = iter(loader)
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
            accelerator.backward(loss)
            if accelerator.sync_gradients and cfg.max_grad_norm:
                accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        micro_losses.append(loss.detach())
        if not accelerator.sync_gradients:
            continue
        state.step += 1
        mean_loss = accelerator.reduce(torch.stack(micro_losses).mean(), reduction="mean").item()
        micro_losses = []
        now = time.perf_counter()
        step_time, tick = now - tick, now
        step_times.append(step_time)
        record = {
            "step": state.step,
            "loss": mean_loss,
            "lr": lr_scheduler.get_last_lr()[0],
            "s_per_step": round(step_time, 4),
            "samples_per_s": round(global_batch / step_time, 3),
        }
        losses.append(record)
        if accelerator.is_main_process:
            with log_path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
            if state.step % cfg.log_every == 0 or state.step == max_steps or state.step == 1:
                log(
                    f"step {state.step}/{max_steps} loss {mean_loss:.5f} lr {record['lr']:.2e} "
                    f"{record['s_per_step']:.3f} s/step {record['samples_per_s']:.2f} samples/s"
                )
        if state.step % cfg.checkpointing_steps == 0 or state.step == max_steps:
            _save_checkpoint(accelerator, unet, state.step, output_dir, cfg)
            tick = time.perf_counter()  # checkpoint time is not step time
    accelerator.wait_for_everyone()
    accelerator.end_training()
    timed = step_times[1:] or step_times
    return {
        "step": state.step,
        "losses": losses,
        "s_per_step": sum(timed) / len(timed) if timed else math.nan,
        "output_dir": str(output_dir),
    }


def _save_checkpoint(accelerator, unet, step: int, output_dir: Path, cfg: TrainConfig) -> Path:
    """``checkpoint-<step>/``: accelerate state + ``modules/unet`` (official layout)."""
    path = output_dir / f"checkpoint-{step}"
    accelerator.wait_for_everyone()
    accelerator.save_state(str(path))
    if accelerator.is_main_process:
        accelerator.unwrap_model(unet).save_pretrained(
            path / "modules" / "unet", safe_serialization=True
        )
        (path / "train_state.json").write_text(json.dumps({"step": step}))  # written last
        _prune(output_dir, cfg.checkpoints_total_limit)
    accelerator.wait_for_everyone()
    return path
