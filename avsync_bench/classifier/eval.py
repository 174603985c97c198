"""``eval-classifier``: the classifier's offset accuracy (PROTOCOL.md §3 "Evaluation"; official
``scripts/avsync_eval.py``).

Per usable video: 31 centred clips 0.04 s apart (``center-compact``,
:mod:`avsync_bench.classifier.data`), both encoders over the 31 clips, then the head on the
centre audio (index 15) against the 31 videos (A2V) and on the centre video against the 31 audios
(V2A). Hits and chance: :mod:`avsync_bench.classifier.metrics` (±0, ±1, ±2 and the official ±5
clip steps; ±5 = ±0.2 s, chance 11/31).

Denominators. Videos that cannot be read as 31 clips (too short: D < 3.2 s; < 12 fps; missing or
unreadable) are listed with their reason. ``corrected`` (default) reports accuracy over **all
listed videos**, an unusable video counting as a miss, and the valid-only figure beside it;
``official`` reports the official denominator, valid examples only (the official loader silently
replaces a failing video by the next one and de-duplicates). Intervals: percentile bootstrap over
videos (1000 resamples, seed 0).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

import avsync_bench  # noqa: F401
from avsync_bench.classifier.data import DataSpec, MultiClipReader, Unusable, clip_starts
from avsync_bench.classifier.metrics import TOLERANCES, bootstrap_ci, chance, offset_hits
from avsync_bench.datasets import TestVideo
from avsync_bench.errors import OptionError

__all__ = ["EVAL_SPEC", "EvalItem", "load_eval_items", "score_items", "summarise", "format_table"]

#: The official evaluation layout: 31 centred clips 0.04 s apart (needs D ≥ 3.2 s).
EVAL_SPEC = DataSpec(num_clips=31, shift=0.04, sampling="center-compact")


@dataclass
class EvalItem:
    """One listed video: its 31 clips (``mels`` (31, 1, 128, 204), ``frames`` (31, 3, 12, S, S)
    float32), or ``reason`` (str) when unusable."""

    video: TestVideo
    mels: torch.Tensor | None = None
    frames: torch.Tensor | None = None
    reason: str | None = None


def load_eval_items(
    videos: Sequence[TestVideo],
    spec: DataSpec = EVAL_SPEC,
    progress: Callable[[int], None] | None = None,
) -> list[EvalItem]:
    """Read every listed video as ``spec.num_clips`` centred clips (no flips); unusable videos get
    their reason instead of tensors."""
    reader = MultiClipReader(spec)
    items = []
    for video in videos:
        try:
            starts = clip_starts(reader.duration(video.path), spec)
            mels, frames = reader.read(video.path, starts)
            items.append(EvalItem(video, mels, frames))
        except Unusable as error:
            items.append(EvalItem(video, reason=error.reason))
        if progress:
            progress(1)
    return items


@torch.no_grad()
def score_items(
    model, items: Sequence[EvalItem], device: str = "cpu", batch_size: int = 8
) -> np.ndarray:
    """(N_valid, K, K) float32 score matrices of the usable items, in order.

    Only row and column K//2 are needed by the test; the full matrix costs one head call more
    and lets the JSON keep the complete A2V/V2A score curves.
    """
    from avsync_bench.classifier.metrics import pairwise_scores

    model = model.to(device).eval()
    out = []
    for item in items:
        if item.reason is not None:
            continue
        audio, video = [], []
        for begin in range(0, item.mels.shape[0], batch_size):
            audio.append(model.audio_encoder(item.mels[begin : begin + batch_size].to(device)))
            video.append(model.video_encoder(item.frames[begin : begin + batch_size].to(device)))
        phi = pairwise_scores(model.head, torch.cat(audio)[None], torch.cat(video)[None])[0]
        out.append(phi.float().cpu().numpy())
    k = items[0].mels.shape[0] if items and items[0].mels is not None else EVAL_SPEC.num_clips
    return np.stack(out) if out else np.zeros((0, k, k), dtype=np.float32)


def summarise(
    items: Sequence[EvalItem],
    phi: np.ndarray,
    protocol: str = "corrected",
    tolerances: Sequence[int] = TOLERANCES,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict:
    """Accuracies, chance, bootstrap intervals, per class, and the unusable list as a JSON dict.

    Args:
        items: every listed video (usable or not), in list order.
        phi: (N_valid, K, K) from :func:`score_items`.
        protocol: ``corrected`` (headline over all listed videos, unusable = miss) or
            ``official`` (valid examples only).

    Returns:
        ``{"protocol", "denominator", "n_listed", "n_valid", "unusable": [{video, class, reason}],
        "num_clips", "shift_s", "overall": {direction: {"t<k>": {value, ci95, chance,
        value_valid_only}}}, "per_class": {class: {"n_listed", "n_valid", direction: {...}}},
        "per_video": [...]}``; accuracies are fractions in [0, 1].
    """
    if protocol not in ("corrected", "official"):
        raise OptionError(f"unknown protocol {protocol!r}: corrected | official")
    valid = [i for i in items if i.reason is None]
    k = phi.shape[1] if phi.size else EVAL_SPEC.num_clips
    hits = offset_hits(phi, tolerances) if len(valid) else None
    per_video = []
    vi = 0
    for item in items:
        row = {"video": item.video.rel, "class": item.video.class_folder}
        if item.reason is not None:
            row["reason"] = item.reason
        else:
            row["a2v_argmax"] = int(hits["argmax"]["a2v"][vi])
            row["v2a_argmax"] = int(hits["argmax"]["v2a"][vi])
            vi += 1
        per_video.append(row)

    def block(mask_listed: np.ndarray) -> dict:
        out = {}
        valid_mask = np.array([i.reason is None for i in items])
        for direction in ("a2v", "v2a"):
            out[direction] = {}
            for t in tolerances:
                full = np.zeros(len(items), dtype=np.float64)
                if hits is not None:
                    full[valid_mask] = hits[direction][t]
                listed = full[mask_listed]
                only = full[mask_listed & valid_mask]
                headline = only if protocol == "official" else listed
                lo, hi = bootstrap_ci(headline, n_resamples, seed)
                out[direction][f"t{t}"] = {
                    "tolerance_clips": t,
                    "tolerance_s": round(t * EVAL_SPEC.shift, 4),
                    "value": float(headline.mean()) if headline.size else None,
                    "ci95": [lo, hi],
                    "chance": chance(t, k),
                    "value_all_listed": float(listed.mean()) if listed.size else None,
                    "value_valid_only": float(only.mean()) if only.size else None,
                }
        return out

    classes = np.array([i.video.class_folder for i in items])
    everything = np.ones(len(items), dtype=bool)
    per_class = {}
    for name in sorted(set(classes.tolist())):
        mask = classes == name
        per_class[name] = {
            "n_listed": int(mask.sum()),
            "n_valid": int(sum(1 for i, m in zip(items, mask) if m and i.reason is None)),
            **block(mask),
        }
    denominator = (
        "valid examples only, the official one (unusable videos excluded, as avsync_eval.py does)"
        if protocol == "official"
        else "all listed videos (an unusable video counts as a miss)"
    )
    return {
        "protocol": protocol,
        "denominator": denominator,
        "n_listed": len(items),
        "n_valid": len(valid),
        "unusable": [
            {"video": i.video.rel, "class": i.video.class_folder, "reason": i.reason}
            for i in items
            if i.reason is not None
        ],
        "num_clips": k,
        "shift_s": EVAL_SPEC.shift,
        "overall": block(everything),
        "per_class": per_class,
        "per_video": per_video,
    }


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}"


def format_table(result: dict) -> str:
    """A plain-text table of a :func:`summarise` result (accuracy in %) with the chance line and
    the 95 % intervals of the headline figures."""
    lines = [
        f"protocol {result['protocol']}; denominator: {result['denominator']}",
        f"videos: {result['n_listed']} listed, {result['n_valid']} valid, "
        f"{len(result['unusable'])} unusable",
    ]
    for row in result["unusable"]:
        lines.append(f"  unusable {row['video']}: {row['reason']}")
    keys = list(result["overall"]["a2v"])
    tol = [k[1:] for k in keys]
    header = f"{'':28s}" + "".join(f"{'A2V±' + t:>8s}" for t in tol)
    lines += ["", header + "".join(f"{'V2A±' + t:>8s}" for t in tol)]

    def row(label: str, block: dict, key: str = "value") -> str:
        cells = [f"{_pct(block[d][k][key]):>8s}" for d in ("a2v", "v2a") for k in keys]
        return f"{label[:28]:28s}" + "".join(cells)

    other = "value_all_listed" if result["protocol"] == "official" else "value_valid_only"
    lines.append(row("all", result["overall"]))
    lines.append(row(f"  ({other[6:].replace('_', ' ')})", result["overall"], other))
    lines.append(row("chance", result["overall"], "chance"))
    for name, block in result["per_class"].items():
        lines.append(row(f"{name[:20]} ({block['n_valid']}/{block['n_listed']})", block))
    last = keys[-1]
    cis = ", ".join(
        f"{d.upper()} ±{last[1:]}: {_pct(result['overall'][d][last]['value'])} "
        f"[{_pct(result['overall'][d][last]['ci95'][0])}, "
        f"{_pct(result['overall'][d][last]['ci95'][1])}]"
        for d in ("a2v", "v2a")
    )
    lines.append(f"95% bootstrap CI over videos: {cis}")
    return "\n".join(lines)
