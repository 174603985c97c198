"""The ``avsync-bench`` command line (typer). Each command group lives in its own module."""

from __future__ import annotations

import typer

import avsync_bench  # noqa: F401  (compatibility shim first)
from avsync_bench.cli import animate as animate_cli
from avsync_bench.cli import extract as extract_cli
from avsync_bench.cli import generate, leaderboard, report, score, sync_score, weights
from avsync_bench.cli import train as train_cli

app = typer.Typer(
    name="avsync-bench",
    help="Benchmark toolkit for audio-synchronised visual animation (AVSync15, Landscapes, "
    "TheGreatestHits): score generated videos, generate baselines, manage weights.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("score")(score.score_command)
app.command("extract")(extract_cli.extract_command)
app.command("evaluate")(extract_cli.evaluate_command)
app.command("sync-score")(sync_score.sync_score_command)
app.add_typer(weights.app, name="weights")
app.add_typer(generate.app, name="generate")
app.add_typer(leaderboard.app, name="leaderboard")
app.command("compare")(leaderboard.compare_command)
app.command("report")(report.report_command)
app.command("train-reference")(train_cli.train_reference_command)
app.command("animate")(animate_cli.animate_command)


def main() -> None:
    """Console-script entry point."""
    app()
