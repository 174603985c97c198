"""The study database: SQLAlchemy 2 models, engine set-up and Alembic migrations.

One database holds any number of studies (default: SQLite at ``$AVSYNC_BENCH_HOME/studies.db``;
any SQLAlchemy URL, e.g. ``postgresql://…``, for a shared server). The schema is created and
upgraded only by the Alembic scripts shipped in ``avsync_bench/study/migrations`` (run by
:func:`open_database` on every open), so an old database is upgraded in place.

Tables: ``study``, ``method`` (the compared methods plus the two hidden attention-check
pseudo-methods), ``item`` (one test clip, or an attention check), ``item_video`` (each method's
file for an item), ``rater`` (a participant; only the sha256 of their token is stored),
``assignment`` (one item shown to one rater, with the slot order of its videos), ``vote`` (one
answer to one question, unique per assignment and question) and ``refusal`` (every refused
request, for the admin page).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

from avsync_bench.errors import OptionError
from avsync_bench.weights.store import default_home

__all__ = [
    "Base",
    "Study",
    "Method",
    "Item",
    "ItemVideo",
    "Rater",
    "Assignment",
    "Vote",
    "Refusal",
    "default_db_url",
    "open_database",
    "token_hash",
    "utcnow",
]

ROLE_METHOD, ROLE_GT, ROLE_ATTENTION = "method", "attention_gt", "attention_static_shifted"


def utcnow() -> dt.datetime:
    """The current UTC time, timezone-naive (SQLite stores no zone; every stored time is UTC)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def token_hash(token: str) -> str:
    """sha256 hex of a token or admin key: the database never stores the secret itself."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Base(DeclarativeBase):
    """Declarative base of the study tables."""


class Study(Base):
    """A study: its settings, seed and state (``open`` or ``closed``)."""

    __tablename__ = "study"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    dataset: Mapped[str] = mapped_column(String(50))
    data_root: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(20))
    questions: Mapped[list] = mapped_column(JSON)
    raters_per_item: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    attention_rate: Mapped[float] = mapped_column(Float)
    attention_shift_s: Mapped[float] = mapped_column(Float)
    media_dir: Mapped[str] = mapped_column(Text)
    admin_key_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10), default="open")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    methods: Mapped[list[Method]] = relationship(back_populates="study", order_by="Method.id")
    raters: Mapped[list[Rater]] = relationship(back_populates="study", order_by="Rater.id")


class Method(Base):
    """A compared method (``role='method'``) or a hidden attention-check pseudo-method."""

    __tablename__ = "method"
    __table_args__ = (UniqueConstraint("study_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"))
    name: Mapped[str] = mapped_column(String(100))
    folder: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(30), default=ROLE_METHOD)
    study: Mapped[Study] = relationship(back_populates="methods")


class Item(Base):
    """One test clip shown for judgement (or an attention check) with its GT image and audio."""

    __tablename__ = "item"
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    clip: Mapped[str] = mapped_column(Text)
    class_text: Mapped[str] = mapped_column(Text)
    is_attention: Mapped[bool] = mapped_column(Boolean, default=False)
    image_path: Mapped[str] = mapped_column(Text)
    audio_path: Mapped[str] = mapped_column(Text)
    videos: Mapped[list[ItemVideo]] = relationship(order_by="ItemVideo.method_id")


class ItemVideo(Base):
    """The file one method produced for one item (an absolute path, checked at create time)."""

    __tablename__ = "item_video"
    __table_args__ = (UniqueConstraint("item_id", "method_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"), index=True)
    method_id: Mapped[int] = mapped_column(ForeignKey("method.id"))
    path: Mapped[str] = mapped_column(Text)


class Rater(Base):
    """A participant slot; ``token_hash`` is set when ``study invite`` hands out its link."""

    __tablename__ = "rater"
    __table_args__ = (UniqueConstraint("study_id", "label"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    label: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    invited_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    consented_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    study: Mapped[Study] = relationship(back_populates="raters")
    assignments: Mapped[list[Assignment]] = relationship(order_by="Assignment.position")


class Assignment(Base):
    """One item for one rater: ``layout`` lists method ids in slot order (slot 0 = left)."""

    __tablename__ = "assignment"
    __table_args__ = (UniqueConstraint("rater_id", "item_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("rater.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    layout: Mapped[list] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(Integer)
    shown_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    reasons: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    client_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    item: Mapped[Item] = relationship()
    rater: Mapped[Rater] = relationship(back_populates="assignments")


class Vote(Base):
    """One answer: the slot and (resolved server-side) method chosen for one question."""

    __tablename__ = "vote"
    __table_args__ = (UniqueConstraint("assignment_id", "question"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignment.id"), index=True)
    question: Mapped[str] = mapped_column(String(20))
    slot: Mapped[int] = mapped_column(Integer)
    method_id: Mapped[int] = mapped_column(ForeignKey("method.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Refusal(Base):
    """A refused request (status code, reason, path, rater when the token was valid)."""

    __tablename__ = "refusal"
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    rater_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


def default_db_url() -> str:
    """``sqlite:///$AVSYNC_BENCH_HOME/studies.db`` (the folder is created on open)."""
    return f"sqlite:///{default_home() / 'studies.db'}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Upgrade the database behind ``engine`` to the newest shipped Alembic revision."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_database(url: str | None = None) -> sessionmaker:
    """Engine + migrations for ``url`` (default :func:`default_db_url`); returns a session factory.

    Raises:
        ValueError: the URL cannot be parsed or its driver is not installed.
    """
    url = url or default_db_url()
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url[len("sqlite:///") :]).expanduser().parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(url)
    except Exception as exc:  # ArgumentError, NoSuchModuleError (missing driver)
        raise OptionError(f"--db {url}: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    migrate(engine)
    return sessionmaker(engine, expire_on_commit=False)
