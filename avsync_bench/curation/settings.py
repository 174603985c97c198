"""What AVSync-AC measures, with which settings, and the thresholds file (paper §3).

The measurement settings (:class:`CurationSettings`) and the network identity are part of every
thresholds file and of every resumable block's file name, so thresholds measured one way are never
applied to measurements made another way, and a rerun never reuses blocks measured differently.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from avsync_bench.errors import AVSyncBenchError
from avsync_bench.io.atomic import atomic_write_json

__all__ = [
    "CurationError",
    "CurationSettings",
    "Measurement",
    "MEASUREMENTS",
    "Thresholds",
    "DEFAULT_PERCENTILES",
    "write_json_atomic",
]


class CurationError(AVSyncBenchError, ValueError):
    """A user-facing curation error (bad input folder, thresholds file, options)."""


@dataclass(frozen=True)
class Measurement:
    """One per-window column of ``windows.parquet`` and which bounds it is filtered by.

    Attributes:
        name: column name.
        lower, upper: whether the paper drops windows below / above a threshold.
        unit: value unit, for the summary.
        description: what it is and where it comes from (paper §3).
    """

    name: str
    lower: bool
    upper: bool
    unit: str
    description: str


MEASUREMENTS: tuple[Measurement, ...] = (
    Measurement(
        "pixel_diff",
        True,
        True,
        "0-255 grey levels",
        "raw pixel difference: mean |frame(t+1) - frame(t)| over the window's analysis frames "
        "(6 fps, 224x224 centre crop, RGB); low = static, high = excessive motion",
    ),
    Measurement(
        "semantic_diff",
        True,
        True,
        "1 - cosine",
        "image-semantics difference: mean (1 - cos) of ImageBind-huge vision embeddings "
        "(ImageBind's frozen OpenCLIP ViT-H/14 image encoder) of consecutive analysis frames",
    ),
    Measurement(
        "audio_peak",
        True,
        False,
        "full scale (0-1)",
        "audio peak amplitude: max |waveform| over channels and samples of the window, "
        "at the file's own sample rate",
    ),
    Measurement(
        "ia",
        True,
        False,
        "cosine",
        "IA: mean over analysis frames of cos(ImageBind image, ImageBind audio of the "
        "window's centred 2 s)",
    ),
    Measurement(
        "it",
        True,
        False,
        "cosine",
        "IT: mean over analysis frames of cos(ImageBind image, ImageBind text of the class)",
    ),
    Measurement(
        "psync",
        True,
        False,
        "probability",
        "P_sync (paper Eq. 1 without tau): softmax over audio shifts of the AV-sync "
        "classifier's phi(centred 2 s video, shifted 2 s audio), at shift 0",
    ),
)
MEASUREMENT_NAMES = tuple(m.name for m in MEASUREMENTS)

#: Default percentiles of the reference distribution: the 5th for lower bounds, the 95th for
#: upper bounds (issue #13).
DEFAULT_PERCENTILES = {"lower": 5.0, "upper": 95.0}


@dataclass(frozen=True)
class CurationSettings:
    """How windows are cut and measured (paper §3, "Automatic Curation").

    Attributes:
        window: window length, s (3 s, paper).
        stride: window stride inside a scene, s (0.5 s, paper).
        analysis_fps: frames/s of the analysis grid (6, the benchmark's clip rate; the stride is
            a whole number of grid steps, so overlapping windows share frames).
        analysis_size: analysis frames are centre-cropped to a square and resized to this size
            (OpenCV INTER_AREA; :func:`avsync_bench.curation.measure.analysis_frames`).
        scene_threshold: PySceneDetect ``ContentDetector`` threshold (its default, 27.0).
        scene_min_len: ``ContentDetector(min_scene_len=...)`` in source frames (its default, 15).
        scene_width: frames are downscaled to this width (bilinear) before scene detection.
        sync_shifts: audio shifts of P_sync, s; 0.2 s apart as the classifier's training clips
            (PROTOCOL.md §3), all inside the window.
        sync_offset: where the classifier's 2 s video clip starts inside the window, s (centred).
    """

    window: float = 3.0
    stride: float = 0.5
    analysis_fps: int = 6
    analysis_size: int = 224
    scene_threshold: float = 27.0
    scene_min_len: int = 15
    scene_width: int = 256
    sync_shifts: tuple[float, ...] = (-0.4, -0.2, 0.0, 0.2, 0.4)
    sync_offset: float = 0.5
    measurements: tuple[str, ...] = field(default=MEASUREMENT_NAMES)

    def __post_init__(self):
        steps = self.stride * self.analysis_fps
        if abs(steps - round(steps)) > 1e-9 or abs(self.window * self.analysis_fps % 1) > 1e-9:
            raise CurationError("stride and window must be whole numbers of analysis frames")
        if 0.0 not in self.sync_shifts:
            raise CurationError("sync_shifts must contain 0.0 (the synchronised pair)")
        lo = self.sync_offset + min(self.sync_shifts)
        hi = self.sync_offset + 2.0 + max(self.sync_shifts)
        if lo < 0 or hi > self.window + 1e-9:
            raise CurationError("every shifted 2 s audio window must lie inside the window")

    @property
    def frames_per_window(self) -> int:
        """Analysis frames per window (18)."""
        return int(round(self.window * self.analysis_fps))

    @property
    def stride_frames(self) -> int:
        """Analysis frames per stride (3)."""
        return int(round(self.stride * self.analysis_fps))

    def to_dict(self) -> dict:
        """JSON-ready settings."""
        data = asdict(self)
        data["sync_shifts"] = list(self.sync_shifts)
        data["measurements"] = list(self.measurements)
        return data

    def digest(self, networks: dict) -> str:
        """sha256 of the settings and the networks' identity (12 hex digits)."""
        blob = json.dumps({"settings": self.to_dict(), "networks": networks}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON through a temporary file and a rename (never a half-written file)."""
    atomic_write_json(path, data, indent=1, sort_keys=True, allow_nan=False)


def _finite(value) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


@dataclass
class Thresholds:
    """Per-measurement bounds, and where they came from.

    Attributes:
        bounds: ``{measurement: {"lower": float|None, "upper": float|None}}``; None = no bound.
        percentiles: the reference percentiles the bounds were set at.
        reference: what they were measured on (path, video and window counts), or a note.
        settings: :meth:`CurationSettings.to_dict` of the measurements.
        networks: identity of the networks (weights sha256s, stand-in flags, or ``tiny``).
    """

    bounds: dict[str, dict[str, float | None]]
    percentiles: dict[str, float]
    reference: dict
    settings: dict
    networks: dict

    @classmethod
    def from_reference(
        cls,
        values: dict[str, list[float]],
        percentiles: dict[str, float],
        reference: dict,
        settings: CurationSettings,
        networks: dict,
    ) -> Thresholds:
        """Each bound at its percentile of the reference windows' values (paper §3; issue #13).

        Args:
            values: per measurement, the finite values of every reference window.
            percentiles: ``{"lower": p, "upper": q}`` in [0, 100] (numpy's linear percentile).

        Raises:
            CurationError: a measurement has no finite reference value.
        """
        import numpy as np

        bounds = {}
        for m in MEASUREMENTS:
            data = np.asarray([v for v in values.get(m.name, []) if math.isfinite(v)], float)
            if data.size == 0:
                raise CurationError(f"reference {reference.get('path')}: no value of {m.name}")
            bounds[m.name] = {
                "lower": float(np.percentile(data, percentiles["lower"])) if m.lower else None,
                "upper": float(np.percentile(data, percentiles["upper"])) if m.upper else None,
            }
        return cls(bounds, dict(percentiles), reference, settings.to_dict(), networks)

    def to_dict(self) -> dict:
        """JSON-ready (no NaN/inf)."""
        return {
            "format": "avsync-bench curation thresholds 1",
            "thresholds": {
                k: {side: _finite(v) for side, v in b.items()} for k, b in self.bounds.items()
            },
            "percentiles": self.percentiles,
            "reference": self.reference,
            "settings": self.settings,
            "networks": self.networks,
        }

    def save(self, path: str | Path) -> None:
        """Write the thresholds file (atomic)."""
        write_json_atomic(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Thresholds:
        """Read a file written by :meth:`save`.

        Raises:
            CurationError: missing, not JSON, or lacking a measurement.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise CurationError(f"{path}: thresholds file not found") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise CurationError(f"{path}: not a thresholds JSON file ({exc})") from None
        bounds = data.get("thresholds") if isinstance(data, dict) else None
        missing = [m for m in MEASUREMENT_NAMES if not isinstance((bounds or {}).get(m), dict)]
        if missing:
            raise CurationError(f"{path}: no thresholds for {', '.join(missing)}")
        return cls(
            {k: dict(bounds[k]) for k in MEASUREMENT_NAMES},
            data.get("percentiles", {}),
            data.get("reference", {}),
            data.get("settings", {}),
            data.get("networks", {}),
        )

    def check_compatible(self, settings: CurationSettings, networks: dict, source: str) -> None:
        """Refuse thresholds measured with other settings or other networks.

        Raises:
            CurationError: naming what differs.
        """
        if self.settings and self.settings != settings.to_dict():
            diff = sorted(
                k for k in settings.to_dict() if self.settings.get(k) != settings.to_dict()[k]
            )
            raise CurationError(f"{source}: measured with other settings ({', '.join(diff)})")
        if self.networks and self.networks != networks:
            raise CurationError(
                f"{source}: measured with other networks ({self.networks}) than this run "
                f"({networks}); calibrate again with the same --weights-dir"
            )
