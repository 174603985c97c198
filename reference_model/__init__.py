"""AVSyncD, the reference audio-conditioned animation model of ASVA (ECCV 2024).

Reimplemented on diffusers 0.42 from PROTOCOL.md §4 and paper §4, with the official module and
parameter names, so the official checkpoints and the golden fixtures load unchanged:

- :class:`AudioUNet3DConditionModel`: the denoiser (``checkpoint-N/modules/unet``).
- :class:`ImageBindSegmaskAudioEncoder`: ImageBind audio tokens + per-frame segment masks.
"""

import avsync_bench  # noqa: F401  (must stay first: the torch compatibility shim)
from reference_model.audio_encoder import (
    IMAGEBIND_HUGE_AUDIO_CONFIG,
    TINY_AUDIO_CONFIG,
    ImageBindSegmaskAudioEncoder,
    ImageBindSegmaskAudioEncoderOutput,
    repeat_over_frames,
    segment_token_mask,
    window_token_indices,
)
from reference_model.unet import (
    BLOCK_TYPES_2D_TO_3D,
    TRAINABLE_MARKERS,
    AudioUNet3DConditionModel,
    AudioUNet3DConditionOutput,
)

__all__ = [
    "BLOCK_TYPES_2D_TO_3D",
    "IMAGEBIND_HUGE_AUDIO_CONFIG",
    "TINY_AUDIO_CONFIG",
    "TRAINABLE_MARKERS",
    "AudioUNet3DConditionModel",
    "AudioUNet3DConditionOutput",
    "ImageBindSegmaskAudioEncoder",
    "ImageBindSegmaskAudioEncoderOutput",
    "repeat_over_frames",
    "segment_token_mask",
    "window_token_indices",
]
