"""AVSyncD transformer blocks: frame-0 self-attention, masked audio and text cross-attention,
temporal attention with a learned frame position embedding, feed-forward.

Source: PROTOCOL.md §4 ("Transformer blocks"), paper §4. Built on diffusers' ``Attention``,
``FeedForward``, ``Timesteps`` and ``TimestepEmbedding``; the attention maths is done by the
processors below (``torch.nn.functional.scaled_dot_product_attention``).

Token layout inside a block: ``(B·F, N, C)`` with ``N = H·W`` spatial tokens per frame (frames
of one video are consecutive along the first axis).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention import FeedForward
from diffusers.models.attention_processor import Attention
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn

import avsync_bench  # noqa: F401  (torch compatibility shim first)

__all__ = [
    "FirstFrameAttnProcessor",
    "MaskedAttnProcessor",
    "SpatioAudioTempTransformerBlock",
    "SpatioAudioTempTransformer3D",
]


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``(B, L, H·d)`` → ``(B, H, L, d)``."""
    batch, length, width = x.shape
    return x.view(batch, length, heads, width // heads).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    """``(B, H, L, d)`` → ``(B, L, H·d)``."""
    batch, heads, length, dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * dim)


class MaskedAttnProcessor:
    """Plain (cross-)attention with an optional boolean key mask.

    ``hidden_states`` ``(B, N, C)``; ``encoder_hidden_states`` ``(B, M, D)`` or None (self-attention);
    ``attention_mask`` ``(B, M)`` bool (True = attend; other dtypes are cast, non-zero = attend).
    Returns ``(B, N, C)``.
    """

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        query = _heads(attn.to_q(hidden_states), attn.heads)
        key = _heads(attn.to_k(context), attn.heads)
        value = _heads(attn.to_v(context), attn.heads)
        mask = None
        if attention_mask is not None:
            mask = attention_mask.to(device=query.device, dtype=torch.bool)
            mask = mask.reshape(query.shape[0], 1, 1, key.shape[2])
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=attn.scale)
        out = _merge(out).to(query.dtype)
        return attn.to_out[1](attn.to_out[0](out))


class FirstFrameAttnProcessor:
    """``attn1``: queries from every frame, keys and values from **frame 0** of the same video.

    ``hidden_states`` ``(B·F, N, C)`` (frames consecutive); ``video_length`` = F. With
    ``encoder_hidden_states`` ``(B·F, M, D)`` (only-cross-attention configs) keys/values come from
    frame 0's encoder states instead. Returns ``(B·F, N, C)``.
    """

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        video_length: int | None = None,
    ) -> torch.Tensor:
        if video_length is None:
            raise ValueError("FirstFrameAttnProcessor needs video_length")
        if attention_mask is not None:
            raise NotImplementedError("attn1 takes no attention mask (as in the official model)")
        frames_total, tokens, _ = hidden_states.shape
        batch = frames_total // video_length
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        context = context.view(batch, video_length, *context.shape[1:])[:, 0]  # (B, M, D)
        # all frames of a video share frame 0's keys: one attention over F·N queries per video
        query = _heads(
            attn.to_q(hidden_states).reshape(batch, video_length * tokens, -1), attn.heads
        )
        key = _heads(attn.to_k(context), attn.heads)
        value = _heads(attn.to_v(context), attn.heads)
        out = F.scaled_dot_product_attention(query, key, value, scale=attn.scale)
        out = _merge(out).to(query.dtype).reshape(frames_total, tokens, -1)
        return attn.to_out[1](attn.to_out[0](out))


