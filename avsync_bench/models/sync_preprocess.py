"""Frame preprocessing for the AV-sync classifier (PROTOCOL.md §2 "Raw AV-sync score" and §3).

Two distinct paths, as in the official code:

- :func:`classifier_eval_frames`: the **metric** path (``compute_avsync.py::preprocess_videos``,
  ``golden/README.md`` §2.2). Clip frames already picked and resized by the clip loader are
  squashed to 224×224 (aspect not kept), then CLIP-normalised. Used for φ, RelSync, AlignSync.
- :func:`classifier_data_frames` with :func:`nearest_pts_indices`: the classifier's own
  **training/evaluation data** path (``avsync/data.py``). Decoded frames are resized on the
  short side to 224, centre-cropped, CLIP-normalised, and frames are matched to the clip's
  frame times by nearest pts.

Nothing is clamped (bicubic overshoot is kept), as in the official code.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

import avsync_bench  # noqa: F401  (_compat; already run, as this module is in the package)
from avsync_bench.features.transforms import CLIP_MEAN, CLIP_STD, clip_normalise_images

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "SYNC_IMAGE_SIZE",
    "classifier_eval_frames",
    "classifier_data_frames",
    "nearest_pts_indices",
]

SYNC_IMAGE_SIZE = 224
#: The classifier data loader shifts each clip's first frame time by +1e-4 s and its audio end
#: by -1e-4 s ("avoid endpoint rounding error" in the official ``avsync/data.py``).
ENDPOINT_SHIFT = 1e-4


def _as_float(frames: torch.Tensor) -> torch.Tensor:
    if not isinstance(frames, torch.Tensor):
        frames = torch.as_tensor(np.asarray(frames))
    if frames.dtype == torch.uint8:
        return frames.float() / 255.0
    if not frames.is_floating_point():
        raise TypeError(f"frames must be uint8 or float in [0, 1], got dtype {frames.dtype}")
    return frames.float()


def _normalise(images: torch.Tensor) -> torch.Tensor:
    from torchvision.transforms import functional as TF

    return TF.normalize(images, mean=list(CLIP_MEAN), std=list(CLIP_STD))


def classifier_eval_frames(frames: torch.Tensor) -> torch.Tensor:
    """Metric-path classifier input (PROTOCOL.md §2; ``golden/README.md`` §2.2).

    Each frame is squashed to 224×224 (bicubic, antialias, aspect ratio not kept), centre-cropped
    to 224 (a no-op) and normalised with the CLIP mean/std, exactly the official
    ``compute_avsync.py::preprocess_videos``. The same transform is ImageBind's vision input.

    Args:
        frames: (B, 3, T, H, W) float in [0, 1] (T = 12 for the classifier); uint8 in [0, 255]
            is also accepted and divided by 255 first.

    Returns:
        (B, 3, T, 224, 224) float32, contiguous, values roughly in [-1.8, 2.2].
    """
    frames = _as_float(frames)
    if frames.ndim != 5 or frames.shape[1] != 3:
        raise ValueError(
            f"classifier_eval_frames expects (B, 3, T, H, W) frames, got {tuple(frames.shape)}"
        )
    b, c, t, h, w = frames.shape
    images = frames.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
    size = [SYNC_IMAGE_SIZE, SYNC_IMAGE_SIZE]
    images = clip_normalise_images(images)
    return images.reshape(b, t, c, *size).permute(0, 2, 1, 3, 4).contiguous()


def classifier_data_frames(
    frames: torch.Tensor | np.ndarray,
    indices: np.ndarray | Sequence | None = None,
    size: int = SYNC_IMAGE_SIZE,
) -> torch.Tensor:
    """Classifier-data frame preprocessing (PROTOCOL.md §3 "Classifier data").

    Official ``avsync/data.py``: decoded RGB frames ÷ 255, ``Resize(224)`` on the **short side**
    (bicubic, antialias; the long side becomes ``int(224·long/short)``), ``CenterCrop(224)``, CLIP
    mean/std normalisation. Frames are then gathered into clips by ``indices`` (from
    :func:`nearest_pts_indices`). No random flip (training augmentation) is applied.

    Args:
        frames: (F, 3, H, W) decoded frames, uint8 in [0, 255] or float in [0, 1].
        indices: None, (n,) or (K, n) integer indices into the F frames.
        size: output side in pixels (224 for the classifier; reduced test configs use less).

    Returns:
        float32 (shown for ``size`` 224): (F, 3, 224, 224) when ``indices`` is None, (3, n, 224, 224) for (n,) indices,
        (K, 3, n, 224, 224) for (K, n) indices (the official ``k c f h w`` layout).
    """
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    images = _as_float(frames)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"classifier_data_frames expects (F, 3, H, W) frames, got {tuple(images.shape)}"
        )
    if indices is not None:
        index = np.asarray(indices, dtype=np.int64)
        if index.ndim not in (1, 2):
            raise ValueError(f"indices must be (n,) or (K, n), got shape {index.shape}")
        if index.size and (index.min() < 0 or index.max() >= images.shape[0]):
            raise IndexError(
                f"indices out of range for {images.shape[0]} frames: "
                f"min {index.min()}, max {index.max()}"
            )
        used, inverse = np.unique(index, return_inverse=True)
        images = images[torch.from_numpy(used)]
    images = TF.resize(images, [size], InterpolationMode.BICUBIC, antialias=True)
    images = TF.center_crop(images, [size, size])
    images = _normalise(images)
    if indices is None:
        return images
    clips = images[torch.from_numpy(inverse.reshape(index.shape))]  # (..., n, 3, 224, 224)
    return clips.transpose(-4, -3).contiguous()  # (..., 3, n, 224, 224)


def nearest_pts_indices(
    pts_seconds: Sequence[float] | np.ndarray,
    start: float | Sequence[float] | np.ndarray,
    n: int = 12,
    fps: float = 6,
) -> np.ndarray:
    """Frame picking of the classifier data loader: nearest decoded pts (PROTOCOL.md §3).

    Mirrors the official ``avsync/data.py``: for clip start s the frame times are
    ``s + i/fps`` (i = 0..n-1) with the first one shifted to ``s + 1e-4``; each is matched to the
    decoded frame with the nearest pts (ties → the earlier frame, ``argmin``). Only the frames
    the official loader sees are candidates: it seeks to the first clip's first frame time
    (frames with ``round(pts·1e6) >= int(t·1e6)`` µs are returned, ``golden/README.md`` §3) and
    reads until the first frame with pts > the last clip's last frame time. So for the first
    clip a frame lying in ``[s, s + 1e-4)`` (e.g. pts 0 for s = 0) is never picked.

    Args:
        pts_seconds: (F,) presentation times in seconds of the decoded frames, in decode
            order (the microsecond-rounded pts the official decoder reports).
        start: one clip start s (seconds), or (K,) ascending starts of several clips read
            together (the training loader reads 21 clips from one seek).
        n: frames per clip (12).
        fps: clip frame rate (6).

    Returns:
        int64 indices into ``pts_seconds``: (n,) for a scalar start, (K, n) for K starts.

    Raises:
        ValueError: no decoded frame falls in the read window.
    """
    pts = np.asarray(pts_seconds, dtype=np.float64).reshape(-1)
    starts = np.asarray(start, dtype=np.float64)
    scalar = starts.ndim == 0
    starts = starts.reshape(-1)
    if starts.size > 1 and np.any(np.diff(starts) < 0):
        raise ValueError(f"clip starts must be ascending, got {starts.tolist()}")
    targets = starts[:, None] + np.arange(n + 1)[None, :] / fps
    targets[:, 0] += ENDPOINT_SHIFT
    targets = targets[:, :-1]  # the (n+1)-th time only bounds the audio window
    seek_us = int(targets[0, 0] * 1e6)
    candidates = []
    for i, value in enumerate(pts):
        if round(value * 1e6) < seek_us:
            continue
        if value > targets[-1, -1]:
            break
        candidates.append(i)
    if not candidates:
        raise ValueError(
            f"no decoded frame with pts in [{targets[0, 0]:.6f}, {targets[-1, -1]:.6f}] s "
            f"({pts.size} frames, pts range {pts.min() if pts.size else None}.."
            f"{pts.max() if pts.size else None})"
        )
    candidates = np.asarray(candidates, dtype=np.int64)
    nearest = np.abs(targets[:, :, None] - pts[candidates][None, None, :]).argmin(axis=2)
    indices = candidates[nearest]
    return indices[0] if scalar else indices
