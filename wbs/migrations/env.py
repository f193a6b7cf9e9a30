"""Alembic environment: migrates the database named by the configuration built in wbs.db.

Called by :func:`wbs.db.upgrade` / :func:`wbs.db.downgrade` with an open connection in
``config.attributes["connection"]``, or on its own with ``sqlalchemy.url`` set.
"""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from alembic import context
from alembic.autogenerate.api import AutogenContext

from wbs.db import make_engine, sqlite_migration_guard
from wbs.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Migrations are frozen history: they must not import column types from wbs.models, which
    # keep changing. A UTC column is a plain timezone-aware DateTime in the schema.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        render_item=render_item,
        # SQLite alters tables by rebuilding them; batch mode writes migrations that way.
        render_as_batch=connection.dialect.name == "sqlite",
    )


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        # The caller (wbs.db) owns the connection, its transaction and the SQLite guard.
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: set sqlalchemy.url or pass a connection")
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as own, sqlite_migration_guard(own):
            _configure(own)
            with context.begin_transaction():
                context.run_migrations()
            own.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
