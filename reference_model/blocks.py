"""Down, mid and up blocks of the AVSyncD UNet, selected by the official block type names.

Source: PROTOCOL.md §4, paper §4. Block type names (the values of ``down_block_types`` /
``mid_block_type`` / ``up_block_types`` in the UNet config) are those of the official checkpoint:

| type name | attention | audio |
|---|---|---|
| ``FFSpatioTempResDownBlock3D`` / ``FFSpatioTempResUpBlock3D`` | no | no |
| ``FFSpatioTempCrossAttn{Down,Up}Block3D`` / ``FFSpatioTempCrossAttnUNetMidBlock3D`` | yes | no |
| ``FFSpatioAudioTempCrossAttn{Down,Up}Block3D`` / ``FFSpatioAudioTempCrossAttnUNetMidBlock3D`` | yes | yes |

All hidden states are ``(B, C, F, H, W)``; ``temb`` is ``(B, F, T)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

import avsync_bench  # noqa: F401  (torch compatibility shim first)
from reference_model.attention import SpatioAudioTempTransformer3D
from reference_model.resnet import FFDownsample3D, FFResnetBlock3D, FFUpsample3D

__all__ = [
    "DOWN_BLOCK_TYPES",
    "MID_BLOCK_TYPES",
    "UP_BLOCK_TYPES",
    "FFDownBlock3D",
    "FFMidBlock3D",
    "FFUpBlock3D",
    "get_down_block",
    "get_mid_block",
    "get_up_block",
]

# type name -> (has transformer blocks, has audio cross-attention)
DOWN_BLOCK_TYPES = {
    "FFSpatioTempResDownBlock3D": (False, False),
    "FFSpatioTempCrossAttnDownBlock3D": (True, False),
    "FFSpatioAudioTempCrossAttnDownBlock3D": (True, True),
}
UP_BLOCK_TYPES = {
    "FFSpatioTempResUpBlock3D": (False, False),
    "FFSpatioTempCrossAttnUpBlock3D": (True, False),
    "FFSpatioAudioTempCrossAttnUpBlock3D": (True, True),
}
MID_BLOCK_TYPES = {
    "FFSpatioTempCrossAttnUNetMidBlock3D": (True, False),
    "FFSpatioAudioTempCrossAttnUNetMidBlock3D": (True, True),
}


def _lookup(table: dict[str, tuple[bool, bool]], name: str) -> tuple[bool, bool]:
    key = name[7:] if name.startswith("UNetRes") else name
    if key not in table:
        raise ValueError(f"{name!r} does not exist; known block types: {sorted(table)}")
    return table[key]


def _transformers(
    num_layers: int,
    channels: int,
    num_attention_heads: int,
    groups: int,
    cross_attention_dim: int | None,
    audio_cross_attention_dim: int | None,
    use_linear_projection: bool,
    upcast_attention: bool,
    only_cross_attention: bool = False,
) -> nn.ModuleList:
    """``num_layers`` spatio-audio-temporal transformers at width ``channels`` (head width
    ``channels / num_attention_heads``), as every attention block of the UNet builds them."""
    return nn.ModuleList(
        SpatioAudioTempTransformer3D(
            num_attention_heads,
            channels // num_attention_heads,
            in_channels=channels,
            norm_num_groups=groups,
            cross_attention_dim=cross_attention_dim,
            audio_cross_attention_dim=audio_cross_attention_dim,
            use_linear_projection=use_linear_projection,
            only_cross_attention=only_cross_attention,
            upcast_attention=upcast_attention,
        )
        for _ in range(num_layers)
    )


class _Checkpointed(nn.Module):
    """Runs sub-modules through diffusers' gradient-checkpointing function when enabled."""

    def __init__(self) -> None:
        super().__init__()
        self.gradient_checkpointing = False

    def _run(self, module: nn.Module, *args: object) -> torch.Tensor:
        if torch.is_grad_enabled() and self.gradient_checkpointing:
            func: Callable = self._gradient_checkpointing_func
            return func(module, *args)
        return module(*args)


