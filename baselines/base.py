"""The adapter interface shared by every baseline."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from avsync_bench.protocol import ClipSpec

__all__ = ["GenerationInput", "Adapter", "AdapterError"]


class AdapterError(RuntimeError):
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
    """

    name: str
    first_frame: np.ndarray
    audio: np.ndarray
    class_text: str
    class_folder: str
    spec: ClipSpec
    seed: int


class Adapter(ABC):
    """A baseline generator.

    Subclasses set ``name`` and implement :meth:`generate`; :meth:`config` returns what
    ``generation.json`` records about the run (checkpoints, guidance, …).
    """

    name: ClassVar[str]

    @abstractmethod
    def generate(self, inputs: GenerationInput) -> np.ndarray:
        """Return (spec.num_frames, H, W, 3) uint8 frames at ``spec.fps``.

        Raises:
            AdapterError: generation failed for this clip.
        """

    def config(self) -> dict:
        """JSON-ready description of the adapter's settings."""
        return {}
