"""Frame-wise convolutions with the FF-conv residual, and the AVSyncD ResNet / sampler blocks.

Source: PROTOCOL.md §4 ("FF-conv"), paper §4. Every tensor here is a video feature map of shape
``(B, C, F, H, W)`` (float32/float16/bfloat16). The 2D convolutions are the frozen SD-1.5 ones,
applied to each frame independently; each is followed by a residual ``conv_temp`` Linear that
mixes the features of frame 0, frame ``max(t-1, 0)`` and frame ``t`` at every pixel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.activations import get_activation
from torch import nn

import avsync_bench  # noqa: F401  (torch compatibility shim first)

__all__ = ["FFConv2d", "FFResnetBlock3D", "FFDownsample3D", "FFUpsample3D"]


class FFConv2d(nn.Conv2d):
    """A 2D convolution applied per frame, plus the zero-initialised FF-conv residual.

    ``y_t = conv(x_t)``; ``out_t = y_t + conv_temp([y_0, y_max(t-1,0), y_t])`` where
    ``conv_temp`` is ``Linear(3·C_out, C_out)`` acting on the channel vector of each pixel
    (PROTOCOL.md §4). Parameter names: ``weight``/``bias`` (the SD-1.5 conv) and
    ``conv_temp.weight`` ``(C_out, 3·C_out)`` / ``conv_temp.bias`` ``(C_out,)``.

    Input ``(B, C_in, F, H, W)``; output ``(B, C_out, F, H', W')``, same dtype.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding)
        self.conv_temp = nn.Linear(3 * out_channels, out_channels)
        nn.init.zeros_(self.conv_temp.weight)
        nn.init.zeros_(self.conv_temp.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels_in, frames, height_in, width_in = x.shape
        y = super().forward(
            x.transpose(1, 2).reshape(batch * frames, channels_in, height_in, width_in)
        )
        channels, height, width = y.shape[1:]
        # (B, F, C, H, W) -> (B, H, W, F, C): one frame sequence of channel vectors per pixel
        y = y.view(batch, frames, channels, height, width).permute(0, 3, 4, 1, 2)
        first = y[..., :1, :].expand_as(y)
        previous = torch.cat([y[..., :1, :], y[..., :-1, :]], dim=-2)
        y = y + self.conv_temp(torch.cat([first, previous, y], dim=-1))
        return y.permute(0, 4, 3, 1, 2).contiguous()


class FFResnetBlock3D(nn.Module):
    """SD-1.5 ResNet block on video features, with FF-conv ``conv1``/``conv2``/``conv_shortcut``.

    ``norm1``/``norm2`` are GroupNorms applied to the whole ``(B, C, F, H, W)`` tensor, so their
    statistics are taken **over all frames together** (as the official module does). The time
    embedding ``temb`` is per frame: ``(B, F, temb_channels)``.

    Args:
        in_channels / out_channels: channel counts; a 1x1 FF-conv shortcut is added when they differ.
        temb_channels: width of the time embedding.
        groups: GroupNorm groups; eps: GroupNorm epsilon.
        act_fn: activation name (``silu``/``swish``/``mish``/``gelu``).
        time_embedding_norm: ``default`` (add) or ``scale_shift``.
        output_scale_factor: the residual sum is divided by it.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        temb_channels: int | None,
        groups: int,
        eps: float,
        act_fn: str = "silu",
        time_embedding_norm: str = "default",
        output_scale_factor: float = 1.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if time_embedding_norm not in ("default", "scale_shift"):
            raise ValueError(f"unknown time_embedding_norm {time_embedding_norm!r}")
        self.time_embedding_norm = time_embedding_norm
        self.output_scale_factor = output_scale_factor
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps, affine=True)
        self.conv1 = FFConv2d(in_channels, out_channels, 3, padding=1)
        if temb_channels is None:
            self.time_emb_proj = None
        else:
            factor = 2 if time_embedding_norm == "scale_shift" else 1
            self.time_emb_proj = nn.Linear(temb_channels, factor * out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps, affine=True)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = FFConv2d(out_channels, out_channels, 3, padding=1)
        self.nonlinearity = get_activation(act_fn)
        self.conv_shortcut = (
            FFConv2d(in_channels, out_channels, 1) if in_channels != out_channels else None
        )

    def forward(self, input_tensor: torch.Tensor, temb: torch.Tensor | None) -> torch.Tensor:
        """``input_tensor`` ``(B, C_in, F, H, W)``, ``temb`` ``(B, F, T)`` → ``(B, C_out, F, H, W)``."""
        hidden = self.conv1(self.nonlinearity(self.norm1(input_tensor)))
        scale_shift = None
        if temb is not None and self.time_emb_proj is not None:
            t = self.time_emb_proj(self.nonlinearity(temb))  # (B, F, C)
            t = t.permute(0, 2, 1)[:, :, :, None, None]  # (B, C, F, 1, 1)
            if self.time_embedding_norm == "default":
                hidden = hidden + t
            else:
                scale_shift = t.chunk(2, dim=1)
        hidden = self.norm2(hidden)
        if scale_shift is not None:
            hidden = hidden * (1 + scale_shift[0]) + scale_shift[1]
        hidden = self.conv2(self.dropout(self.nonlinearity(hidden)))
        if self.conv_shortcut is not None:
            input_tensor = self.conv_shortcut(input_tensor)
        return (input_tensor + hidden) / self.output_scale_factor


class FFDownsample3D(nn.Module):
    """Stride-2 3x3 FF-conv (``conv``), halving H and W of ``(B, C, F, H, W)``."""

    def __init__(self, channels: int, out_channels: int | None = None, padding: int = 1) -> None:
        super().__init__()
        if padding == 0:
            raise NotImplementedError("padding=0 (asymmetric padding) is not supported")
        self.channels = channels
        self.conv = FFConv2d(channels, out_channels or channels, 3, stride=2, padding=padding)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if hidden_states.shape[1] != self.channels:
            raise ValueError(f"expected {self.channels} channels, got {hidden_states.shape[1]}")
        return self.conv(hidden_states)


class FFUpsample3D(nn.Module):
    """Nearest ×2 upsampling of H and W (frames unchanged), then a 3x3 FF-conv (``conv``).

    ``output_size``, when given, is the full ``(F, H, W)`` target passed to ``F.interpolate``.
    """

    def __init__(self, channels: int, out_channels: int | None = None) -> None:
        super().__init__()
        self.channels = channels
        self.conv = FFConv2d(channels, out_channels or channels, 3, padding=1)

    def forward(
        self, hidden_states: torch.Tensor, output_size: tuple[int, ...] | None = None
    ) -> torch.Tensor:
        if hidden_states.shape[1] != self.channels:
            raise ValueError(f"expected {self.channels} channels, got {hidden_states.shape[1]}")
        dtype = hidden_states.dtype
        if dtype == torch.bfloat16:  # nearest upsampling lacks bfloat16 kernels on some devices
            hidden_states = hidden_states.float()
        if hidden_states.shape[0] >= 64:
            hidden_states = hidden_states.contiguous()
        if output_size is None:
            hidden_states = F.interpolate(
                hidden_states, scale_factor=(1.0, 2.0, 2.0), mode="nearest"
            )
        else:
            hidden_states = F.interpolate(hidden_states, size=tuple(output_size), mode="nearest")
        return self.conv(hidden_states.to(dtype))
