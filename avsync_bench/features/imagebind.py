"""ImageBind-huge embeddings for IA, IT and AlignSync (PROTOCOL.md §2 "IA / IT").

Images: squashed to 224 bicubic, CLIP mean/std, vision embedding (unit norm). Audio: the clip's
(1, 128, 204) mel, audio embedding divided by its fixed logit scale (20), so unit norm. Text:
text embedding divided by the learned text logit scale, so unit norm. Only the vision, audio and
text trunks are built (:mod:`avsync_bench.models.imagebind`).

Per clip, ground-truth side: (2, D) = [frame 0, audio] (what AlignSync's a0 needs); generated
side: (12, D) = [frames 1..11, audio]. D = 1024 for ImageBind-huge.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

import avsync_bench  # noqa: F401
from avsync_bench.clips import Clip, clip_mel
from avsync_bench.errors import OptionError
from avsync_bench.features.base import FeatureExtractor, forward_fixed
from avsync_bench.features.transforms import clip_normalise
from avsync_bench.weights.store import ResolvedWeight

__all__ = ["ImageBindFeatures"]

MODALITIES = ("vision", "audio", "text")


def _scaled(model: nn.Module, modality: str, embeddings: torch.Tensor) -> torch.Tensor:
    """Divide by the modality's logit scale, as the official ``CLIPModel`` does (→ unit norm)."""
    scaling = model.modality_postprocessors[modality][1]
    scale = torch.clip(scaling.log_logit_scale.exp(), max=scaling.max_logit_scale)
    return embeddings / scale


class ImageBindFeatures(FeatureExtractor):
    """Unit-norm ImageBind embeddings: gt (2, D) [frame 0, audio]; gen (12, D) [frames 1..11, audio]."""

    name = "imagebind"
    version = "1"
    weight_names = ("imagebind_huge",)
    feature_shape = {"gt": (2, 1024), "gen": (12, 1024)}
    uses_text = True
    network_batch = 16  # images, or audio clips, per call

    def __init__(
        self, device="cpu", batch_size: int | None = None, dtype: torch.dtype = torch.float32
    ):
        super().__init__(device, batch_size)
        if dtype != torch.float32 and self.device.type != "cuda":
            raise OptionError(
                f"--dtype {dtype} is for GPUs; ImageBind on {self.device} runs in float32"
            )
        self.dtype = dtype

    def build(self, weights: dict[str, ResolvedWeight]) -> nn.Module:
        from avsync_bench.models.imagebind import load_imagebind

        resolved = weights["imagebind_huge"]
        return load_imagebind(resolved.path, MODALITIES, resolved.config).to(self.dtype)

    def shape(self, side: str) -> tuple[int, ...]:
        dim = self.model.modality_heads["vision"][-1].out_features if self.model else 1024
        return (2 if side == "gt" else 12, dim)

    @torch.no_grad()
    def _images(self, frames: np.ndarray) -> torch.Tensor:
        prepare = lambda part: clip_normalise(part).to(self.device, self.dtype)  # noqa: E731
        forward = lambda batch: self.model({"vision": batch})["vision"]  # noqa: E731
        return forward_fixed(forward, prepare, frames, self.batch_size)

    @torch.no_grad()
    def _audio(self, clips: Sequence[Clip]) -> torch.Tensor:
        prepare = lambda part: torch.stack([clip_mel(c) for c in part]).to(  # noqa: E731
            self.device, self.dtype
        )
        forward = lambda mels: _scaled(  # noqa: E731
            self.model, "audio", self.model({"audio": mels})["audio"]
        )
        return forward_fixed(forward, prepare, clips, self.batch_size)

    def extract(self, clips: Sequence[Clip], side: str = "gen") -> np.ndarray:
        picked = [c.frames[:1] if side == "gt" else c.frames[1:] for c in clips]
        per_clip = len(picked[0])
        images = self._images(np.concatenate(picked)).reshape(len(clips), per_clip, -1)
        audio = self._audio(clips)[:, None]
        return torch.cat([images, audio], dim=1).numpy()

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        from imagebind.data import load_and_transform_text

        tokens = load_and_transform_text(list(texts), device=self.device)
        embeddings = self.model({"text": tokens})["text"]
        return _scaled(self.model, "text", embeddings).float().cpu().numpy()
