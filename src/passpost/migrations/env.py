"""Alembic environment: runs on the engine passpost hands it (or the configured URL)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

import passpost.models  # noqa: F401  (registers every table on Base.metadata)
from passpost.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine: Engine = config.attributes.get("engine") or make_engine(
        config.get_main_option("sqlalchemy.url") or ""
    )
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
