"""Alembic environment for the study database (run by ``models.migrate`` with a connection)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from avsync_bench.study.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    """Online migrations on the connection handed over in ``config.attributes`` (or the URL)."""
    connection = config.attributes.get("connection")
    if connection is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url"))
        with engine.begin() as connection:
            context.configure(connection=connection, target_metadata=target_metadata)
            with context.begin_transaction():
                context.run_migrations()
        return
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
