"""Writing and showing results: ``results.json``, ``per_clip.csv``, ``features.npz`` and a
terminal table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from avsync_bench.errors import InputError
from avsync_bench.io.atomic import atomic_open, atomic_write_json

__all__ = ["write_results", "results_table", "load_results", "FEATURES_FILE", "FRECHET_FEATURES"]

FEATURES_FILE = "features.npz"
FRECHET_FEATURES = {"fid": "fid_inception", "fvd": "i3d"}
"""Metric key → extractor whose per-clip features ``features.npz`` keeps (``<key>_gt``, ``<key>_gen``)."""


def write_results(
    results: dict, per_clip: list[dict], out_dir: str | Path, features=None
) -> tuple[Path, Path]:
    """Write ``results.json`` and ``per_clip.csv`` into ``out_dir`` (atomically); return both paths.

    With ``features`` (a :class:`~avsync_bench.metrics.FeatureSet` in ``per_clip`` order, e.g.
    ``ScoreRun.features``) also write ``features.npz``, what bootstrap CIs need
    (:mod:`avsync_bench.stats`): ``clip``, ``video``, ``class`` (N,) strings, ``clip_index`` (N,),
    ``protocol`` and ``dataset`` (0-d strings), and for FID / FVD when scored ``fid_gt``,
    ``fid_gen`` (N, 11, 2048) and ``fvd_gt``, ``fvd_gen`` (N, 400) float32 features as extracted
    (≈ 82 MB for AVSync15's 450 clips, almost all FID). Without ``features`` a ``features.npz``
    left by an earlier run in ``out_dir`` is removed, so the folder never mixes two runs. With a
    :class:`~avsync_bench.featurefile.FeatureFile` (``ScoreRun.feature_file``) the complete
    versioned file that ``avsync-bench evaluate`` reads is written instead.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    npz_path = out_dir / FEATURES_FILE
    if features is not None and hasattr(features, "meta"):  # a FeatureFile (`extract`'s output)
        from avsync_bench.featurefile import save_features

        save_features(npz_path, features)
    elif features is not None:
        _write_features(npz_path, results, per_clip, features)
    elif npz_path.exists():
        npz_path.unlink()
    json_path, csv_path = out_dir / "results.json", out_dir / "per_clip.csv"
    atomic_write_json(json_path, results, indent=2, sort_keys=False)
    columns = list(dict.fromkeys(k for row in per_clip for k in row))
    with atomic_open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(per_clip)
    return json_path, csv_path


def _write_features(path: Path, results: dict, per_clip: list[dict], features) -> None:
    arrays = {
        "clip": np.array([row["clip"] for row in per_clip], dtype=str),
        "video": np.array([row["video"] for row in per_clip], dtype=str),
        "class": np.array([row["class"] for row in per_clip], dtype=str),
        "clip_index": np.array([row["clip_index"] for row in per_clip], dtype=np.int64),
        "protocol": np.array(results["protocol"]),
        "dataset": np.array(results["dataset"]),
    }
    for key, extractor in FRECHET_FEATURES.items():
        if key in results["metrics"] and extractor in features.gt:
            arrays[f"{key}_gt"] = np.asarray(features.gt[extractor])
            arrays[f"{key}_gen"] = np.asarray(features.gen[extractor])
    with atomic_open(path, "wb") as handle:
        np.savez(handle, **arrays)


def load_results(path: str | Path) -> dict:
    """Read a ``results.json``.

    Raises:
        ValueError: not a results file of this tool (names the file).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read results ({exc})") from exc
    if data.get("tool") != "avsync-bench" or "metrics" not in data:
        raise InputError(f"{path}: not an avsync-bench results.json")
    return data


def results_table(results: dict) -> Table:
    """A rich table: metric, value (×100 where the paper prints ×100), direction, samples."""
    flags = [results["protocol"], results["dataset"]]
    if results.get("partial"):
        flags.append("PARTIAL")
    if results.get("standin"):
        flags.append("STAND-IN WEIGHTS")
    counts = results["clip_counts"]
    table = Table(
        title=f"avsync-bench {results['version']} — {' · '.join(flags)} — "
        f"{counts['scored']}/{counts['expected']} clips"
    )
    for column in ("metric", "value", "better", "n (GT / gen)"):
        table.add_column(column, justify="right" if column != "metric" else "left")
    for entry in results["metrics"].values():
        scale = entry.get("display_scale", 1.0)
        value = f"{entry['value'] * scale:.2f}"
        if entry.get("std") is not None:
            value += f" ± {entry['std'] * scale:.2f}"
        label = entry["label"] + (" (x100)" if scale != 1.0 else "")
        arrow = "↓" if entry["lower_is_better"] else "↑"
        table.add_row(label, value, arrow, f"{entry['n_gt']} / {entry['n_gen']}")
    return table


def print_results(results: dict, console: Console | None = None) -> None:
    """Print the table and every warning."""
    console = console or Console()
    console.print(results_table(results))
    for entry in results["metrics"].values():
        for warning in entry.get("warnings", []):
            console.print(f"[yellow]warning:[/] {warning}")
    for warning in results.get("warnings", []):
        console.print(f"[yellow]warning:[/] {warning}")
    if results.get("standin"):
        console.print("[yellow]warning:[/] computed with stand-in weights: not a real score")
    padded = (results.get("padding") or {}).get("clips") or {}
    if padded:
        console.print(
            f"[yellow]note:[/] {len(padded)} clip(s) needed padding (results.json → padding):"
        )
        for line in padding_summary(padded, results["padding"].get("limits", {})):
            console.print(f"  {escape(line)}", highlight=False)
    if results.get("partial"):
        absent = results.get("absent", [])
        why = results.get("absent_why") or {}
        console.print(f"[yellow]warning:[/] partial result, {len(absent)} clip(s) absent:")
        for name in absent[:ABSENT_SHOWN]:
            console.print(f"  {escape(name)}: {escape(why.get(name, 'missing'))}", highlight=False)
        if len(absent) > ABSENT_SHOWN:
            console.print(
                f"  ... and {len(absent) - ABSENT_SHOWN} more (results.json → absent_why)"
            )


ABSENT_SHOWN = 20
"""How many absent clips the terminal lists by name (all are in ``results.json``)."""


def padding_summary(clips: dict, limits: dict, shown: int = 5) -> list[str]:
    """Padded clips grouped by their padding, e.g. ``"12 clip(s): 1 repeated frame(s) (a, b …)"``."""
    groups: dict[tuple, list[str]] = {}
    for name, pad in clips.items():
        key = (pad["repeated_frames"], pad["audio_missing_s"], pad["start_clamped_s"],
               pad.get("over_limit", False))  # fmt: skip
        groups.setdefault(key, []).append(name)
    lines = []
    for (frames, audio, clamp, over), names in sorted(groups.items(), key=lambda g: -len(g[1])):
        text = f"{len(names)} clip(s): {frames} repeated frame(s)"
        text += f", {audio:.2f} s of audio missing" if audio > 0.02 else ""
        text += f", start clamped by {clamp:.2f} s" if clamp > 0.02 else ""
        text += " — OVER THE LIMIT, scored with --allow-padding" if over else ""
        more = f" and {len(names) - shown} more" if len(names) > shown else ""
        lines.append(f"{text}: {', '.join(names[:shown])}{more}")
    return lines
