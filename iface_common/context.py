"""What a request of either interface works with: the instance and a database session."""

from __future__ import annotations

from flask import current_app, g
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
    session: Session | None = g.pop("db", None)
    if session is not None:
        session.close()
