"""Per-clip metrics as pure functions of features (PROTOCOL.md §2 "IA / IT", "RelSync",
"AlignSync"). Arithmetic in float64; every function returns a :class:`MetricValue` with the
mean, the unbiased std over clips and the per-clip values.

RelSync is computed as the sigmoid of φ_gen − φ_gt, which equals the official
e^{φ_gen} / (e^{φ_gt} + e^{φ_gen}) but never overflows (the official float32 form gives NaN for
|φ| above ~88, PROTOCOL.md §9). Likewise e^{a_i} / (e^{a_0} + e^{a_i}) = sigmoid(a_i − a_0).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from avsync_bench.metrics.distribution import MetricValue

__all__ = [
    "ia",
    "it",
    "relsync",
    "alignsync",
    "p_align",
    "p_align_from_cosines",
    "relsync_values",
    "per_clip_value",
]


def per_clip_value(values: np.ndarray, extras: dict | None = None) -> MetricValue:
    """Mean and unbiased std (NaN for one clip) over clips of a per-clip metric."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    std = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    value = MetricValue(float(values.mean()), len(values), len(values), std=std, per_clip=values)
    value.per_clip_extra = extras or {}
    return value


def _frame_audio_cosines(gen: np.ndarray) -> np.ndarray:
    """(N, 12, D) [frames 1..11, audio] → (N, 11) cosines (embeddings are unit norm)."""
    gen = gen.astype(np.float64)
    return np.einsum("nfd,nd->nf", gen[:, :-1], gen[:, -1])


def ia(gen: np.ndarray) -> MetricValue:
    """IA: per generated clip, the mean over frames 1..11 of cos(frame, the clip's audio).

    Args:
        gen: (N, 12, D) ImageBind embeddings [frames 1..11, audio] of the generated clips.
    """
    return per_clip_value(_frame_audio_cosines(gen).mean(axis=1))


def it(gen: np.ndarray, text: np.ndarray) -> MetricValue:
    """IT: per generated clip, the mean over frames 1..11 of cos(frame, the class text).

    Args:
        gen: (N, 12, D) as in :func:`ia`; text: (N, D) text embeddings of each clip's IT text.
    """
    sims = np.einsum("nfd,nd->nf", gen[:, :-1].astype(np.float64), text.astype(np.float64))
    return per_clip_value(sims.mean(axis=1))


def relsync_values(phi_gt: np.ndarray, phi_gen: np.ndarray) -> np.ndarray:
    """(N,) e^{φ_gen} / (e^{φ_gt} + e^{φ_gen}), computed as sigmoid(φ_gen − φ_gt) in float64."""
    phi_gt = np.asarray(phi_gt, np.float64).reshape(-1)
    phi_gen = np.asarray(phi_gen, np.float64).reshape(-1)
    return expit(phi_gen - phi_gt)


def relsync(phi_gt: np.ndarray, phi_gen: np.ndarray) -> MetricValue:
    """RelSync per clip = e^{φ_gen} / (e^{φ_gt} + e^{φ_gen}) ∈ (0, 1); 0.5 when φ_gen = φ_gt.

    Args:
        phi_gt, phi_gen: (N,) or (N, 1) raw sync logits of the GT and generated clips.
    """
    values = relsync_values(phi_gt, phi_gen)
    extras = {"phi_gt": np.reshape(phi_gt, -1), "phi_gen": np.reshape(phi_gen, -1)}
    return per_clip_value(values, extras)


def p_align(gt: np.ndarray, gen: np.ndarray) -> np.ndarray:
    """P_align per clip = mean_i e^{a_i} / (e^{a_0} + e^{a_i}) over frames i = 1..11, with raw
    cosines a_0 = IA(GT frame 0, GT audio) and a_i = IA(generated frame i, generated audio).

    Args:
        gt: (N, 2, D) [GT frame 0, GT audio]; gen: (N, 12, D) [frames 1..11, audio].

    Returns:
        (N,) float64; 0.5 exactly when every a_i equals a_0.
    """
    gt = gt.astype(np.float64)
    a0 = np.einsum("nd,nd->n", gt[:, 0], gt[:, 1])
    return p_align_from_cosines(a0, _frame_audio_cosines(gen))


def p_align_from_cosines(a0: np.ndarray, a: np.ndarray) -> np.ndarray:
    """(N,) mean over frames of e^{a_i} / (e^{a_0} + e^{a_i}); a0 (N,), a (N, 11) raw cosines."""
    a0 = np.asarray(a0, np.float64).reshape(-1)
    return expit(np.asarray(a, np.float64) - a0[:, None]).mean(axis=1)


def alignsync(
    gt: np.ndarray, gen: np.ndarray, phi_gt: np.ndarray, phi_gen: np.ndarray
) -> MetricValue:
    """AlignSync per clip = P_align · RelSync (≤ RelSync)."""
    align = p_align(gt, gen)
    return per_clip_value(align * relsync_values(phi_gt, phi_gen), {"p_align": align})
