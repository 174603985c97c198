"""AVSyncD (the reference model, ASVA ECCV 2024) and its image-to-video ablation as baselines.

Both run :class:`reference_model.pipeline.AVSyncDPipeline` in-process on each clip's conditioning
frame, 2 s audio (16 kHz) and class text, with a CPU ``torch.Generator`` reseeded per clip with
``inputs.seed`` (the official reseeds per clip: 0 for the evaluation). The GT clip's audio is
muxed, as the official evaluation does.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from baselines.base import Adapter, AdapterError, GenerationInput, GenerationOutput

__all__ = ["AVSyncDAdapter", "I2VDAdapter", "load_text_encodings"]


def load_text_encodings(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The official precomputed class texts (``class_clip_text_encodings_stable-diffusion-v1-5
    .pt``: text → (1, 77, 768) float), read with ``weights_only=True``; a bare tensor (the
    TheGreatestHits file) is returned as ``{"": tensor}`` and used for every class."""
    data = torch.load(Path(path), map_location="cpu", weights_only=True)
    if isinstance(data, torch.Tensor):
        return {"": data.reshape(1, 77, -1)}
    return {str(k): v.reshape(1, 77, -1) for k, v in data.items()}


class AVSyncDAdapter(Adapter):
    """AVSyncD with audio classifier-free guidance η (4.0 official; the paper reports 1/4/8).

    Args:
        pipeline: a ready :class:`AVSyncDPipeline` (e.g. ``from_official_checkpoint`` or
            ``tiny_random_pipeline``).
        text_embeddings: class text → (1, 77, D) states, or a single tensor used for every class
            (tiny mode); classes missing from the mapping are encoded with the pipeline's text
            encoder when it has one.
        audio_guidance: η.
        num_inference_steps: PNDM steps (50 official).
        description: extra JSON recorded in ``generation.json`` (checkpoint paths, …).
    """

    name = "avsyncd"
    use_audio = True

    def __init__(
        self,
        pipeline,
        text_embeddings: dict[str, torch.Tensor] | torch.Tensor | None = None,
        audio_guidance: float = 4.0,
        num_inference_steps: int = 50,
        description: dict | None = None,
    ):
        self.pipeline = pipeline
        self.text_embeddings = text_embeddings
        self.audio_guidance = audio_guidance
        self.num_inference_steps = num_inference_steps
        self.description = dict(description or {})

    def _text(self, inputs: GenerationInput) -> torch.Tensor | None:
        table = self.text_embeddings
        if isinstance(table, torch.Tensor):
            return table
        if table:
            for key in (inputs.class_text, inputs.class_folder, ""):
                if key in table:
                    return table[key]
        if self.pipeline.text_encoder is None:
            raise AdapterError(
                f"no text encoding for {inputs.class_text!r} and no text encoder to compute it"
            )
        return None

    def generate(self, inputs: GenerationInput) -> GenerationOutput:
        """(12, H, W, 3) uint8 frames at the clip size; frame 0 is the decoded conditioning
        latent (not the input frame itself, as the official output)."""
        spec = inputs.spec
        try:
            frames = self.pipeline(
                inputs.first_frame,
                inputs.audio if self.use_audio else None,
                text=inputs.class_text,
                text_embeddings=self._text(inputs),
                audio_guidance=self.audio_guidance,
                num_inference_steps=self.num_inference_steps,
                generator=torch.Generator().manual_seed(int(inputs.seed)),
                height=spec.height,
                width=spec.width,
                num_frames=spec.num_frames,
            )
        except (RuntimeError, ValueError) as exc:
            raise AdapterError(f"{type(exc).__name__}: {exc}") from exc
        return GenerationOutput(np.ascontiguousarray(frames))

    def config(self) -> dict:
        """Guidance, steps and the model description for ``generation.json``."""
        return {
            "model": "AVSyncD reference pipeline (reference_model.pipeline.AVSyncDPipeline)",
            "audio_conditioning": self.use_audio,
            "audio_guidance": self.audio_guidance if self.use_audio else None,
            "num_inference_steps": self.num_inference_steps,
            "scheduler": "PNDM (SD-1.5 config)",
            **self.description,
        }


class I2VDAdapter(AVSyncDAdapter):
    """The paper's image-to-video ablation: the same model with null-audio tokens (an all-zero
    normalised mel) in place of the clip's audio and no audio guidance."""

    name = "i2vd"
    use_audio = False
