"""``avsync-bench weights list | fetch | import | make-standins``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from avsync_bench.cli.common import console, exit_on_error
from avsync_bench.weights.standins import STANDIN_WRITERS, make_standins
from avsync_bench.weights.store import WeightStore

app = typer.Typer(
    help="Manage pretrained weights (cache, download, import, stand-ins).", no_args_is_help=True
)

WeightsDir = typer.Option(None, help="Weights folder (default: $AVSYNC_BENCH_HOME/weights).")


@app.command("list")
def list_command(weights_dir: Path | None = WeightsDir) -> None:
    """List every weight file: presence, stand-in flag, local path, official URL, licence."""
    table = Table(title=f"weights in {WeightStore(weights_dir).root}")
    for column in ("name", "present", "used by", "licence", "url"):
        table.add_column(column, overflow="fold")
    for row in WeightStore(weights_dir).status():
        present = ("standin" if row["standin"] else "yes") if row["present"] else "no"
        table.add_row(row["name"], present, row["used_by"], row["licence"], row["url"])
    Console().print(table)


@app.command("fetch")
def fetch_command(name: str, weights_dir: Path | None = WeightsDir) -> None:
    """Download NAME once from its official URL into the weights folder (sha256-verified)."""
    with exit_on_error():
        resolved = WeightStore(weights_dir).fetch(name)
    console.print(f"{name}: {resolved.path} sha256 {resolved.sha256}")


@app.command("import")
def import_command(name: str, path: Path, weights_dir: Path | None = WeightsDir) -> None:
    """Copy a local file/folder PATH into the weights folder as NAME (verified, then pinned)."""
    with exit_on_error():
        resolved = WeightStore(weights_dir).import_(name, path)
    console.print(f"{name}: {resolved.path} sha256 {resolved.sha256}")


@app.command("make-standins")
def make_standins_command(
    directory: Path = typer.Argument(..., help="Weights folder to write the stand-ins into."),
    names: str = typer.Option(
        ",".join(STANDIN_WRITERS), help="Comma-separated weight names to write stand-ins for."
    ),
) -> None:
    """Write deterministic-weight stand-ins (a fixed rule per tensor, avsync_bench/weights/rule.py) for offline dry runs.

    Results computed with them are marked ``standin: true`` and the leaderboard refuses them.
    Use with ``avsync-bench score --weights-dir DIRECTORY``.
    """
    with exit_on_error():
        written = make_standins(directory, [n.strip() for n in names.split(",") if n.strip()])
    for resolved in written:
        console.print(f"standin {resolved.name}: {resolved.path} sha256 {resolved.sha256}")
