"""``avsync-bench doctor`` and ``avsync-bench --version``."""

from __future__ import annotations

from pathlib import Path

import typer

from avsync_bench.cli.common import console

STYLE = {"ok": "green", "info": "cyan", "warn": "yellow", "FAIL": "bold red"}


def version_callback(value: bool) -> None:
    """Print ``avsync-bench <version>`` and exit (the eager ``--version`` option)."""
    if value:
        import avsync_bench

        typer.echo(f"avsync-bench {avsync_bench.__version__}")
        raise typer.Exit()


def doctor_command(
    dataset: str = typer.Option("avsync15", help="avsync15 | landscapes | thegreatesthits."),
    data_root: Path | None = typer.Option(
        None, help="Dataset root (default: datasets/<Name>, else $AVSYNC_BENCH_DATA/<Name>)."
    ),
    weights_dir: Path | None = typer.Option(
        None, help="Weights folder (default: $AVSYNC_BENCH_HOME/weights)."
    ),
    metrics: str = typer.Option(
        "all",
        help="The metrics you will score (as score --metrics): their weights must be present.",
    ),
) -> None:
    """Check this machine before a long run, one line per item: Python, avsync-bench, the
    torch/torchvision/torchaudio/ImageBind/pytorch-fid imports and the CPU compatibility layer,
    PyAV's H.264 encoder, CUDA, the cache folder, every weight (missing / stand-in / verified /
    pinned / checksum mismatch) and the dataset root with its lists and videos.

    Status: ok, info (nothing wrong), warn (works, results marked or limited), FAIL (a problem).
    Exit code 1 when any line is FAIL.
    """
    from avsync_bench.cli.common import exit_on_error
    from avsync_bench.datasets import DATASETS
    from avsync_bench.doctor import run_checks

    if dataset not in DATASETS:
        console.print(
            f"[bold red]error:[/] unknown --dataset {dataset!r}; choose one of "
            f"{', '.join(sorted(DATASETS))}"
        )
        raise typer.Exit(1)
    with exit_on_error():
        checks = run_checks(dataset, data_root, weights_dir, metrics)
    for check in checks:
        style = STYLE.get(check.status, "")
        console.print(
            f"[{style}]{check.status:<4}[/] {check.item}: {check.detail}",
            highlight=False,
            soft_wrap=True,
        )
    problems = [c for c in checks if c.problem]
    if problems:
        console.print(
            f"{len(problems)} problem(s): " + ", ".join(c.item for c in problems), soft_wrap=True
        )
        raise typer.Exit(1)
    console.print("no problems found")
