"""A quiet loopback server for ``make run`` (development and demo; production uses gunicorn).

Werkzeug's development server logs every request line with the client's address and names
its version in a ``Server`` header; neither may happen here, so both are switched off.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

LOOPBACK = "127.0.0.1"


class QuietHandler(WSGIRequestHandler):
    server_version = "Peluit"
    sys_version = ""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log(self, *args: Any, **kwargs: Any) -> None:
        # Covers log_error too: its messages quote the request line.
        pass


def loopback_server(app: Flask, port: int) -> BaseWSGIServer:
    """A threaded server for ``app`` bound to loopback only; call ``serve_forever()``."""
    return make_server(LOOPBACK, port, app, threaded=True, request_handler=QuietHandler)
