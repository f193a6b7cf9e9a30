"""Engines, sessions and migrations for SQLite (the embedded default) and PostgreSQL.

The schema comes only from the Alembic migrations in ``wbs/migrations``; Alembic is configured
here in code (no ``alembic.ini``), with ``script_location = "wbs:migrations"`` so it works from
an installed package as well as from a checkout. Nothing here runs at import time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from crypto.sealing import SealingKey

SCRIPT_LOCATION = "wbs:migrations"
# How long a SQLite writer waits for another one to finish before failing (milliseconds),
# unless the URL names its own (``?timeout=`` in seconds, the sqlite3 module's parameter).
SQLITE_BUSY_TIMEOUT_MS = 5000


def _sqlite_set_up(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            # SQLite ignores foreign keys unless asked, per connection; the cascades from cases
            # to submissions and the cross-tenant composite keys depend on them.
            cursor.execute("PRAGMA foreign_keys=ON")
            # WAL lets the inbox read while an upload's transaction writes.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms:d}")
            # Deleted rows are overwritten with zeros, not left in free pages: a session's
            # sealed blob, a purged source's locked key, a secret before migration 0007 sealed
            # it. Some SQLite builds default to it; none is relied upon.
            cursor.execute("PRAGMA secure_delete=ON")
            # Sorts, indexes and statement journals too large for the page cache stay in memory
            # instead of files in a temporary folder (/var/tmp by SQLite's choice): nothing of
            # the database is written outside the instance, and the services' AppArmor profile
            # gives them no /var/tmp (deploy/apparmor).
            cursor.execute("PRAGMA temp_store=MEMORY")
        finally:
            cursor.close()

    return on_connect


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``, set up for how Peluit uses each dialect."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed, **kwargs)
        # The PRAGMA would override the URL's own timeout: it takes the URL's value instead.
        timeout = parsed.query.get("timeout")
        busy_ms = SQLITE_BUSY_TIMEOUT_MS
        if isinstance(timeout, str):
            try:
                busy_ms = int(float(timeout) * 1000)
            except ValueError:
                message = f"the database URL's timeout is not a number: {timeout!r}"
                raise ValueError(message) from None
        event.listen(engine, "connect", _sqlite_set_up(busy_ms))
        return engine
    # Pre-ping: a server restarted under a long-lived worker must not fail the next request.
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(parsed, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``. Views must read tenant-owned rows through
    :class:`wbs.tenancy.TenantScope`, never through a bare session query."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def alembic_config(url: str | None = None) -> AlembicConfig:
    """An Alembic configuration built in code; ``url`` is the database to migrate."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    if url is not None:
        # ConfigParser interpolation: a literal '%' (e.g. in a URL-encoded password) doubles.
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@contextmanager
def sqlite_migration_guard(connection: sa.Connection) -> Iterator[None]:
    """On SQLite, run migrations with foreign keys off, then check them and turn them back on.

    Alembic's batch mode rebuilds a SQLite table by copying it and dropping the original; with
    foreign keys on, that drop deletes every row that references the table through ON DELETE
    CASCADE (all submissions of all cases). PRAGMA foreign_keys is ignored inside a
    transaction, hence the commits around it. Other dialects pass straight through.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    if connection.in_transaction():
        connection.commit()
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        yield
        problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if problems:
            raise RuntimeError(f"migration left broken foreign keys: {problems[:5]!r}")
        connection.commit()
    finally:
        if connection.in_transaction():
            connection.rollback()
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        enabled = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
        connection.commit()
        if enabled != 1:
            # A pooled connection without foreign keys would silently skip every cascade.
            connection.invalidate()
            raise RuntimeError("could not turn SQLite foreign keys back on after migrating")


def _run(
    url_or_engine: str | Engine, action: str, revision: str, totp_key: SealingKey | None
) -> None:
    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    try:
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        # Migrations that seal or open TOTP secrets (0007) read the key here; without it they
        # refuse to touch a database that holds any.
        cfg.attributes["totp_key"] = totp_key
        with engine.connect() as connection:
            # env.py runs the migrations on this connection (and handles its transaction).
            cfg.attributes["connection"] = connection
            with sqlite_migration_guard(connection):
                if action == "upgrade":
                    command.upgrade(cfg, revision)
                else:
                    command.downgrade(cfg, revision)
                connection.commit()
    finally:
        if isinstance(url_or_engine, str):
            engine.dispose()


def upgrade(
    url_or_engine: str | Engine, revision: str = "head", *, totp_key: SealingKey | None = None
) -> None:
    """Migrate the database up to ``revision`` (default: the newest).

    ``totp_key`` (:func:`wbs.accounts.totp_key`) is needed when investigators' TOTP secrets
    must be sealed or opened on the way.
    """
    _run(url_or_engine, "upgrade", revision, totp_key)


def downgrade(
    url_or_engine: str | Engine, revision: str, *, totp_key: SealingKey | None = None
) -> None:
    """Migrate the database down to ``revision`` ("base" removes every table)."""
    _run(url_or_engine, "downgrade", revision, totp_key)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for a database never migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head
