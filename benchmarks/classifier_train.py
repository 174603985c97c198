"""Training throughput of the AV-sync classifier on this machine (clips/s, one process).

Usage::

    python benchmarks/classifier_train.py --data-root ../shared/data/avsync15-gallery \
        --dataset avsync15 --split test [--configs tiny-cpu,vggss] [--steps 3]

For each config, trains ``--steps`` optimizer steps from a fresh initialisation (``vggss`` uses
the full-size networks with random init instead of the AVID-CMA file, fp32 on CPU, batch 1) into
a temporary folder and prints the mean seconds per step (first step excluded when there are
several) and clips/s (a step sees batch × 21 clips), with the hardware. A clip is 12 frames +
2 s of audio; every step also decodes its videos (no decode cache for ``vggss``).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

import torch

import avsync_bench
from avsync_bench.classifier.train import load_config, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--dataset", default="avsync15")
    parser.add_argument("--split", default="test")
    parser.add_argument("--configs", default="tiny-cpu,vggss")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    print(
        f"avsync-bench {avsync_bench.__version__} · torch {torch.__version__} · "
        f"{platform.processor() or platform.machine()} · {os.cpu_count()} CPUs · "
        f"torch threads {torch.get_num_threads()} · load {os.getloadavg()[0]:.1f}"
    )
    for name in args.configs.split(","):
        overrides = {"init": "random", "mixed_precision": "no", "num_workers": 0}
        if name == "vggss":
            overrides["batch_size"] = 1
        with tempfile.TemporaryDirectory() as out:
            cfg = load_config(
                name,
                dataset=args.dataset,
                data_root=str(args.data_root),
                split=args.split,
                output_dir=out,
                checkpointing_steps=10**9,
                **overrides,
            )
            summary = train(cfg, max_steps=args.steps, log=lambda _: None)
        print(
            f"{name}: {cfg.batch_size} video(s) x {cfg.num_clips} clips per step, "
            f"{cfg.image_size}px frames: {summary['s_per_step']:.2f} s/step, "
            f"{summary['clips_per_s']:.2f} clips/s (data + forward + backward + AdamW)"
        )


if __name__ == "__main__":
    main()
