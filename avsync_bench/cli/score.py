"""``avsync-bench score``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from avsync_bench.cli.common import console, exit_on_error, progress_bars
from avsync_bench.distributed import Distributed
from avsync_bench.options import (
    check_dataset,
    check_device,
    check_dtype,
    check_metrics,
    check_protocol,
)
from avsync_bench.outputs import write_results_safely
from avsync_bench.preflight import preflight
from avsync_bench.results import print_results
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
    protocol: str = typer.Option(
        "official", help="official (the paper's definitions) or corrected (quirks fixed)."
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
    allow_padding: bool = typer.Option(
        False,
        help="Score clips whose window needs more padding than the protocol's limit (more than "
        "1 repeated frame or 0.1 s of missing audio); the padding is recorded in results.json.",
    ),
    verbose: bool = typer.Option(False, help="Show diagnostic details (e.g. FFmpeg's messages)."),
    force: bool = typer.Option(
        False, help="Replace results.json / per_clip.csv / features.npz already in --out."
    ),
) -> None:
    """Score a folder of generated videos against the dataset's test clips.

    Checks every prediction first (missing, extra, duplicate, unreadable, no audio, <12 frames)
    and every weight file (all missing ones named at once), then writes results.json (values,
    protocol, clip counts, weight sha256s, version, partial flag) and per_clip.csv, and prints
    a table. Exit code 1 on any error.

    Before any work: --out, the feature cache and --device are checked, and results already in
    --out are refused unless --force. If --out cannot be written at the end, the results go to
    ./avsync-bench-results-<time>/ (named on the terminal) and the exit code is 1.
    """
    with exit_on_error(verbose):  # options first, before any file is touched
        mode = check_protocol(protocol)
        check_dataset(dataset)
        check_metrics(metrics)
        check_dtype(dtype)
        check_device(device)
    options = ScoreOptions(
        preds=preds,
        dataset=dataset,
        data_root=data_root,
        metrics=metrics,
        mode=mode,
        weights_dir=weights_dir,
        cache_dir=None if no_cache else (cache_dir or default_home() / "features"),
        batch_size=batch_size,
        workers=workers,
        device=device,
        allow_partial=allow_partial,
        dtype=dtype,
        allow_padding=allow_padding,
    )
    target = out or Path(f"{str(preds).rstrip('/')}.scores") / mode.value
    dist = Distributed.from_environment()  # one process, or the `accelerate launch` group
    with exit_on_error(verbose):
        if dist.is_main:
            preflight({"--out": target}, results_dir=target, force=force)
        with progress_bars() as progress:
            run = score(options, progress=progress if dist.is_main else None, dist=dist)
        if run is None:
            return  # not rank 0: rank 0 writes the results
        written = write_results_safely(run.results, run.per_clip, target, run.feature_file, force)
    print_results(run.results, Console())
    if written.problem:
        console.print(
            f"[bold red]error:[/] {written.problem}; the results were written to "
            f"{written.folder} instead",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
    console.print(f"wrote {written.json_path} and {written.csv_path}")
