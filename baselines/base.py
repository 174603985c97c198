"""The adapter interface shared by every baseline."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from avsync_bench.errors import AVSyncBenchError
from avsync_bench.protocol import DEFAULT_MODE, ClipSpec, ProtocolMode

__all__ = ["GenerationInput", "GenerationOutput", "Adapter", "AdapterError"]


class AdapterError(AVSyncBenchError, RuntimeError):
    """A baseline failed on one clip (the runner records it and continues)."""


@dataclass(frozen=True)
class GenerationInput:
    """What a generator receives for one test clip.

    Attributes:
        name: relative output name (``<class>/<stem>_clip-NN.mp4``).
        first_frame: (H, W, 3) uint8 RGB, the conditioning frame (frame 0 of the GT clip) at the
            clip size.
        audio: (channels, n) float32 in [-1, 1] at ``spec.sample_rate`` Hz, the clip's 2 s audio.
        class_text: the class's conditioning text (``class_mapping.json``).
        class_folder: the raw class folder string.
        spec: clip spec (size, 12 frames, 6 fps, 16 kHz).
        seed: the seed for this clip.
        mode: the run's protocol mode; adapters that resample a generator's own video to 12
            frames at 6 fps use its frame-picking rule.
    """

    name: str
    first_frame: np.ndarray
    audio: np.ndarray
    class_text: str
    class_folder: str
    spec: ClipSpec
    seed: int
    mode: ProtocolMode = DEFAULT_MODE


@dataclass(frozen=True)
class GenerationOutput:
    """What an adapter returns for one clip.

    Attributes:
        frames: (spec.num_frames, spec.height, spec.width, 3) uint8 RGB at ``spec.fps``.
        audio: None to mux the GT clip's audio (the default, as the official evaluation does), or
            (channels, n) float32 in [-1, 1] at ``spec.sample_rate`` Hz, 1 or 2 channels, to mux
            this audio instead (e.g. a generator's own soundtrack); ``n`` longer than the clip is
            centre-cropped to ``spec.num_samples``.
    """

    frames: np.ndarray
    audio: np.ndarray | None = None


class Adapter(ABC):
    """A baseline generator.

    Subclasses set ``name`` and implement :meth:`generate`; :meth:`config` returns what
    ``generation.json`` records about the run (checkpoints, guidance, …); :meth:`close` releases
    whatever the adapter holds (subprocesses, temporary files) and is called once by the runner
    after the last clip, also when the run fails or is interrupted.
    """

    name: ClassVar[str]

    @abstractmethod
    def generate(self, inputs: GenerationInput) -> GenerationOutput | np.ndarray:
        """Generate one clip.

        Returns:
            A :class:`GenerationOutput`, or a bare (spec.num_frames, H, W, 3) uint8 array of
            frames at ``spec.fps`` (the same as ``GenerationOutput(frames)``: the GT clip's audio
            is muxed).

        Raises:
            AdapterError: generation failed for this clip.
        """

    def config(self) -> dict:
        """JSON-ready description of the adapter's settings."""
        return {}

    def close(self) -> None:  # noqa: B027  (optional hook, deliberately a no-op by default)
        """Release resources held across clips; the default does nothing."""
