"""``avsync-bench report``."""

from __future__ import annotations

from pathlib import Path

import typer

from avsync_bench.cli.common import console, exit_on_error, progress_bars


def report_command(
    results: Path = typer.Argument(..., help="A results folder (or results.json) from `score`."),
    out: Path = typer.Option(..., help="Output folder for index.html and its media."),
    preds: Path | None = typer.Option(None, help="Predictions folder, for the video gallery."),
    data_root: Path | None = typer.Option(
        None, help="Dataset root, for the GT clips in the gallery."
    ),
    resamples: int = typer.Option(1000, help="Bootstrap resamples for per-clip metrics."),
    frechet_resamples: int = typer.Option(50, help="Bootstrap resamples for FID/FVD."),
) -> None:
    """Write a self-contained static HTML report of a scored run (index.html + media).

    Contents: stand-in/partial banners, metric table with 95%
    intervals, a per-class chart of every metric (FID/FVD included) with intervals and the
    ground-truth line, and a sortable gallery playing generated and GT clips in sync (no network
    at view time). Says what it is doing, with the number of Fréchet distances to compute and an
    estimate of their time, before starting."""
    from avsync_bench.report import build_report

    def log(text: str) -> None:
        console.print(f"report: {text}", highlight=False, soft_wrap=True)

    with exit_on_error():
        with progress_bars() as progress:
            index = build_report(
                results, out, preds, data_root, resamples, frechet_resamples, progress, log
            )
    console.print(f"wrote {index}")
