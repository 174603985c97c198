"""``avsync-bench generate ADAPTER``: write a baseline's predictions in the benchmark format."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from avsync_bench.cli.common import console, exit_on_error, progress_bars
from avsync_bench.options import check_dataset, check_protocol

app = typer.Typer(
    help="Generate a baseline's predictions for a dataset's test clips: static (frame 0 repeated), "
    "command (any program run once per clip), codi (CoDi in its own environment), aadiff "
    "(training-free on SD-1.5), avsyncd (the reference model), i2vd (it without audio).",
    no_args_is_help=True,
)

# Options every adapter shares (the same objects are used by each command).
OUT = typer.Option(..., help="Output predictions folder (created; existing valid clips are kept).")
DATASET = typer.Option("avsync15", help="avsync15 | landscapes | thegreatesthits.")
DATA_ROOT = typer.Option(None, help="Dataset root (default: datasets/<Name>).")
PROTOCOL = typer.Option(
    "official",
    help="Clip protocol: how GT clips are cut, and how a generator's own video is resampled to "
    "12 frames at 6 fps (official: first frame with pts >= target; corrected: nearest frame).",
)
LIMIT = typer.Option(None, help="Only the first N test videos.")
CLASSES = typer.Option(None, help="Only these comma-separated class folders.")

_OUTPUT_NOTE = (
    "Writes <out>/<class>/<stem>_clip-{00,01,02}.mp4 (H.264, 12 frames at 6 fps, the clip size, "
    "AAC 16 kHz) and generation.json (adapter settings, seed, failures); existing valid files "
    "are skipped, so an interrupted run resumes. A clip that fails is reported at the end and "
    "the exit code is 1."
)


def _preflight(out: Path, device: str | None = None) -> None:
    """--out writable and --device present, before any model is built or clip decoded."""
    from avsync_bench.preflight import preflight

    with exit_on_error():
        preflight({"--out": out}, device=device)


def _run(adapter, out, dataset, data_root, protocol, seed, limit, classes) -> None:
    from baselines.runner import run_adapter

    _preflight(out)
    with exit_on_error():
        protocol = check_protocol(protocol)
        check_dataset(dataset)
        with progress_bars() as progress:
            report = run_adapter(
                adapter,
                out,
                dataset=dataset,
                data_root=data_root,
                mode=protocol,
                seed=seed,
                limit=limit,
                classes=[c.strip() for c in classes.split(",")] if classes else None,
                progress=progress,
            )
    console.print(
        f"{adapter.name}: {len(report.written)} written, {len(report.skipped)} already present, "
        f"{len(report.failed)} failed → {out}"
    )
    for name, reason in report.failed.items():
        console.print(f"[red]failed[/] {escape(name)}: {escape(reason)}", highlight=False)
    if report.failed:
        raise typer.Exit(1)


@app.command(
    "static",
    help=f"""Static baseline: each clip's conditioning frame, repeated.

The conditioning frame (frame 0 of the GT clip) is repeated 12 times, with the clip's audio.

{_OUTPUT_NOTE}""",
)
def static_command(
    out: Path = OUT,
    dataset: str = DATASET,
    data_root: Path | None = DATA_ROOT,
    protocol: str = PROTOCOL,
    seed: int = typer.Option(0, help="Seed recorded in generation.json (Static ignores it)."),
    limit: int | None = LIMIT,
    classes: str | None = CLASSES,
) -> None:
    from baselines.static import StaticAdapter

    _run(StaticAdapter(), out, dataset, data_root, protocol, seed, limit, classes)


@app.command(
    "command",
    help=f"""Run any generator program once per test clip.

For each clip the conditioning frame is written to a temporary PNG ({{image}}, the clip size,
256x256 on AVSync15) and the clip's 2 s audio to a temporary 16-bit WAV at 16 kHz ({{audio}});
the command must write a video to {{out}} (any fps, size and codec, audio optional). Other
placeholders: {{text}} (class text, one argument), {{seed}}, {{class_folder}}, {{name}} (output
name without .mp4). The template is split like a shell command line and run without a shell.

The video is normalised to the prediction format: 12 frames picked at 6 fps from t=0 by the
--protocol rule, centre-cropped and resized to the clip size. A command that exits non-zero, or
writes fewer than 12 frames, no readable video or a video that ends before the 2 s clip does
(more than one picked frame past its end), fails that clip with its stderr tail.

