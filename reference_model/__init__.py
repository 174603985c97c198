"""AVSyncD, the reference audio-conditioned animation model of ASVA (ECCV 2024).

Reimplemented on diffusers 0.42 from PROTOCOL.md §4 and paper §4, with the official module and
parameter names, so the official checkpoints and the golden fixtures load unchanged.
"""

import avsync_bench  # noqa: F401  (must stay first: the torch compatibility shim)
from reference_model.unet import (
    BLOCK_TYPES_2D_TO_3D,
    TRAINABLE_MARKERS,
    AudioUNet3DConditionModel,
    AudioUNet3DConditionOutput,
)

__all__ = [
    "BLOCK_TYPES_2D_TO_3D",
    "TRAINABLE_MARKERS",
    "AudioUNet3DConditionModel",
    "AudioUNet3DConditionOutput",
]
