"""The investigator's login session: an opaque server-side session behind one cookie.

The cookie ``peluit_j`` holds only the token :func:`wbs.accounts.open_session` returns; the
server keeps its hash, the account and the tenant. Idle and absolute lifetimes are enforced by
:func:`wbs.accounts.resume_session`. The cookie has no Expires (it dies with the browser
session), is HttpOnly and SameSite=Strict, and is not marked Secure because onion services are
plain HTTP (tor encrypts and authenticates the connection).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Concatenate, ParamSpec

from flask import abort, g, redirect, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from journalist_iface.context import auth_settings, db, instance
from wbs.accounts import ActiveSession, close_session, open_session, resume_session
from wbs.context import Context
from wbs.domain import Role
from wbs.models import Investigator

COOKIE_NAME = "peluit_j"
ALL_ROLES: frozenset[Role] = frozenset(Role)

P = ParamSpec("P")
InvestigatorView = Callable[Concatenate[Context, P], ResponseReturnValue]


def current_session() -> ActiveSession | None:
    """The live session of this request, resumed once and cached for the request."""
    if "user" not in g:
        token = request.cookies.get(COOKIE_NAME)
        g.user = resume_session(db(), token, settings=auth_settings()) if token else None
    found: ActiveSession | None = g.user
    return found


def investigator_required(
    roles: Iterable[Role] = ALL_ROLES,
) -> Callable[[InvestigatorView[P]], Callable[P, ResponseReturnValue]]:
    """Hand the request's :class:`~wbs.context.Context` (the logged-in investigator as the
    actor, their tenant and its scope) to the view.

    Anyone not logged in (or whose session expired or whose account was deactivated) goes to
    the login page; a logged-in account without one of ``roles`` gets 403.
    """
    allowed = frozenset(roles)

    def decorate(view: InvestigatorView[P]) -> Callable[P, ResponseReturnValue]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
            active = current_session()
            if active is None:
                expired = COOKIE_NAME in request.cookies
                response = redirect(url_for("journalist.login", expired=1 if expired else None))
                if expired:
                    forget_cookie(response)
                return response
            if active.investigator.role not in allowed:
                abort(403)
            return view(request_context(active), *args, **kwargs)

        return wrapper

    return decorate


def request_context(active: ActiveSession) -> Context:
    """The one context of this request, built once: the same object for every call."""
    if "context" not in g:
        g.context = Context(instance(), db(), active.tenant, active.investigator)
    found: Context = g.context
    return found


def log_in(investigator: Investigator, target: str) -> Response:
    """Open a new session and redirect with its cookie; a session the browser had is closed,
    so a cookie planted before login (session fixation) never becomes a logged-in one."""
    previous = request.cookies.get(COOKIE_NAME)
    if previous:
        close_session(db(), previous)
    token = open_session(db(), investigator)
    response = redirect(target)
    response.set_cookie(
        COOKIE_NAME, token, httponly=True, samesite="Strict", secure=False, path="/"
    )
    return response


def log_out(response: Response) -> Response:
    token = request.cookies.get(COOKIE_NAME)
    if token:
        close_session(db(), token)
    forget_cookie(response)
    return response


def forget_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="Strict")