Example: --cmd 'python my_gen.py --image {{image}} --audio {{audio}} --text {{text}} --out {{out}}'

{_OUTPUT_NOTE}""",
)
def command_command(
    cmd: str = typer.Option(
        ..., "--cmd", help="Command template with {image} {audio} {text} {out} {seed} ..."
    ),
    keep_audio: bool = typer.Option(
        False,
        "--keep-audio/--gt-audio",
        help="Mux the generator's own audio (first 2 s, resampled to 16 kHz; the command must "
        "write an audio track) instead of the GT clip's (default).",
    ),
    timeout: float | None = typer.Option(None, help="Seconds one clip may run (default: none)."),
    out: Path = OUT,
    dataset: str = DATASET,
    data_root: Path | None = DATA_ROOT,
    protocol: str = PROTOCOL,
    seed: int = typer.Option(0, help="Seed passed to the command as {seed} (same for every clip)."),
    limit: int | None = LIMIT,
    classes: str | None = CLASSES,
) -> None:
    from baselines.command import CommandAdapter

    _preflight(out)
    with exit_on_error():
        adapter = CommandAdapter(cmd, keep_audio=keep_audio, timeout=timeout)
    _run(adapter, out, dataset, data_root, protocol, seed, limit, classes)


@app.command(
    "codi",
    help=f"""CoDi (Tang et al., NeurIPS 2023), run in its own environment.

Starts baselines/codi_driver.py with CoDi's Python (--codi-python) and the CoDi checkout
(--codi-repo, i-Code/i-Code-V3) on its path, loads the model once (a GPU is expected) and
generates each clip with model.inference(xtype='video'), conditioned on the clip's
conditioning frame, class text and 2 s audio (16 kHz mono). CoDi's --num-frames frames
(spanning 2 s) are normalised like the command adapter's output: 12 frames at 6 fps by the
--protocol rule from t=0, cropped and resized to the clip size; the GT clip's audio is muxed.
See README, "Baselines", for the environment setup.

