"""Does AV-Align separate synchronised from unsynchronised clips at 6 fps? (issue 3 §4)

On every test clip of a dataset (the 15-video AVSync15 gallery by default), AV-Align of:
the GT clip; the GT frames with the audio window shifted by 0.5 s and by 1.0 s (later in the
video, or earlier where the video ends); the GT frames with the audio of the same clip of the
next video in another class (swapped); the Static baseline (frame 0 repeated, GT audio).
Clips use the ``corrected`` protocol (exact audio windows). Prints a markdown table.

    python benchmarks/av_align_gallery.py --data-root ../shared/data/avsync15-gallery
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from avsync_bench.clips import load_clips, load_test_clips
from avsync_bench.datasets import DATASETS, load_split
from avsync_bench.features.av_align import clip_av_align
from avsync_bench.io.media import probe
from avsync_bench.protocol import ProtocolMode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--dataset", default="avsync15")
    args = parser.parse_args()
    spec, mode = DATASETS[args.dataset].spec, ProtocolMode.corrected
    videos = load_split(args.dataset, args.data_root)
    clips = {v.rel: load_test_clips(v.path, spec, mode) for v in videos}
    rows: dict[str, list[float]] = {
        k: [] for k in ("GT", "shift 0.5 s", "shift 1.0 s", "swapped", "Static")
    }
    for k, video in enumerate(videos):
        duration = probe(video.path).av_duration
        other = videos[(k + 1) % len(videos)]
        for i, clip in enumerate(clips[video.rel]):
            rows["GT"].append(clip_av_align(clip))
            for shift in (0.5, 1.0):
                start = clip.start + shift
                if start + spec.duration > duration:
                    start = clip.start - shift
                audio = load_clips(video.path, [start], spec, mode)[0].audio
                rows[f"shift {shift} s"].append(clip_av_align(replace(clip, audio=audio)))
            rows["swapped"].append(clip_av_align(replace(clip, audio=clips[other.rel][i].audio)))
            static = np.repeat(clip.frames[:1], spec.num_frames, axis=0)
            rows["Static"].append(clip_av_align(replace(clip, frames=static)))
    gt = np.array(rows["GT"])
    print(
        f"AV-Align on {len(gt)} clips of {len(videos)} videos ({args.dataset}, 12 frames at 6 fps)\n"
    )
    print("| clips | AV-Align mean ± std | median | GT clip scores higher (per clip) |")
    print("|---|---|---|---|")
    for name, values in rows.items():
        values = np.array(values)
        wins = (
            "—"
            if name == "GT"
            else f"{np.mean(gt > values):.0%} (ties {np.mean(gt == values):.0%})"
        )
        print(
            f"| {name} | {values.mean():.3f} ± {values.std(ddof=1):.3f} | {np.median(values):.3f} | {wins} |"
        )


if __name__ == "__main__":
    main()
