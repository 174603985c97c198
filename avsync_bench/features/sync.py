"""The AV-sync classifier's raw score φ per clip (PROTOCOL.md §2 "Raw AV-sync score", §3).

φ = classifier(mel (1, 128, 204), frames (3, 12, 224, 224)), frames squashed to 224 bicubic with
CLIP normalisation (the same transform as ImageBind's vision input). Per clip and side: (1,)
float32 — φ of (GT audio, GT frames) on the ground-truth side, φ of (generated file's audio,
generated frames) on the generated side.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

import avsync_bench  # noqa: F401
from avsync_bench.clips import Clip, clip_mel
from avsync_bench.features.base import FeatureExtractor, forward_fixed
from avsync_bench.features.transforms import clip_normalise
from avsync_bench.weights.store import ResolvedWeight, WeightsError

__all__ = ["SyncFeatures", "clip_phi_inputs", "write_standin"]


def clip_phi_inputs(clips: Sequence[Clip]) -> tuple[torch.Tensor, torch.Tensor]:
    """Classifier inputs of clips: mel (B, 1, 128, 204) and frames (B, 3, 12, 224, 224) float32."""
    mels = torch.stack([clip_mel(c) for c in clips])
    frames = torch.stack(
        [clip_normalise(c.frames).permute(1, 0, 2, 3) for c in clips]
    )  # (B, 3, T, 224, 224)
    return mels, frames


class SyncFeatures(FeatureExtractor):
    """Per clip: (1,) the classifier's raw sync logit φ (unbounded)."""

    name = "avsync"
    version = "1"
    weight_names = ("avsync_classifier",)
    feature_shape = (1,)
    network_batch = 4  # clips per call

    def build(self, weights: dict[str, ResolvedWeight]) -> nn.Module:
        from avsync_bench.models.sync_classifier import AVSyncClassifier

        try:
            return AVSyncClassifier.from_official_checkpoint(weights["avsync_classifier"].path)
        except (ValueError, FileNotFoundError) as exc:  # a malformed folder is a user error
            raise WeightsError(str(exc)) from exc

    @torch.no_grad()
    def extract(self, clips: Sequence[Clip], side: str = "gen") -> np.ndarray:
        prepare = lambda part: [t.to(self.device) for t in clip_phi_inputs(part)]  # noqa: E731
        forward = lambda inputs: self.model(*inputs)  # noqa: E731
        return forward_fixed(forward, prepare, clips, self.batch_size).reshape(-1, 1).numpy()


def write_standin(folder: Path) -> None:
    """Write an official-layout classifier folder (``modules/{audio_encoder,video_encoder,head}``
    with ``config.json`` and ``diffusion_pytorch_model.bin``) holding rule weights (the
    deterministic rule of the golden fixtures, applied to each part separately)."""
    from avsync_bench.models.sync_classifier import MODULE_NAMES, AVSyncClassifier
    from avsync_bench.weights.rule import apply_rule

    model = AVSyncClassifier()
    for name in MODULE_NAMES:
        apply_rule(getattr(model, name))
    model.save_pretrained(Path(folder) / "modules")
