"""A scoring run read back from its results folder (``results.json``, ``per_clip.csv``,
``features.npz``; :func:`avsync_bench.results.write_results`), for the statistics of
:mod:`avsync_bench.stats`, :mod:`avsync_bench.class_stats` and the report pages."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avsync_bench.errors import InputError
from avsync_bench.featurefile import frechet_features
from avsync_bench.results import FEATURES_FILE, FRECHET_FEATURES, load_results

__all__ = ["RunData", "load_run", "resolve_results_path"]


@dataclass
class RunData:
    """One scoring run as read back from its results folder.

    Attributes:
        folder: the results folder. results: ``results.json`` as a dict.
        clips, videos, classes: (N,) str arrays, one entry per scored clip (evaluation order).
        per_clip: metric key → (N,) float64 raw per-clip values (from ``per_clip.csv``).
        features: ``"fid"`` / ``"fvd"`` → (gt, gen) per-clip features, (N, 11, 2048) / (N, 400)
            (from ``features.npz``); absent when the run did not save them.
        notes: what is missing and therefore has no interval.
    """

    folder: Path
    results: dict
    clips: np.ndarray
    videos: np.ndarray
    classes: np.ndarray
    per_clip: dict[str, np.ndarray] = field(default_factory=dict)
    features: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return str(self.folder)


def resolve_results_path(path: str | Path) -> Path:
    """``results.json`` given itself or its folder.

    Raises:
        ValueError: no ``results.json`` there.
    """
    path = Path(path)
    json_path = path / "results.json" if path.is_dir() else path
    if not json_path.is_file():
        raise InputError(f"{path}: no results.json (give a results folder or a results.json path)")
    return json_path


def load_run(path: str | Path) -> RunData:
    """Read ``results.json`` with the ``per_clip.csv`` and ``features.npz`` beside it.

    Raises:
        ValueError: not a results file, neither per-clip file present, or the two per-clip files
            list different clips (written by different runs).
    """
    json_path = resolve_results_path(path)
    folder = json_path.parent
    results = load_results(json_path)
    csv_path, npz_path = folder / "per_clip.csv", folder / FEATURES_FILE
    identity = None
    per_clip: dict[str, np.ndarray] = {}
    notes = []
    if csv_path.is_file():
        with csv_path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        identity = (
            np.array([r["clip"] for r in rows], dtype=str),
            np.array([r["video"] for r in rows], dtype=str),
            np.array([r["class"] for r in rows], dtype=str),
        )
        columns = rows[0].keys() if rows else []
        for key in results["metrics"]:
            if key not in FRECHET_FEATURES and key in columns:
                per_clip[key] = np.array([float(r[key]) for r in rows], dtype=np.float64)
    else:
        notes.append(f"{csv_path} absent: no intervals for the per-clip metrics")
    features: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if npz_path.is_file():
        with np.load(npz_path, allow_pickle=False) as data:
            npz_identity = (data["clip"], data["video"], data["class"])
            if identity is not None and not np.array_equal(identity[0], npz_identity[0]):
                raise InputError(
                    f"{npz_path} and {csv_path} list different clips (written by different runs?)"
                )
            identity = identity or npz_identity
            features.update(frechet_features(data, results["metrics"]))
    missing = [k.upper() for k in FRECHET_FEATURES if k in results["metrics"] and k not in features]
    if missing:
        notes.append(f"{npz_path} absent or without {'/'.join(missing)}: no interval for them")
    if identity is None:
        raise InputError(f"{folder}: neither per_clip.csv nor {FEATURES_FILE} beside results.json")
    return RunData(folder, results, *identity, per_clip=per_clip, features=features, notes=notes)
