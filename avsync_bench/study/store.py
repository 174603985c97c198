"""Creating, inviting to, closing and exporting a study (the database side of ``study …``).

``create_study`` checks every method's predictions with the same checks as ``score``
(:func:`avsync_bench.predictions.check_predictions`), extracts each item's conditioning image
(frame 0 of the GT clip, PNG) and clip audio (16 kHz WAV, PROTOCOL.md §1) into the study's media
folder, writes the attention-check videos, and stores items, raters and the balanced plan of
:mod:`avsync_bench.study.assignment` in one transaction.
"""

from __future__ import annotations

import csv
import math
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.io import wavfile
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from avsync_bench.clips import load_test_clips
from avsync_bench.datasets import DATASETS, load_split, resolve_root
from avsync_bench.errors import AVSyncBenchError
from avsync_bench.io.media import write_clip
from avsync_bench.predictions import check_predictions
from avsync_bench.protocol import DEFAULT_MODE
from avsync_bench.study.assignment import FORMATS, plan
from avsync_bench.study.models import (
    ROLE_ATTENTION,
    ROLE_GT,
    ROLE_METHOD,
    Assignment,
    Item,
    ItemVideo,
    Method,
    Rater,
    Study,
    Vote,
    token_hash,
    utcnow,
)
from avsync_bench.weights.store import default_home

__all__ = [
    "QUESTIONS",
    "StudyError",
    "StudySettings",
    "create_study",
    "get_study",
    "invite",
    "close_study",
    "vote_rows",
    "write_export",
]

