"""``avsync-bench sync-score``: one (video, audio) pair."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from avsync_bench.cli.common import console, exit_on_error
from avsync_bench.options import check_choice, check_device, check_protocol


def sync_score_command(
    video: Path = typer.Option(..., help="Video to evaluate (first 2 s, 12 frames at 6 fps)."),
    audio: Path | None = typer.Option(
        None,
        help="Audio: an .mp4 (its audio track) or an audio file (.wav …); default: the video's "
        "own audio track. With --audio the video needs no audio track.",
    ),
    ref_video: Path | None = typer.Option(None, help="Reference video (RelSync / AlignSync)."),
    ref_audio: Path | None = typer.Option(None, help="Reference audio (RelSync only)."),
    metric: str = typer.Option("alignsync", help="score | relsync | alignsync."),
    protocol: str = typer.Option(
        "official",
        help="official: exactly the official scripts/avsync_metric.py (12 frames from t = 0 with "
        "a 1e-6 s pts tolerance, native-size frames squashed to 224 by the classifier, audio "
        "0-2 s); corrected: the benchmark's corrected clip path (nearest frames, centre crop + "
        "256x256 resize, exact 2 s audio window, channel-mean mel).",
    ),
    weights_dir: Path | None = typer.Option(None, help="Weights folder."),
    device: str = typer.Option("cpu", help="Torch device: cpu, cuda, cuda:N or mps."),
    verbose: bool = typer.Option(False, help="Show diagnostic details (e.g. FFmpeg's messages)."),
) -> None:
    """Sync score of a single (video, audio) pair, as the official avsync_metric.py script.

    Prints one JSON line: the metric's raw value (RelSync/AlignSync not x100), φ and φ_ref, the
    protocol. Refuses (exit 1, naming the file) a video with fewer than 12 frames in its first
    2 s, audio shorter than 1.9 s, and NaN or infinite audio.
    """
    from avsync_bench.sync_pair import METRICS, sync_pair

    with exit_on_error(verbose):
        mode = check_protocol(protocol)
        check_choice("--metric", metric, METRICS, "metric")
        check_device(device)
        result = sync_pair(video, audio, ref_video, ref_audio, metric, mode, weights_dir, device)
    print(json.dumps(result))
    if result["standin"]:
        console.print("[yellow]warning:[/] stand-in weights: not a real score")
