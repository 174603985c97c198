"""The feature-extractor interface shared by every metric (one registry, torch-fidelity style)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch

from avsync_bench.clips import Clip
from avsync_bench.weights.store import ResolvedWeight

__all__ = ["FeatureExtractor"]


class FeatureExtractor(ABC):
    """Turns clips into per-clip feature arrays.

    Subclasses set ``name`` (registry key, part of the cache key), ``version`` (bumped when the
    preprocessing or the output changes, so stale cache entries are never reused),
    ``weight_names`` (registry names of the files :meth:`load` needs) and ``feature_shape`` (a
    tuple, or a dict per side when the ground-truth and generated sides need different features).
    ``side`` is ``"gt"`` (ground-truth clips, cached) or ``"gen"`` (generated clips).
    Extractors with ``uses_text = True`` also embed each clip's IT text (:meth:`embed_texts`).

    Features are computed per clip and never depend on which other clips share a batch, so
    results do not depend on batch size (up to float rounding, ≤1e-5 relative).
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    weight_names: ClassVar[tuple[str, ...]] = ()
    feature_shape: ClassVar[tuple[int, ...] | dict[str, tuple[int, ...]]]
    uses_text: ClassVar[bool] = False

    def __init__(self, device: str | torch.device = "cpu", batch_size: int = 16):
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.model: torch.nn.Module | None = None
        self.weights: dict[str, ResolvedWeight] = {}
        self._built = False

    def shape(self, side: str) -> tuple[int, ...]:
        """Per-clip feature shape on ``side``."""
        return (
            self.feature_shape[side] if isinstance(self.feature_shape, dict) else self.feature_shape
        )

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), D) float32 text embeddings (only for ``uses_text`` extractors)."""
        raise NotImplementedError(f"{self.name} embeds no text")

    @abstractmethod
    def build(self, weights: dict[str, ResolvedWeight]) -> torch.nn.Module:
        """Construct the network from verified weight files (CPU, eval mode)."""

    def load(self, weights: dict[str, ResolvedWeight]) -> None:
        """Build and move the network to ``self.device``; a no-op when a model was injected."""
        self.weights = {name: weights[name] for name in self.weight_names if name in weights}
        if self.model is None:
            self.model = self.build(self.weights).eval().to(self.device)
            self._built = True

    @property
    def injected(self) -> bool:
        """True when the network was given by the caller (not built from registered weights)."""
        return self.model is not None and not self._built

    def release(self) -> None:
        """Free a network built by :meth:`load` (call before loading the next extractor)."""
        if self._built:
            self.model, self._built = None, False
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    @abstractmethod
    def extract(self, clips: Sequence[Clip], side: str = "gen") -> np.ndarray:
        """Features of ``clips``: (len(clips), *shape(side)) float32, in input order."""

    def model_digest(self) -> str:
        """sha256 over an injected model's parameters and buffers (cache key for tests/custom nets)."""
        import hashlib

        digest = hashlib.sha256(type(self.model).__name__.encode())
        for key, tensor in self.model.state_dict().items():
            digest.update(key.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()
