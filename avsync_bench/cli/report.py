"""``avsync-bench report``."""

from __future__ import annotations

from pathlib import Path

import typer

from avsync_bench.cli.common import console, exit_on_error


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
    """Write a self-contained static HTML report: metric table with 95% intervals, per-class
    charts, and a sortable gallery of generated vs GT clips with audio (no network at view time)."""
    from avsync_bench.report import build_report

    with exit_on_error():
        index = build_report(results, out, preds, data_root, resamples, frechet_resamples)
    console.print(f"wrote {index}")
