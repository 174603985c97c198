"""Segment-masked ImageBind audio tokens for AVSyncD (``ImageBindSegmaskAudioEncoder``).

Source: PROTOCOL.md §4 ("Audio tokens"), paper §4. Only ImageBind's **audio** modality is built
(imagebind-unofficial's model classes): preprocessor (16x16 patches, stride 10, CLS, learned
positions), trunk (pre-LN transformer with ``add_bias_kv``), head (LayerNorm → CLS → Linear),
postprocessor (L2 normalise → ×exp(log_logit_scale)), then an extra ``final_layer_norm``
(LayerNorm(768, eps 1e-6), never trained: default values at inference).

A normalised mel ``(B, 1, 128, 204)`` gives 229 tokens: CLS + a 12 (frequency) × 19 (time) grid,
frequency-major (token ``1 + r·19 + c``). Video frame ``f`` of 12 attends to CLS and the 2 time
columns starting at ``0,2,3,5,6,8,9,11,12,14,15,17`` (25 tokens), expressed as a boolean mask
``(B, 12, 229)``.

Key names (``state_dict``): ``preprocessor.*``, ``trunk.*``, ``head.*``, ``postprocessor.*``,
``final_layer_norm.*``; in ``imagebind_huge.pth`` the first four are prefixed
``modality_{preprocessors,trunks,heads,postprocessors}.audio.`` instead.

Licence: ImageBind's code and weights are CC BY-NC-SA 4.0 (non-commercial).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

import avsync_bench  # noqa: F401  (torch compatibility shim before imagebind/torchvision)

__all__ = [
    "IMAGEBIND_HUGE_AUDIO_CONFIG",
    "TINY_AUDIO_CONFIG",
    "CHECKPOINT_PREFIXES",
    "ImageBindSegmaskAudioEncoder",
    "ImageBindSegmaskAudioEncoderOutput",
    "repeat_over_frames",
    "segment_time_mask",
    "segment_token_mask",
    "window_time_column_starts",
    "window_token_indices",
]

IMAGEBIND_HUGE_AUDIO_CONFIG = dict(
    embed_dim=768,
    num_blocks=12,
    num_heads=12,
    out_embed_dim=1024,
    kernel_size=16,
    stride=10,
    num_mel_bins=128,
    target_len=204,
    drop_path=0.1,
)
"""ImageBind-huge's audio branch (``imagebind_huge()`` in imagebind-unofficial 0.1.1)."""

TINY_AUDIO_CONFIG = dict(IMAGEBIND_HUGE_AUDIO_CONFIG, num_blocks=2, out_embed_dim=64)
"""The golden fixture's tiny audio branch (``golden/imagebind_audio_tokens.json``): huge geometry,
2 blocks, 64-d head output."""

CHECKPOINT_PREFIXES = {
    "modality_preprocessors.audio.": "preprocessor.",
    "modality_trunks.audio.": "trunk.",
    "modality_heads.audio.": "head.",
    "modality_postprocessors.audio.": "postprocessor.",
}
"""``imagebind_huge.pth`` key prefix → this module's key prefix."""


def segment_time_mask(num_columns: int = 19, n_segment: int = 12) -> torch.Tensor:
    """``(n_segment, num_columns)`` bool: which time columns each segment (video frame) uses.

    Every segment gets ``ceil(num_columns / n_segment)`` consecutive columns; the start columns are
    ``round(linspace(0, num_columns - width, n_segment))`` (numpy rounding), so windows may overlap.
    """
    width = math.ceil(num_columns / n_segment)
    starts = np.round(np.linspace(0, num_columns - width, n_segment)).astype(np.int64)
    columns = torch.arange(num_columns)
    starts_t = torch.from_numpy(starts)[:, None]
    return (columns[None] >= starts_t) & (columns[None] < starts_t + width)


def window_time_column_starts(num_columns: int = 19, n_segment: int = 12) -> list[int]:
    """First time column of each segment's window (``0,2,3,5,6,8,9,11,12,14,15,17`` for 19/12)."""
    return segment_time_mask(num_columns, n_segment).int().argmax(dim=1).tolist()


def segment_token_mask(
    num_rows: int = 12, num_columns: int = 19, n_segment: int = 12
) -> torch.Tensor:
    """``(n_segment, 1 + num_rows·num_columns)`` bool over the trunk tokens: CLS always, plus every
    frequency row of the segment's time columns (token ``1 + r·num_columns + c``)."""
    grid = segment_time_mask(num_columns, n_segment)[:, None, :].expand(-1, num_rows, -1)
    cls = torch.ones(n_segment, 1, dtype=torch.bool)
    return torch.cat([cls, grid.reshape(n_segment, -1)], dim=1)


