"""``avsync-bench datasets fetch | verify``."""

from __future__ import annotations

from pathlib import Path

import typer

from avsync_bench.cli.common import console, exit_on_error

app = typer.Typer(help="Download and verify the benchmark datasets.", no_args_is_help=True)

_NAMES = "avsync15 | landscapes | thegreatesthits"


@app.command("fetch")
def fetch_command(
    dataset: str = typer.Argument(..., help=_NAMES),
    root: Path | None = typer.Option(
        None,
        help="Where the release goes (default: $AVSYNC_BENCH_DATA/<Name>, else "
        "$AVSYNC_BENCH_HOME/datasets/<Name>; `score` finds it there).",
    ),
    source: str = typer.Option(
        "drive", help="drive (official Google Drive folder) | hub (mirror)."
    ),
) -> None:
    """Download DATASET in its release layout, verify it, write MANIFEST.sha256.

    The download goes to ROOT.incomplete and is moved to ROOT only when every listed file is
    present and decodes (video + audio), no class is extra or missing, and a Hub mirror's lists
    equal the official ones. Exit 1 names every problem.
    """
    from avsync_bench.datasets_fetch import fetch_dataset

    with exit_on_error():
        report = fetch_dataset(dataset, root, source)
    console.print(report.summary())


@app.command("verify")
def verify_command(
    dataset: str = typer.Argument(..., help=_NAMES),
    root: Path = typer.Option(..., help="The dataset copy to check."),
    media: bool = typer.Option(True, help="Probe every video for decodable video+audio."),
) -> None:
    """Check a copy: lists, every listed file present, no extra file or class, video and audio
    streams decode, MANIFEST.sha256 (written when absent, else re-checked).

    Exit 1 naming each missing, extra or undecodable file. A copy with fewer videos than the full
    release is valid but reported as PARTIAL with its counts.
    """
    from avsync_bench.datasets_fetch import verify_release

    with exit_on_error():
        report = verify_release(dataset, root, check_media=media)
    for problem in report.problems:
        console.print(f"[bold red]problem:[/] {problem}", highlight=False, soft_wrap=True)
    console.print(report.summary(), highlight=False, soft_wrap=True)
    if report.problems:
        console.print(f"[bold red]error:[/] {len(report.problems)} problem(s) in {root}")
        raise typer.Exit(1)
