"""``avsync-bench leaderboard add|build`` and ``avsync-bench compare``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from avsync_bench import leaderboard as board
from avsync_bench import stats
from avsync_bench.cli.common import console, exit_on_error, progress_bars

app = typer.Typer(
    help="The leaderboard: add a scored run (validated), rebuild leaderboard/LEADERBOARD.md.",
    no_args_is_help=True,
)

ROOT_HELP = (
    "Leaderboard folder holding results/, reported.json and LEADERBOARD.md (default: the "
    "leaderboard/ folder of the avsync-bench checkout, whatever the working directory)."
)


@app.command("add")
def add_command(
    results: Path = typer.Argument(..., help="results.json of a `score` run, or its folder."),
    method: str = typer.Option(..., help="Method name as shown in the table (e.g. AVSyncD)."),
    checkpoint: str | None = typer.Option(None, help="Checkpoint name or URL that was scored."),
    audio_guidance: float | None = typer.Option(None, help="Audio guidance factor η, if any."),
    seed: int | None = typer.Option(None, help="Generation seed of the predictions."),
    who: str | None = typer.Option(None, help="Who scored it (name or handle)."),
    root: Path = typer.Option(board.DEFAULT_ROOT, help=ROOT_HELP),
    replace: bool = typer.Option(False, help="Overwrite an entry of the same method."),
    bootstrap: bool = typer.Option(
        True, help="Store 95% bootstrap intervals (needs features.npz / per_clip.csv beside)."
    ),
    resamples: int = typer.Option(
        stats.DEFAULT_RESAMPLES, min=10, help="Bootstrap resamples for the per-clip metrics."
    ),
    frechet_resamples: int = typer.Option(
        stats.DEFAULT_FRECHET_RESAMPLES,
        min=10,
        help="Bootstrap resamples for FID/FVD (≈2-4 s each for FID on 2 CPU cores).",
    ),
) -> None:
    """Validate a results.json and store it as <root>/results/<dataset>-<protocol>-<method>.json.

    Refused (exit code 1, every broken rule named): stand-in weights, a partial run, not the
    full test set, or weights sha256 / extractor versions / dtype / clip count differing from
    the entries already in its table (same dataset and protocol). The entry keeps the results,
    the fields given here, the time added, and bootstrap intervals (seed 0) when the run saved
    features.npz and per_clip.csv. Run `leaderboard build` afterwards.
    """
    with exit_on_error():
        with progress_bars() as progress:
            path = board.add_entry(
                results,
                method,
                root=root,
                checkpoint=checkpoint,
                audio_guidance=audio_guidance,
                seed=seed,
                who=who,
                replace=replace,
                bootstrap_ci=bootstrap,
                bootstrap_options={"n_resamples": resamples, "n_frechet": frechet_resamples},
                progress=progress,
            )
    entry = json.loads(path.read_text(encoding="utf-8"))
    note = "with bootstrap intervals" if entry.get("bootstrap") else "without intervals"
    console.print(
        f"added {path} ({note}); now run `avsync-bench leaderboard build`", soft_wrap=True
    )


@app.command("build")
def build_command(
    root: Path = typer.Option(board.DEFAULT_ROOT, help=ROOT_HELP),
    check: bool = typer.Option(
        False, "--check", help="Write nothing; exit 1 if LEADERBOARD.md is stale."
    ),
) -> None:
    """Regenerate <root>/LEADERBOARD.md from results/*.json and reported.json.

    Deterministic (same inputs, same bytes; no timestamps). Invalid files in results/ are listed
    in the file and here with their reasons. --check writes nothing and exits 1 when stale.
    """
    with exit_on_error():
        data = board.scan(root)
        if check:
            if board.is_stale(root):
                console.print(
                    f"[bold red]error:[/] {root / board.OUTPUT_FILE} is stale; run "
                    f"`avsync-bench leaderboard build --root {root}`",
                    soft_wrap=True,
                )
                raise typer.Exit(1)
            console.print(f"{root / board.OUTPUT_FILE} is up to date")
        else:
            path = board.build(root)
            console.print(f"wrote {path} ({len(data.entries)} computed entries)")
    for name, reasons in sorted(data.refused.items()):
        console.print(
            f"[yellow]refused:[/] {name}: {'; '.join(reasons)}", highlight=False, soft_wrap=True
        )


def _fmt(value, key: str, scale: float, signed: bool = False) -> str:
    if value is None:
        return "–"
    decimals = board.DECIMALS.get(key, 3)
    return f"{value * scale:{'+' if signed else ''}.{decimals}f}"


def compare_table(result: dict) -> Table:
    """A rich table of :func:`avsync_bench.stats.compare`'s result."""
    level = round(100 * result["level"])
    table = Table(
        title=f"A − B · {result['dataset']} · {result['protocol']} · {result['n_clips']} clips "
        f"({result['n_videos']} videos) · paired bootstrap, seed {result['seed']}"
    )
    for column in ("metric", "A", "B", "A − B", f"{level}% CI of A − B", "P(A better)", "n boot"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for key, row in result["metrics"].items():
        scale = row["display_scale"]
        label = row["label"] + (" (x100)" if scale != 1 else "")
        label += " ↓" if row["lower_is_better"] else " ↑"
        interval = (
            f"[{_fmt(row['low'], key, scale)}, {_fmt(row['high'], key, scale)}]"
            if row["low"] is not None
            else "–"
        )
        p = "–" if row["p_a_better"] is None else f"{row['p_a_better']:.3f}"
        table.add_row(
            label,
            _fmt(row["a"], key, scale),
            _fmt(row["b"], key, scale),
            _fmt(row["diff"], key, scale, signed=True),
            interval,
            p,
            str(row["n_resamples"]),
        )
    return table


def compare_command(
    a: Path = typer.Argument(..., help="Run A: results folder or results.json."),
    b: Path = typer.Argument(..., help="Run B: results folder or results.json (same clips)."),
    resamples: int = typer.Option(
        stats.DEFAULT_RESAMPLES, min=10, help="Bootstrap resamples for the per-clip metrics."
    ),
    frechet_resamples: int = typer.Option(
        stats.DEFAULT_FRECHET_RESAMPLES,
        min=10,
        help="Bootstrap resamples for FID/FVD (≈2-4 s each per run for FID on 2 CPU cores).",
    ),
    seed: int = typer.Option(stats.DEFAULT_SEED, help="Seed of the video resamples."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the result as JSON."),
    html_out: Path | None = typer.Option(
        None,
        "--html",
        help="Also write an A-vs-B page DIR/index.html: paired table, per-class A − B with "
        "intervals, the worst clips of each run.",
    ),
) -> None:
    """Paired comparison of two scored runs on the same clips.

    For every metric both runs have: A, B, A − B, a 95% paired bootstrap percentile interval of
    A − B (test videos resampled with their clips together, the same resamples for both runs)
    and P(A better), the fraction of resamples in which A is better (direction-aware, ties ½).
    FID/FVD intervals need the features.npz beside each results.json, the per-clip metrics
    per_clip.csv. Refused (exit code 1) when the dataset, protocol or clip set differ.
    Before starting it prints the number of Fréchet distances to compute and an estimate of
    their time on this machine.
    """
    from avsync_bench.report import frechet_plan

    with exit_on_error():
        run_a, run_b = stats.load_run(a), stats.load_run(b)
        _, _, plan = frechet_plan(
            run_a, min(frechet_resamples, resamples), paired=True, per_class=html_out is not None
        )
        console.print(f"compare: {plan}", highlight=False, soft_wrap=True)
        with progress_bars() as progress:
            result = stats.compare(
                run_a,
                run_b,
                n_resamples=resamples,
                n_frechet=frechet_resamples,
                seed=seed,
                progress=progress,
            )
            if html_out is not None:
                from avsync_bench.class_stats import paired_per_class
                from avsync_bench.compare_page import build_compare_page

                aligned = stats._align(run_b, run_a.clips)
                classes = paired_per_class(
                    run_a, aligned, resamples, min(frechet_resamples, resamples), seed,
                    progress=progress,
                )  # fmt: skip
        if json_out is not None:
            json_out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    out = Console()
    out.print(f"A: {result['a']}\nB: {result['b']}", highlight=False)
    out.print(compare_table(result))
    for row in result["metrics"].values():
        for warning in row["warnings"]:
            out.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    for warning in result["warnings"]:
        out.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    for side in ("a", "b"):
        if result[f"only_in_{side}"]:
            names = ", ".join(result[f"only_in_{side}"])
            out.print(f"only in {side.upper()} (not compared): {names}", highlight=False)
    if html_out is not None:
        index = build_compare_page(result, run_a, aligned, classes, html_out)
        out.print(f"wrote {index}", highlight=False, soft_wrap=True)
