"""``sync-sensitivity``: what RelSync can see (a metric-validity test; issue 12 §3).

For every GT test clip of a dataset in release layout (3 per video at ``linspace(0, D − 2, 3)``,
cut by the benchmark's clip path exactly as ``score`` cuts them, :mod:`avsync_bench.clips`), φ is
computed (PROTOCOL.md §2 "Raw AV-sync score") for the clip's frames with:

- ``true``: its own audio window;
- ``shift±δ``: the same video's audio window starting δ s later/earlier, δ ∈ {0.2, 0.5, 1.0};
  only where the shifted 2 s window lies inside ``[0, D]`` (otherwise "n/a", counted);
- ``swap``: the audio of the same clip index of the next video of the same class (list order,
  wrapping); "n/a" when the class has one video.

Per class and overall: the fraction of clips whose true pairing scores strictly highest among the
available ones, and for each corruption the mean RelSync against the true pairing,
``e^{φ_c} / (e^{φ_true} + e^{φ_c}) = sigmoid(φ_c − φ_true)``: 0.5 means the metric cannot tell
the corruption from the real audio, lower means it can.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import torch

import avsync_bench  # noqa: F401
from avsync_bench.clips import clip_mel, cut_audio, load_clips
from avsync_bench.datasets import DATASETS, TestVideo
from avsync_bench.features.sync import clip_phi_inputs
from avsync_bench.io.media import MediaError, decode_audio, probe
from avsync_bench.protocol import DEFAULT_MODE, ProtocolMode, eval_clip_starts

__all__ = ["SHIFTS", "CORRUPTIONS", "clip_scores", "summarise", "format_markdown"]

SHIFTS = (-1.0, -0.5, -0.2, 0.2, 0.5, 1.0)
CORRUPTIONS = tuple(f"shift{s:+.1f}" for s in SHIFTS) + ("swap",)


@torch.no_grad()
def clip_scores(
    model,
    videos: Sequence[TestVideo],
    dataset: str,
    mode: ProtocolMode = DEFAULT_MODE,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[dict], list[dict]]:
    """φ of every GT clip with its true audio and each corruption.

    Returns:
        ``(rows, failed)``: one row per clip ``{"video", "class", "clip", "start", "phi_true",
        "phi": {corruption: float | None}, "na": {corruption: reason}}``; ``failed`` lists
        ``{"video", "reason"}`` for videos that could not be read (their clips are absent).
    """
    spec = DATASETS[dataset].spec if dataset in DATASETS else DATASETS["avsync15"].spec
    model = model.eval()
    per_video: dict[str, dict] = {}
    failed = []
    for video in videos:
        try:
            duration = probe(video.path).av_duration
            starts = eval_clip_starts(duration, spec, mode)
            clips = load_clips(video.path, starts, spec, mode)
            audio = decode_audio(video.path, 0.0, float("inf"))
        except MediaError as error:
            failed.append({"video": video.rel, "reason": str(error)})
            if progress:
                progress(1)
            continue
        mels, frames = clip_phi_inputs(clips)
        video_feats = model.video_encoder(frames)
        audio_feats = {"true": model.audio_encoder(mels)}
        na: dict[str, list[str | None]] = {}
        for shift, name in zip(SHIFTS, CORRUPTIONS):
            shifted, reasons = [], []
            for clip in clips:
                begin = clip.start + shift
                if begin < 0 or begin + spec.duration > duration:
                    shifted.append(torch.zeros_like(mels[0]))
                    reasons.append(
                        f"window {begin:.2f}-{begin + spec.duration:.2f} s outside the file"
                    )
                    continue
                try:
                    cut = cut_audio(audio, begin, spec, mode, source=str(video.path))
                except MediaError as error:
                    shifted.append(torch.zeros_like(mels[0]))
                    reasons.append(str(error))
                    continue
                shifted.append(clip_mel(dataclasses.replace(clip, audio=cut, start=begin), spec))
                reasons.append(None)
            audio_feats[name] = model.audio_encoder(torch.stack(shifted))
            na[name] = reasons
        per_video[video.rel] = {
            "video": video,
            "starts": starts,
            "video_feats": video_feats,
            "audio_feats": audio_feats,
            "na": na,
        }
        if progress:
            progress(1)

    by_class: dict[str, list[str]] = {}
    for rel, entry in per_video.items():
        by_class.setdefault(entry["video"].class_folder, []).append(rel)
    rows = []
    for rel, entry in per_video.items():
        same = by_class[entry["video"].class_folder]
        partner = same[(same.index(rel) + 1) % len(same)] if len(same) > 1 else None
        for c, start in enumerate(entry["starts"]):
            v = entry["video_feats"][c : c + 1]
            phi_true = float(model.head(entry["audio_feats"]["true"][c : c + 1], v)[0, 0])
            phi, na = {}, {}
            for name in CORRUPTIONS[:-1]:
                reason = entry["na"][name][c]
                if reason is not None:
                    phi[name], na[name] = None, reason
                else:
                    phi[name] = float(model.head(entry["audio_feats"][name][c : c + 1], v)[0, 0])
            if partner is None:
                phi["swap"], na["swap"] = None, "no other video of the class"
            else:
                other = per_video[partner]["audio_feats"]["true"][c : c + 1]
                phi["swap"] = float(model.head(other, v)[0, 0])
            rows.append(
                {
                    "video": rel,
                    "class": entry["video"].class_folder,
                    "clip": c,
                    "start": float(start),
                    "phi_true": phi_true,
                    "phi": phi,
                    "na": na,
                    "swap_partner": partner,
                }
            )
    return rows, failed


def _relsync(phi_c: float, phi_true: float) -> float:
    """e^{φ_c} / (e^{φ_true} + e^{φ_c}) as a stable sigmoid (never NaN)."""
    x = phi_c - phi_true
    return float(1.0 / (1.0 + np.exp(-x))) if x >= 0 else float(np.exp(x) / (1.0 + np.exp(x)))


def _block(rows: list[dict]) -> dict:
    out = {"n_clips": len(rows), "corruptions": {}}
    wins = [
        all(row["phi_true"] > p for p in row["phi"].values() if p is not None)
        for row in rows
        if any(p is not None for p in row["phi"].values())
    ]
    out["n_compared"] = len(wins)
    out["true_highest"] = float(np.mean(wins)) if wins else None
    for name in CORRUPTIONS:
        values = [
            _relsync(row["phi"][name], row["phi_true"])
            for row in rows
            if row["phi"][name] is not None
        ]
        out["corruptions"][name] = {
            "n": len(values),
            "n_na": len(rows) - len(values),
            "relsync_mean": float(np.mean(values)) if values else None,
            "true_beats_it": (
                float(
                    np.mean(
                        [r["phi_true"] > r["phi"][name] for r in rows if r["phi"][name] is not None]
                    )
                )
                if values
                else None
            ),
        }
    return out


def summarise(rows: list[dict], failed: list[dict]) -> dict:
    """Overall and per-class figures (see the module docstring) as a JSON dict."""
    classes = sorted({r["class"] for r in rows})
    return {
        "definition": (
            "RelSync(corruption vs true) = exp(phi_c) / (exp(phi_true) + exp(phi_c)); "
            "0.5 = indistinguishable from the true audio"
        ),
        "shifts_s": list(SHIFTS),
        "failed_videos": failed,
        "overall": _block(rows),
        "per_class": {c: _block([r for r in rows if r["class"] == c]) for c in classes},
        "per_clip": rows,
    }


def format_markdown(result: dict) -> str:
    """The per-class table (markdown): n, fraction true-highest, mean RelSync per corruption."""
    head = "| class | clips | true highest | " + " | ".join(CORRUPTIONS) + " |"
    lines = [
        "RelSync of each corruption against the true pairing (×100; 50 = blind), "
        "n/a where the corruption does not exist for the clip.",
        "",
        head,
        "|" + "---|" * (3 + len(CORRUPTIONS)),
    ]

    def fmt(block: dict) -> list[str]:
        cells = []
        for name in CORRUPTIONS:
            c = block["corruptions"][name]
            cells.append(
                "n/a" if c["relsync_mean"] is None else f"{100 * c['relsync_mean']:.1f} ({c['n']})"
            )
        return cells

    for name, block in [*result["per_class"].items(), ("**all**", result["overall"])]:
        highest = "—" if block["true_highest"] is None else f"{100 * block['true_highest']:.0f}%"
        lines.append(
            f"| {name} | {block['n_clips']} | {highest} | " + " | ".join(fmt(block)) + " |"
        )
    if result["failed_videos"]:
        lines.append("")
        for row in result["failed_videos"]:
            lines.append(f"- unreadable {row['video']}: {row['reason']}")
    return "\n".join(lines)