{_OUTPUT_NOTE}""",
)
def codi_command(
    codi_repo: Path = typer.Option(..., help="CoDi checkout: i-Code/i-Code-V3 (or the clone)."),
    codi_python: Path = typer.Option(..., help="Python of CoDi's environment."),
    checkpoints: Path | None = typer.Option(
        None, help="Checkpoint folder (default: <codi-repo>/checkpoints)."
    ),
    ckpt: str = typer.Option(
        "CoDi_encoders.pth,CoDi_text_diffuser.pth,CoDi_audio_diffuser_m.pth,"
        "CoDi_video_diffuser_8frames.pth",
        help="Comma-separated checkpoint files loaded into model_module(pth=...).",
    ),
    ddim_steps: int = typer.Option(50, help="DDIM steps (CoDi's default)."),
    scale: float = typer.Option(7.5, help="Classifier-free guidance scale (CoDi's default)."),
    num_frames: int = typer.Option(
        8, help="Frames CoDi generates over 2 s (8: the released 8-frame video checkpoint)."
    ),
    image_size: int = typer.Option(256, help="CoDi's square output size in pixels."),
    conditions: str = typer.Option(
        "image,text,audio", help="CoDi conditions, comma-separated (subset of image,text,audio)."
    ),
    fp16: bool = typer.Option(False, help="Load CoDi in half precision (model_module(fp16=True))."),
    timeout: float | None = typer.Option(
        None, help="Seconds one clip may take after the model is loaded (default: none)."
    ),
    out: Path = OUT,
    dataset: str = DATASET,
    data_root: Path | None = DATA_ROOT,
    protocol: str = PROTOCOL,
    seed: int = typer.Option(0, help="Seed of every clip (torch, numpy, random in the driver)."),
    limit: int | None = LIMIT,
    classes: str | None = CLASSES,
) -> None:
    from baselines.codi import CoDiAdapter

    _preflight(out)
    with exit_on_error():
        adapter = CoDiAdapter(
            codi_repo,
            codi_python,
            checkpoints=checkpoints,
            checkpoint_files=[c.strip() for c in ckpt.split(",") if c.strip()],
            ddim_steps=ddim_steps,
            scale=scale,
            num_frames=num_frames,
            image_size=image_size,
            conditions=[c.strip() for c in conditions.split(",") if c.strip()],
            fp16=fp16,
            timeout=timeout,
        )
    _run(adapter, out, dataset, data_root, protocol, seed, limit, classes)


def _avsyncd_run(adapter_cls, checkpoint, sd15, imagebind, text_encodings, tiny_random,
                 audio_guidance, steps, out, dataset, data_root, protocol, seed, limit, classes,
                 weights_dir=None):  # fmt: skip
    from avsync_bench.cli.animate import build_pipeline

    _preflight(out)
    with exit_on_error():
        pipe, table, description = build_pipeline(
            checkpoint, sd15, imagebind, tiny_random, text_encodings, dataset, weights_dir
        )
        adapter = adapter_cls(
            pipe,
            text_embeddings=table,
            audio_guidance=audio_guidance,
            num_inference_steps=steps,
            description=description,
        )
    _run(adapter, out, dataset, data_root, protocol, seed, limit, classes)


_AVSYNCD_NOTE = (
    "Model: the released checkpoint (--checkpoint checkpoint-N, --sd15, --imagebind, each "
    "defaulting to the weights store's avsyncd_<dataset>, stable_diffusion_v1_5, imagebind_huge; class "
    "texts from --text-encodings, else the SD-1.5 text encoder) or --tiny-random (a tiny "
    "random-weight model for plumbing tests). Runs in-process (GPU when available), fp32, PNDM."
)


# Model options shared by `avsyncd` and `i2vd`.
CHECKPOINT = typer.Option(
    None, help="Official checkpoint-N folder (default: avsyncd_<dataset> from the weights store)."
)
SD15 = typer.Option(
    None, help="SD-1.5 diffusers folder (default: stable_diffusion_v1_5 from the weights store)."
)
IMAGEBIND = typer.Option(
    None, help="imagebind_huge.pth (default: imagebind_huge from the weights store)."
)
WEIGHTS_DIR = typer.Option(None, help="Weights store (default: $AVSYNC_BENCH_HOME/weights).")
TEXT_ENCODINGS = typer.Option(
    None, help="class_clip_text_encodings_stable-diffusion-v1-5.pt (text → (1,77,768))."
)
TINY_RANDOM = typer.Option(False, help="Tiny random-weight model (no weights needed).")
PNDM_STEPS = typer.Option(50, help="PNDM steps (official 50).")


@app.command(
    "avsyncd",
    help=f"""AVSyncD, the reference audio-conditioned animation model (in-process).

Each clip's conditioning frame, 2 s audio and class text go through AVSyncDPipeline with audio
classifier-free guidance (--audio-guidance) and a generator reseeded per clip with --seed.
{_AVSYNCD_NOTE}

