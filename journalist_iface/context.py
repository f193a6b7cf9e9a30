"""What a request of the investigator interface works with: the instance, a database session,
the authentication settings and the chosen language."""

from __future__ import annotations

from flask import current_app

from iface_common.context import close_db, db, instance
from iface_common.language import chosen_language
from wbs.accounts import AuthSettings

LANGUAGE_COOKIE = "peluit_jl"


def auth_settings() -> AuthSettings:
    settings: AuthSettings = current_app.extensions["peluit_auth"]
    return settings


def select_locale() -> str:
    """The investigator's language: their explicit choice, else Indonesian."""
    return chosen_language(LANGUAGE_COOKIE)


__all__ = [
    "LANGUAGE_COOKIE",
    "auth_settings",
    "close_db",
    "db",
    "instance",
    "select_locale",
]
