"""``avsync-bench study create|invite|serve|export|analyze|close``: a human preference study.

The study packages (SQLAlchemy, Alembic, Starlette, uvicorn, choix, krippendorff) come with the
``study`` extra and are imported only when a study command runs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer
from rich.console import Console

from avsync_bench.cli.common import console, exit_on_error
from avsync_bench.errors import OptionError

app = typer.Typer(
    help="A human preference study (the paper's Table 1 user study): create it from prediction "
    "folders, invite participants, serve the web app, export and analyse the votes.",
    no_args_is_help=True,
)

DB_HELP = "Database URL (default: sqlite:///$AVSYNC_BENCH_HOME/studies.db), e.g. postgresql://…"


def _sessions(db: str | None):
    try:
        from avsync_bench.study.models import open_database
    except ImportError as exc:
        console.print(
            f"[bold red]error:[/] the study commands need the 'study' extra ({exc.name} is "
            "missing): pip install 'avsync-bench[study]'"
        )
        raise typer.Exit(1) from None
    return open_database(db)


def _pairs(text: str, option: str) -> dict[str, Path]:
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, folder = part.partition("=")
        if not sep or not name or not folder:
            raise OptionError(f"{option}: expected NAME=DIR[,NAME=DIR…], got {part!r}")
        if name in out:
            raise OptionError(f"{option}: {name} is given twice")
        out[name] = Path(folder)
    return out


@app.command("create")
def create_command(
    name: str = typer.Argument(..., help="Study name (letters, digits, -_.)."),
    methods: str = typer.Option(..., help="Methods to compare: NAME=DIR,NAME=DIR (≥ 2)."),
    dataset: str = typer.Option("avsync15", help="avsync15, landscapes or thegreatesthits."),
    data_root: Path | None = typer.Option(None, help="Dataset root (default: datasets/<Name>)."),
    raters_per_item: int = typer.Option(2, min=1, help="Participants who judge each item."),
    participants: int | None = typer.Option(
        None, min=1, help="Participants (default: --raters-per-item, each then sees every item)."
    ),
    questions: str = typer.Option("iq,fc,sync", help="Questions, any of iq,fc,sync."),
    format: str = typer.Option("best-of", help="best-of (all methods at once) or pairwise."),
    clips: str = typer.Option("0", help="Test clip indices per video used as items (e.g. 0,1,2)."),
    videos: int | None = typer.Option(
        None, min=1, help="Only this many test videos, drawn with --seed (default: all)."
    ),
    attention_rate: float = typer.Option(
        0.1, help="Attention checks per item of a participant (rounded up; 0 for none)."
    ),
    attention_shift: float = typer.Option(
        1.0, help="Audio shift (s, circular) of the Static video in attention checks."
    ),
    seed: int = typer.Option(0, help="Seed of the item deal, screen order and attention checks."),
    media_dir: Path | None = typer.Option(
        None,
        help="Folder for the study's images, sounds and attention videos "
        "(default: $AVSYNC_BENCH_HOME/studies).",
    ),  # fmt: skip
    db: str | None = typer.Option(None, help=DB_HELP),
) -> None:
    """Check every method has every test clip (the checks of `score`), then store the study:
    items (a test clip, its GT image and audio, every method's video), a balanced deal (each
    item to exactly --raters-per-item participants; screen slots balanced within ±1 per
    method), per-assignment seeds and attention checks (the GT clip against the Static
    baseline with shifted audio). Prints the admin key once."""
    with exit_on_error():
        from avsync_bench.study.store import StudySettings, create_study

        sessions = _sessions(db)
        settings = StudySettings(
            name=name, methods=_pairs(methods, "--methods"), dataset=dataset,
            data_root=data_root, raters_per_item=raters_per_item, participants=participants,
            questions=tuple(q.strip() for q in questions.split(",") if q.strip()),
            format=format, clips=tuple(int(c) for c in clips.split(",")), n_videos=videos,
            attention_rate=attention_rate, attention_shift_s=attention_shift, seed=seed,
            media_root=media_dir,
        )  # fmt: skip
        summary = create_study(sessions, settings)
    key = summary.pop("admin_key")
    console.print(json.dumps(summary, indent=2), highlight=False)
    console.print(f"admin key (shown once; the admin page is /admin?key=…): {key}", soft_wrap=True)
    typer.echo(key)


@app.command("invite")
def invite_command(
    name: str = typer.Argument(..., help="Study name."),
    n: int = typer.Option(..., "--n", min=1, help="How many participant links to make."),
    base_url: str = typer.Option(
        "http://127.0.0.1:8000", help="The address participants will use for `study serve`."
    ),
    db: str | None = typer.Option(None, help=DB_HELP),
) -> None:
    """Print K personal links (one per line: participant code, then link). Tokens are random
    (secrets) and stored only as sha256, so keep the printed links."""
    with exit_on_error():
        from avsync_bench.study.store import invite

        links = invite(_sessions(db), name, n)
    for label, token in links:
        typer.echo(f"{label}\t{base_url.rstrip('/')}/p/{token}")


@app.command("serve")
def serve_command(
    name: str = typer.Argument(..., help="Study name."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    db: str | None = typer.Option(None, help=DB_HELP),
) -> None:
    """Run the study's web app (uvicorn) until interrupted: consent page, one item per page,
    votes committed before the next item; refused requests are logged to stderr."""
    with exit_on_error():
        import uvicorn

        from avsync_bench.study.app import create_app

        web = create_app(_sessions(db), name)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    console.print(f"study {name} on http://{host}:{port}/ (Ctrl-C to stop)")
    # uvicorn's access log would write every participant's token (they are in the URLs)
    uvicorn.run(web, host=host, port=port, log_level="info", access_log=False)


@app.command("export")
def export_command(
    name: str = typer.Argument(..., help="Study name."),
    out: Path = typer.Option(..., help="Output file: .csv or .parquet."),
    db: str | None = typer.Option(None, help=DB_HELP),
) -> None:
    """Write every vote (one row per question answered) with rater, item, clip, question,
    chosen method and slot/side, the methods shown in order, times and reason codes."""
    with exit_on_error():
        from avsync_bench.study.store import vote_rows, write_export

        rows = vote_rows(_sessions(db), name)
        write_export(rows, out)
    console.print(f"wrote {len(rows)} votes to {out}")


def _method_results(study, given: dict[str, Path]) -> tuple[dict, list[str]]:
    from avsync_bench.results import load_results

    results, notes = {}, []
    for method in study.methods:
        if method.role != "method":
            continue
        path = given.get(method.name)
        if path is None:
            folder = Path(method.folder)
            found = sorted(Path(str(folder) + ".scores").glob("*/results.json"))
            official = Path(str(folder) + ".scores") / "official" / "results.json"
            path = official if official.is_file() else (found[0] if found else None)
        if path is None:
            notes.append(f"no results.json for {method.name}: Kendall τ skipped")
            return {}, notes
        results[method.name] = load_results(path)
    return results, notes


@app.command("analyze")
def analyze_command(
    name: str = typer.Argument(..., help="Study name."),
    out: Path | None = typer.Option(
        None,
        help="JSON output (default: analysis.json in the study's media folder); an HTML "
        "page is written beside it.",
    ),  # fmt: skip
    results: str = typer.Option(
        "", help="NAME=results.json,… for Kendall τ (default: <method dir>.scores/*/results.json)."
    ),
    bootstrap: int = typer.Option(1000, min=10, help="Bootstrap resamples over items."),
    db: str | None = typer.Option(None, help=DB_HELP),
) -> None:
    """Per question: votes per method (the paper's table), win rates and Bradley–Terry strengths
    with 95% bootstrap intervals over items, Krippendorff's α, position bias, Kendall τ between
    the human ranking and each automatic metric, and failed attention checks per rater."""
    with exit_on_error():
        from avsync_bench.study.analysis import analyze
        from avsync_bench.study.render import analysis_html, print_analysis
        from avsync_bench.study.store import get_study, vote_rows

        sessions = _sessions(db)
        with sessions() as session:
            study = get_study(session, name)
            questions, media = list(study.questions), Path(study.media_dir)
            scores, notes = _method_results(study, _pairs(results, "--results"))
        rows = vote_rows(sessions, name)
        result = analyze(rows, questions, scores, n_boot=bootstrap)
        result["study"], result["notes"] = name, notes
        out = out or media / "analysis.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        out.with_suffix(".html").write_text(analysis_html(result, f"User study {name}"))
    print_analysis(result, Console())
    console.print(f"wrote {out} and {out.with_suffix('.html')}")


@app.command("close")
def close_command(
    name: str = typer.Argument(..., help="Study name."),
    db: str | None = typer.Option(None, help=DB_HELP),
) -> None:
    """Close the study: the web app refuses further votes."""
    with exit_on_error():
        from avsync_bench.study.store import close_study

        close_study(_sessions(db), name)
    console.print(f"study {name} closed")
