"""The measurement stages of AVSync-AC (paper §3, "Automatic Curation"), one video at a time.

A video goes through four stage functions, each taking and returning a list of *work* dicts, so
the local backend and the Ray backend (:mod:`avsync_bench.curation.pipeline`) run the very same
code:

1. :func:`decode_stage` (CPU): probe and decode (:mod:`avsync_bench.io.media`), scene cuts with
   PySceneDetect's ``ContentDetector``, 3 s windows at 0.5 s stride inside each scene (a scene
   shorter than 3 s gives none), the analysis grid (6 fps, 224×224 centre crop), raw pixel
   difference, audio
   peak, and the 2 s mels of each window's shifted audio;
2. :func:`imagebind_stage` (GPU): image-semantics difference, IA and IT;
3. :func:`sync_stage` (GPU): P_sync;
4. :func:`rows_stage` (CPU): one flat row per window (arrays dropped).

A video that fails to decode becomes a single row with ``window_index = -1`` and its error.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

import avsync_bench  # noqa: F401
from avsync_bench.clips import cut_audio, pick_frames_corrected, waveform_mel
from avsync_bench.curation.settings import MEASUREMENT_NAMES, CurationSettings
from avsync_bench.io.media import MediaError, decode_audio, decode_video, probe
from avsync_bench.protocol import CORRECTED, ClipSpec

__all__ = [
    "ROW_COLUMNS",
    "detect_scenes",
    "window_starts",
    "decode_stage",
    "imagebind_stage",
    "sync_stage",
    "rows_stage",
]

ROW_COLUMNS = (
    "video",
    "class_folder",
    "window_index",
    "scene_index",
    "scene_start",
    "scene_end",
    "start",
    "end",
    *MEASUREMENT_NAMES,
    "phi_sync",
    "error",
)
_EPS = 1e-6


def detect_scenes(
    rgb_frames: list[np.ndarray], pts: list[float], duration: float, settings: CurationSettings
) -> list[tuple[float, float]]:
    """Scenes ``[(start, end), ...]`` in seconds, cut where PySceneDetect finds a cut.

    ``ContentDetector(threshold=settings.scene_threshold, min_scene_len=settings.scene_min_len)``
    sees every decoded frame (BGR, downscaled to ``settings.scene_width`` px wide, bilinear); a cut at frame
    i starts a new scene at that frame's pts. The first scene starts at 0, the last ends at
    ``duration`` (D = min(video, audio duration), PROTOCOL.md §1).
    """
    import cv2
    from scenedetect.detectors import ContentDetector

    detector = ContentDetector(
        threshold=settings.scene_threshold, min_scene_len=settings.scene_min_len
    )
    cuts: list[int] = []
    for index, rgb in enumerate(rgb_frames):
        height, width = rgb.shape[:2]
        size = (settings.scene_width, max(2, round(height * settings.scene_width / width)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
        cuts += detector.process_frame(index, cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    times = sorted({pts[c] for c in cuts if 0 < c < len(pts) and 0.0 < pts[c] < duration})
    edges = [0.0, *times, duration]
    return list(zip(edges[:-1], edges[1:]))


def analysis_frames(frames: list[np.ndarray], size: int) -> np.ndarray:
    """The analysis grid's frames: centre square crop, then ``size``×``size`` (OpenCV INTER_AREA).

    Args:
        frames: (H, W, 3) uint8 RGB frames.

    Returns:
        (N, size, size, 3) uint8.
    """
    import cv2

    out = np.empty((len(frames), size, size, 3), np.uint8)
    for i, rgb in enumerate(frames):
        height, width = rgb.shape[:2]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        square = np.ascontiguousarray(rgb[top : top + side, left : left + side])
        out[i] = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)
    return out


def window_starts(scene_start: float, scene_end: float, settings: CurationSettings) -> list[float]:
    """Window starts (s) inside one scene: ``start + k·stride`` while the window fits (paper §3)."""
    length = scene_end - scene_start
    if length + _EPS < settings.window:
        return []
    count = int(math.floor((length - settings.window) / settings.stride + _EPS)) + 1
    return [scene_start + k * settings.stride for k in range(count)]


def _audio_track(path: Path, duration: float) -> tuple[list, np.ndarray, int, float]:
    frames = decode_audio(path, 0.0, duration + 0.5)
    if not frames:
        raise MediaError(f"{path}: the audio track is empty")
    rates = {f.sample_rate for f in frames}
    if len(rates) != 1:
        raise MediaError(f"{path}: the sample rate changes inside the file ({sorted(rates)})")
    return frames, np.concatenate([f.samples for f in frames], axis=1), rates.pop(), frames[0].pts


def _decode_one(item: dict, settings: CurationSettings) -> dict:
    path = Path(item["path"])
    info = probe(path)
    duration = info.av_duration
    video = decode_video(path, 0.0, duration)
    if not video:
        raise MediaError(f"{path}: no video frames")
    audio_frames, samples, rate, first = _audio_track(path, duration)
    scenes = detect_scenes([f.rgb for f in video], [f.pts for f in video], duration, settings)
    fpw, sf, fps = settings.frames_per_window, settings.stride_frames, settings.analysis_fps
    two_s = ClipSpec()
    # The whole track at 16 kHz, channel mean, from t = 0 (one resampling per video; the exact
    # sample window of the corrected protocol, zero-padded where the file has no audio).
    whole = ClipSpec(num_frames=int(math.ceil(duration * 6)) + 12, fps=6)
    track = cut_audio(audio_frames, 0.0, whole, CORRECTED, str(path)).mean(axis=0)
    windows, grids, mels = [], [], []
    for scene_index, (a, b) in enumerate(scenes):
        starts = window_starts(a, b, settings)
        if not starts:
            grids.append(None)
            continue
        count = (len(starts) - 1) * sf + fpw
        positions, _ = pick_frames_corrected(video, a, ClipSpec(num_frames=count, fps=fps))
        grid = analysis_frames([video[p].rgb for p in positions], settings.analysis_size)
        grids.append(grid)
        signed = grid.astype(np.int16)
        for k, start in enumerate(starts):
            frames = signed[k * sf : k * sf + fpw]
            lo = max(int(round((start - first) * rate)), 0)
            hi = max(int(round((start + settings.window - first) * rate)), lo)
            chunk = samples[:, lo:hi]
            shifted = []
            for shift in settings.sync_shifts:
                begin = int(round((start + settings.sync_offset + shift) * two_s.sample_rate))
                cut = track[None, begin : begin + two_s.num_samples]
                shifted.append(waveform_mel(cut).numpy())
            mels.append(np.stack(shifted))
            windows.append(
                {
                    "window_index": len(windows),
                    "scene_index": scene_index,
                    "scene_start": float(a),
                    "scene_end": float(b),
                    "start": float(start),
                    "end": float(start + settings.window),
                    "pixel_diff": float(np.abs(np.diff(frames, axis=0)).mean()),
                    "audio_peak": float(np.abs(chunk).max()) if chunk.size else 0.0,
                    "scene_k": k,
                }
            )
    return {
        **item,
        "error": None,
        "duration": float(duration),
        "fps": float(info.fps or 0.0),
        "scenes": [list(s) for s in scenes],
        "windows": windows,
        "grids": grids,
        "mels": np.stack(mels).astype(np.float32) if mels else None,
    }


def decode_stage(items: list[dict], settings: CurationSettings) -> list[dict]:
    """Stage 1 (CPU). ``items``: ``{"video": rel path, "path": file, "class_folder",
    "class_text", "block"}``; any failure of a video is kept as its ``error`` (never raised)."""
    out = []
    for item in items:
        try:
            out.append(_decode_one(item, settings))
        except MediaError as exc:
            out.append({**item, "error": str(exc), "windows": []})
        except Exception as exc:  # a damaged file must be a row, never the end of the run
            message = f"{item['path']}: {type(exc).__name__}: {exc}"
            out.append({**item, "error": message, "windows": []})
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def imagebind_stage(works: list[dict], networks, settings: CurationSettings) -> list[dict]:
    """Stage 2: semantic_diff, IA, IT per window (ImageBind; see :data:`MEASUREMENTS`).

    The grid frames of a scene are embedded once and shared by its overlapping windows; the audio
    embedding is of the window's centred 2 s (shift 0), the text that of ``class_text``.
    """
    zero = settings.sync_shifts.index(0.0)
    fpw, sf = settings.frames_per_window, settings.stride_frames
    for work in works:
        if work["error"] or not work["windows"]:
            continue
        images = [None if g is None else _unit(networks.images(g)) for g in work["grids"]]
        audio = _unit(networks.audio(work["mels"][:, zero]))
        text = _unit(networks.text(work["class_text"]))
        for w, window in enumerate(work["windows"]):
            k = window["scene_k"]
            e = images[window["scene_index"]][k * sf : k * sf + fpw]
            window["semantic_diff"] = float(np.mean(1.0 - np.sum(e[1:] * e[:-1], axis=1)))
            window["ia"] = float(np.mean(e @ audio[w]))
            window["it"] = float(np.mean(e @ text))
    return works


def sync_stage(works: list[dict], networks, settings: CurationSettings) -> list[dict]:
    """Stage 3: P_sync = softmax_k φ(v, a_k) at k = shift 0 (paper Eq. 1 without τ).

    v: the 12 grid frames from ``start + sync_offset`` (the window's centred 2 s at 6 fps);
    a_k: the 2 s audio from ``start + sync_offset + shift_k`` (shifts of ``settings.sync_shifts``).
    """
    zero = settings.sync_shifts.index(0.0)
    fpw, sf = settings.frames_per_window, settings.stride_frames
    offset = int(round(settings.sync_offset * settings.analysis_fps))
    num = 12
    assert offset + num <= fpw
    for work in works:
        if work["error"] or not work["windows"]:
            continue
        clips = np.stack(
            [
                work["grids"][w["scene_index"]][w["scene_k"] * sf + offset :][:num]
                for w in work["windows"]
            ]
        )
        phi = networks.phi(clips, work["mels"]).astype(np.float64)
        shifted = phi - phi.max(axis=1, keepdims=True)
        prob = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        for w, window in enumerate(work["windows"]):
            window["psync"] = float(prob[w, zero])
            window["phi_sync"] = float(phi[w, zero])
    return works


def rows_stage(works: list[dict]) -> list[dict]:
    """Stage 4: one row per window (:data:`ROW_COLUMNS`).

    A video without a window is one marker row with ``window_index = -1``: its ``error`` when it
    failed to decode, else ``error = None`` (every scene shorter than a window). Every row carries
    the video's ``duration``, ``n_scenes`` and ``n_short_scenes`` (scenes too short for a window).
    """
    rows = []
    for work in works:
        scenes = work.get("scenes") or []
        short = sum(1 for g in work.get("grids") or [] if g is None)
        base = {
            "video": work["video"],
            "class_folder": work["class_folder"],
            "block": work["block"],
            "duration": work.get("duration", float("nan")),
            "n_scenes": len(scenes),
            "n_short_scenes": short,
        }
        if work["error"] or not work["windows"]:
            row = dict.fromkeys(ROW_COLUMNS, float("nan"))
            row.update(base, window_index=-1, scene_index=-1, error=work["error"])
            rows.append(row)
            continue
        for window in work["windows"]:
            row = {k: window.get(k, float("nan")) for k in ROW_COLUMNS}
            row.update(base, error=None)
            rows.append(row)
    return rows
