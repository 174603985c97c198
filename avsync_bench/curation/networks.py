"""The networks AVSync-AC runs: ImageBind-huge (images, audio, text) and the AV-sync classifier.

Both are the project's own: :class:`avsync_bench.features.imagebind.ImageBindFeatures` (vision,
audio and text trunks only) and :class:`avsync_bench.features.sync.SyncFeatures` (the official
classifier checkpoint layout). They are loaded from a weights folder (``--weights-dir``; stand-ins
from ``avsync-bench weights make-standins`` work and are flagged ``standin``).

``tiny`` networks exist for tests and dry runs: ImageBind in the stand-in configuration with the
deterministic rule weights (exactly what ``make-standins`` writes for ``imagebind_huge``) and a
classifier of the same interface whose encoders are one strided convolution each (the full-size
R(2+1)D-18 stand-in takes ~3 s per clip on a CPU). Results computed with them are marked
``standin``.

A :class:`NetworkSpec` is a small picklable description, so each Ray actor builds its own copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

import avsync_bench  # noqa: F401
from avsync_bench.curation.settings import CurationError

__all__ = ["NetworkSpec", "CurationNetworks", "TinyAudioNet", "TinyVideoNet"]

WEIGHT_NAMES = ("imagebind_huge", "avsync_classifier")


@dataclass(frozen=True)
class NetworkSpec:
    """Which networks to build: ``weights_dir`` (a weights folder) or ``tiny=True``."""

    weights_dir: str | None = None
    tiny: bool = False
    device: str = "cpu"

    def __post_init__(self):
        if self.tiny == (self.weights_dir is not None):
            raise CurationError("give exactly one of --weights-dir and --tiny-networks")

    def identity(self) -> dict:
        """What the measurements depend on: weights sha256s and stand-in flags, or ``tiny``.

        Raises:
            MissingWeightsError / WeightsError: a weight file is absent or fails its checksum.
        """
        if self.tiny:
            return {"tiny": 1, "standin": True}
        from avsync_bench.weights.store import WeightStore

        resolved = WeightStore(self.weights_dir).resolve_all(list(WEIGHT_NAMES))
        out = {n: resolved[n].sha256 for n in WEIGHT_NAMES}
        out["standin"] = any(r.standin for r in resolved.values())
        return out


class TinyAudioNet(nn.Module):
    """Tiny stand-in audio encoder: mel (B, 1, 128, 204) → (B, 8) (conv 8×8/8, ReLU, mean)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 8, stride=8)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(mel)).mean(dim=(2, 3))


class TinyVideoNet(nn.Module):
    """Tiny stand-in video encoder: (B, 3, 12, 224, 224) → (B, 8) (conv 3×16×16, ReLU, mean)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 8, (3, 16, 16), stride=(1, 16, 16))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(frames)).mean(dim=(2, 3, 4))


def _tiny_models() -> tuple[nn.Module, nn.Module]:
    from avsync_bench.models.imagebind import STANDIN_CONFIG, build_imagebind, rule_imagebind
    from avsync_bench.models.sync_classifier import AVSyncClassifier, FCHead
    from avsync_bench.weights.rule import apply_rule

    modalities = ("vision", "audio", "text")
    imagebind = build_imagebind(STANDIN_CONFIG, modalities, empty=True)
    imagebind.load_state_dict(rule_imagebind(STANDIN_CONFIG, modalities), assign=True)
    classifier = AVSyncClassifier(TinyAudioNet(), TinyVideoNet(), FCHead(dim=8))
    return imagebind.eval(), apply_rule(classifier).eval()


class CurationNetworks:
    """ImageBind and the AV-sync classifier, with the calls the measurements need.

    Args:
        spec: which networks (see :class:`NetworkSpec`).

    Raises:
        MissingWeightsError / WeightsError: weights absent or failing their checksum.
    """

    def __init__(self, spec: NetworkSpec):
        from avsync_bench.features.imagebind import ImageBindFeatures
        from avsync_bench.features.sync import SyncFeatures

        self.spec = spec
        self.imagebind = ImageBindFeatures(spec.device)
        self.sync = SyncFeatures(spec.device)
        if spec.tiny:
            self.imagebind.model, self.sync.model = (m.to(spec.device) for m in _tiny_models())
        else:
            from avsync_bench.weights.store import WeightStore

            weights = WeightStore(spec.weights_dir).resolve_all(list(WEIGHT_NAMES))
            self.imagebind.load(weights)
            self.sync.load(weights)
        self._texts: dict[str, np.ndarray] = {}

    @torch.no_grad()
    def images(self, frames: np.ndarray) -> np.ndarray:
        """ImageBind vision embeddings: (N, H, W, 3) uint8 → (N, D) float32, unit norm
        (squashed to 224 bicubic, CLIP normalisation; PROTOCOL.md §2 "IA / IT")."""
        if len(frames) == 0:
            return np.zeros((0, 1), np.float32)
        return self.imagebind._images(frames).numpy()

    @torch.no_grad()
    def audio(self, mels: np.ndarray) -> np.ndarray:
        """ImageBind audio embeddings: (N, 1, 128, 204) float32 mels → (N, D) float32, unit norm."""
        from avsync_bench.features.imagebind import _scaled

        model, out = self.imagebind.model, []
        for begin in range(0, len(mels), self.imagebind.batch_size):
            batch = torch.from_numpy(mels[begin : begin + self.imagebind.batch_size])
            embeddings = model({"audio": batch.to(self.imagebind.device)})["audio"]
            out.append(_scaled(model, "audio", embeddings).float().cpu())
        return torch.cat(out).numpy()

    def text(self, text: str) -> np.ndarray:
        """ImageBind text embedding of ``text``: (D,) float32, unit norm (cached)."""
        if text not in self._texts:
            self._texts[text] = self.imagebind.embed_texts([text])[0]
        return self._texts[text]

    @torch.no_grad()
    def phi(self, clips: np.ndarray, mels: np.ndarray) -> np.ndarray:
        """The classifier's φ of every (video clip b, audio k) pair of the same window.

        Args:
            clips: (B, 12, H, W, 3) uint8 video clips (12 frames at 6 fps).
            mels: (B, K, 1, 128, 204) float32 mels of the K shifted audio windows of each clip.

        Returns:
            (B, K) float32 φ (unbounded; PROTOCOL.md §2 "Raw AV-sync score").
        """
        from avsync_bench.features.transforms import clip_normalise

        model, device = self.sync.model, self.sync.device
        out = []
        for b in range(len(clips)):
            video = clip_normalise(clips[b]).permute(1, 0, 2, 3)[None].to(device)
            video_feat = model.video_encoder(video)
            audio_feat = model.audio_encoder(torch.from_numpy(mels[b]).to(device))
            out.append(model.pairwise(audio_feat, video_feat)[:, 0].float().cpu())
        return torch.stack(out).numpy() if out else np.zeros((0, mels.shape[1]), np.float32)


def networks_from_dir(weights_dir: str | Path | None, tiny: bool, device: str) -> NetworkSpec:
    """A :class:`NetworkSpec` from CLI options (absolute path, so Ray workers find it)."""
    path = str(Path(weights_dir).resolve()) if weights_dir is not None else None
    return NetworkSpec(path, tiny, device)
