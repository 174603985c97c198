"""``avsync-bench score``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from avsync_bench.cli.common import console, exit_on_error, progress_bars
from avsync_bench.distributed import Distributed
from avsync_bench.protocol import ProtocolMode
from avsync_bench.results import print_results, write_results
from avsync_bench.scoring import ScoreOptions, score
from avsync_bench.weights.store import default_home


def score_command(
    preds: Path = typer.Argument(
        ..., help="Folder of generated clips: <class>/<video stem>_clip-{00,01,02}.mp4 with audio."
    ),
    dataset: str = typer.Option("avsync15", help="avsync15 | landscapes | thegreatesthits."),
    data_root: Path | None = typer.Option(
        None, help="Dataset root (default: datasets/<Name>, else $AVSYNC_BENCH_DATA/<Name>)."
    ),
    metrics: str = typer.Option(
        "all", help="Comma-separated: fid,fvd,ia,it,relsync,alignsync,av_align, or all."
    ),
    protocol: ProtocolMode = typer.Option(
        ProtocolMode.official,
        help="official (the paper's definitions) or corrected (quirks fixed).",
    ),
    out: Path | None = typer.Option(
        None, help="Where results.json and per_clip.csv go (default: <preds>.scores/<protocol>)."
    ),
    weights_dir: Path | None = typer.Option(
        None, help="Weights folder (default: $AVSYNC_BENCH_HOME/weights)."
    ),
    cache_dir: Path | None = typer.Option(
        None, help="Ground-truth feature cache (default: $AVSYNC_BENCH_HOME/features)."
    ),
    no_cache: bool = typer.Option(False, help="Do not read or write the feature cache."),
    batch_size: int = typer.Option(
        16, min=1, help="Clip pairs per extraction step (no effect on values)."
    ),
    workers: int = typer.Option(0, min=0, help="Decoding worker processes (no effect on values)."),
    device: str = typer.Option("cpu", help="Torch device for the feature networks."),
    dtype: str = typer.Option(
        "fp32", help="ImageBind precision: fp32, or bf16/fp16 on a GPU (recorded in results)."
    ),
    allow_partial: bool = typer.Option(
        False, help="Score despite missing/invalid/extra files; the result is labelled partial."
    ),
) -> None:
    """Score a folder of generated videos against the dataset's test clips.

    Checks every prediction first (missing, extra, duplicate, unreadable, no audio, <12 frames)
    and every weight file (all missing ones named at once), then writes results.json (values,
    protocol, clip counts, weight sha256s, version, partial flag) and per_clip.csv, and prints
    a table. Exit code 1 on any error.
    """
    options = ScoreOptions(
        preds=preds,
        dataset=dataset,
        data_root=data_root,
        metrics=metrics,
        mode=protocol,
        weights_dir=weights_dir,
        cache_dir=None if no_cache else (cache_dir or default_home() / "features"),
        batch_size=batch_size,
        workers=workers,
        device=device,
        allow_partial=allow_partial,
        dtype=dtype,
    )
    dist = Distributed.from_environment()  # one process, or the `accelerate launch` group
    with exit_on_error():
        with progress_bars() as progress:
            run = score(options, progress=progress if dist.is_main else None, dist=dist)
        if run is None:
            return  # not rank 0: rank 0 writes the results
        target = out or Path(f"{str(preds).rstrip('/')}.scores") / protocol.value
        json_path, csv_path = write_results(run.results, run.per_clip, target, run.feature_file)
    print_results(run.results, Console())
    console.print(f"wrote {json_path} and {csv_path}")
