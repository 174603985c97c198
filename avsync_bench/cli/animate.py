"""``avsync-bench animate``: animate one image with one audio file using the AVSyncD reference.

The model is either the released checkpoint (``--checkpoint``, ``--sd15``, ``--imagebind``) or a
tiny random-weight model (``--tiny-random``: golden tiny configs, rule weights, CPU-fast; its
text states are a deterministic random tensor because no CLIP tokenizer exists offline), which
only checks the plumbing: its frames are noise-like.
"""

from __future__ import annotations

from pathlib import Path

import typer

from avsync_bench.cli.common import console, exit_on_error
from avsync_bench.errors import OptionError

CHECKPOINT = typer.Option(
    None, help="Official checkpoint-N folder (or its modules/unet); only modules/unet is read."
)
SD15 = typer.Option(
    None, help="SD-1.5 diffusers folder (vae/, scheduler/, tokenizer/, text_encoder/)."
)
IMAGEBIND = typer.Option(None, help="imagebind_huge.pth (the audio branch is loaded).")
TEXT_ENCODINGS = typer.Option(
    None,
    help="Precomputed class texts (class_clip_text_encodings_stable-diffusion-v1-5.pt, "
    "text → (1,77,768)); else the SD-1.5 text encoder encodes the text.",
)
TINY_RANDOM = typer.Option(
    False, help="Tiny random-weight model on CPU (plumbing demo/test; no weights needed)."
)
AUDIO_GUIDANCE = typer.Option(4.0, help="Audio classifier-free guidance η (official 4.0).")
STEPS = typer.Option(50, help="PNDM denoising steps (official 50).")


def build_pipeline(checkpoint, sd15, imagebind, tiny_random: bool, text_encodings=None):
    """(pipeline, text table or tensor or None, description dict) for the CLI options.

    Raises:
        ValueError: neither ``--tiny-random`` nor all of checkpoint/sd15/imagebind.
    """
    import torch

    if tiny_random:
        from reference_model.pipeline import tiny_random_pipeline

        pipe, text = tiny_random_pipeline()
        return pipe, text, {"weights": "tiny random (rule weights, golden tiny configs)"}
    if not (checkpoint and sd15 and imagebind):
        raise OptionError(
            "--checkpoint: give --checkpoint, --sd15 and --imagebind, or --tiny-random"
        )
    from baselines.avsyncd import load_text_encodings
    from reference_model.pipeline import AVSyncDPipeline

    pipe = AVSyncDPipeline.from_official_checkpoint(sd15, checkpoint, imagebind)
    if torch.cuda.is_available():
        pipe.to("cuda")
    pipe.set_progress_bar_config(disable=True)
    table = load_text_encodings(text_encodings) if text_encodings else None
    description = {
        "checkpoint": str(checkpoint),
        "sd15": str(sd15),
        "imagebind": str(imagebind),
        "text_encodings": str(text_encodings) if text_encodings else None,
    }
    return pipe, table, description


def animate_command(
    image: Path = typer.Option(..., help="Conditioning image (resized/cropped to the size)."),
    audio: Path = typer.Option(..., help="Audio or video file; its centred 2 s are used."),
    category: str = typer.Option(..., help='Class text, e.g. "lions roaring".'),
    out: Path = typer.Option(..., help="Output .mp4 (12 frames at 6 fps + the 2 s audio)."),
    audio_guidance: float = AUDIO_GUIDANCE,
    steps: int = STEPS,
    seed: int = typer.Option(123, help="Generator seed (the official demo uses 123)."),
    size: int = typer.Option(256, help="Square frame size in pixels (multiple of 8)."),
    checkpoint: Path | None = CHECKPOINT,
    sd15: Path | None = SD15,
    imagebind: Path | None = IMAGEBIND,
    text_encodings: Path | None = TEXT_ENCODINGS,
    tiny_random: bool = TINY_RANDOM,
) -> None:
    """Animate IMAGE with AUDIO (AVSyncD): writes OUT, H.264 12 frames at 6 fps + AAC 16 kHz."""
    import numpy as np
    import torch
    from PIL import Image

    from avsync_bench.io.media import write_clip
    from reference_model.pipeline import load_audio_16k

    with exit_on_error():
        pipe, table, _ = build_pipeline(checkpoint, sd15, imagebind, tiny_random, text_encodings)
        if isinstance(table, dict):
            table = table.get(category, table.get(""))
            if table is None and pipe.text_encoder is None:
                raise OptionError(f"--category: {category!r} is not in {text_encodings}")
        wave = load_audio_16k(audio)
        frames = pipe(
            np.asarray(Image.open(image).convert("RGB")),
            wave,
            text=category,
            text_embeddings=table,
            audio_guidance=audio_guidance,
            num_inference_steps=steps,
            generator=torch.Generator().manual_seed(seed),
            height=size,
            width=size,
        )
        write_clip(out, frames, 6, np.clip(wave, -1.0, 1.0), 16000)
    console.print(
        f"wrote {out} ({len(frames)} frames at 6 fps, {wave.shape[1] / 16000:.2f} s audio)"
    )
