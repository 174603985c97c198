"""Run CoDi (Tang et al., NeurIPS 2023; github.com/microsoft/i-Code, folder i-Code-V3) on jobs.

This file is executed **with CoDi's own Python** (its conda environment), not avsync-bench's: it
imports only the standard library at the top, and numpy, torch, PIL, PyAV and CoDi's
``core.models.model_module_infer`` once it runs. ``avsync-bench generate codi`` starts it once and
feeds it one job per clip (:mod:`baselines.codi`); it can also be run by hand on a job file::

    /path/to/envs/CoDi/bin/python codi_driver.py --codi-repo ~/i-Code/i-Code-V3 --jobs jobs.jsonl

The model is loaded once, with CoDi's documented inference API (README and ``demo.ipynb``)::

    model = model_module(data_dir=CHECKPOINTS, pth=[...4 checkpoint files...], fp16=False)
    model.inference(xtype=['video'], condition=[image, text, audio],
                    condition_types=['image', 'text', 'audio'], n_samples=1, image_size=256,
                    ddim_steps=50, scale=7.5, num_frames=8)

Job lines (JSON, one per line, on stdin or in ``--jobs``)::

    {"id": "c1", "image": "/abs/frame.png", "audio": "/abs/clip.wav", "text": "dog barking",
     "out": "/abs/out.mp4", "seed": 0, "num_frames": 8, "fps": 4.0}

``image``: RGB PNG (CoDi's own ``regularize_image`` resizes it to 512x512 and, as in CoDi, flips
it horizontally with probability 0.5, seeded); ``audio``: 16-bit PCM WAV at 16 kHz, averaged to
mono as CoDi's demo does; ``text``: the prompt; ``fps`` defaults to ``num_frames / 2`` (CoDi's
clips span 2 s). The driver seeds ``random``, numpy and torch with ``seed`` before each job and
writes the ``num_frames`` frames (``image_size`` squared) as an H.264 mp4 without audio.

Messages go to the original stdout, one JSON object per line: ``{"event": "ready", ...}`` once the
model is loaded (``{"event": "fatal", "error": ...}`` and exit code 2 when it cannot be), then
per job ``{"id", "ok": true, "out", "frames", "fps", "seconds"}`` or ``{"id", "ok": false,
"error"}``. Everything else that prints to stdout (CoDi's own prints) is redirected to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import traceback
import wave
from fractions import Fraction

DRIVER_VERSION = "1"
CLIP_SECONDS = 2.0
SAMPLE_RATE = 16000
DEFAULT_CHECKPOINTS = [
    "CoDi_encoders.pth",
    "CoDi_text_diffuser.pth",
    "CoDi_audio_diffuser_m.pth",
    "CoDi_video_diffuser_8frames.pth",
]
CHECKPOINT_URL = "https://huggingface.co/ZinengTang/CoDi/resolve/main/"
CONDITIONS = ("image", "text", "audio")


def resolve_repo(path):
    """The CoDi code folder: ``path`` itself or its ``i-Code-V3`` subfolder, whichever holds
    ``core/models/model_module_infer.py``; raises ValueError when neither does."""
    path = os.path.abspath(os.path.expanduser(str(path)))
    for candidate in (path, os.path.join(path, "i-Code-V3")):
        if os.path.isfile(os.path.join(candidate, "core", "models", "model_module_infer.py")):
            return candidate
    raise ValueError(
        f"{path}: not a CoDi checkout (no core/models/model_module_infer.py here or in "
        "i-Code-V3/; clone https://github.com/microsoft/i-Code)"
    )


def parse_args(argv=None):
    """Command-line options of the driver."""
    parser = argparse.ArgumentParser(description="Run CoDi video generation on JSON job lines.")
    parser.add_argument("--codi-repo", required=True, help="CoDi folder (i-Code/i-Code-V3).")
    parser.add_argument(
        "--checkpoints", default=None, help="Checkpoint folder (<repo>/checkpoints)."
    )
    parser.add_argument(
        "--ckpt", nargs="+", default=DEFAULT_CHECKPOINTS, help="Checkpoint files to load."
    )
    parser.add_argument("--ddim-steps", type=int, default=50)
    parser.add_argument("--scale", type=float, default=7.5, help="Classifier-free guidance scale.")
    parser.add_argument("--image-size", type=int, default=256, help="Output frame size (square).")
    parser.add_argument(
        "--conditions", default=",".join(CONDITIONS), help="Comma-separated, in this order."
    )
    parser.add_argument("--fp16", action="store_true", help="model_module(fp16=True).")
    parser.add_argument("--jobs", default=None, help="Job file (JSON lines); default stdin.")
    args = parser.parse_args(argv)
    args.codi_repo = resolve_repo(args.codi_repo)
    args.checkpoints = os.path.abspath(
        args.checkpoints or os.path.join(args.codi_repo, "checkpoints")
    )
    args.conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    bad = [c for c in args.conditions if c not in CONDITIONS]
    if bad or not args.conditions or len(set(args.conditions)) != len(args.conditions):
        parser.error("--conditions: a non-repeating subset of image,text,audio")
    return args


def read_wav(path):
    """(channels, n) float32 in [-1, 1] and the rate (Hz) of a 16-bit PCM WAV."""
    import numpy as np

    with wave.open(path, "rb") as handle:
        if handle.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        channels, rate = handle.getnchannels(), handle.getframerate()
        data = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
    return (data.reshape(-1, channels).T / 32768.0).astype(np.float32), rate


def write_mp4(path, frames, fps):
    """Write (H, W, 3) uint8 RGB frames as an H.264 mp4 (PyAV), cropping odd sizes to even."""
    import numpy as np

    try:
        import av
    except ImportError as exc:
        raise RuntimeError("PyAV is missing in the CoDi environment: pip install av") from exc
    height, width = frames[0].shape[0] // 2 * 2, frames[0].shape[1] // 2 * 2
    partial = path + ".partial.mp4"
    with av.open(partial, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "10"}
        for image in frames:
            image = np.ascontiguousarray(image[:height, :width, :3])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    os.replace(partial, path)


def seed_everything(seed):
    """Seed random, numpy and torch (CPU and CUDA)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def load_model(args):
    """CoDi's ``model_module`` with the checkpoints loaded, on the GPU when there is one."""
    import torch

    missing = [c for c in args.ckpt if not os.path.isfile(os.path.join(args.checkpoints, c))]
    if missing:
        raise FileNotFoundError(
            "missing checkpoint(s) in {}: {} (download from {})".format(
                args.checkpoints, ", ".join(missing), CHECKPOINT_URL
            )
        )
    sys.path.insert(0, args.codi_repo)
    os.chdir(args.codi_repo)  # CoDi reads configs/ relative to its folder
    from core.models.model_module_infer import model_module

    model = model_module(data_dir=args.checkpoints, pth=list(args.ckpt), fp16=args.fp16)
    if torch.cuda.is_available():
        model = model.cuda()
    else:
        print("codi_driver: no CUDA device; CoDi's inference code expects one", file=sys.stderr)
    return model.eval()


