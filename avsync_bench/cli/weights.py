"""``avsync-bench weights list | fetch | verify | import | remove | make-standins``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from avsync_bench.cli.common import console, exit_on_error
from avsync_bench.weights.standins import STANDIN_WRITERS, make_standins
from avsync_bench.weights.store import WeightStore

app = typer.Typer(
    help="Manage pretrained weights (download, verify, import, remove, stand-ins).",
    no_args_is_help=True,
)

WeightsDir = typer.Option(None, help="Weights folder (default: $AVSYNC_BENCH_HOME/weights).")
_STYLE = {"verified": "green", "pinned": "green", "standin": "yellow", "missing": "red"}


def _table(rows: list[dict], title: str) -> Table:
    table = Table(title=title)
    for column in ("name", "status", "size", "source", "licence", "detail"):
        table.add_column(column, overflow="fold")
    for row in rows:
        style = _STYLE.get(row["status"], "bold red" if "mismatch" in row["status"] else "")
        status = f"[{style}]{row['status']}[/]" if style else row["status"]
        table.add_row(
            row["name"], status, row["size"], row["source"], row["licence"], row["detail"]
        )
    return table


@app.command("list")
def list_command(weights_dir: Path | None = WeightsDir) -> None:
    """Each entry's status (missing / present / verified / pinned / standin / checksum mismatch),
    download size, source and licence."""
    store = WeightStore(weights_dir)
    with exit_on_error():
        rows = store.status()
    Console().print(_table(rows, f"weights in {store.root}"))


@app.command("fetch")
def fetch_command(
    names: list[str] = typer.Argument(None, help="Registry names (see `weights list`)."),
    all_: bool = typer.Option(
        False, "--all", help="Every registry entry (≈25 GB in all; scoring needs ≈4.7 GB of it)."
    ),
    weights_dir: Path | None = WeightsDir,
) -> None:
    """Download NAME… (or --all) from the official sources into the weights folder.

    Direct URLs resume from ``<file>.incomplete``; Hub repositories are pinned to a commit and
    every file is checked against the Hub's published sha256; Google Drive folders are pinned at
    first download. Each file is loaded with its real loader before it is pinned. Exit 1 names
    every entry not obtained, with its source and the ``weights import`` command.
    """
    from avsync_bench.weights.fetch import fetch_all

    if not names and not all_:
        console.print("[bold red]error:[/] give NAME… or --all (see `avsync-bench weights list`)")
        raise typer.Exit(2)
    with exit_on_error():
        done = fetch_all(WeightStore(weights_dir), None if all_ else names)
    for name, resolved in done.items():
        console.print(f"{name}: {resolved.path} sha256 {resolved.sha256}")


@app.command("verify")
def verify_command(weights_dir: Path | None = WeightsDir) -> None:
    """Re-hash every present entry (no cache) against its published or pinned sha256.

    Exit 1 when any file differs (each mismatch is named); missing entries are listed, not
    counted as failures.
    """
    store = WeightStore(weights_dir)
    with exit_on_error():
        rows = store.status(fresh=True)
    Console().print(_table(rows, f"weights in {store.root} (re-hashed)"))
    bad = [row for row in rows if row["status"] == "checksum mismatch"]
    for row in bad:
        console.print(f"[bold red]checksum mismatch:[/] {row['name']}: {row['detail']}")
    if bad:
        raise typer.Exit(1)


@app.command("import")
def import_command(name: str, path: Path, weights_dir: Path | None = WeightsDir) -> None:
    """Copy a local file/folder PATH into the weights folder as NAME: loaded with its real
    loader, checked against a published checksum, then pinned."""
    with exit_on_error():
        resolved = WeightStore(weights_dir).import_(name, path)
    console.print(f"{name}: {resolved.path} sha256 {resolved.sha256}")


@app.command("remove")
def remove_command(name: str, weights_dir: Path | None = WeightsDir) -> None:
    """Delete NAME from the weights folder with its pin (to re-import or re-fetch it)."""
    from avsync_bench.weights.registry import get_spec

    with exit_on_error():
        get_spec(name)
        removed = WeightStore(weights_dir).remove(name)
    console.print(
        f"{name}: " + ("removed " + ", ".join(removed) if removed else "nothing to remove")
    )


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
