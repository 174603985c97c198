"""Peak memory and time of a full ``score`` (every metric) on CPU, with full-size networks.

Real weights cannot be downloaded on the development machines, so this writes stand-ins in the
real architectures: the FID Inception, the AV-sync classifier, and ImageBind-huge (vision, audio
and text trunks, 1.07 B parameters, 4.3 GB) with the deterministic weight rule. Their cost in
time and memory is that of the real networks (the I3D stand-in is smaller than the real I3D).

Usage::

    python benchmarks/score_memory.py --data-root ../shared/data/avsync15-gallery --videos 2

Prints the hardware, the time of each stage and the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import torch

import avsync_bench
from avsync_bench.datasets import load_split
from avsync_bench.scoring import ScoreOptions, score
from avsync_bench.weights.standins import make_standins
from avsync_bench.weights.store import WeightStore
from baselines.runner import run_adapter
from baselines.static import StaticAdapter


def _subset(data_root: Path, n: int, out: Path) -> Path:
    videos = load_split("avsync15", data_root)[:n]
    for video in videos:
        target = out / "videos" / video.rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(video.path)
    (out / "test.txt").write_text("\n".join(v.rel for v in videos) + "\n")
    (out / "class_mapping.json").write_text(
        json.dumps({v.class_folder: v.class_text for v in videos})
    )
    return out


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--videos", type=int, default=2, help="test videos (3 clips each)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--weights-dir", type=Path, help="reuse stand-ins written earlier")
    args = parser.parse_args()
    print(f"avsync-bench {avsync_bench.__version__} · torch {torch.__version__} · "
          f"{platform.machine()} · {os.cpu_count()} CPU threads · CPU only")  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="avsync-bench-memory-"))
    weights = args.weights_dir or work / "weights"
    if not (weights / "standins.json").exists():
        start = time.perf_counter()
        make_standins(weights, ["fid_inception", "i3d_torchscript", "avsync_classifier"])
        from avsync_bench.models.imagebind import HUGE_CONFIG, rule_imagebind

        path = WeightStore(weights).path("imagebind_huge")
        torch.save(rule_imagebind(HUGE_CONFIG, ("vision", "audio", "text")), path)
        WeightStore(weights).register_standin("imagebind_huge")
        print(
            f"stand-ins (ImageBind-huge size) written in {time.perf_counter() - start:.0f} s to {weights}"
        )
    base_rss = _rss_mib()
    root = _subset(args.data_root, args.videos, work / "data")
    run_adapter(StaticAdapter(), work / "preds", data_root=root)
    stamps = []

    def progress(label, total):
        stamps.append((label, time.perf_counter(), total))
        return lambda n: None

    start = time.perf_counter()
    run = score(
        ScoreOptions(preds=work / "preds", data_root=root, metrics="all", weights_dir=weights,
                     cache_dir=None, batch_size=args.batch_size, workers=args.workers),
        progress=progress,
    )  # fmt: skip
    end = time.perf_counter()
    for (label, t0, total), nxt in zip(stamps, [s[1] for s in stamps[1:]] + [end]):
        print(f"  {label:28s} {total:4d} items {nxt - t0:7.1f} s")
    print(f"score (all metrics, {run.results['clip_counts']['scored']} clips): {end - start:.0f} s")
    print(f"peak resident memory: {_rss_mib():.0f} MiB (before scoring: {base_rss:.0f} MiB)")


if __name__ == "__main__":
    main()
