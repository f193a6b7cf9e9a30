"""The pelapor's login session: an opaque server-side session behind one cookie.

The cookie ``peluit_s`` holds only what :func:`wbs.source_sessions.open_session` returns: an id
and a key to the server-side record. The codename is never in a cookie, a URL, a log or the
database; after login it is forgotten, and what unlocks replies lives only split between the
cookie and the server (see :mod:`wbs.source_sessions`).

The cookie has no Expires (it dies with the browser session: Tor Browser clears it on close),
is HttpOnly and SameSite=Strict, and is not marked Secure because onion services are plain HTTP
(tor gives the transport end-to-end encryption and authentication of the address).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec

from flask import g, redirect, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from crypto.kdf import SourceSecrets
from source_iface.context import db, tenant
from wbs.source_sessions import (
    close_session,
    count_action,
    open_session,
    resume_session,
)

COOKIE_NAME = "peluit_s"
# Long enough to write a report calmly, short enough that a forgotten open tab locks itself.
IDLE_MINUTES = 60

P = ParamSpec("P")


def current_source() -> SourceSecrets | None:
    """The logged-in source of this request, resumed once and cached for the request."""
    if "source" not in g:
        token = request.cookies.get(COOKIE_NAME)
        g.source = (
            resume_session(db(), tenant(), token, idle_minutes=IDLE_MINUTES) if token else None
        )
    found: SourceSecrets | None = g.source
    return found


def source_required(
    view: Callable[Concatenate[SourceSecrets, P], ResponseReturnValue],
) -> Callable[P, ResponseReturnValue]:
    """Hand the logged-in source to the view; send anyone else to the login page."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        source = current_source()
        if source is None:
            expired = COOKIE_NAME in request.cookies
            response = redirect(url_for("source.login", expired=1 if expired else None))
            if expired:
                forget_cookie(response)
            return response
        return view(source, *args, **kwargs)

    return wrapper


def log_in(secrets: SourceSecrets, target: str) -> Response:
    """Open a session for ``secrets`` and redirect to ``target`` with its cookie.

    A session the browser already had is closed first, so an old cookie (on a shared or seized
    machine) stops working as soon as a new login replaces it.
    """
    previous = request.cookies.get(COOKIE_NAME)
    if previous:
        close_session(db(), tenant(), previous)
    token = open_session(db(), tenant(), secrets, idle_minutes=IDLE_MINUTES)
    response = redirect(target)
    response.set_cookie(
        COOKIE_NAME,
        token,
        httponly=True,
        samesite="Strict",
        secure=False,
        path="/",
    )
    return response


def log_out(response: Response) -> Response:
    token = request.cookies.get(COOKIE_NAME)
    if token:
        close_session(db(), tenant(), token)
    forget_cookie(response)
    return response


def count_submission() -> int:
    """Count one submission in this session's hourly window (kept server-side); return the
    count so far, this one included."""
    token = request.cookies.get(COOKIE_NAME)
    return count_action(db(), tenant(), token) if token else 0


def forget_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="Strict")
