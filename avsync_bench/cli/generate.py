"""``avsync-bench generate ADAPTER``: write a baseline's predictions in the benchmark format."""

from __future__ import annotations

from pathlib import Path

import typer

from avsync_bench.cli.common import console, exit_on_error, progress_bars
from avsync_bench.protocol import ProtocolMode

app = typer.Typer(
    help="Generate a baseline's predictions for a dataset's test clips.", no_args_is_help=True
)


def _run(adapter, out, dataset, data_root, protocol, seed, limit, classes) -> None:
    from baselines.runner import run_adapter

    with exit_on_error():
        with progress_bars() as progress:
            report = run_adapter(
                adapter,
                out,
                dataset=dataset,
                data_root=data_root,
                mode=protocol,
                seed=seed,
                limit=limit,
                classes=[c.strip() for c in classes.split(",")] if classes else None,
                progress=progress,
            )
    console.print(
        f"{adapter.name}: {len(report.written)} written, {len(report.skipped)} already present, "
        f"{len(report.failed)} failed → {out}"
    )
    for name, reason in report.failed.items():
        console.print(f"[red]failed[/] {name}: {reason}")
    if report.failed:
        raise typer.Exit(1)


@app.command("static")
def static_command(
    out: Path = typer.Option(..., help="Output predictions folder."),
    dataset: str = typer.Option("avsync15", help="avsync15 | landscapes | thegreatesthits."),
    data_root: Path | None = typer.Option(None, help="Dataset root (default: datasets/<Name>)."),
    protocol: ProtocolMode = typer.Option(
        ProtocolMode.official, help="Clip protocol for GT clips."
    ),
    seed: int = typer.Option(0, help="Seed recorded in generation.json (Static ignores it)."),
    limit: int | None = typer.Option(None, help="Only the first N test videos."),
    classes: str | None = typer.Option(None, help="Only these comma-separated class folders."),
) -> None:
    """Static baseline: each test clip's conditioning frame repeated 12 times, with its audio.

    Writes <out>/<class>/<stem>_clip-{00,01,02}.mp4 (H.264, 6 fps, AAC 16 kHz) and
    generation.json; existing valid files are skipped (resumable).
    """
    from baselines.static import StaticAdapter

    _run(StaticAdapter(), out, dataset, data_root, protocol, seed, limit, classes)
