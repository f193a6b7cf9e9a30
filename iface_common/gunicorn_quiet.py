"""gunicorn's logger without request details, for both interfaces' gunicorn configurations
(``deploy/gunicorn.conf.py``, ``deploy/gunicorn-journalist.conf.py``).

One module both import, so that what may never be logged (a request line, a path, an address, a
user agent) is decided in one place.
"""

from __future__ import annotations

import sys
from typing import Any

from gunicorn.glogging import Logger  # type: ignore[import-untyped]

# gunicorn's own messages that quote a request. Matched on the format strings of gunicorn 23
# (workers/base.py, sync.py, gthread.py); a new version must be checked against this list.
_REQUEST_WARNINGS = ("Invalid request from ip=",)
_REQUEST_EXCEPTIONS = (
    "Error handling request",
    "Socket error processing request",
    "Exception in post_request hook",
)


def _where() -> str:
    """The exception being handled: its type and the innermost line, never its message."""
    exc_type, _exc, tb = sys.exc_info()
    where = "?"
    while tb is not None:
        where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    name = exc_type.__name__ if exc_type is not None else "?"
    return f"{name} at {where}"


class QuietLogger(Logger):  # type: ignore[misc]  # gunicorn ships no type information
    """gunicorn's logger without request details.

    At warning level gunicorn still logs, for a malformed request, the client address and the
    offending request line or header ("Invalid request from ip=...: Invalid HTTP request line:
    'GET /t/...'"), and for an error while handling a request, its URI and a traceback whose
    message may quote what the client sent. Those become one fixed line (plus, for errors, the
    exception's type and where it was raised, which is what an operator needs to find a bug).
    Start-up and worker-lifecycle messages, which carry no request, pass unchanged.
    """

    def access(self, *_args: Any, **_kwargs: Any) -> None:
        # accesslog is None already; this makes "no access log" independent of that setting.
        return None

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(msg, str) and msg.startswith(_REQUEST_WARNINGS):
            super().warning("invalid HTTP request refused")
            return
        super().warning(msg, *args, **kwargs)

    def exception(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(msg, str) and msg.startswith(_REQUEST_EXCEPTIONS):
            super().error("error while handling a request: %s", _where())
            return
        super().exception(msg, *args, **kwargs)