def window_token_indices(
    num_rows: int = 12, num_columns: int = 19, n_segment: int = 12
) -> torch.Tensor:
    """``(n_segment, 1 + num_rows·width)`` int64: the token indices each segment attends to, in
    ascending order (0 = CLS, then ``1 + r·num_columns + c`` row-major)."""
    mask = segment_token_mask(num_rows, num_columns, n_segment)
    return torch.stack([row.nonzero().flatten() for row in mask])


def repeat_over_frames(tokens: torch.Tensor, num_frames: int) -> torch.Tensor:
    """``(B, N, D)`` audio tokens → ``(B, num_frames, N, D)`` (the UNet's per-frame layout), as a
    contiguous copy."""
    return tokens[:, None].expand(-1, num_frames, -1, -1).contiguous()


@dataclass
class ImageBindSegmaskAudioEncoderOutput(BaseOutput):
    """Outputs of :class:`ImageBindSegmaskAudioEncoder`.

    audio_embeds: ``(B, out_embed_dim)`` head embedding of the CLS token (post-processed, i.e.
        unit norm × logit scale, when ``normalize``).
    audio_encodings: ``(B, 229, 768)`` trunk tokens after ``final_layer_norm`` (UNet conditioning).
    audio_segment_masks: ``(B, n_segment, 229)`` bool, True = frame attends to that token.
    """

    audio_embeds: torch.Tensor
    audio_encodings: torch.Tensor
    audio_segment_masks: torch.Tensor


