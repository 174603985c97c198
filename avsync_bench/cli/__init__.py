"""The ``avsync-bench`` command line (typer). Each command group lives in its own module."""

from __future__ import annotations

import typer

import avsync_bench  # noqa: F401  (compatibility shim first)
from avsync_bench.cli import animate as animate_cli
from avsync_bench.cli import classifier as classifier_cli
from avsync_bench.cli import curate as curate_cli
from avsync_bench.cli import datasets as datasets_cli
from avsync_bench.cli import doctor as doctor_cli
from avsync_bench.cli import extract as extract_cli
from avsync_bench.cli import generate, leaderboard, report, score, sync_score, weights
from avsync_bench.cli import study as study_cli
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
app.add_typer(datasets_cli.app, name="datasets")
app.add_typer(generate.app, name="generate")
app.add_typer(leaderboard.app, name="leaderboard")
app.command("compare")(leaderboard.compare_command)
app.command("report")(report.report_command)
app.command("train-reference")(train_cli.train_reference_command)
app.command("animate")(animate_cli.animate_command)
app.add_typer(study_cli.app, name="study")
app.add_typer(curate_cli.app, name="curate")
app.command("train-classifier")(classifier_cli.train_classifier_command)
app.command("eval-classifier")(classifier_cli.eval_classifier_command)
app.command("sync-sensitivity")(classifier_cli.sync_sensitivity_command)
app.command("doctor")(doctor_cli.doctor_command)


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=doctor_cli.version_callback,
        help="Print the version and exit.",
    ),  # fmt: skip
) -> None:
    """Benchmark toolkit for audio-synchronised visual animation."""


def main() -> None:
    """Console-script entry point."""
    app()
