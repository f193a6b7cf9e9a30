"""What every Peluit web app is: a Flask app whose responses and logs reveal nothing, and
whose ``<int:>`` routes take only ids a database can hold (:class:`IdConverter`).

:func:`set_up` gives an interface's app what both interfaces share: the security headers, the
request's database session closed at teardown, the shared templates and the one style sheet.
"""

from __future__ import annotations

import logging
from types import TracebackType

from flask import Flask
from werkzeug.datastructures import ImmutableDict
from werkzeug.routing import IntegerConverter, Map
from werkzeug.wrappers import Response

from iface_common import context, style
from wbs.numbers import ID_DIGITS

SECURITY_HEADERS = {
    # No script source at all: even an injected <script> would not run.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # Nothing of a report or a case may linger in the browser's cache after the tab is closed.
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": (
        "accelerometer=(), ambient-light-sensor=(), autoplay=(), battery=(), camera=(), "
        "display-capture=(), document-domain=(), encrypted-media=(), fullscreen=(), "
        "geolocation=(), gyroscope=(), interest-cohort=(), magnetometer=(), microphone=(), "
        "midi=(), payment=(), picture-in-picture=(), publickey-credentials-get=(), "
        "screen-wake-lock=(), sync-xhr=(), usb=(), xr-spatial-tracking=()"
    ),
}


class IdConverter(IntegerConverter):
    """``<int:...>`` in every Peluit route: ASCII digits naming a value the database can hold.

    Werkzeug's own converter takes any size, and an id of 2**63 or more then makes the SQLite
    driver raise OverflowError (a 500) instead of finding nothing; it also takes non-ASCII
    decimal digits, giving one item several URLs. The bound is in the pattern rather than a
    ``max``: Werkzeug checks the method before converting, so a value refused only by the
    converter would answer 405 where a GET and a POST route share the path, instead of 404.
    """

    regex = rf"[0-9]{{1,{ID_DIGITS}}}"


class PeluitMap(Map):
    default_converters = ImmutableDict({**Map.default_converters, "int": IdConverter})


class QuietFlask(Flask):
    # Every <int:> route of both interfaces is bounded in this one place.
    url_map_class = PeluitMap

    def log_exception(
        self,
        exc_info: tuple[type, BaseException, TracebackType] | tuple[None, None, None],
    ) -> None:
        # Flask's default logs the request path and method with the traceback. Log only what
        # an operator needs to find the bug (the error's type and where it was raised), never
        # its message, which could quote a filename or a field someone sent.
        exc_type, _exc, tb = exc_info
        where = "?"
        while tb is not None:
            where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
            tb = tb.tb_next
        name = exc_type.__name__ if exc_type is not None else "?"
        self.logger.error("unhandled %s at %s", name, where)


def quiet_logs(app: Flask, level: int = logging.ERROR) -> None:
    """No request log: the development server's would write every path (case ids) and the
    timing of each visitor; under gunicorn the access log is off (deploy/gunicorn.conf.py)."""
    logging.getLogger("werkzeug").disabled = True
    app.logger.setLevel(level)


def add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    response.headers.pop("X-Powered-By", None)
    return response


def set_up(app: Flask) -> None:
    """What both interfaces' ``create_app`` do alike, once the app is configured."""
    style.serve_style_sheet(app)
    app.register_blueprint(style.shared_templates)
    app.after_request(add_security_headers)
    app.teardown_appcontext(context.close_db)
