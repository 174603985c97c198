"""Showing an analysis: the paper-style vote table on the terminal and a standalone HTML page."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from rich.console import Console
from rich.table import Table

__all__ = ["print_analysis", "analysis_html"]

LABELS = {"iq": "IQ", "fc": "FC", "sync": "Sync"}


def _ci(values) -> str:
    low, high = values
    return "–" if low is None else f"[{low:.2f}, {high:.2f}]"


def print_analysis(result: dict, console: Console | None = None) -> None:
    """Print the vote table (votes per method and question, as the paper's Table 1), then per
    question win rates, Bradley–Terry strengths, α, position bias, Kendall τ and attention."""
    console = console or Console()
    questions = list(result["questions"])
    table = Table(title="Human preference: votes per method (share)")
    table.add_column("method")
    for q in questions:
        n = result["questions"][q]["n_votes"]
        table.add_column(f"{LABELS.get(q, q)} (n={n})", justify="right")
    for m in result["methods"]:
        cells = []
        for q in questions:
            v = result["questions"][q]["votes"][m]
            cells.append(f"{v['votes']} ({100 * v['share']:.1f}%)")
        table.add_row(m, *cells)
    console.print(table)
    for q in questions:
        r = result["questions"][q]
        detail = Table(title=f"{LABELS.get(q, q)}: {r['n_items']} items")
        for column in ("method", "win rate", "95% CI", "BT strength", "95% CI"):
            detail.add_column(column, justify="right" if column != "method" else "left")
        for m in r["ranking"]:
            w, b = r["win_rate"][m], r["bradley_terry"][m]
            value = "–" if w["value"] is None else f"{w['value']:.2f}"
            detail.add_row(m, value, _ci(w["ci95"]), f"{b['strength']:+.2f}", _ci(b["ci95"]))
        console.print(detail)
        alpha = r["agreement"]["krippendorff_alpha"]
        console.print(
            f"  Krippendorff α = {'undefined' if alpha is None else f'{alpha:.3f}'} "
            f"({r['agreement']['raters']} raters)"
        )
        for n, bias in r["position_bias"].items():
            shares = ", ".join(f"{100 * s:.0f}%" for s in bias["share_per_slot"])
            p = "–" if bias["chi2_p"] is None else f"{bias['chi2_p']:.3f}"
            console.print(f"  position bias ({n} videos, slot 1..{n}): {shares}; χ² p = {p}")
        for tau in r["kendall_tau"].values():
            value = "undefined" if tau["tau"] is None else f"{tau['tau']:+.2f}"
            console.print(
                f"  Kendall τ(human, {tau['label']}) = {value} ({tau['n_methods']} methods)"
            )
    attention = result["attention"]["per_rater"]
    if attention:
        failed = ", ".join(f"{k}: {v['failed']}/{v['checks']}" for k, v in attention.items())
        console.print(f"failed attention checks per rater: {failed}")
    for note in result.get("notes", []):
        console.print(f"note: {note}")


def analysis_html(result: dict, title: str) -> str:
    """A standalone HTML page (no external resources) with the same tables."""
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(["html"]),
    )
    return env.get_template("analysis.html").render(r=result, title=title, labels=LABELS)
