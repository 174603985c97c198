"""Static baseline: the conditioning frame repeated for every frame (paper Table 1, "Static")."""

from __future__ import annotations

import numpy as np

from baselines.base import Adapter, GenerationInput, GenerationOutput

__all__ = ["StaticAdapter"]


class StaticAdapter(Adapter):
    """Frame 0 repeated ``num_frames`` times: no motion at all, so a lower bound for sync metrics.

    The GT clip's audio is muxed (``GenerationOutput.audio`` is None).
    """

    name = "static"

    def generate(self, inputs: GenerationInput) -> GenerationOutput:
        """(num_frames, H, W, 3) uint8: ``inputs.first_frame`` repeated; never raises."""
        return GenerationOutput(np.repeat(inputs.first_frame[None], inputs.spec.num_frames, axis=0))
