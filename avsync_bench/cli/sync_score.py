"""``avsync-bench sync-score``: one (video, audio) pair."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from avsync_bench.cli.common import console, exit_on_error
from avsync_bench.protocol import ProtocolMode


def sync_score_command(
    video: Path = typer.Option(..., help="Video to evaluate (first 2 s, 12 frames at 6 fps)."),
    audio: Path | None = typer.Option(
        None, help="Audio (.wav etc. or a video's track); default: the video's own audio track."
    ),
    ref_video: Path | None = typer.Option(None, help="Reference video (RelSync / AlignSync)."),
    ref_audio: Path | None = typer.Option(None, help="Reference audio (RelSync only)."),
    metric: str = typer.Option("alignsync", help="score | relsync | alignsync."),
    protocol: ProtocolMode = typer.Option(ProtocolMode.official, help="official or corrected."),
    weights_dir: Path | None = typer.Option(None, help="Weights folder."),
    device: str = typer.Option("cpu", help="Torch device."),
) -> None:
    """Sync score of a single (video, audio) pair, as the official avsync_metric.py script.

    Prints one JSON line: the metric's raw value (RelSync/AlignSync not x100), φ and φ_ref.
    """
    from avsync_bench.sync_pair import sync_pair

    with exit_on_error():
        result = sync_pair(
            video, audio, ref_video, ref_audio, metric, protocol, weights_dir, device
        )
    print(json.dumps(result))
    if result["standin"]:
        console.print("[yellow]warning:[/] stand-in weights: not a real score")
