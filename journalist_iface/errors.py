"""Error pages in the investigator's language; never a traceback, never the request echoed."""

from __future__ import annotations

from flask import Flask, render_template
from flask_babel import LazyString, lazy_gettext
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

_PAGES: dict[int, tuple[LazyString, LazyString]] = {
    400: (
        lazy_gettext("The request could not be understood"),
        lazy_gettext("Go back, reload the page and try again."),
    ),
    403: (
        lazy_gettext("Not allowed"),
        lazy_gettext("Your role does not allow this action."),
    ),
    404: (
        lazy_gettext("Page not found"),
        lazy_gettext("Check the address, or start again from the inbox."),
    ),
    405: (
        lazy_gettext("Not allowed"),
        lazy_gettext("This page cannot be used that way. Start again from the inbox."),
    ),
    413: (
        lazy_gettext("What you sent is too large"),
        lazy_gettext("Nothing was stored. Shorten the text and try again."),
    ),
    500: (
        lazy_gettext("Something went wrong on our side"),
        lazy_gettext("Nothing of this attempt was kept. Please try again later."),
    ),
}


def message_page(title: str, text: str, status: int) -> tuple[str, int]:
    return render_template("message.html", title=title, text=text), status


def _http_error(exc: HTTPException) -> tuple[str, int]:
    status = exc.code or 500
    title, text = _PAGES.get(status, _PAGES[400 if status < 500 else 500])
    return message_page(str(title), str(text), status)


def _csrf_error(_exc: CSRFError) -> tuple[str, int]:
    return message_page(
        str(lazy_gettext("This form has expired")),
        str(lazy_gettext("Go back, reload the page and send it again.")),
        400,
    )


def _server_error(_exc: InternalServerError) -> tuple[str, int]:
    title, text = _PAGES[500]
    return message_page(str(title), str(text), 500)


def register(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(InternalServerError, _server_error)
    app.register_error_handler(HTTPException, _http_error)
