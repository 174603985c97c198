"""Peak resident memory of reading one high-resolution 12-frame clip (issue 15 §4).

Writes a 12-frame, 6 fps, 2 s H.264 + AAC clip at 3840x2160 (4K) and 7680x4320 (8K) with PyAV
into a temporary folder (never into the repository), then, each in a fresh Python process, runs
one decoding path and reports the process's peak RSS (``VmHWM`` from ``/proc/self/status``, which,
unlike ``ru_maxrss``, does not inherit the parent's high-water mark; Linux) and the RSS after
imports:

* ``score``: the prediction check (frame count) and :func:`avsync_bench.clips.load_generated_clip`,
  what ``avsync-bench score`` does per generated file before the feature networks;
* ``sync-score``: :func:`avsync_bench.sync_pair.load_pair_clip` (the first 2 s);
* ``generate``: :func:`baselines.external.normalise_video`, how ``generate command`` / ``codi``
  normalise a generator's output;
* ``old path``: the previous behaviour for comparison (decode the span at full size, then resize
  the 12 picked frames as one batch). Run at 4K only unless ``--old-8k``: at 8K it needs ≈ 12 GB.

Target: under 1.5 GB peak for either size on the default path.

    python benchmarks/decode_memory.py [--sizes 4k,8k]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import av
import numpy as np

SIZES = {"4k": (2160, 3840), "8k": (4320, 7680)}

PATHS = {
    "score": """
        from avsync_bench.predictions import check_clip_file
        from avsync_bench.clips import load_generated_clip
        assert check_clip_file("x.mp4", PATH, SPEC) is None
        clip = load_generated_clip(PATH, SPEC, MODE)
    """,
    "sync-score": """
        from avsync_bench.sync_pair import load_pair_clip
        clip = load_pair_clip(PATH, MODE)
    """,
    "generate": """
        from baselines.external import normalise_video
        clip = normalise_video(PATH, SPEC, MODE)
    """,
    "old path": """
        from avsync_bench.io.media import decode_video
        from avsync_bench.clips import pick_frames_official, resize_frame
        import torch
        from torchvision.transforms import InterpolationMode, functional as TF
        video = decode_video(PATH, -0.5, 2.5)
        positions, _ = pick_frames_official(video, 0.0, SPEC)
        frames = np.stack([video[p].rgb for p in positions])
        images = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
        h, w = images.shape[-2:]
        images = images[..., (w - h) // 2 : (w - h) // 2 + h]
        out = TF.resize(images, [256, 256], InterpolationMode.BILINEAR, antialias=True)
    """,
}

PRELUDE = """
import sys, json
import numpy as np
from pathlib import Path
import avsync_bench
from avsync_bench.protocol import ClipSpec, ProtocolMode
import torch, torchvision, torchaudio  # imports counted in the baseline, not the peak
from avsync_bench.clips import load_clips
SPEC, MODE, PATH = ClipSpec(), ProtocolMode.official, Path(sys.argv[1])
def hwm_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
base = hwm_kb()
"""

EPILOGUE = """
peak = hwm_kb()
print(json.dumps({"base_mb": base / 1024, "peak_mb": peak / 1024}))
"""


def write_clip_file(path: Path, height: int, width: int) -> None:
    """12 frames at 6 fps (moving gradient plus noise) and 2 s of 44.1 kHz stereo AAC."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=6)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "23"}
        audio = container.add_stream("aac", rate=44100, layout="stereo")
        for i in range(12):
            base = ((xx + 40 * i) % 256).astype(np.uint8)
            frame = np.stack([base, (yy % 256).astype(np.uint8), base[::-1]], axis=-1)
            frame[:64, :64] = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(video.encode(None))
        wave = (0.1 * rng.standard_normal((2, 88200))).astype(np.float32)
        for begin in range(0, 88200, 1024):
            part = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(wave[:, begin : begin + 1024]), format="fltp", layout="stereo"
            )
            part.sample_rate, part.pts = 44100, begin
            container.mux(audio.encode(part))
        container.mux(audio.encode(None))


def measure(name: str, path: Path) -> dict:
    code = PRELUDE + textwrap.dedent(PATHS[name]) + EPILOGUE
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": repo + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env
    )
    if done.returncode:
        raise SystemExit(f"{name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4k,8k", help="comma-separated: 4k, 8k")
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated decode paths")
    parser.add_argument("--old-8k", action="store_true", help="also the old path at 8K (≈ 12 GB)")
    args = parser.parse_args()
    print(
        f"{platform.platform()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}, "
        f"PyAV {av.__version__}\n"
    )
    print("| clip | path | RSS after imports (MB) | peak RSS (MB) | added by decoding (MB) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes.split(","):
            height, width = SIZES[size]
            path = Path(folder) / f"{size}.mp4"
            write_clip_file(path, height, width)
            for name in args.paths.split(","):
                if name == "old path" and size == "8k" and not args.old_8k:
                    continue
                m = measure(name, path)
                print(
                    f"| {size} {width}x{height}, 12 frames | {name} | {m['base_mb']:.0f} | "
                    f"{m['peak_mb']:.0f} | {m['peak_mb'] - m['base_mb']:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
