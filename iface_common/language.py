"""The language switch: Indonesian by default, English on request, remembered in a cookie.

Only the visitor's explicit choice counts: Accept-Language is not consulted, because Tor
Browser sends en-US for everyone.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, redirect, request, url_for
from flask.typing import ResponseReturnValue

LANGUAGES = ("id", "en")
DEFAULT_LANGUAGE = "id"


def chosen_language(cookie: str) -> str:
    """The language chosen with the switch, from ``cookie``; Indonesian when there is none."""
    chosen = request.cookies.get(cookie)
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE


def add_language_switch(bp: Blueprint, *, cookie: str, home_endpoint: str) -> None:
    """Add ``GET /bahasa/<code>`` to ``bp`` (endpoint ``language``): set ``cookie`` to the
    language and go back to the page named by ``next``, or to ``home_endpoint``."""

    def language(code: str) -> ResponseReturnValue:
        if code not in LANGUAGES:
            abort(404)
        response = redirect(safe_next(request.args.get("next"), url_for(home_endpoint)))
        # A browser-session cookie holding "id" or "en", nothing else.
        response.set_cookie(cookie, code, httponly=True, samesite="Strict", path="/")
        return response

    bp.add_url_rule("/bahasa/<code>", "language", language, methods=["GET"])


def safe_next(target: str | None, home: str) -> str:
    """``target`` if it is a path of this site, else ``home``: never another host (an open
    redirect would lead a visitor out of the onion)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return home
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return home
    return target