class ImageBindSegmaskAudioEncoder(ModelMixin, ConfigMixin):
    """ImageBind audio branch + ``final_layer_norm`` + per-frame segment masks (PROTOCOL.md §4).

    Build the real model with ``ImageBindSegmaskAudioEncoder(**IMAGEBIND_HUGE_AUDIO_CONFIG)`` or
    :meth:`from_imagebind_checkpoint`; the golden fixture's with
    ``ImageBindSegmaskAudioEncoder(**TINY_AUDIO_CONFIG)``. ``final_layer_norm`` is fixed at 768
    wide, eps 1e-6, as in the official module.

    Note (official quirk, PROTOCOL.md §4): during the official training the encoder ran in train
    mode, so the trunk's drop-path (0.1) was active; call ``.eval()`` for inference.
    """

    @register_to_config
    def __init__(
        self,
        n_segment: int = 12,
        embed_dim: int = 768,
        num_blocks: int = 12,
        num_heads: int = 12,
        out_embed_dim: int = 1024,
        kernel_size: int = 16,
        stride: int = 10,
        num_mel_bins: int = 128,
        target_len: int = 204,
        drop_path: float = 0.1,
    ) -> None:
        super().__init__()
        from imagebind.models import imagebind_model as ib

        stem = ib.PatchEmbedGeneric(
            proj_stem=[nn.Conv2d(1, embed_dim, kernel_size=kernel_size, stride=stride, bias=False)],
            norm_layer=nn.LayerNorm(embed_dim),
        )
        self.preprocessor = ib.AudioPreprocessor(
            img_size=[1, num_mel_bins, target_len],
            num_cls_tokens=1,
            pos_embed_fn=partial(ib.SpatioTemporalPosEmbeddingHelper, learnable=True),
            audio_stem=stem,
        )
        self.trunk = ib.SimpleTransformer(
            embed_dim=embed_dim,
            num_blocks=num_blocks,
            ffn_dropout_rate=0.0,
            drop_path_rate=drop_path,
            attn_target=partial(
                ib.MultiheadAttention,
                embed_dim=embed_dim,
                num_heads=num_heads,
                bias=True,
                add_bias_kv=True,
            ),
            pre_transformer_layer=nn.Sequential(
                nn.Identity(), ib.EinOpsRearrange("b l d -> l b d")
            ),
            post_transformer_layer=ib.EinOpsRearrange("l b d -> b l d"),
        )
        self.head = nn.Sequential(
            nn.LayerNorm(embed_dim, eps=1e-6),
            ib.SelectElement(index=0),
            nn.Linear(embed_dim, out_embed_dim, bias=False),
        )
        self.postprocessor = nn.Sequential(
            ib.Normalize(dim=-1),
            ib.LearnableLogitScaling(logit_scale_init=20.0, learnable=False),
        )
        self.final_layer_norm = nn.LayerNorm(768, eps=1e-6)
        self.grid = tuple(int(s) for s in self.preprocessor.patches_layout)  # (12, 19)

    @property
    def num_tokens(self) -> int:
        """1 + rows·columns (229 for a 128×204 mel)."""
        return 1 + self.grid[0] * self.grid[1]

    def segment_masks(
        self, batch_size: int, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """``(batch_size, n_segment, num_tokens)`` bool segment masks."""
        mask = segment_token_mask(self.grid[0], self.grid[1], self.config.n_segment)
        return mask[None].expand(batch_size, -1, -1).contiguous().to(device)

    def forward(
        self, input_features: torch.Tensor, normalize: bool = False, return_dict: bool = False
    ) -> ImageBindSegmaskAudioEncoderOutput | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode normalised mels ``(B, 1, 128, 204)`` (float32).

        Returns ``(audio_embeds, audio_encodings, audio_segment_masks)`` as a tuple (the official
        default) or, with ``return_dict``, an :class:`ImageBindSegmaskAudioEncoderOutput`; shapes
        ``(B, out_embed_dim)``, ``(B, 229, 768)``, ``(B, n_segment, 229)`` bool.
        """
        inputs = self.preprocessor(audio=input_features)
        tokens = self.trunk(**inputs["trunk"])  # (B, 229, D), no final norm
        embeds = self.head(tokens, **inputs["head"])
        if normalize:
            embeds = self.postprocessor(embeds)
        encodings = self.final_layer_norm(tokens)
        masks = self.segment_masks(input_features.shape[0], input_features.device)
        if not return_dict:
            return embeds, encodings, masks
        return ImageBindSegmaskAudioEncoderOutput(
            audio_embeds=embeds, audio_encodings=encodings, audio_segment_masks=masks
        )

    def null_mel(self, batch_size: int = 1) -> torch.Tensor:
        """The null-audio input: an all-zero **normalised** mel ``(batch_size, 1, 128, 204)``."""
        bins, length = self.config.num_mel_bins, self.config.target_len
        return torch.zeros(batch_size, 1, bins, length, device=self.device, dtype=self.dtype)

    @torch.no_grad()
    def encode_null_audio(self, batch_size: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens ``(batch_size, 229, 768)`` and masks ``(batch_size, n_segment, 229)`` of the null
        audio (an all-zero normalised mel), used for audio dropout and audio classifier-free
        guidance (PROTOCOL.md §4)."""
        _, encodings, masks = self(self.null_mel(1), normalize=False, return_dict=False)
        return encodings.expand(batch_size, -1, -1).contiguous(), masks.expand(
            batch_size, -1, -1
        ).contiguous()

    @classmethod
    def from_imagebind_checkpoint(
        cls,
        checkpoint: str | os.PathLike | Mapping[str, torch.Tensor],
        n_segment: int = 12,
        config: Mapping[str, object] | None = None,
    ) -> ImageBindSegmaskAudioEncoder:
        """Load the audio branch from a full ImageBind state dict (``imagebind_huge.pth``, read with
        ``weights_only=True``, memory-mapped when possible) or from an already loaded mapping.

        Keys under :data:`CHECKPOINT_PREFIXES` are renamed and loaded strictly; other modalities
        are ignored; ``final_layer_norm`` keeps its default (ones/zeros). Returns the encoder in
        eval mode, float32.

        Raises:
            RuntimeError: audio keys missing, unexpected or of the wrong shape.
        """
        if isinstance(checkpoint, Mapping):
            state = checkpoint
            source = "state dict"
        else:
            source = str(checkpoint)
            try:
                state = torch.load(
                    Path(checkpoint), map_location="cpu", weights_only=True, mmap=True
                )
            except RuntimeError:
                state = torch.load(Path(checkpoint), map_location="cpu", weights_only=True)
        renamed = {}
        for key, value in state.items():
            for prefix, target in CHECKPOINT_PREFIXES.items():
                if key.startswith(prefix):
                    renamed[target + key[len(prefix) :]] = value
        from accelerate import init_empty_weights

        with init_empty_weights():  # parameters are assigned from the checkpoint below
            model = cls(n_segment=n_segment, **dict(config or IMAGEBIND_HUGE_AUDIO_CONFIG))
        model.final_layer_norm = nn.LayerNorm(768, eps=1e-6)
        expected = set(model.state_dict()) - {"final_layer_norm.weight", "final_layer_norm.bias"}
        missing = sorted(expected - set(renamed))
        unexpected = sorted(set(renamed) - expected)
        if missing or unexpected:
            raise RuntimeError(
                f"{source}: not an ImageBind audio checkpoint for this config "
                f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
            )
        try:
            model.load_state_dict(renamed, strict=False, assign=True)
        except RuntimeError as exc:
            raise RuntimeError(f"{source}: audio weights do not fit the model ({exc})") from exc
        return model.float().eval()
