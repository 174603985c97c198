"""The options ``score`` and ``extract`` share (one definition each), and the step that checks
them and builds :class:`~avsync_bench.scoring.ScoreOptions` before any file is touched."""

from __future__ import annotations

from pathlib import Path

import typer

from avsync_bench.cli.common import exit_on_error
from avsync_bench.options import (
    check_dataset,
    check_device,
    check_dtype,
    check_metrics,
    check_protocol,
)
from avsync_bench.scoring import ScoreOptions
from avsync_bench.weights.store import default_home

PREDS = typer.Argument(
    ..., help="Folder of generated clips: <class>/<video stem>_clip-{00,01,02}.mp4 with audio."
)
DATASET = typer.Option("avsync15", help="avsync15 | landscapes | thegreatesthits.")
DATA_ROOT = typer.Option(
    None, help="Dataset root (default: datasets/<Name>, else $AVSYNC_BENCH_DATA/<Name>)."
)
METRICS = typer.Option(
    "all", help="Comma-separated: fid,fvd,ia,it,relsync,alignsync,av_align, or all."
)
PROTOCOL = typer.Option(
    "official", help="official (the paper's definitions) or corrected (quirks fixed)."
)
WEIGHTS_DIR = typer.Option(None, help="Weights folder (default: $AVSYNC_BENCH_HOME/weights).")
CACHE_DIR = typer.Option(
    None, help="Ground-truth feature cache (default: $AVSYNC_BENCH_HOME/features)."
)
NO_CACHE = typer.Option(False, help="Do not read or write the feature cache.")
BATCH_SIZE = typer.Option(16, min=1, help="Clip pairs per extraction step (no effect on values).")
WORKERS = typer.Option(0, min=0, help="Decoding worker processes (no effect on values).")
DEVICE = typer.Option("cpu", help="Torch device for the feature networks.")
DTYPE = typer.Option(
    "fp32", help="ImageBind precision: fp32, or bf16/fp16 on a GPU (recorded in results)."
)
ALLOW_PARTIAL = typer.Option(
    False, help="Score despite missing/invalid/extra files; the result is labelled partial."
)
ALLOW_PADDING = typer.Option(
    False,
    help="Score clips whose window needs more padding than the protocol's limit (more than "
    "1 repeated frame or 0.1 s of missing audio); the padding is recorded in results.json.",
)
VERBOSE = typer.Option(False, help="Show diagnostic details (e.g. FFmpeg's messages).")


def checked_options(
    *,
    preds: Path,
    dataset: str,
    data_root: Path | None,
    metrics: str,
    protocol: str,
    weights_dir: Path | None,
    cache_dir: Path | None,
    no_cache: bool,
    batch_size: int,
    workers: int,
    device: str,
    dtype: str,
    allow_partial: bool,
    allow_padding: bool,
    verbose: bool,
) -> ScoreOptions:
    """Validate every option value (an unknown dataset, metric, protocol, dtype or device exits
    with ``error: --option: …`` and code 1) and return the run's :class:`ScoreOptions`."""
    with exit_on_error(verbose):
        mode = check_protocol(protocol)
        check_dataset(dataset)
        check_metrics(metrics)
        check_dtype(dtype)
        check_device(device)
    return ScoreOptions(
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
