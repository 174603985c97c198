"""FID features: pytorch-fid's FID Inception (TF-Inception 2015-12-05 port), pool3, 2048-d.

Official protocol (PROTOCOL.md §2 "FID"): frames 1..11 of every clip (frame 0 is the
conditioning frame and is dropped on both sides), squashed to **229x229** bicubic, mapped to
[-1, 1], fed to the network without pytorch-fid's own resize/normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

import avsync_bench  # noqa: F401
from avsync_bench.clips import Clip
from avsync_bench.features.base import FeatureExtractor, forward_fixed
from avsync_bench.features.transforms import fid_inputs
from avsync_bench.weights.store import ResolvedWeight, WeightsError

__all__ = ["FIDInceptionPool3", "build_fid_inception", "InceptionFeatures", "write_standin"]


def build_fid_inception() -> nn.Module:
    """The FID Inception architecture (pytorch-fid's patched blocks), without weights."""
    from pytorch_fid import inception as pf

    net = pf._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = pf.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pf.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pf.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pf.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pf.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pf.FIDInceptionE_1(1280)
    net.Mixed_7c = pf.FIDInceptionE_2(2048)
    return net


class FIDInceptionPool3(nn.Module):
    """pool3 features of the FID Inception: (N, 3, 229, 229) float32 in [-1, 1] → (N, 2048)."""

    def __init__(self, inception: nn.Module):
        super().__init__()
        i = inception
        self.features = nn.Sequential(
            i.Conv2d_1a_3x3, i.Conv2d_2a_3x3, i.Conv2d_2b_3x3, nn.MaxPool2d(3, 2),
            i.Conv2d_3b_1x1, i.Conv2d_4a_3x3, nn.MaxPool2d(3, 2),
            i.Mixed_5b, i.Mixed_5c, i.Mixed_5d, i.Mixed_6a, i.Mixed_6b, i.Mixed_6c, i.Mixed_6d,
            i.Mixed_6e, i.Mixed_7a, i.Mixed_7b, i.Mixed_7c, nn.AdaptiveAvgPool2d((1, 1)),
        )  # fmt: skip

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.features(images), 1)

    @classmethod
    def from_file(cls, path: str | Path) -> FIDInceptionPool3:
        """Load ``pt_inception-2015-12-05-6726825d.pth`` (a state dict; ``weights_only=True``).

        Raises:
            RuntimeError: the file is not a state dict of the FID Inception (names the file).
        """
        net = build_fid_inception()
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise WeightsError(f"{path}: not an FID Inception state dict ({exc})") from exc
        return cls(net)


class InceptionFeatures(FeatureExtractor):
    """Per clip: (11, 2048) pool3 features of frames 1..11 (float32)."""

    name = "fid_inception"
    version = "1"
    weight_names = ("fid_inception",)
    feature_shape = (11, 2048)
    network_batch = 32  # frames per call

    def build(self, weights: dict[str, ResolvedWeight]) -> nn.Module:
        return FIDInceptionPool3.from_file(weights["fid_inception"].path)

    @torch.no_grad()
    def extract(self, clips: Sequence[Clip], side: str = "gen") -> np.ndarray:
        frames = np.concatenate([clip.frames[1:] for clip in clips])
        prepare = lambda part: fid_inputs(part).to(self.device)  # noqa: E731
        per_frame = forward_fixed(self.model, prepare, frames, self.batch_size).numpy()
        return per_frame.reshape(len(clips), len(clips[0].frames) - 1, -1)


def write_standin(path: Path) -> None:
    """Write a full-size FID Inception state dict with the deterministic weight rule."""
    from avsync_bench.weights.rule import rule_state_dict

    torch.save(rule_state_dict(build_fid_inception()), path)
