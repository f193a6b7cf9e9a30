"""What a request of the investigator interface works with: the instance, a database session,
the authentication settings and the chosen language."""

from __future__ import annotations

from flask import current_app, g, request
from sqlalchemy.orm import Session

from wbs.accounts import AuthSettings
from wbs.instance import Instance

LANGUAGES = ("id", "en")
LANGUAGE_COOKIE = "peluit_jl"


def instance() -> Instance:
    inst: Instance = current_app.extensions["peluit_instance"]
    return inst


def auth_settings() -> AuthSettings:
    settings: AuthSettings = current_app.extensions["peluit_auth"]
    return settings


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


def select_locale() -> str:
    """The explicit choice only (Tor Browser sends en-US for everyone); Indonesian by default."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    return chosen if chosen in LANGUAGES else "id"