class FFDownBlock3D(_Checkpointed):
    """``num_layers`` × (ResNet [→ transformer]) → optional stride-2 downsampler.

    Returns ``(hidden_states, output_states)``: the block output and the tuple of skip tensors
    (one per layer, plus the downsampled map).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        temb_channels: int,
        num_layers: int,
        resnet_eps: float,
        resnet_act_fn: str,
        resnet_groups: int,
        add_downsample: bool,
        downsample_padding: int = 1,
        resnet_time_scale_shift: str = "default",
        with_attention: bool = True,
        num_attention_heads: int = 8,
        cross_attention_dim: int | None = None,
        audio_cross_attention_dim: int | None = None,
        use_linear_projection: bool = False,
        only_cross_attention: bool = False,
        upcast_attention: bool = False,
    ) -> None:
        super().__init__()
        self.has_cross_attention = with_attention
        resnets = [
            FFResnetBlock3D(
                in_channels if i == 0 else out_channels,
                out_channels,
                temb_channels,
                groups=resnet_groups,
                eps=resnet_eps,
                act_fn=resnet_act_fn,
                time_embedding_norm=resnet_time_scale_shift,
            )
            for i in range(num_layers)
        ]
        if with_attention:
            self.attentions = _transformers(
                num_layers,
                out_channels,
                num_attention_heads,
                resnet_groups,
                cross_attention_dim,
                audio_cross_attention_dim,
                use_linear_projection,
                upcast_attention,
                only_cross_attention,
            )
        else:
            self.attentions = None
        self.resnets = nn.ModuleList(resnets)
        if add_downsample:
            self.downsamplers = nn.ModuleList(
                [FFDownsample3D(out_channels, out_channels, padding=downsample_padding)]
            )
        else:
            self.downsamplers = None

    def forward(
        self,
        hidden_states: torch.Tensor,
        temb: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        audio_encoder_hidden_states: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        output_states: tuple[torch.Tensor, ...] = ()
        for i, resnet in enumerate(self.resnets):
            hidden_states = self._run(resnet, hidden_states, temb)
            if self.attentions is not None:
                hidden_states = self._run(
                    self.attentions[i],
                    hidden_states,
                    encoder_hidden_states,
                    audio_encoder_hidden_states,
                    audio_attention_mask,
                )
            output_states += (hidden_states,)
        if self.downsamplers is not None:
            for downsampler in self.downsamplers:
                hidden_states = downsampler(hidden_states)
            output_states += (hidden_states,)
        return hidden_states, output_states


class FFMidBlock3D(_Checkpointed):
    """ResNet → (transformer → ResNet) × ``num_layers`` at constant width ``in_channels``."""

    def __init__(
        self,
        in_channels: int,
        temb_channels: int,
        resnet_eps: float,
        resnet_act_fn: str,
        resnet_groups: int | None,
        output_scale_factor: float = 1.0,
        resnet_time_scale_shift: str = "default",
        num_layers: int = 1,
        with_audio: bool = True,
        num_attention_heads: int = 8,
        cross_attention_dim: int | None = None,
        audio_cross_attention_dim: int | None = None,
        use_linear_projection: bool = False,
        upcast_attention: bool = False,
    ) -> None:
        super().__init__()
        self.has_cross_attention = True
        groups = resnet_groups if resnet_groups is not None else min(in_channels // 4, 32)

        def resnet() -> FFResnetBlock3D:
            return FFResnetBlock3D(
                in_channels,
                in_channels,
                temb_channels,
                groups=groups,
                eps=resnet_eps,
                act_fn=resnet_act_fn,
                time_embedding_norm=resnet_time_scale_shift,
                output_scale_factor=output_scale_factor,
            )

        self.attentions = _transformers(
            num_layers,
            in_channels,
            num_attention_heads,
            groups,
            cross_attention_dim,
            audio_cross_attention_dim if with_audio else None,
            use_linear_projection,
            upcast_attention,
        )
        self.resnets = nn.ModuleList([resnet() for _ in range(num_layers + 1)])

    def forward(
        self,
        hidden_states: torch.Tensor,
        temb: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        audio_encoder_hidden_states: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        hidden_states = self._run(self.resnets[0], hidden_states, temb)
        for attention, resnet in zip(self.attentions, self.resnets[1:]):
            hidden_states = self._run(
                attention,
                hidden_states,
                encoder_hidden_states,
                audio_encoder_hidden_states,
                audio_attention_mask,
            )
            hidden_states = self._run(resnet, hidden_states, temb)
        return hidden_states


class FFUpBlock3D(_Checkpointed):
    """``num_layers`` × (concat skip → ResNet [→ transformer]) → optional ×2 upsampler."""

    def __init__(
        self,
        in_channels: int,
        prev_output_channel: int,
        out_channels: int,
        temb_channels: int,
        num_layers: int,
        resnet_eps: float,
        resnet_act_fn: str,
        resnet_groups: int,
        add_upsample: bool,
        resnet_time_scale_shift: str = "default",
        with_attention: bool = True,
        num_attention_heads: int = 8,
        cross_attention_dim: int | None = None,
        audio_cross_attention_dim: int | None = None,
        use_linear_projection: bool = False,
        only_cross_attention: bool = False,
        upcast_attention: bool = False,
    ) -> None:
        super().__init__()
        self.has_cross_attention = with_attention
        resnets = []
        for i in range(num_layers):
            skip_channels = in_channels if i == num_layers - 1 else out_channels
            resnet_in = prev_output_channel if i == 0 else out_channels
            resnets.append(
                FFResnetBlock3D(
                    resnet_in + skip_channels,
                    out_channels,
                    temb_channels,
                    groups=resnet_groups,
                    eps=resnet_eps,
                    act_fn=resnet_act_fn,
                    time_embedding_norm=resnet_time_scale_shift,
                )
            )
        if with_attention:
            self.attentions = _transformers(
                num_layers,
                out_channels,
                num_attention_heads,
                resnet_groups,
                cross_attention_dim,
                audio_cross_attention_dim,
                use_linear_projection,
                upcast_attention,
                only_cross_attention,
            )
        else:
            self.attentions = None
        self.resnets = nn.ModuleList(resnets)
        self.upsamplers = (
            nn.ModuleList([FFUpsample3D(out_channels, out_channels)]) if add_upsample else None
        )

    def forward(
        self,
        hidden_states: torch.Tensor,
        res_hidden_states_tuple: tuple[torch.Tensor, ...],
        temb: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        audio_encoder_hidden_states: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        upsample_size: tuple[int, ...] | None = None,
    ) -> torch.Tensor:
        for i, resnet in enumerate(self.resnets):
            skip = res_hidden_states_tuple[-1]
            res_hidden_states_tuple = res_hidden_states_tuple[:-1]
            hidden_states = torch.cat([hidden_states, skip], dim=1)
            hidden_states = self._run(resnet, hidden_states, temb)
            if self.attentions is not None:
                hidden_states = self._run(
                    self.attentions[i],
                    hidden_states,
                    encoder_hidden_states,
                    audio_encoder_hidden_states,
                    audio_attention_mask,
                )
        if self.upsamplers is not None:
            for upsampler in self.upsamplers:
                hidden_states = upsampler(hidden_states, upsample_size)
        return hidden_states


def get_down_block(down_block_type: str, **kwargs: object) -> FFDownBlock3D:
    """Build a down block from its official type name (see the module table)."""
    with_attention, with_audio = _lookup(DOWN_BLOCK_TYPES, down_block_type)
    if not with_audio:
        kwargs["audio_cross_attention_dim"] = None
    return FFDownBlock3D(with_attention=with_attention, **kwargs)


def get_up_block(up_block_type: str, **kwargs: object) -> FFUpBlock3D:
    """Build an up block from its official type name (see the module table)."""
    with_attention, with_audio = _lookup(UP_BLOCK_TYPES, up_block_type)
    if not with_audio:
        kwargs["audio_cross_attention_dim"] = None
    return FFUpBlock3D(with_attention=with_attention, **kwargs)


def get_mid_block(mid_block_type: str, **kwargs: object) -> FFMidBlock3D:
    """Build the mid block from its official type name (see the module table)."""
    _, with_audio = _lookup(MID_BLOCK_TYPES, mid_block_type)
    return FFMidBlock3D(with_audio=with_audio, **kwargs)
