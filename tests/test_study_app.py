"""The user-study web app through Starlette's TestClient: flow, storage and every refusal."""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the study extra is not installed")
pytest.importorskip("httpx", reason="the study extra is not installed")

from sqlalchemy import select  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from avsync_bench.study.app import create_app  # noqa: E402
from avsync_bench.study.models import Assignment, Base, Item, Refusal, Vote, open_database  # noqa: E402
from avsync_bench.study.store import (  # noqa: E402
    StudyError,
    StudySettings,
    close_study,
    create_study,
    invite,
    vote_rows,
    write_export,
)
from baselines.base import Adapter, GenerationOutput  # noqa: E402
from baselines.runner import run_adapter  # noqa: E402
from baselines.static import StaticAdapter  # noqa: E402

QUESTIONS = ["iq", "fc", "sync"]


class PanAdapter(Adapter):
    """A second 'method': the conditioning frame panned 4 px a frame."""

    name = "pan"

    def generate(self, inputs):
        return GenerationOutput(
            np.stack([np.roll(inputs.first_frame, 4 * i, 1) for i in range(12)])
        )


@pytest.fixture(scope="module")
def preds(tiny_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("study_preds")
    run_adapter(StaticAdapter(), root / "static", data_root=tiny_dataset)
    run_adapter(PanAdapter(), root / "pan", data_root=tiny_dataset)
    return root


@pytest.fixture(scope="module")
def template(tiny_dataset, preds, tmp_path_factory):
    """One study (6 items, 3 participants, invited) built once; tests get a copy of its database."""
    root = tmp_path_factory.mktemp("study_template")
    sessions = open_database(f"sqlite:///{root / 'studies.db'}")
    settings = StudySettings(
        name="demo", methods={"MethodAlpha": preds / "static", "MethodBeta": preds / "pan"},
        data_root=tiny_dataset, raters_per_item=2, participants=3, clips=(0, 1, 2),
        attention_rate=0.25, seed=5, media_root=root / "media",
    )  # fmt: skip
    summary = create_study(sessions, settings)
    tokens = [token for _, token in invite(sessions, "demo", 3)]
    sessions.kw["bind"].dispose()
    return root / "studies.db", summary, tokens


@pytest.fixture
def study(template, tmp_path):
    db, summary, tokens = template
    shutil.copy(db, tmp_path / "studies.db")
    return open_database(f"sqlite:///{tmp_path / 'studies.db'}"), summary, tokens


def _client(sessions):
    return TestClient(create_app(sessions, "demo"), follow_redirects=False)


def _start(client, token):
    assert client.post(f"/p/{token}/consent", json={"consent": True}).status_code == 200
    page = client.get(f"/p/{token}/item")
    assert page.status_code == 200
    return page


def _current(sessions, token_index):
    with sessions() as session:
        rows = session.scalars(
            select(Assignment).order_by(Assignment.rater_id, Assignment.position)
        )
        by_rater = [a for a in rows if a.rater_id == token_index + 1]
        return next(a for a in by_rater if a.completed_at is None)


def _next(client, sessions, token_index, token):
    """Open the participant's item page, then return the assignment it shows."""
    assert client.get(f"/p/{token}/item").status_code == 200
    return _current(sessions, token_index)


def _vote(client, token, assignment_id, slot=0, **extra):
    body = {"assignment": assignment_id, "answers": {q: slot for q in QUESTIONS}, **extra}
    return client.post(f"/p/{token}/vote", json=body)


def test_migrations_build_exactly_the_models_schema(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    sessions = open_database(f"sqlite:///{tmp_path / 'x.db'}")
    with sessions.kw["bind"].connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    open_database(f"sqlite:///{tmp_path / 'x.db'}")  # reopening an up-to-date database is a no-op


def test_create_stores_a_balanced_study(study):
    sessions, summary, _ = study
    assert summary["items"] == 6 and summary["participants"] == 3
    with sessions() as session:
        assignments = session.scalars(select(Assignment)).all()
        items = {i.id: i for i in session.scalars(select(Item))}
        raters_per_item = Counter(
            a.item_id for a in assignments if not items[a.item_id].is_attention
        )
        assert sorted(raters_per_item.values()) == [2] * 6
        per_rater = Counter(a.rater_id for a in assignments if not items[a.item_id].is_attention)
        checks = Counter(a.rater_id for a in assignments if items[a.item_id].is_attention)
        assert checks == {r: 1 for r in per_rater}  # ceil(0.25 * 4) per participant
        left = Counter(a.layout[0] for a in assignments if not items[a.item_id].is_attention)
        assert abs(left[1] - left[2]) <= 1


def test_create_refuses_a_method_without_every_clip(tiny_dataset, preds, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(preds / "pan", partial)
    next(partial.rglob("*_clip-01.mp4")).unlink()
    sessions = open_database(f"sqlite:///{tmp_path / 'studies.db'}")
    settings = StudySettings(name="x", methods={"A": preds / "static", "B": partial},
                             data_root=tiny_dataset, media_root=tmp_path / "m")  # fmt: skip
    with pytest.raises(StudyError, match=r"method B.*\n(.*\n)*.*missing"):
        create_study(sessions, settings)


def test_participant_flow_commits_votes_and_survives_a_restart(study):
    sessions, _, tokens = study
    client = _client(sessions)
    consent = client.get(f"/p/{tokens[0]}")
    assert consent.status_code == 200 and "I agree" in consent.text
    page = _start(client, tokens[0])
    assert "Item 1 of 5" in page.text and page.headers["referrer-policy"] == "no-referrer"
    first = _current(sessions, 0)
    video = client.get(f"/p/{tokens[0]}/a/{first.id}/video/1", headers={"Range": "bytes=0-99"})
    assert video.status_code == 206 and len(video.content) == 100
    assert video.headers["content-range"].startswith("bytes 0-99/")
    assert client.get(f"/p/{tokens[0]}/a/{first.id}/image").headers["content-type"] == "image/png"
    response = _vote(
        client, tokens[0], first.id, slot=1, reasons={"0": ["flicker"]}, client_ms=1234
    )
    assert response.status_code == 200
    restarted = _client(sessions)  # a new app on the same database: nothing is lost
    assert "Item 2 of 5" in restarted.get(f"/p/{tokens[0]}/item").text
    for _ in range(4):
        current = _next(restarted, sessions, 0, tokens[0])
        assert _vote(restarted, tokens[0], current.id).status_code == 200
    assert "All 5 items are done" in restarted.get(f"/p/{tokens[0]}/item").text
    rows = vote_rows(sessions, "demo")
    assert len(rows) == 5 * 3 and {r["question"] for r in rows} == set(QUESTIONS)
    first_rows = [r for r in rows if r["item"] == first.item_id]
    assert all(r["slot"] == 1 and r["client_time_on_page_s"] == 1.234 for r in first_rows)
    assert all(r["time_on_page_s"] is not None and r["time_on_page_s"] >= 0 for r in rows)


def test_no_participant_response_names_a_method(study, preds):
    sessions, _, tokens = study
    client = _client(sessions)
    page = _start(client, tokens[1])
    assignment = _current(sessions, 1)
    responses = [page, client.get(f"/p/{tokens[1]}")]
    responses += [client.get(f"/p/{tokens[1]}/a/{assignment.id}/video/{s}") for s in (0, 1)]
    for response in responses:
        text = response.text if "html" in response.headers.get("content-type", "") else ""
        blob = text + str(dict(response.headers))
        for secret in ("MethodAlpha", "MethodBeta", str(preds), "static", "_attention"):
            assert secret not in blob


def test_refusals_get_4xx_are_logged_and_recorded(study, caplog):
    sessions, summary, tokens = study
    client = _client(sessions)
    _start(client, tokens[0])
    _start(client, tokens[1])
    mine, theirs = _current(sessions, 0), _current(sessions, 1)
    caplog.set_level(logging.WARNING, logger="avsync_bench.study")
    cases = [
        (client.get("/p/not-a-token-at-all-xxxxxxxxxx/item"), 404),
        (_vote(client, "not-a-token-at-all-xxxxxxxxxx", mine.id), 404),
        (_vote(client, tokens[0], theirs.id), 403),  # an item not assigned to this token
        (_vote(client, tokens[0], 10**6), 403),
        (client.get(f"/p/{tokens[0]}/a/{theirs.id}/video/0"), 403),
        (client.get(f"/p/{tokens[0]}/a/{mine.id}/video/7"), 404),
        (
            client.post(
                f"/p/{tokens[0]}/vote",
                content=b"{not json",
                headers={"Content-Type": "application/json"},
            ),
            400,
        ),
        (
            client.post(
                f"/p/{tokens[0]}/vote", content=b"{}", headers={"Content-Type": "text/plain"}
            ),
            415,
        ),
        (client.post(f"/p/{tokens[0]}/vote", json={"pad": "x" * 70_000}), 413),
        (client.post(f"/p/{tokens[0]}/vote", json=[1, 2]), 400),
        (
            client.post(f"/p/{tokens[0]}/vote", json={"assignment": mine.id, "answers": {"iq": 0}}),
            400,
        ),
        (_vote(client, tokens[0], mine.id, slot=5), 400),
        (_vote(client, tokens[0], mine.id, reasons={"0": ["../../etc/passwd"]}), 400),
        (_vote(client, tokens[0], mine.id, path="/etc/passwd"), 400),
        (client.post(f"/p/{tokens[0]}/consent", json={"consent": "maybe"}), 400),
        (client.get("/admin?key=wrong"), 403),
    ]
    for response, status in cases:
        assert response.status_code == status, (response.request.url, response.text)
    assert _vote(client, tokens[0], mine.id).status_code == 200
    replay = _vote(client, tokens[0], mine.id)
    assert replay.status_code == 409 and "replayed" in replay.json()["error"]
    later = [a for a in _all(sessions) if a.rater_id == 1 and a.completed_at is None][-1]
    assert _vote(client, tokens[0], later.id).status_code == 409  # not the current item
    with sessions() as session:
        refusals = session.scalars(select(Refusal)).all()
        votes = session.scalars(select(Vote)).all()
    assert len(refusals) == len(cases) + 2 == len(caplog.records)
    assert all(token not in r.path for r in refusals for token in tokens)
    assert not any(token in caplog.text for token in tokens) and "<token>" in caplog.text
    assert len(votes) == 3  # only the accepted vote, once
    # path traversal never reaches a file: paths come from the database only
    assert client.get(f"/p/{tokens[0]}/a/{mine.id}/..%2F..%2Fetc%2Fpasswd").status_code >= 400
    admin = client.get("/admin", headers={"X-Admin-Key": summary["admin_key"]})
    assert admin.status_code == 200 and "P01" in admin.text and "MethodAlpha" not in admin.text
    close_study(sessions, "demo")
    assert _vote(client, tokens[0], _current(sessions, 0).id).status_code == 403


def _all(sessions):
    with sessions() as session:
        return session.scalars(select(Assignment).order_by(Assignment.position)).all()


def test_export_has_every_vote_as_csv_and_parquet(study, tmp_path):
    import csv

    import pyarrow.parquet as pq

    sessions, _, tokens = study
    client = _client(sessions)
    for index in (0, 1):
        _start(client, tokens[index])
        for _ in range(2):
            current = _next(client, sessions, index, tokens[index])
            assert _vote(client, tokens[index], current.id, slot=1).status_code == 200
    rows = vote_rows(sessions, "demo")
    assert len(rows) == 4 * 3
    with open(write_export(rows, tmp_path / "votes.csv")) as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 12 and {r["method"] for r in table} <= {
        "MethodAlpha", "MethodBeta", "_attention_gt", "_attention_static"}  # fmt: skip
    assert set(table[0]) >= {"rater", "item", "method", "side", "time_on_page_s", "shown"}
    assert pq.read_table(write_export(rows, tmp_path / "votes.parquet")).num_rows == 12
    with pytest.raises(StudyError, match="csv or .parquet"):
        write_export(rows, tmp_path / "votes.xlsx")


def test_cli_analyze_prints_the_vote_table_and_writes_json_and_html(study, tmp_path):
    from typer.testing import CliRunner

    from avsync_bench.cli import app

    sessions, _, tokens = study
    client = _client(sessions)
    for index in range(3):
        _start(client, tokens[index])
        while "items are done" not in client.get(f"/p/{tokens[index]}/item").text:
            current = _current(sessions, index)
            assert _vote(client, tokens[index], current.id, slot=index % 2).status_code == 200
    db = str(sessions.kw["bind"].url)
    out = tmp_path / "analysis.json"
    runner = CliRunner()
    result = runner.invoke(app, ["study", "analyze", "demo", "--db", db, "--out", str(out),
                                 "--bootstrap", "20"], env={"COLUMNS": "160"})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "votes per method" in result.output and "MethodAlpha" in result.output
    assert "Krippendorff" in result.output and "failed attention checks" in result.output
    analysis = json.loads(out.read_text())
    assert analysis["questions"]["sync"]["n_votes"] == 12  # 6 items x 2 raters
    assert 'id="user-study"' in out.with_suffix(".html").read_text()
    exported = runner.invoke(app, ["study", "export", "demo", "--db", db, "--out",
                                   str(tmp_path / "v.csv")])  # fmt: skip
    assert exported.exit_code == 0 and "wrote 45 votes" in exported.output  # 15 pages x 3
    missing = runner.invoke(app, ["study", "analyze", "nope", "--db", db])
    assert missing.exit_code == 1 and "no study 'nope'" in missing.output
    assert "Traceback" not in missing.output


def test_cli_create_and_invite(tiny_dataset, preds, tmp_path):
    from typer.testing import CliRunner

    from avsync_bench.cli import app

    db = f"sqlite:///{tmp_path / 's.db'}"
    runner = CliRunner()
    base = ["study", "create", "pilot", "--data-root", str(tiny_dataset), "--db", db,
            "--media-dir", str(tmp_path / "media"), "--videos", "1", "--attention-rate", "0"]  # fmt: skip
    methods = f"A={preds / 'static'},B={preds / 'pan'}"
    bad = runner.invoke(app, [*base, "--methods", f"A={preds / 'static'},B={tmp_path}"])
    assert bad.exit_code == 1 and "method B" in bad.output and "missing" in bad.output
    assert "Traceback" not in bad.output
    bad = runner.invoke(app, [*base, "--methods", methods, "--questions", "iq,beauty"])
    assert bad.exit_code == 1 and "--questions" in bad.output
    created = runner.invoke(app, [*base, "--methods", methods, "--format", "pairwise"])
    assert created.exit_code == 0, created.output
    assert '"items": 1' in created.output and "admin key" in created.output
    again = runner.invoke(app, [*base, "--methods", methods])
    assert again.exit_code == 1 and "already exists" in again.output
    invited = runner.invoke(app, ["study", "invite", "pilot", "--n", "2", "--db", db])
    links = [line.split("\t") for line in invited.output.splitlines()]
    assert invited.exit_code == 0 and [label for label, _ in links] == ["P01", "P02"]
    assert len({link for _, link in links}) == 2 and all("/p/" in link for _, link in links)
    more = runner.invoke(app, ["study", "invite", "pilot", "--n", "1", "--db", db])
    assert more.exit_code == 1 and "0 participant slot(s) left" in more.output
