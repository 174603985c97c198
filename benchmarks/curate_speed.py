"""Windows per second of each AVSync-AC stage on this CPU, and the projected time for VGGSS on a GPU.

Measured here (this machine's CPU, one process):
    * decode: decoding, scene detection, analysis grid, pixel difference, audio peak and mels;
    * imagebind: semantic difference, IA, IT. ImageBind in the tiny stand-in configuration unless
      ``--full-size`` (ImageBind-huge, 1.07 B parameters, rule weights: ~2 s per image on a CPU);
    * sync: P_sync with the full-size classifier (R(2+1)D-18 + AVID audio net, rule weights: the
      cost of the real network).

Projected (no GPU was available when this was written): each network stage's time per window from
its FLOPs (counted with ``torch.utils.flop_counter`` on the full-size networks, on the meta device)
divided by an assumed effective GPU throughput (``--gpu-tflops``), and the decode stage from the
rate measured here times ``--cpu-cores``. The stages run concurrently under Ray, so the run takes
as long as its slowest stage. VGGSS size: ``--classes`` × ``--videos-per-class`` videos (VGGSound
has ~200k videos in 309 classes, so ~650 per class) of ``--video-seconds`` in one scene.

Usage::

    python benchmarks/curate_speed.py --videos-dir ../shared/data/avsync15-gallery/videos --videos 3
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

import avsync_bench  # noqa: F401
from avsync_bench.curation.measure import decode_stage, imagebind_stage, sync_stage, window_starts
from avsync_bench.curation.networks import CurationNetworks, NetworkSpec
from avsync_bench.curation.pipeline import list_videos
from avsync_bench.curation.settings import CurationSettings


def _flops_per_window(settings: CurationSettings, windows_per_scene: int) -> dict[str, float]:
    from torch.utils.flop_counter import FlopCounterMode

    from avsync_bench.models.imagebind import HUGE_CONFIG, build_imagebind
    from avsync_bench.models.sync_classifier import AVSyncClassifier

    def count(fn) -> float:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            fn()
        return float(counter.get_total_flops())

    imagebind = build_imagebind(HUGE_CONFIG, ("vision", "audio"), empty=True).eval()
    with torch.device("meta"):
        classifier = AVSyncClassifier().eval()
    image = count(lambda: imagebind({"vision": torch.zeros(1, 3, 224, 224, device="meta")}))
    audio = count(lambda: imagebind({"audio": torch.zeros(1, 1, 128, 204, device="meta")}))
    shifts = len(settings.sync_shifts)
    video = count(lambda: classifier.video_encoder(torch.zeros(1, 3, 12, 224, 224, device="meta")))
    mel = count(lambda: classifier.audio_encoder(torch.zeros(shifts, 1, 128, 204, device="meta")))
    grid = (windows_per_scene - 1) * settings.stride_frames + settings.frames_per_window
    return {
        "imagebind": image * grid / windows_per_scene + audio,
        "sync": video + mel,
        "imagebind_image": image,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos-dir", type=Path, required=True, help="<class>/<file> videos")
    parser.add_argument("--videos", type=int, default=3, help="videos measured on this CPU")
    parser.add_argument("--full-size", action="store_true", help="full-size ImageBind on CPU")
    parser.add_argument("--gpu-tflops", type=float, default=50.0, help="assumed effective TFLOP/s")
    parser.add_argument("--cpu-cores", type=int, default=16, help="decode workers on the GPU host")
    parser.add_argument("--classes", type=int, default=149)
    parser.add_argument("--videos-per-class", type=int, default=650)
    parser.add_argument("--video-seconds", type=float, default=10.0)
    args = parser.parse_args()

    settings = CurationSettings()
    items = [dict(i, block=0) for i in list_videos(args.videos_dir)[: args.videos]]
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")  # fmt: skip
    t0 = time.perf_counter()
    works = decode_stage(items, settings)
    t_decode = time.perf_counter() - t0
    windows = sum(len(w["windows"]) for w in works)
    if windows == 0:
        raise SystemExit("no window in the chosen videos")
    tiny = CurationNetworks(NetworkSpec(tiny=True))
    if args.full_size:
        from avsync_bench.models.imagebind import HUGE_CONFIG, build_imagebind, rule_imagebind

        modalities = ("vision", "audio", "text")
        model = build_imagebind(HUGE_CONFIG, modalities, empty=True)
        model.load_state_dict(rule_imagebind(HUGE_CONFIG, modalities), assign=True)
        tiny.imagebind.model = model.eval()
    from avsync_bench.models.sync_classifier import AVSyncClassifier
    from avsync_bench.weights.rule import apply_rule

    tiny.sync.model = apply_rule(AVSyncClassifier()).eval()
    t0 = time.perf_counter()
    imagebind_stage(works, tiny, settings)
    t_imagebind = time.perf_counter() - t0
    t0 = time.perf_counter()
    sync_stage(works, tiny, settings)
    t_sync = time.perf_counter() - t0
    label = "ImageBind-huge" if args.full_size else "tiny stand-in ImageBind"
    print(f"{len(items)} videos, {windows} windows")
    for name, seconds in (
        ("decode", t_decode),
        (f"imagebind ({label})", t_imagebind),
        ("sync (full-size classifier)", t_sync),
    ):
        print(f"  {name:40s} {windows / seconds:8.2f} windows/s  ({seconds:.1f} s)")

    per_scene = len(window_starts(0.0, args.video_seconds, settings))
    flops = _flops_per_window(settings, per_scene)
    total_windows = args.classes * args.videos_per_class * per_scene
    rate = args.gpu_tflops * 1e12
    stage_s = {
        "decode (CPU)": t_decode / windows / args.cpu_cores,
        "imagebind (GPU)": flops["imagebind"] / rate,
        "sync (GPU)": flops["sync"] / rate,
    }
    gpu_s = stage_s["imagebind (GPU)"] + stage_s["sync (GPU)"]
    slowest = max(stage_s["decode (CPU)"], gpu_s)
    print(
        f"\nProjection for VGGSS: {args.classes} classes x {args.videos_per_class} videos x "
        f"{per_scene} windows ({args.video_seconds:.0f} s, one scene) = {total_windows:,} windows"
    )
    print(
        f"  FLOPs per window: ImageBind {flops['imagebind'] / 1e9:.0f} G "
        f"({flops['imagebind_image'] / 1e9:.0f} G per image), classifier {flops['sync'] / 1e9:.0f} G"
    )
    for name, seconds in stage_s.items():
        print(f"  {name:18s} {1 / seconds:9.1f} windows/s")
    print(
        f"  one GPU at an assumed {args.gpu_tflops:.0f} effective TFLOP/s and {args.cpu_cores} "
        f"decode cores: {total_windows * slowest / 3600:.1f} h "
        f"({'GPU' if gpu_s >= stage_s['decode (CPU)'] else 'decode'}-bound)"
    )


if __name__ == "__main__":
    main()