{_OUTPUT_NOTE}""",
)
def avsyncd_command(
    checkpoint: Path | None = CHECKPOINT,
    sd15: Path | None = SD15,
    imagebind: Path | None = IMAGEBIND,
    text_encodings: Path | None = TEXT_ENCODINGS,
    tiny_random: bool = TINY_RANDOM,
    weights_dir: Path | None = WEIGHTS_DIR,
    audio_guidance: float = typer.Option(4.0, help="Audio guidance η (official 4.0)."),
    steps: int = PNDM_STEPS,
    out: Path = OUT,
    dataset: str = DATASET,
    data_root: Path | None = DATA_ROOT,
    protocol: str = PROTOCOL,
    seed: int = typer.Option(0, help="Generator seed of every clip (official evaluation: 0)."),
    limit: int | None = LIMIT,
    classes: str | None = CLASSES,
) -> None:
    from baselines.avsyncd import AVSyncDAdapter

    _avsyncd_run(AVSyncDAdapter, checkpoint, sd15, imagebind, text_encodings, tiny_random,
                 audio_guidance, steps, out, dataset, data_root, protocol, seed, limit, classes,
                 weights_dir)  # fmt: skip


@app.command(
    "i2vd",
    help=f"""I2VD: AVSyncD without audio (the paper's image-to-video ablation).

Same model and options as `generate avsyncd`, but the audio tokens are those of an all-zero
normalised mel (null audio) and there is no audio guidance. {_AVSYNCD_NOTE}

{_OUTPUT_NOTE}""",
)
def i2vd_command(
    checkpoint: Path | None = CHECKPOINT,
    sd15: Path | None = SD15,
    imagebind: Path | None = IMAGEBIND,
    text_encodings: Path | None = TEXT_ENCODINGS,
    tiny_random: bool = TINY_RANDOM,
    weights_dir: Path | None = WEIGHTS_DIR,
    steps: int = PNDM_STEPS,
    out: Path = OUT,
    dataset: str = DATASET,
    data_root: Path | None = DATA_ROOT,
    protocol: str = PROTOCOL,
    seed: int = typer.Option(0, help="Generator seed of every clip."),
    limit: int | None = LIMIT,
    classes: str | None = CLASSES,
) -> None:
    from baselines.avsyncd import I2VDAdapter

    _avsyncd_run(I2VDAdapter, checkpoint, sd15, imagebind, text_encodings, tiny_random,
                 1.0, steps, out, dataset, data_root, protocol, seed, limit, classes,
                 weights_dir)  # fmt: skip


@app.command(
    "aadiff",
    help=f"""AADiff (Lee et al., CVPR 2023 workshop), reimplemented on Stable Diffusion 1.5.

Training-free image animation (I+T+A): the conditioning frame is encoded with the VAE, noised to
--strength (SDEdit) from one shared seed and denoised once per frame (12 frames); in every
cross-attention layer the softmax attention of the class text's sound-source tokens is multiplied
by 1 + gain * a_f, a_f the frame's audio RMS (1/6 s windows, centred moving average over
--smooth-window frames, normalised by the clip's maximum). Frame 0 is the conditioning frame's
VAE round trip. See README, "Baselines", "AADiff", for every choice.

Weights: --sd15 DIR (a diffusers Stable Diffusion 1.5 folder), else stable_diffusion_v1_5 from
the weights store; --tiny-random builds a tiny random SD for CPU smoke runs (no download).

{_OUTPUT_NOTE}""",
)
def aadiff_command(
    sd15: Path | None = typer.Option(
        None, "--sd15", help="Stable Diffusion 1.5 diffusers folder (default: weights store)."
    ),
    weights_dir: Path | None = typer.Option(None, help="Weights store (default: the user's)."),
    tiny_random: bool = typer.Option(
        False, "--tiny-random", help="Tiny random-weight SD (tests / CPU smoke runs)."
    ),
    strength: float = typer.Option(0.6, help="SDEdit strength: fraction of the steps run."),
    steps: int = typer.Option(50, help="DDIM steps of the full schedule."),
    guidance: float = typer.Option(7.5, help="Classifier-free guidance scale."),
    gain: float = typer.Option(2.0, help="Loudest frame's attention scale minus 1."),
    smooth_window: int = typer.Option(3, help="Amplitude moving-average window (odd, frames)."),
    size: int | None = typer.Option(
        None, help="Short side of the generation size (default 512; 64 with --tiny-random)."
    ),
    device: str | None = typer.Option(None, help="torch device (default: cuda if available)."),
    fp16: bool = typer.Option(False, help="Half precision (CUDA only)."),
    out: Path = OUT,
    dataset: str = DATASET,
    data_root: Path | None = DATA_ROOT,
    protocol: str = PROTOCOL,
    seed: int = typer.Option(0, help="Seed of the shared initial noise (same for every clip)."),
    limit: int | None = LIMIT,
    classes: str | None = CLASSES,
) -> None:
    import torch

    from baselines.aadiff import AADiffAdapter, build_tiny_sd, load_sd15

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    _preflight(out, device)
    with exit_on_error():
        if tiny_random:
            model = build_tiny_sd()
            for module in (model.unet, model.vae, model.text_encoder):
                module.to(device)
        else:
            if sd15 is None:
                from avsync_bench.weights.store import WeightStore

                sd15 = WeightStore(weights_dir).resolve("stable_diffusion_v1_5").path
            dtype = torch.float16 if fp16 and device.startswith("cuda") else torch.float32
            model = load_sd15(sd15, device=device, dtype=dtype)
        adapter = AADiffAdapter(
            model,
            strength=strength,
            steps=steps,
            guidance=guidance,
            gain=gain,
            smooth_window=smooth_window,
            size=size or (64 if tiny_random else 512),
            device=device,
        )
    _run(adapter, out, dataset, data_root, protocol, seed, limit, classes)
