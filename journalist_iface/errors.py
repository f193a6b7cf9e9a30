"""Error pages in the investigator's language; never a traceback, never the request echoed."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext

from iface_common.errors import Page, message_page, register_error_pages
from journalist_iface import api

PAGES: dict[int, Page] = {
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


# A CSRF token refused: the form was left open too long or came from another browser session.
FORM_EXPIRED: Page = (
    lazy_gettext("This form has expired"),
    lazy_gettext("Go back, reload the page and send it again."),
)


def register(app: Flask) -> None:
    register_error_pages(app, PAGES, FORM_EXPIRED, {api.URL_PREFIX: api.http_error})


__all__ = ["FORM_EXPIRED", "PAGES", "message_page", "register"]
