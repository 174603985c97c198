"""Checks ``leaderboard/reported.json`` against its schema and against the source texts.

The source texts (the paper as text, PROTOCOL.md) live in the read-only ``shared/`` folder next to
the repository; tests that need them skip with a reason when it is absent.

The paper's .txt conversion prints every table cell three times ("13.513.513.5"), bold cells as
"11.711.7\\bf 11.7" or with mathematical-bold digits ("𝟏𝟔𝟑163\\bf 163"). The parser below undoes
that, so every cell of Table 1 (a)-(c) is compared with the JSON, not only the spot checks.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REPORTED = REPO / "leaderboard" / "reported.json"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PAPER_TXT = SHARED / "paper" / "asva-eccv2024.txt"
PROTOCOL_MD = SHARED / "PROTOCOL.md"

SCALED_METRICS = {"IA", "IT", "RelSync", "AlignSync"}
INPUT_LABELS = {"T+A", "I+T", "I+T+A"}
SUBTABLE_END = {
    "paper_table1a": "(a) Performance on AVSync15.",
    "paper_table1b": "(b) Performance on Landscapes.",
    "paper_table1c": "(c) Performance on TheGreatestHits.",
}


@pytest.fixture(scope="module")
def reported() -> dict:
    with REPORTED.open(encoding="utf-8") as fh:
        return json.load(fh)


def _tables(doc: dict) -> dict[str, dict]:
    return {t["id"]: t for t in doc["tables"]}


def _find_row(table: dict, method: str, inputs: str | None = None) -> dict:
    hits = [r for r in table["rows"] if r["method"] == method]
    if inputs is not None:
        hits = [r for r in hits if r["inputs"] == inputs]
    assert len(hits) == 1, f"{table['id']}: {len(hits)} rows match {method!r} / {inputs!r}"
    return hits[0]


def _printed(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def _read_source(path: Path) -> str:
    if not path.is_file():
        pytest.skip(f"source text {path} not available (shared/ folder absent)")
    return path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------


def test_schema_top_level(reported):
    assert reported["schema"] == 1
    assert isinstance(reported["sources"], dict) and reported["sources"]
    assert all(isinstance(v, str) and v for v in reported["sources"].values())
    ids = [t["id"] for t in reported["tables"]]
    assert len(ids) == len(set(ids))
    assert {"paper_table1a", "paper_table1b", "paper_table1c", "readme_avsync15"} <= set(ids)


def test_schema_tables_and_rows(reported):
    for table in reported["tables"]:
        tid = table["id"]
        assert table["dataset"] in {"avsync15", "landscapes", "thegreatesthits"}, tid
        assert table["source"] in reported["sources"], tid
        metrics = table["metrics"]
        assert metrics, tid
        for name, meta in metrics.items():
            assert meta["direction"] in {"lower", "higher"}, (tid, name)
            assert isinstance(meta["decimals"], int), (tid, name)
            if name in SCALED_METRICS:
                assert meta.get("scale") == 100, (tid, name)
            else:
                assert "scale" not in meta, (tid, name)
        assert metrics.get("FID", {"direction": "lower"})["direction"] == "lower"
        assert metrics.get("FVD", {"direction": "lower"})["direction"] == "lower"
        assert table["rows"], f"{tid} has no rows"
        keys = set()
        for row in table["rows"]:
            assert isinstance(row["method"], str) and row["method"], tid
            assert row["inputs"] is None or row["inputs"] in INPUT_LABELS, (tid, row)
            assert set(row["values"]) == set(metrics), (tid, row["method"])
            for name, value in row["values"].items():
                assert value is None or (
                    isinstance(value, (int, float)) and not isinstance(value, bool)
                ), (tid, row["method"], name)
                if value is not None:
                    assert math.isfinite(value) and value >= 0
                    if metrics[name].get("scale") == 100:
                        assert value <= 100, (tid, row["method"], name)
            assert set(row.get("bold", [])) <= set(metrics), (tid, row["method"])
            key = (row["method"], row["inputs"])
            assert key not in keys, f"{tid}: duplicate row {key}"
            keys.add(key)


def test_user_study_votes_sum_to_300(reported):
    """Sec. 5.2: 150 test examples x 2 participants = 300 votes per user-study metric."""
    table = _tables(reported)["paper_table1a"]
    for metric in ("IQ", "FC", "Sync"):
        votes = [r["values"][metric] for r in table["rows"] if r["values"][metric] is not None]
        assert len(votes) == 4
        assert sum(votes) == 300, metric


def test_protocol_paper_eta_rows_match_table1a(reported):
    tables = _tables(reported)
    t1a = tables["paper_table1a"]
    dup = tables["protocol_paper_eta_avsync15"]
    assert dup["duplicate_of"] == "paper_table1a"
    for row in dup["rows"]:
        src = _find_row(t1a, row["method"], row["inputs"])
        assert src["audio_guidance"] == row["audio_guidance"]
        for name, value in row["values"].items():
            assert src["values"][name] == value, (row["method"], name)


# --------------------------------------------------------------------------------------------
# Spot checks against the source texts (number strings found in the text)
# --------------------------------------------------------------------------------------------

# (table id, method, inputs, metric, printed string, string that must occur in the source text)
SPOT_CHECKS = [
    ("paper_table1a", "TPoS", "T+A", "FVD", "2671.0", "2671.02671.02671.0"),
    ("paper_table1a", "AVSyncD (η=1)", "I+T+A", "FVD", "382.7", "382.7382.7382.7"),
    ("paper_table1a", "AVSyncD (η=4)", "I+T+A", "FVD", "349.1", "349.1349.1\\bf 349.1"),
    ("paper_table1a", "AADiff", "I+T+A", "FID", "18.8", "18.818.818.8"),
    ("paper_table1a", "Groundtruth", None, "AlignSync", "25.04", "25.0425.0425.04"),
    ("paper_table1a", "I2VD", "I+T", "FC", "90", "909090"),
    ("paper_table1b", "AADiff", "I+T+A", "FID", "70.7", "70.770.770.7"),
    ("paper_table1b", "AVSyncD (η=4)", "I+T+A", "FVD", "415.2", "415.2415.2\\bf 415.2"),
    ("paper_table1b", "TPoS", "T+A", "IA", "15.61", "15.6115.6115.61"),
    ("paper_table1c", "AVSyncD (η=4)", "I+T+A", "FVD", "249.3", "249.3249.3\\bf 249.3"),
    ("paper_table1c", "Static", None, "IT", "16.56", "16.5616.5616.56"),
    ("paper_table1c", "I2VD", "I+T", "RelSync", "44.58", "44.5844.5844.58"),
]

README_SPOT_CHECKS = [
    ("readme_avsync15", "AVSyncD (η=1)", "FVD", "323.06"),
    ("readme_avsync15", "AVSyncD (η=4)", "FVD", "300.82"),
    ("readme_avsync15", "AVSyncD (η=8)", "AlignSync", "22.70"),
    ("protocol_paper_eta_avsync15", "AVSyncD (η=8)", "FVD", "420.7"),
]


@pytest.mark.parametrize("tid,method,inputs,metric,printed,needle", SPOT_CHECKS)
def test_spot_cells_against_paper_text(reported, tid, method, inputs, metric, printed, needle):
    text = _read_source(PAPER_TXT)
    row = _find_row(_tables(reported)[tid], method, inputs)
    value = row["values"][metric]
    assert value == float(printed)
    decimals = _tables(reported)[tid]["metrics"][metric]["decimals"]
    assert _printed(value, decimals) == printed
    block = _subtable_text(text, tid)
    assert needle in block, f"{needle!r} not found in the text of {tid}"


@pytest.mark.parametrize("tid,method,metric,printed", README_SPOT_CHECKS)
def test_spot_cells_against_protocol(reported, tid, method, metric, printed):
    text = _read_source(PROTOCOL_MD)
    table = _tables(reported)[tid]
    row = _find_row(table, method)
    assert _printed(row["values"][metric], table["metrics"][metric]["decimals"]) == printed
    assert printed in text


# --------------------------------------------------------------------------------------------
# Full comparison: every cell of Table 1 (a)-(c) and of the PROTOCOL.md sec. 6 table
# --------------------------------------------------------------------------------------------

_MATH_BOLD_DIGITS = {chr(0x1D7CE + i): str(i) for i in range(10)}


def _subtable_text(text: str, tid: str) -> str:
    start = text.index("Table 1: Quantitative results.")
    order = ["paper_table1a", "paper_table1b", "paper_table1c"]
    idx = order.index(tid)
    lo = start if idx == 0 else text.index(SUBTABLE_END[order[idx - 1]], start)
    hi = text.index(SUBTABLE_END[tid], start)
    return text[lo:hi]


def _cell(token: str) -> tuple[str | None, bool] | None:
    """A tripled number token -> (printed number, bold); '-' -> (None, False); else None."""
    if token == "-":
        return None, False
    bold = "\\bf" in token or any(ch in _MATH_BOLD_DIGITS for ch in token)
    plain = token.replace("\\bf", "")
    plain = "".join(_MATH_BOLD_DIGITS.get(ch, ch) for ch in plain)
    n = len(plain)
    if n == 0 or n % 3:
        return None
    third = plain[: n // 3]
    if plain != third * 3 or not re.fullmatch(r"\d+(\.\d+)?", third):
        return None
    return third, bold


def _parse_subtable(block: str) -> list[dict]:
    rows = []
    label = None
    for line in block.splitlines():
        line = line.strip()
        if not line or line.startswith(("Table 1:", "Input Model", "IQ", "(")):
            continue
        tokens = line.replace("\\bf ", "\\bf").split()
        cells: list[tuple[str | None, bool]] = []
        while tokens and _cell(tokens[-1]) is not None:
            cells.insert(0, _cell(tokens.pop()))
        if not cells or not tokens:
            continue
        if tokens[0] in INPUT_LABELS:
            label = tokens.pop(0)
            explicit = True
        else:
            explicit = False
        rows.append(
            {"name": " ".join(tokens), "label": label, "explicit": explicit, "cells": cells}
        )
    return rows


@pytest.mark.parametrize("tid", ["paper_table1a", "paper_table1b", "paper_table1c"])
def test_every_cell_against_paper_text(reported, tid):
    text = _read_source(PAPER_TXT)
    table = _tables(reported)[tid]
    parsed = _parse_subtable(_subtable_text(text, tid))
    metric_names = list(table["metrics"])
    assert len(parsed) == len(table["rows"]), [p["name"] for p in parsed]
    for prow, jrow in zip(parsed, table["rows"], strict=True):
        base = jrow["method"].split(" (")[0]
        assert prow["name"].startswith(base), (prow["name"], jrow["method"])
        if jrow["citation"]:
            assert jrow["citation"] in prow["name"]
        if jrow["audio_guidance"] is not None:
            assert f"η={jrow['audio_guidance']}" in prow["name"]
        if prow["explicit"]:
            assert jrow["inputs"] == prow["label"], jrow["method"]
        elif jrow["kind"] in ("baseline", "groundtruth"):
            assert jrow["inputs"] is None
        else:
            assert jrow["inputs"] == prow["label"], jrow["method"]
        cells = prow["cells"]
        assert len(cells) <= len(metric_names)
        # lines may stop early only before the user-study columns (Static / Groundtruth in (a))
        missing = metric_names[len(cells) :]
        assert all(table["metrics"][m].get("unit") == "votes" for m in missing), missing
        cells = cells + [(None, False)] * len(missing)
        bold = []
        for name, (printed, is_bold) in zip(metric_names, cells, strict=True):
            value = jrow["values"][name]
            where = f"{tid} / {jrow['method']} ({jrow['inputs']}) / {name}"
            if printed is None:
                assert value is None, where
            else:
                assert value is not None, where
                assert _printed(value, table["metrics"][name]["decimals"]) == printed, where
            if is_bold:
                bold.append(name)
        assert sorted(bold) == sorted(jrow["bold"]), (tid, jrow["method"])


def test_every_cell_against_protocol_table(reported):
    text = _read_source(PROTOCOL_MD)
    tables = _tables(reported)
    found = {}
    for line in text.splitlines():
        m = re.match(r"\s*\|\s*(Paper|README)\s*\|([^|]+)\|([^|]+)\|", line)
        if m:
            found[m.group(1)] = (m.group(2).split("/"), m.group(3).split("/"))
    assert set(found) == {"Paper", "README"}, "PROTOCOL.md sec. 6 table not found"
    for source, tid in (("README", "readme_avsync15"), ("Paper", "protocol_paper_eta_avsync15")):
        table = tables[tid]
        fvd, align = ([s.strip() for s in col] for col in found[source])
        assert [r["audio_guidance"] for r in table["rows"]] == [1, 4, 8]
        for i, row in enumerate(table["rows"]):
            for name, printed in (("FVD", fvd[i]), ("AlignSync", align[i])):
                dec = table["metrics"][name]["decimals"]
                assert _printed(row["values"][name], dec) == printed, (tid, row["method"], name)
