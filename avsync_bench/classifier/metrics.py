"""Arithmetic of the AV-sync classifier's training loss and offset accuracy (PROTOCOL.md §3).

Score matrices: ``phi[b, p, q]`` is φ(audio clip p, video clip q) of video b, for K clips of one
video at fixed spacing. The diagonal holds the synchronised pairs.

- Loss (official ``AVSyncContrastiveTrainer``): cross-entropy over each row (audio p → which
  video, label p) and over each column (video q → which audio, label q) of ``phi / τ``
  (τ = 0.1), each averaged over the B·K rows/columns, then ``(av + va) / 2``.
- Offset accuracy (official ``avsync_eval.py``): with K = 31 clips 0.04 s apart and centre
  c = 15, A2V ranks the 31 videos for the centre audio (``phi[c, :]``), V2A the 31 audios for the
  centre video (``phi[:, c]``); a hit at tolerance t when ``|argmax − c| ≤ t`` (t = 5 ↔ ±0.2 s).
  ``argmax`` takes the first maximum (as ``torch.argmax``). Chance: ``(2t + 1) / K``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "TOLERANCES",
    "pairwise_scores",
    "contrastive_loss",
    "offset_hits",
    "chance",
    "bootstrap_ci",
]

#: Tolerances (in clip steps) reported by ``eval-classifier``; 5 is the official one.
TOLERANCES = (0, 1, 2, 5)


def pairwise_scores(
    head: torch.nn.Module, audio: torch.Tensor, video: torch.Tensor
) -> torch.Tensor:
    """φ for every (audio p, video q) pair within each video: (B, K, D) × (B, K, D) → (B, K, K).

    ``out[b, p, q] = head(audio[b, p], video[b, q])[0]`` (the head's first output), computed in one
    head call over B·K·K concatenated pairs, as the official trainer does.
    """
    b, k, d = audio.shape
    a = audio[:, :, None, :].expand(b, k, k, d).reshape(b * k * k, d)
    v = video[:, None, :, :].expand(b, k, k, video.shape[-1]).reshape(b * k * k, -1)
    return head(a, v)[:, 0].reshape(b, k, k)


def contrastive_loss(phi: torch.Tensor, tau: float = 0.1) -> dict[str, torch.Tensor]:
    """The classifier's training loss on score matrices (PROTOCOL.md §3 "Training").

    Args:
        phi: (B, K, K) float φ, ``phi[b, p, q]`` = φ(audio p, video q).
        tau: temperature (0.1 in the paper recipe).

    Returns:
        0-d tensors: ``loss`` = (``av_loss`` + ``va_loss``) / 2; ``av_loss`` the mean row-wise
        cross-entropy (audio → video); ``va_loss`` the mean column-wise one; ``av_acc`` /
        ``va_acc`` the fraction of rows / columns whose argmax is the diagonal.
    """
    if phi.ndim != 3 or phi.shape[1] != phi.shape[2]:
        raise ValueError(f"phi must be (B, K, K), got {tuple(phi.shape)}")
    b, k, _ = phi.shape
    labels = torch.arange(k, device=phi.device).repeat(b)
    rows = phi.reshape(b * k, k).float()
    cols = phi.transpose(1, 2).reshape(b * k, k).float()
    av_loss = F.cross_entropy(rows / tau, labels)
    va_loss = F.cross_entropy(cols / tau, labels)
    return {
        "loss": (av_loss + va_loss) / 2.0,
        "av_loss": av_loss,
        "va_loss": va_loss,
        "av_acc": (rows.argmax(dim=1) == labels).float().mean(),
        "va_acc": (cols.argmax(dim=1) == labels).float().mean(),
    }


def offset_hits(
    phi: np.ndarray, tolerances: Sequence[int] = TOLERANCES, center: int | None = None
) -> dict[str, dict[int, np.ndarray]]:
    """Hits of the offset test on (N, K, K) score matrices (one per video).

    Args:
        phi: (N, K, K) φ per video; only row and column ``center`` are used.
        tolerances: clip-step tolerances t.
        center: the centre index (default K // 2 = 15 for K = 31).

    Returns:
        ``{"a2v": {t: (N,) bool}, "v2a": {t: (N,) bool}, "argmax": {"a2v": (N,), "v2a": (N,)}}``.
    """
    phi = np.asarray(phi)
    if phi.ndim != 3 or phi.shape[1] != phi.shape[2]:
        raise ValueError(f"phi must be (N, K, K), got {phi.shape}")
    c = phi.shape[1] // 2 if center is None else int(center)
    a2v = phi[:, c, :].argmax(axis=1)  # centre audio against every video
    v2a = phi[:, :, c].argmax(axis=1)  # centre video against every audio
    return {
        "a2v": {int(t): np.abs(a2v - c) <= t for t in tolerances},
        "v2a": {int(t): np.abs(v2a - c) <= t for t in tolerances},
        "argmax": {"a2v": a2v, "v2a": v2a},
    }


def chance(tolerance: int, num_clips: int = 31) -> float:
    """Hit probability of a uniformly random argmax: ``(2t + 1) / K`` (11/31 = 0.355 at t = 5)."""
    return min(2 * tolerance + 1, num_clips) / num_clips


def bootstrap_ci(
    hits: np.ndarray, n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float | None, float | None]:
    """Percentile interval of the mean of per-video values, resampling videos with replacement.

    Args:
        hits: (N,) per-video values (0/1 hits), one per video.

    Returns:
        ``(low, high)``, or ``(None, None)`` for no videos.
    """
    values = np.asarray(hits, dtype=np.float64).reshape(-1)
    if values.size == 0:
        return None, None
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, values.size, size=(n_resamples, values.size))
    means = values[draws].mean(axis=1)
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)
