"""``features.npz``: the file between ``avsync-bench extract`` and ``avsync-bench evaluate``.

One ``.npz`` (numpy's zip of ``.npy`` arrays, read with ``allow_pickle=False``) holding everything
:func:`avsync_bench.evaluate.evaluate` needs, so evaluation needs no weights, videos or network:

- ``meta``: 0-d string, JSON: ``format`` (``"avsync-bench-features"``), ``format_version``
  (:data:`FORMAT_VERSION`), ``protocol``, ``dataset``, ``metrics`` (keys), ``extractors``
  (name → ``version``, ``network_batch``, ``weights`` (registry name → sha256)), the run's
  provenance (tool version, data root, predictions folder, clip counts, partial/absent/problems,
  weight provenance, stand-in flags, device, dtype, cache hits) and ``rows``: one dict per clip
  with its decoding facts (clip, video, class, clip index, GT/generated start, frame indices,
  padded frames);
- ``clip``, ``video``, ``class`` (N,) strings, ``clip_index`` (N,) int64, ``protocol``,
  ``dataset`` (0-d strings): the clips in evaluation order;
- ``gt__<extractor>``, ``gen__<extractor>``: (N, ...) float32 per-clip features of each side, as
  extracted (shapes in :mod:`avsync_bench.features`: FID Inception (N, 11, 2048), I3D (N, 400),
  ImageBind gt (N, 2, 1024) / gen (N, 12, 1024), classifier φ (N, 1), AV-Align (N, 1), mel
  (N, 1, 128, 204)); ``text__<extractor>``: (N, D) per-clip text embeddings (IT).

Files of the first format (``fid_gt``/``fid_gen``/``fvd_gt``/``fvd_gen`` only, no ``meta``) are
still read by :mod:`avsync_bench.stats` but not by ``evaluate``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avsync_bench.errors import AVSyncBenchError
from avsync_bench.io.atomic import atomic_open
from avsync_bench.metrics import FeatureSet

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "FeatureFile",
    "FeatureFileError",
    "save_features",
    "load_features",
    "frechet_features",
]

FORMAT = "avsync-bench-features"
FORMAT_VERSION = 1
_SIDES = ("gt", "gen", "text")
_LEGACY_FRECHET = {"fid": "fid_inception", "fvd": "i3d"}


class FeatureFileError(AVSyncBenchError, ValueError):
    """A features file that cannot be used as asked; the message names the file and the field."""


@dataclass
class FeatureFile:
    """The content of one ``features.npz`` (see module docstring).

    Attributes:
        meta: the JSON metadata (``rows`` included).
        features: per-clip features of both sides in ``meta["rows"]`` order.
    """

    meta: dict
    features: FeatureSet = field(default_factory=FeatureSet)

    @property
    def rows(self) -> list[dict]:
        """One dict per clip: clip, video, class, clip_index, gt_start_s, gen_start_s, ..."""
        return self.meta["rows"]

    def identity(self) -> dict:
        """What two runs must share to be evaluated or compared alike: protocol, dataset,
        extractor versions and weight sha256s."""
        return {
            "protocol": self.meta["protocol"],
            "dataset": self.meta["dataset"],
            "extractors": {
                name: {"version": e["version"], "weights": e["weights"]}
                for name, e in sorted(self.meta["extractors"].items())
            },
        }


def save_features(path: str | Path, ff: FeatureFile) -> Path:
    """Write ``ff`` to ``path`` atomically (a temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = ff.rows
    arrays = {
        "meta": np.array(json.dumps(ff.meta)),  # key order kept: per_clip.csv columns
        "clip": np.array([r["clip"] for r in rows], dtype=str),
        "video": np.array([r["video"] for r in rows], dtype=str),
        "class": np.array([r["class"] for r in rows], dtype=str),
        "clip_index": np.array([r["clip_index"] for r in rows], dtype=np.int64),
        "protocol": np.array(ff.meta["protocol"]),
        "dataset": np.array(ff.meta["dataset"]),
    }
    for side in _SIDES:
        for name, value in getattr(ff.features, side).items():
            arrays[f"{side}__{name}"] = np.asarray(value)
    with atomic_open(path, "wb", suffix=".npz") as handle:
        np.savez(handle, **arrays)
    return path


def load_features(path: str | Path, expect: dict | None = None) -> FeatureFile:
    """Read a ``features.npz`` written by :func:`save_features`.

    Args:
        path: the file (or a folder holding ``features.npz``).
        expect: optional values the file must have: ``protocol``, ``dataset`` (strings) and/or
            ``extractors`` (name → {version, weights}), e.g. another run's
            :meth:`FeatureFile.identity`.

    Raises:
        FeatureFileError: unreadable, not a features file, another format version, or a field
            that differs from ``expect`` (the message names the file and the field).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "features.npz"
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FeatureFileError(f"{path}: cannot read a features file ({exc})") from exc
    with data:
        if "meta" not in data.files:
            raise FeatureFileError(
                f"{path}: no 'meta' field: not a features file of `avsync-bench extract` "
                "(a features.npz of an older `score` holds FID/FVD features for statistics only)"
            )
        meta = json.loads(str(data["meta"]))
        if meta.get("format") != FORMAT:
            raise FeatureFileError(
                f"{path}: field 'format' is {meta.get('format')!r}, not {FORMAT!r}"
            )
        if meta.get("format_version") != FORMAT_VERSION:
            raise FeatureFileError(
                f"{path}: field 'format_version' is {meta.get('format_version')!r}; this version "
                f"of avsync-bench reads format {FORMAT_VERSION} (re-run `avsync-bench extract`)"
            )
        features = FeatureSet()
        for key in data.files:
            side, _, name = key.partition("__")
            if side in _SIDES and name:
                getattr(features, side)[name] = data[key]
    ff = FeatureFile(meta, features)
    check_identity(ff, expect or {}, path)
    return ff


def check_identity(ff: FeatureFile, expect: dict, path: str | Path) -> None:
    """Raise :class:`FeatureFileError` naming the first field of ``expect`` that ``ff`` lacks."""
    have = ff.identity()
    for key in ("protocol", "dataset"):
        if expect.get(key) is not None and have[key] != str(expect[key]):
            raise FeatureFileError(
                f"{path}: field '{key}' is {have[key]!r}, expected {str(expect[key])!r}"
            )
    for name, wanted in (expect.get("extractors") or {}).items():
        got = have["extractors"].get(name)
        if got is None:
            continue
        if got["version"] != wanted["version"]:
            raise FeatureFileError(
                f"{path}: field 'extractors.{name}.version' is {got['version']!r}, expected "
                f"{wanted['version']!r}"
            )
        if got["weights"] != wanted["weights"]:
            raise FeatureFileError(
                f"{path}: field 'extractors.{name}.weights' is {got['weights']}, expected "
                f"{wanted['weights']} (features from another weight set)"
            )


def frechet_features(data, metrics) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """FID / FVD features (GT, generated) of an opened ``features.npz`` for the metric keys in
    ``metrics``: the current layout (``gt__fid_inception``) or the first one (``fid_gt``)."""
    out = {}
    for key, extractor in _LEGACY_FRECHET.items():
        if key not in metrics:
            continue
        if f"gt__{extractor}" in data.files:
            out[key] = (data[f"gt__{extractor}"], data[f"gen__{extractor}"])
        elif f"{key}_gt" in data.files:
            out[key] = (data[f"{key}_gt"], data[f"{key}_gen"])
    return out
