"""Fréchet distance between two feature sets (FID, FVD), float64 (PROTOCOL.md §2).

d = ‖μ1 − μ2‖² + tr Σ1 + tr Σ2 − 2 tr √(Σ1Σ2), with μ the mean and Σ the unbiased covariance
(``np.cov``). The official code takes ``scipy.linalg.sqrtm(Σ1Σ2)`` (≈20 s at 2048-d on 2 cores);
here tr √(Σ1Σ2) is computed from eigen-decompositions: Σ1Σ2 is similar to the symmetric PSD
matrix √Σ1 Σ2 √Σ1, so tr √(Σ1Σ2) = Σ √λᵢ(√Σ1 Σ2 √Σ1). Tiny negative eigenvalues from rounding
contribute 0, as the real part of scipy's result does. The official fallbacks are kept: a
non-finite result is retried with 1e-6·I added to both covariances, and an "imaginary part"
(√ of a negative eigenvalue) larger than 1e-3 raises, as scipy's complex diagonal check does.
"""

from __future__ import annotations

import numpy as np

from avsync_bench.errors import InputError

__all__ = ["frechet_distance", "frechet_from_stats", "gaussian_stats"]


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and unbiased covariance (d, d) of (N, d) features, both float64.

    Raises:
        ValueError: fewer than 2 samples, or not a 2-D array.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be (N, d), got shape {x.shape}")
    if x.shape[0] < 2:
        raise InputError(f"a covariance needs at least 2 samples, got {x.shape[0]}")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    w1, v1 = np.linalg.eigh(sigma1)
    sqrt1 = (v1 * np.sqrt(np.clip(w1, 0.0, None))) @ v1.T
    inner = sqrt1 @ sigma2 @ sqrt1
    eigenvalues = np.linalg.eigvalsh((inner + inner.T) / 2.0)
    negative = eigenvalues[eigenvalues < 0]
    if negative.size and np.sqrt(-negative.min()) > 1e-3:
        raise ValueError(f"imaginary component {np.sqrt(-negative.min())} in sqrt(Σ1Σ2)")
    return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())


def frechet_from_stats(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Fréchet distance between N(μ1, Σ1) and N(μ2, Σ2), float64.

    Raises:
        ValueError: shapes differ, or a large imaginary component (see module docstring).
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = (
        np.atleast_2d(sigma1).astype(np.float64),
        np.atleast_2d(sigma2).astype(np.float64),
    )
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"feature dimensions differ: {mu1.shape} vs {mu2.shape}")
    diff = mu1 - mu2
    try:
        tr_covmean = _trace_sqrt_product(sigma1, sigma2)
    except np.linalg.LinAlgError:
        tr_covmean = float("nan")
    if not np.isfinite(tr_covmean):
        offset = np.eye(sigma1.shape[0]) * eps
        tr_covmean = _trace_sqrt_product(sigma1 + offset, sigma2 + offset)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def frechet_distance(x1: np.ndarray, x2: np.ndarray) -> float:
    """Fréchet distance between feature sets x1 (N1, d) and x2 (N2, d) (float64 arithmetic).

    Raises:
        ValueError: fewer than 2 samples on a side, or mismatched dimensions.
    """
    return frechet_from_stats(*gaussian_stats(x1), *gaussian_stats(x2))
