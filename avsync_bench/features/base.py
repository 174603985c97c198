"""The feature-extractor interface shared by every metric (one registry, torch-fidelity style)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np
import torch

from avsync_bench.clips import Clip
from avsync_bench.weights.store import ResolvedWeight

__all__ = ["FeatureExtractor", "forward_fixed"]


class FeatureExtractor(ABC):
    """Turns clips into per-clip feature arrays.

    Subclasses set ``name`` (registry key, part of the cache key), ``version`` (bumped when the
    preprocessing or the output changes, so stale cache entries are never reused),
    ``weight_names`` (registry names of the files :meth:`load` needs) and ``feature_shape`` (a
    tuple, or a dict per side when the ground-truth and generated sides need different features).
    ``side`` is ``"gt"`` (ground-truth clips, cached) or ``"gen"`` (generated clips).
    Extractors with ``uses_text = True`` also embed each clip's IT text (:meth:`embed_texts`).

    Batch invariance: the network is always called on batches of exactly ``network_batch``
    samples (:func:`forward_fixed` pads the last batch by repeating its last sample), so a clip's
    features are bit-identical whatever ``--batch-size``, the clip count, the clip order or the
    number of processes (kernels choose their algorithm by input shape: calls of varying batch
    size differed by up to 1e-6 per feature and 1.4e-5 relative in FID; issue #15 item 6).
    ``network_batch`` is part of the cache key (:func:`avsync_bench.extract.cache_version`).
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    weight_names: ClassVar[tuple[str, ...]] = ()
    feature_shape: ClassVar[tuple[int, ...] | dict[str, tuple[int, ...]]]
    uses_text: ClassVar[bool] = False
    network_batch: ClassVar[int] = 8

    def __init__(self, device: str | torch.device = "cpu", batch_size: int | None = None):
        self.device = torch.device(device)
        self.batch_size = batch_size or self.network_batch  # samples per network call
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


def forward_fixed(
    forward: Callable[[object], torch.Tensor],
    prepare: Callable[[object], object],
    items: np.ndarray | Sequence,
    batch: int,
) -> torch.Tensor:
    """Run ``forward(prepare(chunk))`` on chunks of exactly ``batch`` items, in order.

    The last chunk is padded by repeating its last item and the padding's outputs are dropped,
    so every network call has the same shape and an item's output never depends on how many
    items came with it (batch invariance, see :class:`FeatureExtractor`).

    Args:
        forward: the network call; returns a tensor whose first axis indexes the chunk's items.
        prepare: chunk (array slice or list) → network input (e.g. resize + normalise).
        items: (N, ...) array or a sequence of N items.
        batch: items per network call (≥ 1).

    Returns:
        (N, ...) float32 CPU tensor.
    """
    outputs = []
    for begin in range(0, len(items), batch):
        part = items[begin : begin + batch]
        n = len(part)
        if n < batch:
            if isinstance(part, np.ndarray):
                part = np.concatenate([part, np.repeat(part[-1:], batch - n, axis=0)])
            else:
                part = list(part) + [part[-1]] * (batch - n)
        outputs.append(forward(prepare(part))[:n].float().cpu())
    return torch.cat(outputs)
