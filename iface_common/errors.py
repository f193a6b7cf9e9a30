"""Error pages: a title and a sentence in the visitor's language, with the status; never a
traceback, never the request echoed back. Each interface brings its own texts (they speak to
different people, and are translated with the interface); the handling is the same."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flask import Flask, current_app, make_response, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import LazyString
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable
from werkzeug.wrappers import Response

from iface_common import context

# A status and its page: (title, text).
Page = tuple[LazyString, LazyString]
# How a part of the site other than pages (the JSON API) answers an HTTP error.
ErrorAnswer = Callable[[HTTPException], ResponseReturnValue]

# The template values that are database rows (the source interface's tenant, the investigator
# interface's logged-in user), left out of the page of a server error: see server_error_page.
_NO_ROWS = {"tenant": None, "user": None}

# A database too busy to answer in time: SQLite's write lock held by another connection past
# the busy timeout, or PostgreSQL's lock_not_available, serialization_failure and
# deadlock_detected. Nothing was stored (the transaction rolled back) and the same request
# works a moment later, so the answer is 503 with Retry-After rather than a failure.
_BUSY_SQLSTATES = frozenset({"55P03", "40001", "40P01"})
BUSY_RETRY_SECONDS = 30


def database_busy(exc: OperationalError) -> bool:
    """Whether ``exc`` says the database was busy (a lock), not broken."""
    reason = str(exc.orig)
    if "database is locked" in reason or "database table is locked" in reason:
        return True
    return getattr(exc.orig, "sqlstate", None) in _BUSY_SQLSTATES


def message_page(title: str, text: str, status: int) -> tuple[str, int]:
    """The interface's ``message.html`` with a title and a sentence, and the status."""
    return render_template("message.html", title=title, text=text), status


def server_error_page(title: str, text: str, status: int = 500) -> ResponseReturnValue:
    """The 500 page (or 503, for a busy database), made without the database.

    The error may have come from the database itself (a write lock held past the busy
    timeout, a lost connection), leaving the request's session needing a rollback: a row's
    attribute read by the template would query again and fail inside the error handler, and
    the visitor would get the WSGI server's bare English page without the security headers.
    So the session is rolled back and closed first, and the page names no row.
    """
    context.close_db()
    try:
        return render_template("message.html", title=title, text=text, **_NO_ROWS), status
    except Exception as exc:  # the last answer, whatever broke the page
        # The text alone, still translated and still with the security headers (after_request).
        current_app.logger.error("error page failed: %s", type(exc).__name__)
        return Response(f"{title}\n\n{text}\n", status, mimetype="text/plain")


def register_error_pages(
    app: Flask,
    pages: Mapping[int, Page],
    expired_form: Page,
    answers_under: Mapping[str, ErrorAnswer] | None = None,
) -> None:
    """Answer every HTTP error with its page from ``pages`` (a status without one gets the 400
    or 500 page), and a refused CSRF token with ``expired_form``. ``pages`` must hold 400 and
    500.

    ``answers_under`` maps a path prefix (``/api/v1``) to its own way of answering errors. It
    is chosen by the path, not by the blueprint, because a URL that matches no route (an id
    out of range, a typo) has no blueprint, and a client of the API must still get JSON.
    """
    prefixes = dict(answers_under or {})

    def own_answer(exc: HTTPException) -> ResponseReturnValue | None:
        for prefix, answer in prefixes.items():
            if request.path == prefix or request.path.startswith(prefix + "/"):
                return answer(exc)
        return None

    def http_error(exc: HTTPException) -> ResponseReturnValue:
        answered = own_answer(exc)
        if answered is not None:
            return answered
        status = exc.code or 500
        title, text = pages.get(status, pages[400 if status < 500 else 500])
        return message_page(str(title), str(text), status)

    def csrf_error(exc: CSRFError) -> ResponseReturnValue:
        answered = own_answer(exc)
        if answered is not None:
            return answered
        title, text = expired_form
        return message_page(str(title), str(text), 400)

    def server_error(exc: InternalServerError) -> ResponseReturnValue:
        answered = own_answer(exc)
        if answered is not None:
            return answered
        title, text = pages[500]
        return server_error_page(str(title), str(text))

    def busy_database(exc: OperationalError) -> ResponseReturnValue:
        if not database_busy(exc):
            raise exc  # a real failure: logged, and answered by server_error
        current_app.logger.warning("database busy: answered 503")
        answered = own_answer(ServiceUnavailable())
        if answered is None:
            title, text = pages[500]  # "nothing you sent was kept; try again later"
            answered = server_error_page(str(title), str(text), 503)
        response = make_response(answered)
        response.headers["Retry-After"] = str(BUSY_RETRY_SECONDS)
        return response

    app.register_error_handler(CSRFError, csrf_error)
    app.register_error_handler(OperationalError, busy_database)
    app.register_error_handler(InternalServerError, server_error)
    app.register_error_handler(HTTPException, http_error)
