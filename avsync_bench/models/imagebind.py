"""ImageBind-huge built with only the modalities a caller needs (imagebind-unofficial's model code).

ImageBind holds six modality trunks (≈1.2 B parameters); IA/IT need vision, audio and text
(1.07 B, ≈4.3 GB in float32) and AVSyncD only audio. The model is constructed with empty
(meta) parameters, the unused modalities are dropped, and the weights are then assigned from the
checkpoint (memory-mapped when possible), so the unused trunks never occupy memory.

Licence: ImageBind's code and weights are CC BY-NC-SA 4.0 (non-commercial).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

import avsync_bench  # noqa: F401

__all__ = ["HUGE_CONFIG", "STANDIN_CONFIG", "build_imagebind", "load_imagebind", "rule_imagebind"]

HUGE_CONFIG = dict(
    vision_embed_dim=1280,
    vision_num_blocks=32,
    vision_num_heads=16,
    text_embed_dim=1024,
    text_num_blocks=24,
    text_num_heads=16,
    out_embed_dim=1024,
    audio_drop_path=0.1,
    imu_drop_path=0.7,
)
"""``imagebind_huge()``'s constructor arguments (imagebind-unofficial 0.1.1)."""

STANDIN_CONFIG = dict(
    vision_embed_dim=32,
    vision_num_blocks=1,
    vision_num_heads=2,
    text_embed_dim=32,
    text_num_blocks=1,
    text_num_heads=2,
    audio_embed_dim=32,
    audio_num_blocks=1,
    audio_num_heads=2,
    out_embed_dim=16,
    depth_embed_dim=16,
    depth_num_blocks=1,
    depth_num_heads=2,
    thermal_embed_dim=16,
    thermal_num_blocks=1,
    thermal_num_heads=2,
    imu_embed_dim=16,
    imu_num_blocks=1,
    imu_num_heads=2,
)
"""A tiny configuration with the same module structure, for stand-in weight files."""

MODALITIES = ("vision", "text", "audio", "depth", "thermal", "imu")


def build_imagebind(config: dict, modalities: Iterable[str], empty: bool = True) -> nn.Module:
    """An ``ImageBindModel`` holding only ``modalities``.

    Args:
        config: constructor arguments (:data:`HUGE_CONFIG` for ImageBind-huge).
        modalities: subset of vision, text, audio, depth, thermal, imu.
        empty: parameters on the meta device (to be assigned by ``load_state_dict(assign=True)``).
    """
    from accelerate import init_empty_weights
    from imagebind.models.imagebind_model import ImageBindModel

    keep = set(modalities)
    if not keep <= set(MODALITIES):
        raise ValueError(f"unknown modalities {sorted(keep - set(MODALITIES))}")
    if empty:
        with init_empty_weights():
            model = ImageBindModel(**config)
    else:
        model = ImageBindModel(**config)
    for modules in (
        model.modality_preprocessors,
        model.modality_trunks,
        model.modality_heads,
        model.modality_postprocessors,
    ):
        for name in list(modules.keys()):
            if name not in keep:
                del modules[name]
    return model


def _read(path: Path) -> dict[str, torch.Tensor]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:
        return torch.load(path, map_location="cpu", weights_only=True)


def load_imagebind(
    path: str | Path, modalities: Iterable[str], config: dict | None = None
) -> nn.Module:
    """Build ImageBind with ``modalities`` and load them from ``imagebind_huge.pth`` (eval mode).

    The checkpoint's other modalities are ignored. ``weights_only=True``.

    Raises:
        RuntimeError: the file lacks keys of a requested modality or has wrong shapes (names the file).
    """
    path = Path(path)
    modalities = tuple(modalities)
    model = build_imagebind(config or HUGE_CONFIG, modalities)
    state = _read(path)
    wanted = set(model.state_dict())
    subset = {k: v for k, v in state.items() if k in wanted}
    missing = sorted(wanted - set(subset))
    if missing:
        raise RuntimeError(
            f"{path}: not an ImageBind checkpoint for {modalities}; missing {missing[:5]}…"
        )
    try:
        model.load_state_dict(subset, strict=True, assign=True)
    except RuntimeError as exc:
        raise RuntimeError(f"{path}: ImageBind weights do not fit the model ({exc})") from exc
    return model.eval()


def rule_imagebind(config: dict, modalities: Iterable[str]) -> dict[str, torch.Tensor]:
    """A state dict of the deterministic weight rule for an ImageBind with ``modalities``."""
    from avsync_bench.weights.rule import rule_state_dict

    return rule_state_dict(build_imagebind(config, modalities, empty=True))