QUESTIONS = {
    "iq": "Which video has the best image quality?",
    "fc": "Which video has the most consistent frames over time (least flicker or distortion)?",
    "sync": "In which video does the motion best follow the sound?",
}
"""The paper's three questions (Table 1: image quality, frame consistency, synchronisation)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class StudyError(AVSyncBenchError, ValueError):
    """A study command cannot do what was asked (unknown study, bad option, incomplete method)."""


@dataclass
class StudySettings:
    """Everything ``study create`` needs; see ``avsync-bench study create --help``."""

    name: str
    methods: dict[str, Path]
    dataset: str = "avsync15"
    data_root: Path | None = None
    raters_per_item: int = 2
    participants: int | None = None
    questions: tuple[str, ...] = ("iq", "fc", "sync")
    format: str = "best-of"
    clips: tuple[int, ...] = (0,)
    n_videos: int | None = None
    attention_rate: float = 0.1
    attention_shift_s: float = 1.0
    seed: int = 0
    media_root: Path | None = None


def get_study(session: Session, name: str) -> Study:
    """The study called ``name``. Raises StudyError naming the known studies when absent."""
    study = session.scalar(select(Study).where(Study.name == name))
    if study is None:
        known = session.scalars(select(Study.name)).all()
        raise StudyError(
            f"no study {name!r} in this database (known: {', '.join(known) or 'none'})"
        )
    return study


def _validate(s: StudySettings) -> None:
    if not _NAME.match(s.name):
        raise StudyError(f"study name {s.name!r}: use letters, digits, '-', '_' or '.'")
    if len(s.methods) < 2:
        raise StudyError("--methods: give at least two NAME=DIR pairs")
    for name in s.methods:
        if not _NAME.match(name):
            raise StudyError(f"--methods: method name {name!r} must be letters, digits, -_.")
    if s.format not in FORMATS:
        raise StudyError(f"--format {s.format!r}: choose one of {', '.join(FORMATS)}")
    unknown = [q for q in s.questions if q not in QUESTIONS]
    if unknown or not s.questions or len(set(s.questions)) != len(s.questions):
        raise StudyError(f"--questions: choose distinct ones of {', '.join(QUESTIONS)}")
    if not 0.0 <= s.attention_rate < 1.0:
        raise StudyError(f"--attention-rate must be in [0, 1), got {s.attention_rate}")
    if not 0.0 < s.attention_shift_s < DATASETS[s.dataset].spec.duration:
        raise StudyError("--attention-shift must be between 0 and the clip length (2 s)")


def _write_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    samples = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    wavfile.write(path, rate, (samples.T * 32767.0).round().astype(np.int16))


def create_study(sessions: sessionmaker, s: StudySettings) -> dict:
    """Check the methods, extract media and store the study; returns a summary with the admin key.

    Raises:
        StudyError: bad settings, a study of that name exists, or a method lacks clips (the
            message carries every method's prediction report).
        DatasetError: bad dataset root or list.
    """
    if s.dataset not in DATASETS:
        raise StudyError(f"--dataset {s.dataset!r}: choose one of {', '.join(DATASETS)}")
    _validate(s)
    spec = DATASETS[s.dataset].spec
    root = resolve_root(s.dataset, s.data_root).resolve()
    videos = load_split(s.dataset, root, "test")
    bad = []
    found: dict[str, dict[str, Path]] = {}
    for name, folder in s.methods.items():
        report = check_predictions(folder, videos, spec)
        if not report.complete:
            bad.append(f"method {name}: " + report.summary())
        found[name] = {rel: p.resolve() for rel, p in report.found.items()}
    if bad:
        raise StudyError("every method must have every test clip:\n" + "\n".join(bad))
    if any(not 0 <= c < spec.num_clips for c in s.clips):
        raise StudyError(f"--clips: clip indices are 0..{spec.num_clips - 1}")
    with sessions() as session:
        if session.scalar(select(Study).where(Study.name == s.name)) is not None:
            raise StudyError(f"a study named {s.name!r} already exists in this database")
    rng = np.random.default_rng(s.seed)
    if s.n_videos is not None:
        if not 1 <= s.n_videos <= len(videos):
            raise StudyError(f"--videos must be between 1 and {len(videos)}")
        chosen = sorted(rng.choice(len(videos), s.n_videos, replace=False))
        videos = [videos[i] for i in chosen]
    media = (s.media_root or default_home() / "studies") / s.name
    media.mkdir(parents=True, exist_ok=True)
    n_participants = s.participants or s.raters_per_item
    items_spec = [(v, c) for v in videos for c in s.clips]
    planned = plan(s.format, len(s.methods), len(items_spec), s.raters_per_item,
                   n_participants, s.seed)  # fmt: skip
    admin_key = secrets.token_urlsafe(24)
    with sessions() as session, session.begin():
        study = Study(
            name=s.name, dataset=s.dataset, data_root=str(root), format=s.format,
            questions=list(s.questions), raters_per_item=s.raters_per_item, seed=s.seed,
            attention_rate=s.attention_rate, attention_shift_s=s.attention_shift_s,
            media_dir=str(media.resolve()), admin_key_hash=token_hash(admin_key), status="open",
        )  # fmt: skip
        session.add(study)
        methods = [Method(study=study, name=n, folder=str(Path(f).resolve()), role=ROLE_METHOD)
                   for n, f in s.methods.items()]  # fmt: skip
        gt = Method(study=study, name="_attention_gt", folder=str(media), role=ROLE_GT)
        shifted = Method(study=study, name="_attention_static", folder=str(media),
                         role=ROLE_ATTENTION)  # fmt: skip
        session.add_all([*methods, gt, shifted])
        session.flush()
        clips_cache: dict[str, list] = {}

        def clip_of(video, index):
            if video.rel not in clips_cache:
                clips_cache[video.rel] = load_test_clips(video.path, spec, DEFAULT_MODE)
            return clips_cache[video.rel][index]

        items = []
        for n, (video, c) in enumerate(items_spec):
            clip = clip_of(video, c)
            image, audio = media / f"item{n:04d}.png", media / f"item{n:04d}.wav"
            Image.fromarray(clip.frames[0]).save(image)
            _write_wav(audio, clip.audio, spec.sample_rate)
            item = Item(study_id=study.id, clip=video.clip_name(c), class_text=video.class_text,
                        is_attention=False, image_path=str(image), audio_path=str(audio))  # fmt: skip
            item.videos = [ItemVideo(method_id=m.id, path=str(found[m.name][item.clip]))
                           for m in methods]  # fmt: skip
            items.append(item)
        session.add_all(items)
        raters = [Rater(study_id=study.id, label=f"P{r + 1:02d}") for r in range(n_participants)]
        session.add_all(raters)
        session.flush()
        per_rater: list[list] = [[] for _ in raters]
        for p in sorted(planned, key=lambda p: (p.rater, p.position)):
            per_rater[p.rater].append((items[p.item], [methods[m].id for m in p.layout], p.seed))
        n_att = 0
        for r, queue in enumerate(per_rater):
            k = math.ceil(s.attention_rate * len(queue)) if s.attention_rate > 0 else 0
            for _ in range(k):
                video, c = items_spec[int(rng.integers(len(items_spec)))]
                clip = clip_of(video, c)
                stem = media / f"attention{n_att:04d}"
                n_att += 1
                shifted_audio = np.roll(clip.audio, int(s.attention_shift_s * spec.sample_rate), 1)
                write_clip(f"{stem}_gt.mp4", clip.frames, spec.fps, clip.audio, spec.sample_rate)
                frozen = np.repeat(clip.frames[:1], spec.num_frames, axis=0)
                write_clip(f"{stem}_static.mp4", frozen, spec.fps, shifted_audio, spec.sample_rate)
                Image.fromarray(clip.frames[0]).save(f"{stem}.png")
                _write_wav(Path(f"{stem}.wav"), clip.audio, spec.sample_rate)
                item = Item(study_id=study.id, clip=video.clip_name(c), class_text=video.class_text,
                            is_attention=True, image_path=f"{stem}.png", audio_path=f"{stem}.wav")  # fmt: skip
                item.videos = [ItemVideo(method_id=gt.id, path=f"{stem}_gt.mp4"),
                               ItemVideo(method_id=shifted.id, path=f"{stem}_static.mp4")]  # fmt: skip
                session.add(item)
                layout = [gt.id, shifted.id] if rng.random() < 0.5 else [shifted.id, gt.id]
                where = int(rng.integers(1, len(queue) + 1)) if queue else 0
                queue.insert(where, (item, layout, int(rng.integers(2**31 - 1))))
            for position, (item, layout, seed) in enumerate(queue):
                session.add(Assignment(rater=raters[r], item=item, position=position,
                                       layout=layout, seed=seed))  # fmt: skip
        summary = {
            "study": s.name, "items": len(items), "attention_checks": n_att,
            "participants": n_participants, "assignments": len(planned) + n_att,
            "media": str(media), "admin_key": admin_key, "seed": s.seed,
        }  # fmt: skip
    return summary


def invite(sessions: sessionmaker, name: str, n: int) -> list[tuple[str, str]]:
    """Give ``n`` not yet invited participant slots a fresh random token; returns (label, token).

    Only the token's sha256 is stored: the printed links cannot be shown again.

    Raises:
        StudyError: unknown study, or fewer than ``n`` uninvited slots (the message says how many
            are left and how to create a study with more participants).
    """
    with sessions() as session, session.begin():
        study = get_study(session, name)
        free = [r for r in study.raters if r.token_hash is None]
        if n < 1 or n > len(free):
            raise StudyError(
                f"study {name!r} has {len(free)} participant slot(s) left of "
                f"{len(study.raters)}; --n {n} is not possible (create the study with more "
                "--participants)"
            )
        out = []
        for rater in free[:n]:
            token = secrets.token_urlsafe(24)
            rater.token_hash, rater.invited_at = token_hash(token), utcnow()
            out.append((rater.label, token))
    return out


def close_study(sessions: sessionmaker, name: str) -> None:
    """Close a study: no more votes; method identities may be shown from now on."""
    with sessions() as session, session.begin():
        study = get_study(session, name)
        study.status, study.closed_at = "closed", utcnow()


def vote_rows(sessions: sessionmaker, name: str) -> list[dict]:
    """Every vote as one flat row (the export's and the analysis's input).

    Columns: study, rater, item, clip, class, attention (bool), question, n_videos, slot (0 =
    left), side (``left``/``right`` for two videos, else ``slot k/n``), method, shown (methods in
    slot order, ``;``-joined), position (the item's place in the rater's queue), seed,
    shown_at, voted_at (UTC ISO), time_on_page_s (server: first display to vote),
    client_time_on_page_s (as the browser measured it), reasons (codes ticked for the chosen
    video, ``;``-joined).
    """
    with sessions() as session:
        study = get_study(session, name)
        names = {m.id: m.name for m in study.methods}
        query = (
            select(Vote, Assignment, Item, Rater)
            .join(Assignment, Vote.assignment_id == Assignment.id)
            .join(Item, Assignment.item_id == Item.id)
            .join(Rater, Assignment.rater_id == Rater.id)
            .where(Rater.study_id == study.id)
            .order_by(Rater.id, Assignment.position, Vote.id)
        )
        rows = []
        for vote, assignment, item, rater in session.execute(query):
            n = len(assignment.layout)
            shown_at = assignment.shown_at
            reasons = (assignment.reasons or {}).get(str(vote.slot), [])
            rows.append({
                "study": name, "rater": rater.label, "item": item.id, "clip": item.clip,
                "class": item.class_text, "attention": item.is_attention,
                "question": vote.question, "n_videos": n, "slot": vote.slot,
                "side": ("left", "right")[vote.slot] if n == 2 else f"slot {vote.slot + 1}/{n}",
                "method": names[vote.method_id],
                "shown": ";".join(names[m] for m in assignment.layout),
                "position": assignment.position, "seed": assignment.seed,
                "shown_at": shown_at.isoformat() if shown_at else "",
                "voted_at": vote.created_at.isoformat(),
                "time_on_page_s": round((vote.created_at - shown_at).total_seconds(), 3)
                if shown_at else None,
                "client_time_on_page_s": None if assignment.client_ms is None
                else assignment.client_ms / 1000.0,
                "reasons": ";".join(reasons),
            })  # fmt: skip
    return rows


def write_export(rows: list[dict], out: Path) -> Path:
    """Write ``rows`` as CSV, or as Parquet when ``out`` ends in ``.parquet`` (needs pyarrow).

    Raises:
        StudyError: another suffix, or Parquet without pyarrow.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise StudyError(f"{out}: Parquet needs pyarrow (pip install pyarrow)") from None
        pq.write_table(pa.Table.from_pylist(rows), out)
    elif suffix == ".csv":
        columns = list(rows[0]) if rows else ["study", "rater", "item", "question", "method"]
        with open(out, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    else:
        raise StudyError(f"--out {out}: use a .csv or .parquet file name")
    return out
