"""Error pages: a title and a sentence in the visitor's language, with the status; never a
traceback, never the request echoed back. Each interface brings its own texts (they speak to
different people, and are translated with the interface); the handling is the same."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask, render_template
from flask_babel import LazyString
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

# A status and its page: (title, text).
Page = tuple[LazyString, LazyString]


def message_page(title: str, text: str, status: int) -> tuple[str, int]:
    """The interface's ``message.html`` with a title and a sentence, and the status."""
    return render_template("message.html", title=title, text=text), status


def register_error_pages(app: Flask, pages: Mapping[int, Page], expired_form: Page) -> None:
    """Answer every HTTP error with its page from ``pages`` (a status without one gets the 400
    or 500 page), and a refused CSRF token with ``expired_form``. ``pages`` must hold 400 and
    500."""

    def http_error(exc: HTTPException) -> tuple[str, int]:
        status = exc.code or 500
        title, text = pages.get(status, pages[400 if status < 500 else 500])
        return message_page(str(title), str(text), status)

    def csrf_error(_exc: CSRFError) -> tuple[str, int]:
        title, text = expired_form
        return message_page(str(title), str(text), 400)

    def server_error(_exc: InternalServerError) -> tuple[str, int]:
        title, text = pages[500]
        return message_page(str(title), str(text), 500)

    app.register_error_handler(CSRFError, csrf_error)
    app.register_error_handler(InternalServerError, server_error)
    app.register_error_handler(HTTPException, http_error)