class SpatioAudioTempTransformerBlock(nn.Module):
    """One AVSyncD transformer block (PROTOCOL.md §4), pre-LayerNorm residual sub-layers in order:

    1. ``norm1`` + ``attn1``: self-attention with keys/values from frame 0 (frozen, SD-1.5).
    2. ``norm_audio`` + ``attn_audio``: cross-attention to audio tokens under the mask (new).
    3. ``norm2`` + ``attn2``: text cross-attention (frozen, SD-1.5).
    4. ``norm_temp`` + ``attn_temp``: attention across the F frames at each pixel on
       ``LayerNorm(h + PE)``; PE = ``pos_embedding_temp(sinusoid(frame index))`` (new;
       ``attn_temp.to_out.0.weight`` zero-initialised, as in the official code).
    5. ``norm3`` + ``ff``: GEGLU feed-forward (frozen, SD-1.5).

    With ``audio_cross_attention_dim=None`` step 2 is absent (the image-only block types).
    """

    def __init__(
        self,
        dim: int,
        num_attention_heads: int,
        attention_head_dim: int,
        cross_attention_dim: int | None = None,
        audio_cross_attention_dim: int | None = None,
        dropout: float = 0.0,
        activation_fn: str = "geglu",
        attention_bias: bool = False,
        only_cross_attention: bool = False,
        upcast_attention: bool = False,
    ) -> None:
        super().__init__()
        self.only_cross_attention = only_cross_attention

        def attention(context_dim: int | None, processor: object) -> Attention:
            return Attention(
                query_dim=dim,
                cross_attention_dim=context_dim,
                heads=num_attention_heads,
                dim_head=attention_head_dim,
                dropout=dropout,
                bias=attention_bias,
                upcast_attention=upcast_attention,
                processor=processor,
            )

        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = attention(
            cross_attention_dim if only_cross_attention else None, FirstFrameAttnProcessor()
        )
        if audio_cross_attention_dim is not None:
            self.norm_audio = nn.LayerNorm(dim)
            self.attn_audio = attention(audio_cross_attention_dim, MaskedAttnProcessor())
        else:
            self.norm_audio = None
            self.attn_audio = None
        if cross_attention_dim is not None:
            self.norm2 = nn.LayerNorm(dim)
            self.attn2 = attention(cross_attention_dim, MaskedAttnProcessor())
        else:
            self.norm2 = None
            self.attn2 = None
        self.pos_proj_temp = Timesteps(dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.pos_embedding_temp = TimestepEmbedding(dim, dim, act_fn="silu")
        self.attn_temp = attention(None, MaskedAttnProcessor())
        nn.init.zeros_(self.attn_temp.to_out[0].weight)
        self.norm_temp = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, dropout=dropout, activation_fn=activation_fn)

    def forward(
        self,
        hidden_states: torch.Tensor,
        video_length: int,
        encoder_hidden_states: torch.Tensor | None = None,
        audio_encoder_hidden_states: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Shapes: ``hidden_states`` ``(B·F, N, C)``; text ``(B·F, 77, D_text)``; audio tokens
        ``(B·F, 229, D_audio)``; audio mask ``(B·F, 229)`` bool. Returns ``(B·F, N, C)``."""
        hidden_states = hidden_states + self.attn1(
            self.norm1(hidden_states),
            encoder_hidden_states=encoder_hidden_states if self.only_cross_attention else None,
            video_length=video_length,
        )
        if self.attn_audio is not None:
            if audio_encoder_hidden_states is None:
                raise ValueError("audio_encoder_hidden_states are required")
            hidden_states = hidden_states + self.attn_audio(
                self.norm_audio(hidden_states),
                encoder_hidden_states=audio_encoder_hidden_states,
                attention_mask=audio_attention_mask,
            )
        if self.attn2 is not None:
            hidden_states = hidden_states + self.attn2(
                self.norm2(hidden_states), encoder_hidden_states=encoder_hidden_states
            )

        frames_total, tokens, channels = hidden_states.shape
        batch = frames_total // video_length
        frame_index = torch.arange(video_length, device=hidden_states.device)
        pos = self.pos_proj_temp(frame_index).to(dtype=hidden_states.dtype)
        pos = self.pos_embedding_temp(pos)  # (F, C)
        # (B·F, N, C) -> (B·N, F, C): one sequence of F frames per pixel
        temporal = (
            hidden_states.view(batch, video_length, tokens, channels)
            .transpose(1, 2)
            .reshape(batch * tokens, video_length, channels)
        )
        temporal = temporal + self.attn_temp(self.norm_temp(temporal + pos))
        hidden_states = (
            temporal.view(batch, tokens, video_length, channels)
            .transpose(1, 2)
            .reshape(frames_total, tokens, channels)
        )
        return hidden_states + self.ff(self.norm3(hidden_states))


class SpatioAudioTempTransformer3D(nn.Module):
    """GroupNorm → 1x1 ``proj_in`` → transformer block(s) → ``proj_out`` → residual, per frame.

    ``norm`` (GroupNorm, eps 1e-6) is taken per frame here (unlike the ResNet norms). Heads:
    ``num_attention_heads``; head width ``attention_head_dim`` (AVSyncD: 8 heads of C/8).

    Forward: ``hidden_states`` ``(B, C, F, H, W)``, ``encoder_hidden_states`` ``(B, F, 77, D)``,
    ``audio_encoder_hidden_states`` ``(B, F, 229, 768)``, ``audio_attention_mask`` ``(B, F, 229)``
    bool → ``(B, C, F, H, W)``.
    """

    def __init__(
        self,
        num_attention_heads: int,
        attention_head_dim: int,
        in_channels: int,
        num_layers: int = 1,
        norm_num_groups: int = 32,
        cross_attention_dim: int | None = None,
        audio_cross_attention_dim: int | None = None,
        use_linear_projection: bool = False,
        only_cross_attention: bool = False,
        upcast_attention: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        inner_dim = num_attention_heads * attention_head_dim
        self.use_linear_projection = use_linear_projection
        self.norm = nn.GroupNorm(norm_num_groups, in_channels, eps=1e-6, affine=True)
        if use_linear_projection:
            self.proj_in = nn.Linear(in_channels, inner_dim)
        else:
            self.proj_in = nn.Conv2d(in_channels, inner_dim, kernel_size=1)
        self.transformer_blocks = nn.ModuleList(
            SpatioAudioTempTransformerBlock(
                inner_dim,
                num_attention_heads,
                attention_head_dim,
                cross_attention_dim=cross_attention_dim,
                audio_cross_attention_dim=audio_cross_attention_dim,
                dropout=dropout,
                only_cross_attention=only_cross_attention,
                upcast_attention=upcast_attention,
            )
            for _ in range(num_layers)
        )
        if use_linear_projection:
            self.proj_out = nn.Linear(inner_dim, in_channels)
        else:
            self.proj_out = nn.Conv2d(inner_dim, in_channels, kernel_size=1)

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        audio_encoder_hidden_states: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if hidden_states.dim() != 5:
            raise ValueError(f"expected (B, C, F, H, W), got shape {tuple(hidden_states.shape)}")
        batch, channels, frames, height, width = hidden_states.shape

        def per_frame(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x.reshape(batch * frames, *x.shape[2:])

        text = per_frame(encoder_hidden_states)
        audio = per_frame(audio_encoder_hidden_states)
        mask = per_frame(audio_attention_mask)

        residual = hidden_states.transpose(1, 2).reshape(batch * frames, channels, height, width)
        hidden = self.norm(residual)
        if self.use_linear_projection:
            hidden = self.proj_in(hidden.permute(0, 2, 3, 1).reshape(batch * frames, -1, channels))
        else:
            hidden = self.proj_in(hidden)
            hidden = hidden.permute(0, 2, 3, 1).reshape(batch * frames, height * width, -1)
        for block in self.transformer_blocks:
            hidden = block(
                hidden,
                video_length=frames,
                encoder_hidden_states=text,
                audio_encoder_hidden_states=audio,
                audio_attention_mask=mask,
            )
        if self.use_linear_projection:
            hidden = self.proj_out(hidden)
            hidden = hidden.reshape(batch * frames, height, width, -1).permute(0, 3, 1, 2)
        else:
            hidden = hidden.reshape(batch * frames, height, width, -1).permute(0, 3, 1, 2)
            hidden = self.proj_out(hidden.contiguous())
        output = hidden + residual
        return output.reshape(batch, frames, channels, height, width).transpose(1, 2).contiguous()
