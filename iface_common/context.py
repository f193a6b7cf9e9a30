"""What a request of either interface works with: the instance and a database session."""

from __future__ import annotations

from contextlib import suppress

from flask import current_app, g
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from wbs.instance import Instance


def instance() -> Instance:
    inst: Instance = current_app.extensions["peluit_instance"]
    return inst


def db() -> Session:
    """The request's database session, opened on first use and closed at teardown."""
    session: Session | None = g.get("db")
    if session is None:
        session = instance().sessions()
        g.db = session
    return session


def close_db(_exc: BaseException | None = None) -> None:
    """End the request's session, rolling back whatever it had not committed."""
    session: Session | None = g.pop("db", None)
    if session is not None:
        # A connection the database has already dropped cannot be given back cleanly; the
        # pool discards it, and the request's answer must not fail for it.
        with suppress(SQLAlchemyError):
            session.close()
