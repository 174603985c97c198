"""``avsync-bench score``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from avsync_bench.cli import score_options as opt
from avsync_bench.cli.common import console, exit_on_error, progress_bars
from avsync_bench.cli.score_options import checked_options
from avsync_bench.distributed import Distributed
from avsync_bench.outputs import write_results_safely
from avsync_bench.preflight import preflight
from avsync_bench.results import print_results
from avsync_bench.scoring import score


def score_command(
    preds: Path = opt.PREDS,
    dataset: str = opt.DATASET,
    data_root: Path | None = opt.DATA_ROOT,
    metrics: str = opt.METRICS,
    protocol: str = opt.PROTOCOL,
    out: Path | None = typer.Option(
        None, help="Where results.json and per_clip.csv go (default: <preds>.scores/<protocol>)."
    ),
    weights_dir: Path | None = opt.WEIGHTS_DIR,
    cache_dir: Path | None = opt.CACHE_DIR,
    no_cache: bool = opt.NO_CACHE,
    batch_size: int = opt.BATCH_SIZE,
    workers: int = opt.WORKERS,
    device: str = opt.DEVICE,
    dtype: str = opt.DTYPE,
    allow_partial: bool = opt.ALLOW_PARTIAL,
    allow_padding: bool = opt.ALLOW_PADDING,
    verbose: bool = opt.VERBOSE,
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
    options = checked_options(
        preds=preds,
        dataset=dataset,
        data_root=data_root,
        metrics=metrics,
        protocol=protocol,
        weights_dir=weights_dir,
        cache_dir=cache_dir,
        no_cache=no_cache,
        batch_size=batch_size,
        workers=workers,
        device=device,
        dtype=dtype,
        allow_partial=allow_partial,
        allow_padding=allow_padding,
        verbose=verbose,
    )
    mode = options.mode
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
