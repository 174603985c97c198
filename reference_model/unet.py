"""AVSyncD's denoiser: ``AudioUNet3DConditionModel`` (SD-1.5 UNet inflated to video, with audio).

Source: PROTOCOL.md §4 ("UNet changes", "Checkpoint"), paper §4. Config keys, block type names,
module names and ``state_dict`` keys are those of the official checkpoint
(``checkpoint-N/modules/unet``), so its ``config.json`` and weights load unchanged; the 330 keys
of the tiny golden config (``golden/avsync_unet.json``) match in order.

Trainable parameters (official training): names containing ``_temp`` or ``_audio``
(:data:`TRAINABLE_MARKERS`); everything else is SD-1.5 and frozen.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.activations import get_activation
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

import avsync_bench  # noqa: F401  (torch compatibility shim first)
from reference_model.blocks import get_down_block, get_mid_block, get_up_block
from reference_model.resnet import FFConv2d

__all__ = [
    "AudioUNet3DConditionModel",
    "AudioUNet3DConditionOutput",
    "BLOCK_TYPES_2D_TO_3D",
    "TRAINABLE_MARKERS",
]

logger = logging.getLogger(__name__)

TRAINABLE_MARKERS = ("_temp", "_audio")
"""A parameter is trained by AVSyncD iff its name contains one of these (PROTOCOL.md §4)."""

BLOCK_TYPES_2D_TO_3D = {
    "CrossAttnDownBlock2D": "FFSpatioAudioTempCrossAttnDownBlock3D",
    "DownBlock2D": "FFSpatioTempResDownBlock3D",
    "UNetMidBlock2DCrossAttn": "FFSpatioAudioTempCrossAttnUNetMidBlock3D",
    "UpBlock2D": "FFSpatioTempResUpBlock3D",
    "CrossAttnUpBlock2D": "FFSpatioAudioTempCrossAttnUpBlock3D",
}
"""SD-1.5 block types and the AVSyncD block types that replace them in :meth:`from_pretrained_2d`."""


@dataclass
class AudioUNet3DConditionOutput(BaseOutput):
    """``sample``: the predicted noise ε, ``(B, C_out, F, h, w)``, dtype of the model."""

    sample: torch.Tensor


def _per_block(value: object, count: int, name: str) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise ValueError(f"`{name}` must have one entry per down block ({count}), got {value}")
        return list(value)
    return [value] * count


class AudioUNet3DConditionModel(ModelMixin, ConfigMixin):
    """The AVSyncD UNet (PROTOCOL.md §4): SD-1.5 with FF-conv residuals on every convolution,
    frame-0 self-attention, masked audio cross-attention and temporal attention.

    Config: SD-1.5's ``UNet2DConditionModel`` keys (as the official class has them) plus
    ``audio_cross_attention_dim`` (768, ImageBind). ``attention_head_dim`` is the **number of
    heads** (SD-1.5: 8; head width C/8), as in SD-1.5's diffusers config. Options the official
    code accepts but never uses (``resnet_skip_time_act``, ``resnet_out_scale_factor``,
    ``cross_attention_norm``, ``mid_block_only_cross_attention``, ``addition_embed_type_num_heads``,
    ``upcast_attention``) are accepted and, as there, have no effect. Class/addition embeddings,
    Fourier time embeddings and dual cross-attention raise ``NotImplementedError``.

    Forward inputs (float32 unless the model was cast):
        sample: noisy latents ``(B, 4, F, h, w)``; frame 0 is the clean first-frame latent.
        timestep: int/float or a 0-d/``(B,)`` tensor.
        encoder_hidden_states: text states ``(B, F, 77, cross_attention_dim)`` (repeated per frame).
        audio_encoder_hidden_states: audio tokens ``(B, F, 229, audio_cross_attention_dim)``.
        audio_attention_mask: ``(B, F, 229)`` bool, True = frame attends to that token.
    Output: :class:`AudioUNet3DConditionOutput` with ``sample`` ``(B, 4, F, h, w)`` (ε prediction).
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        sample_size: int | None = None,
        in_channels: int = 4,
        out_channels: int = 4,
        center_input_sample: bool = False,
        flip_sin_to_cos: bool = True,
        freq_shift: int = 0,
        down_block_types: tuple[str, ...] = (
            "FFSpatioAudioTempCrossAttnDownBlock3D",
            "FFSpatioAudioTempCrossAttnDownBlock3D",
            "FFSpatioAudioTempCrossAttnDownBlock3D",
            "FFSpatioTempResDownBlock3D",
        ),
        mid_block_type: str | None = "FFSpatioAudioTempCrossAttnUNetMidBlock3D",
        up_block_types: tuple[str, ...] = (
            "FFSpatioTempResUpBlock3D",
            "FFSpatioAudioTempCrossAttnUpBlock3D",
            "FFSpatioAudioTempCrossAttnUpBlock3D",
            "FFSpatioAudioTempCrossAttnUpBlock3D",
        ),
        only_cross_attention: bool | tuple[bool, ...] = False,
        block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280),
        layers_per_block: int | tuple[int, ...] = 2,
        downsample_padding: int = 1,
        mid_block_scale_factor: float = 1,
        act_fn: str = "silu",
        norm_num_groups: int = 32,
        norm_eps: float = 1e-5,
        cross_attention_dim: int | tuple[int, ...] = 768,
        encoder_hid_dim: int | None = None,
        attention_head_dim: int | tuple[int, ...] = 8,
        dual_cross_attention: bool = False,
        use_linear_projection: bool = False,
        class_embed_type: str | None = None,
        addition_embed_type: str | None = None,
        num_class_embeds: int | None = None,
        upcast_attention: bool = False,
        resnet_time_scale_shift: str = "default",
        resnet_skip_time_act: bool = False,
        resnet_out_scale_factor: float = 1.0,
        time_embedding_type: str = "positional",
        time_embedding_dim: int | None = None,
        time_embedding_act_fn: str | None = None,
        timestep_post_act: str | None = None,
        time_cond_proj_dim: int | None = None,
        conv_in_kernel: int = 3,
        conv_out_kernel: int = 3,
        projection_class_embeddings_input_dim: int | None = None,
        class_embeddings_concat: bool = False,
        mid_block_only_cross_attention: bool | None = None,
        cross_attention_norm: str | None = None,
        addition_embed_type_num_heads: int = 64,
        audio_cross_attention_dim: int = 768,
    ) -> None:
        super().__init__()
        unsupported = {
            "class_embed_type": class_embed_type,
            "num_class_embeds": num_class_embeds,
            "addition_embed_type": addition_embed_type,
            "dual_cross_attention": dual_cross_attention or None,
            "class_embeddings_concat": class_embeddings_concat or None,
        }
        for name, value in unsupported.items():
            if value is not None:
                raise NotImplementedError(f"{name}={value!r} is not supported by AVSyncD")
        if time_embedding_type != "positional":
            raise NotImplementedError("only time_embedding_type='positional' is supported")
        if len(down_block_types) != len(up_block_types):
            raise ValueError("down_block_types and up_block_types must have the same length")
        if len(block_out_channels) != len(down_block_types):
            raise ValueError("block_out_channels needs one entry per down block")
        if norm_num_groups is None:
            raise ValueError("norm_num_groups must be an integer (the ResNet blocks need it)")

        n_blocks = len(down_block_types)
        heads = _per_block(attention_head_dim, n_blocks, "attention_head_dim")
        cross_dims = _per_block(cross_attention_dim, n_blocks, "cross_attention_dim")
        layers = _per_block(layers_per_block, n_blocks, "layers_per_block")
        only_cross = _per_block(only_cross_attention, n_blocks, "only_cross_attention")

        self.conv_in = FFConv2d(
            in_channels, block_out_channels[0], conv_in_kernel, padding=(conv_in_kernel - 1) // 2
        )
        time_embed_dim = time_embedding_dim or block_out_channels[0] * 4
        self.time_proj = Timesteps(block_out_channels[0], flip_sin_to_cos, freq_shift)
        self.time_embedding = TimestepEmbedding(
            block_out_channels[0],
            time_embed_dim,
            act_fn=act_fn,
            post_act_fn=timestep_post_act,
            cond_proj_dim=time_cond_proj_dim,
        )
        self.encoder_hid_proj = (
            nn.Linear(encoder_hid_dim, cross_dims[0]) if encoder_hid_dim is not None else None
        )
        self.time_embed_act = (
            get_activation(time_embedding_act_fn) if time_embedding_act_fn is not None else None
        )

        # Registration order (down, up, mid) fixes the state_dict key order of the official model.
        self.down_blocks = nn.ModuleList([])
        self.up_blocks = nn.ModuleList([])
        common = dict(
            temb_channels=time_embed_dim,
            resnet_eps=norm_eps,
            resnet_act_fn=act_fn,
            resnet_groups=norm_num_groups,
            resnet_time_scale_shift=resnet_time_scale_shift,
            use_linear_projection=use_linear_projection,
            upcast_attention=upcast_attention,
            audio_cross_attention_dim=audio_cross_attention_dim,
        )
        output_channel = block_out_channels[0]
        for i, block_type in enumerate(down_block_types):
            input_channel, output_channel = output_channel, block_out_channels[i]
            self.down_blocks.append(
                get_down_block(
                    block_type,
                    in_channels=input_channel,
                    out_channels=output_channel,
                    num_layers=layers[i],
                    add_downsample=i < n_blocks - 1,
                    downsample_padding=downsample_padding,
                    num_attention_heads=heads[i],
                    cross_attention_dim=cross_dims[i],
                    only_cross_attention=only_cross[i],
                    **common,
                )
            )

        if mid_block_type is None:
            self.mid_block = None
        else:
            mid_common = {k: v for k, v in common.items() if k != "audio_cross_attention_dim"}
            self.mid_block = get_mid_block(
                mid_block_type,
                in_channels=block_out_channels[-1],
                output_scale_factor=mid_block_scale_factor,
                num_attention_heads=heads[-1],
                cross_attention_dim=cross_dims[-1],
                audio_cross_attention_dim=audio_cross_attention_dim,
                **mid_common,
            )

        self.num_upsamplers = 0
        reversed_channels = list(reversed(block_out_channels))
        output_channel = reversed_channels[0]
        for i, block_type in enumerate(up_block_types):
            is_final = i == n_blocks - 1
            prev_output_channel, output_channel = output_channel, reversed_channels[i]
            input_channel = reversed_channels[min(i + 1, n_blocks - 1)]
            self.num_upsamplers += 0 if is_final else 1
            self.up_blocks.append(
                get_up_block(
                    block_type,
                    in_channels=input_channel,
                    prev_output_channel=prev_output_channel,
                    out_channels=output_channel,
                    num_layers=list(reversed(layers))[i] + 1,
                    add_upsample=not is_final,
                    num_attention_heads=list(reversed(heads))[i],
                    cross_attention_dim=list(reversed(cross_dims))[i],
                    only_cross_attention=list(reversed(only_cross))[i],
                    **common,
                )
            )

        self.conv_norm_out = nn.GroupNorm(norm_num_groups, block_out_channels[0], eps=norm_eps)
        self.conv_act = get_activation(act_fn)
        self.conv_out = FFConv2d(
            block_out_channels[0], out_channels, conv_out_kernel, padding=(conv_out_kernel - 1) // 2
        )

    # ------------------------------------------------------------------ training helpers
    def trainable_named_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """``(name, parameter)`` pairs that AVSyncD trains: names containing ``_temp``/``_audio``."""
        return [
            (name, param)
            for name, param in self.named_parameters()
            if any(marker in name for marker in TRAINABLE_MARKERS)
        ]

    def freeze_non_trainable(self) -> list[str]:
        """Set ``requires_grad`` to True exactly on :meth:`trainable_named_parameters`; returns
        their names. (Official training: VAE, ImageBind, spatial convs, attn1, attn2, ff frozen.)"""
        trainable = {name for name, _ in self.trainable_named_parameters()}
        for name, param in self.named_parameters():
            param.requires_grad_(name in trainable)
        return sorted(trainable)

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        audio_encoder_hidden_states: torch.Tensor,
        *,
        audio_attention_mask: torch.Tensor | None = None,
        timestep_cond: torch.Tensor | None = None,
        down_block_additional_residuals: tuple[torch.Tensor, ...] | None = None,
        mid_block_additional_residual: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> AudioUNet3DConditionOutput | tuple[torch.Tensor]:
        """Predict ε. Shapes in the class docstring; ``timestep_cond`` ``(B, time_cond_proj_dim)``."""
        if sample.ndim != 5:
            raise ValueError(f"sample must be (B, C, F, h, w), got {tuple(sample.shape)}")
        if audio_encoder_hidden_states is None:
            raise ValueError(
                "audio_encoder_hidden_states are required (null audio = tokens of a zero mel)"
            )
        batch, _, frames = sample.shape[:3]
        for name, tensor in (
            ("encoder_hidden_states", encoder_hidden_states),
            ("audio_encoder_hidden_states", audio_encoder_hidden_states),
        ):
            if tensor.ndim != 4 or tensor.shape[:2] != (batch, frames):
                raise ValueError(
                    f"{name} must be (B={batch}, F={frames}, N, D), got {tuple(tensor.shape)}"
                )
        if audio_attention_mask is not None:
            if tuple(audio_attention_mask.shape) != tuple(audio_encoder_hidden_states.shape[:3]):
                raise ValueError(
                    f"audio_attention_mask must be {tuple(audio_encoder_hidden_states.shape[:3])}, "
                    f"got {tuple(audio_attention_mask.shape)}"
                )
            audio_attention_mask = audio_attention_mask.to(torch.bool)

        up_factor = 2**self.num_upsamplers
        forward_upsample_size = any(s % up_factor != 0 for s in sample.shape[-2:])
        if self.config.center_input_sample:
            sample = 2 * sample - 1.0

        # 1. time: sinusoid -> MLP, repeated over frames -> (B, F, T)
        timesteps = timestep
        if not torch.is_tensor(timesteps):
            dtype = torch.float64 if isinstance(timestep, float) else torch.int64
            timesteps = torch.tensor([timesteps], dtype=dtype, device=sample.device)
        elif timesteps.ndim == 0:
            timesteps = timesteps[None].to(sample.device)
        timesteps = timesteps.expand(batch)
        emb = self.time_embedding(self.time_proj(timesteps).to(dtype=self.dtype), timestep_cond)
        emb = emb[:, None, :].expand(batch, frames, emb.shape[-1])
        if self.time_embed_act is not None:
            emb = self.time_embed_act(emb)
        if self.encoder_hid_proj is not None:
            encoder_hidden_states = self.encoder_hid_proj(encoder_hidden_states)

        conditioning = dict(
            encoder_hidden_states=encoder_hidden_states,
            audio_encoder_hidden_states=audio_encoder_hidden_states,
            audio_attention_mask=audio_attention_mask,
        )

        # 2. in, 3. down
        sample = self.conv_in(sample)
        skips: tuple[torch.Tensor, ...] = (sample,)
        for block in self.down_blocks:
            if block.has_cross_attention:
                sample, res = block(sample, emb, **conditioning)
            else:
                sample, res = block(sample, emb)
            skips += res
        if down_block_additional_residuals is not None:
            skips = tuple(s + r for s, r in zip(skips, down_block_additional_residuals))

        # 4. mid
        if self.mid_block is not None:
            sample = self.mid_block(sample, emb, **conditioning)
        if mid_block_additional_residual is not None:
            sample = sample + mid_block_additional_residual

        # 5. up
        upsample_size = None
        for i, block in enumerate(self.up_blocks):
            is_final = i == len(self.up_blocks) - 1
            res = skips[-len(block.resnets) :]
            skips = skips[: -len(block.resnets)]
            if not is_final and forward_upsample_size:
                upsample_size = tuple(skips[-1].shape[2:])  # (F, h, w)
            if block.has_cross_attention:
                sample = block(sample, res, emb, upsample_size=upsample_size, **conditioning)
            else:
                sample = block(sample, res, emb, upsample_size=upsample_size)

        # 6. out (GroupNorm over all frames together, as in the official model)
        sample = self.conv_out(self.conv_act(self.conv_norm_out(sample)))
        if not return_dict:
            return (sample,)
        return AudioUNet3DConditionOutput(sample=sample)

    # ------------------------------------------------------------------ SD-1.5 initialisation
    @classmethod
    def from_pretrained_2d(
        cls,
        pretrained_model_path: str | os.PathLike,
        subfolder: str | None = None,
        config_overrides: dict | None = None,
        output_loading_info: bool = False,
    ) -> AudioUNet3DConditionModel | tuple[AudioUNet3DConditionModel, dict[str, list[str]]]:
        """Build AVSyncD from an SD-1.5 ``unet`` folder (PROTOCOL.md §4 "Base").

        Reads ``config.json`` (2D block types are mapped by :data:`BLOCK_TYPES_2D_TO_3D`,
        ``config_overrides`` win) and ``diffusion_pytorch_model.safetensors`` (else ``.bin``,
        loaded with ``weights_only=True``). As in the official loader, every key containing
        ``_temp``, every key the 2D file lacks and every key whose shape differs keeps its fresh
        initialisation (``conv_temp`` zero, ``attn_temp.to_out.0.weight`` zero, ``attn_audio``
        and ``norm_*`` PyTorch defaults). 2D keys the 3D model lacks raise ``ValueError``.

        Returns the model (train mode, float32), plus ``{"loaded", "fresh", "shape_mismatch"}``
        key lists when ``output_loading_info``.
        """
        folder = Path(pretrained_model_path)
        if subfolder:
            folder = folder / subfolder
        config_file = folder / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"{config_file} does not exist")
        config_2d = json.loads(config_file.read_text())
        accepted = set(cls._get_init_keys(cls)) - {"self"}
        config = {k: v for k, v in config_2d.items() if k in accepted}
        config["down_block_types"] = [
            BLOCK_TYPES_2D_TO_3D.get(t, t) for t in config_2d.get("down_block_types", [])
        ] or cls._get_init_defaults("down_block_types")
        config["up_block_types"] = [
            BLOCK_TYPES_2D_TO_3D.get(t, t) for t in config_2d.get("up_block_types", [])
        ] or cls._get_init_defaults("up_block_types")
        mid = config_2d.get("mid_block_type", "UNetMidBlock2DCrossAttn")
        config["mid_block_type"] = BLOCK_TYPES_2D_TO_3D.get(mid, mid) if mid else None
        config.update(config_overrides or {})
        model = cls.from_config(config)

        safetensors_file = folder / "diffusion_pytorch_model.safetensors"
        bin_file = folder / "diffusion_pytorch_model.bin"
        if safetensors_file.is_file():
            from safetensors.torch import load_file

            state_2d = load_file(str(safetensors_file))
        elif bin_file.is_file():
            state_2d = torch.load(bin_file, map_location="cpu", weights_only=True)
        else:
            raise FileNotFoundError(f"no diffusion_pytorch_model.safetensors or .bin in {folder}")

        own = model.state_dict()
        unexpected = sorted(set(state_2d) - set(own))
        if unexpected:
            raise ValueError(
                f"{folder}: {len(unexpected)} 2D keys have no place in the 3D model, "
                f"e.g. {unexpected[:5]}"
            )
        merged, info = {}, {"loaded": [], "fresh": [], "shape_mismatch": []}
        for key, fresh in own.items():
            if "_temp" in key or key not in state_2d:
                merged[key] = fresh
                info["fresh"].append(key)
            elif state_2d[key].shape != fresh.shape:
                merged[key] = fresh
                info["shape_mismatch"].append(key)
            else:
                merged[key] = state_2d[key].to(fresh.dtype)
                info["loaded"].append(key)
        model.load_state_dict(merged, strict=True)
        if info["shape_mismatch"]:
            logger.warning(
                "kept fresh weights for shape-mismatched keys: %s", info["shape_mismatch"]
            )
        return (model, info) if output_loading_info else model

    @classmethod
    def _get_init_defaults(cls, name: str) -> list:
        return list(inspect.signature(cls.__init__).parameters[name].default)
