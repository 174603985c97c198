"""The models an AVSyncD training step uses (PROTOCOL.md §4 "Training"): the UNet being trained,
the frozen VAE and ImageBind audio encoder, the class-text states and the DDPM noise schedule,
built from a :class:`~reference_model.train_config.TrainConfig`."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

import avsync_bench  # noqa: F401  (torch compatibility shim first)
from avsync_bench.errors import InputError
from reference_model.audio_encoder import (
    IMAGEBIND_HUGE_AUDIO_CONFIG,
    TINY_AUDIO_CONFIG,
    ImageBindSegmaskAudioEncoder,
)
from reference_model.train_config import TrainConfig
from reference_model.unet import AudioUNet3DConditionModel

__all__ = ["TextEmbedder", "TrainModels", "build_models"]

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