def run_job(model, job, args):
    """Generate one job's video; returns (frame count, fps)."""
    import numpy as np
    import torch
    from PIL import Image

    num_frames = int(job.get("num_frames", 8))
    fps = float(job.get("fps") or num_frames / CLIP_SECONDS)
    seed_everything(int(job.get("seed", 0)))
    values = {}
    if "image" in args.conditions:
        values["image"] = Image.open(job["image"]).convert("RGB")
    if "text" in args.conditions:
        values["text"] = str(job["text"])
    if "audio" in args.conditions:
        audio, rate = read_wav(job["audio"])
        if rate != SAMPLE_RATE:
            raise ValueError("{}: {} Hz, expected {}".format(job["audio"], rate, SAMPLE_RATE))
        values["audio"] = torch.from_numpy(np.ascontiguousarray(audio.mean(axis=0)))
    with torch.no_grad():
        outputs = model.inference(
            xtype=["video"],
            condition=[values[c] for c in args.conditions],
            condition_types=list(args.conditions),
            n_samples=1,
            image_size=args.image_size,
            ddim_steps=args.ddim_steps,
            scale=args.scale,
            num_frames=num_frames,
        )
    video = outputs[0][0]  # xtype 'video' -> batch -> list of PIL images
    frames = [np.asarray(image.convert("RGB"), dtype=np.uint8) for image in video]
    if not frames:
        raise RuntimeError("CoDi returned no frames")
    write_mp4(str(job["out"]), frames, fps)
    return len(frames), fps


def main(argv=None):
    """Load CoDi once, then answer every job line; returns the exit code."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # CoDi's prints (and C libraries') go to stderr, never into the protocol

    def send(message):
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    args = parse_args(argv)
    try:
        model = load_model(args)
    except Exception as exc:  # report anything, then exit
        traceback.print_exc()
        send({"event": "fatal", "error": f"{type(exc).__name__}: {exc}"})
        return 2
    send({"event": "ready", "driver_version": DRIVER_VERSION, "pid": os.getpid()})
    source = open(args.jobs) if args.jobs else sys.stdin
    with source:
        for line in source:
            if not line.strip():
                continue
            job_id = None
            started = time.time()
            try:
                job = json.loads(line)
                job_id = job.get("id")
                frames, fps = run_job(model, job, args)
                send(
                    {
                        "id": job_id,
                        "ok": True,
                        "out": job["out"],
                        "frames": frames,
                        "fps": fps,
                        "seconds": round(time.time() - started, 3),
                    }
                )
            except Exception as exc:  # one failed job must not stop the rest
                tail = "".join(traceback.format_exc().splitlines(True)[-8:])
                print(tail, file=sys.stderr)
                send({"id": job_id, "ok": False, "error": f"{type(exc).__name__}: {exc}\n{tail}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
