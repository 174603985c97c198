"""Throughput of the scoring path on this machine: decoding (clips/s) and each extractor.

Usage::

    python benchmarks/score_gallery.py --data-root ../shared/data/avsync15-gallery \
        [--weights-dir DIR] [--batch-size 16] [--workers 0]

Without ``--weights-dir`` it writes deterministic stand-in weights to a temporary folder (the
networks have the real architectures' cost for Inception; the I3D stand-in is smaller than the
real I3D, so its figure is a lower bound on the real cost). Prints figures with the hardware.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import torch

import avsync_bench
from avsync_bench.clips import load_test_clips
from avsync_bench.datasets import DATASETS, load_split
from avsync_bench.features import get_extractor
from avsync_bench.protocol import ProtocolMode
from avsync_bench.weights.standins import STANDIN_WRITERS, make_standins
from avsync_bench.weights.store import WeightStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--dataset", default="avsync15")
    parser.add_argument("--weights-dir", type=Path)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--extractors", default="fid_inception,i3d")
    args = parser.parse_args()

    print(f"avsync-bench {avsync_bench.__version__} · torch {torch.__version__} · "
          f"{platform.processor() or platform.machine()} · {os.cpu_count()} CPU threads · "
          f"torch threads {torch.get_num_threads()} · "
          f"GPU: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}")  # fmt: skip
    spec = DATASETS[args.dataset].spec
    videos = load_split(args.dataset, args.data_root)
    for mode in ProtocolMode:
        start = time.perf_counter()
        clips = [c for v in videos for c in load_test_clips(v.path, spec, mode)]
        elapsed = time.perf_counter() - start
        print(f"decode+resize ({mode.value}): {len(clips)} clips in {elapsed:.1f} s "
              f"= {len(clips) / elapsed:.2f} clips/s")  # fmt: skip

    weights_dir = args.weights_dir
    if weights_dir is None:
        weights_dir = Path(tempfile.mkdtemp(prefix="avsync-bench-standins-"))
        make_standins(weights_dir, list(STANDIN_WRITERS))
        print(f"(stand-in weights in {weights_dir})")
    store = WeightStore(weights_dir)
    for name in args.extractors.split(","):
        extractor = get_extractor(name)(
            "cuda" if torch.cuda.is_available() else "cpu", args.batch_size
        )
        extractor.load(store.resolve_all(list(extractor.weight_names)))
        extractor.extract(clips[:1])  # warm-up
        start = time.perf_counter()
        extractor.extract(clips)
        elapsed = time.perf_counter() - start
        frames = len(clips) * (11 if name == "fid_inception" else 12)
        print(f"{name}: {len(clips)} clips in {elapsed:.1f} s = {len(clips) / elapsed:.2f} clips/s "
              f"({frames / elapsed:.1f} frames/s), batch {args.batch_size}")  # fmt: skip
        extractor.release()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
