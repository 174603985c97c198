"""FVD features: StyleGAN-V's I3D TorchScript detector (Kinetics-400), 400-d logits.

Official protocol (PROTOCOL.md §2 "FVD"): all **12** frames of the clip (frame 0 included), each
squashed to 224x224 bicubic, mapped to [-1, 1], as one (B, 3, 12, 224, 224) tensor (no padding
to 16 frames), called with ``rescale=False, resize=False, return_features=True``.

Security: the detector is TorchScript. ``torch.jit.load`` executes code stored in the file, so
only load a file you trust; avsync-bench verifies its sha256 against the pin recorded at first
download/import before loading it.
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
from avsync_bench.features.transforms import fvd_inputs
from avsync_bench.weights.store import ResolvedWeight, WeightsError

__all__ = ["I3DFeatures", "write_standin"]


class I3DFeatures(FeatureExtractor):
    """Per clip: (400,) float32 I3D logits of all 12 frames."""

    name = "i3d"
    version = "1"
    weight_names = ("i3d_torchscript",)
    feature_shape = (400,)
    network_batch = 4  # clips per call

    def build(self, weights: dict[str, ResolvedWeight]) -> nn.Module:
        path = weights["i3d_torchscript"].path
        try:
            return torch.jit.load(str(path), map_location="cpu")
        except RuntimeError as exc:
            raise WeightsError(f"{path}: not a TorchScript I3D detector ({exc})") from exc

    @torch.no_grad()
    def extract(self, clips: Sequence[Clip], side: str = "gen") -> np.ndarray:
        stack = np.stack([clip.frames for clip in clips])
        prepare = lambda part: fvd_inputs(part).to(self.device)  # noqa: E731
        forward = lambda videos: self.model(  # noqa: E731
            videos, rescale=False, resize=False, return_features=True
        )
        return forward_fixed(forward, prepare, stack, self.batch_size).numpy()


def write_standin(path: Path) -> None:
    """Write a TorchScript I3D (:class:`avsync_bench.models.i3d.InceptionI3d`, the real
    detector's architecture, so its cost is the real cost) with the deterministic weight rule."""
    from avsync_bench.models.i3d import InceptionI3d
    from avsync_bench.weights.rule import apply_rule

    torch.jit.save(torch.jit.script(apply_rule(InceptionI3d()).eval()), str(path))
