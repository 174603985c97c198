"""Each metric's own input preprocessing, applied to the protocol's uint8 clip frames.

Definitions from the official code (PROTOCOL.md §2): a squash resize (aspect not kept) with
bicubic interpolation and antialias on float frames in [0, 1], a centre crop of the same size
(a no-op), then each metric's value mapping. Nothing is clamped, as in the official code.
"""

from __future__ import annotations

import numpy as np
import torch

import avsync_bench  # noqa: F401

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "to_float",
    "squash_resize",
    "fid_inputs",
    "fvd_inputs",
    "clip_normalise",
    "clip_normalise_images",
]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def to_float(frames: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 → (N, 3, H, W) float32 in [0, 1] (``x / 255``)."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0


def squash_resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 3, H, W) float → (N, 3, size, size): bicubic, antialias, aspect squashed, centre crop."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    images = TF.resize(images, [size, size], InterpolationMode.BICUBIC, antialias=True)
    return TF.center_crop(images, [size, size])


def fid_inputs(frames: np.ndarray) -> torch.Tensor:
    """FID Inception input (§2 "FID"): (N, H, W, 3) uint8 → (N, 3, 229, 229) float32 in ≈[-1, 1]."""
    return squash_resize(to_float(frames), 229) * 2 - 1


def fvd_inputs(clips: np.ndarray) -> torch.Tensor:
    """I3D input (§2 "FVD"): (B, T, H, W, 3) uint8 → (B, 3, T, 224, 224) float32 in ≈[-1, 1]."""
    b, t = clips.shape[:2]
    images = squash_resize(to_float(clips.reshape(b * t, *clips.shape[2:])), 224) * 2 - 1
    return images.reshape(b, t, 3, 224, 224).permute(0, 2, 1, 3, 4).contiguous()


def clip_normalise_images(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) float in [0, 1] → (N, 3, 224, 224) float32: squashed to 224 (bicubic,
    antialias) and normalised with the CLIP mean/std (ImageBind vision and sync-classifier
    input, §2; ``golden/README.md`` §2.2)."""
    from torchvision.transforms import functional as TF

    return TF.normalize(squash_resize(images, 224), mean=list(CLIP_MEAN), std=list(CLIP_STD))


def clip_normalise(frames: np.ndarray) -> torch.Tensor:
    """:func:`clip_normalise_images` of (N, H, W, 3) uint8 frames."""
    return clip_normalise_images(to_float(frames))
