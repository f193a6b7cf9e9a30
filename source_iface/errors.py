"""Error pages in the reporter's language; never a traceback, never the request echoed back."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext

from iface_common.errors import Page, message_page, register_error_pages

PAGES: dict[int, Page] = {
    400: (
        lazy_gettext("The request could not be understood"),
        lazy_gettext("Go back, reload the page and try again."),
    ),
    403: (
        lazy_gettext("Not allowed"),
        lazy_gettext("This page is not available to you."),
    ),
    404: (
        lazy_gettext("Page not found"),
        lazy_gettext("Check the address, or start again from the home page."),
    ),
    405: (
        lazy_gettext("Not allowed"),
        lazy_gettext("This page cannot be used that way. Start again from the home page."),
    ),
    413: (
        lazy_gettext("What you sent is too large"),
        lazy_gettext(
            "Nothing was stored. Send fewer or smaller files, or split them over several "
            "follow-up messages."
        ),
    ),
    429: (
        lazy_gettext("Please wait a moment"),
        lazy_gettext("Too many attempts in a short time. Wait a few minutes and try again."),
    ),
    500: (
        lazy_gettext("Something went wrong on our side"),
        lazy_gettext(
            "Nothing you sent in this attempt was kept. Please try again later."
        ),
    ),
}


# A CSRF token refused: the form was left open too long or came from another browser session.
FORM_EXPIRED: Page = (
    lazy_gettext("This form has expired"),
    lazy_gettext(
        "For your safety, forms are valid for a limited time and only in this "
        "browser session. Go back, reload the page and send it again."
    ),
)


def register(app: Flask) -> None:
    register_error_pages(app, PAGES, FORM_EXPIRED)


__all__ = ["FORM_EXPIRED", "PAGES", "message_page", "register"]
