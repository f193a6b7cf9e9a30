"""The federation endpoint of a hub: one JSON route that members exchange messages with.

Served only on the hub's federation onion, whose descriptor is encrypted to the active
members' client keys (``peluit onion publish``; wbs.onion.publish_federation), so nobody else
can even reach it; and every request must be signed by a member's pinned instance key
(wbs.federation.exchange), so a client key alone does not make a member. No HTML, no
cookies, no session; nothing about a request is logged but a refusal's reason.
"""

from __future__ import annotations

import logging
import sys

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from iface_common.app import QuietFlask, add_security_headers, quiet_logs
from wbs.federation.exchange import Refused, answer
from wbs.federation.transport import ENDPOINT
from wbs.federation.wire import MAX_ENVELOPE_BYTES
from wbs.instance import Instance

# Refusals a member can act on: its own access or its clock. Anything else is "refused".
_STATUS = {"revoked": 403, "unknown_sender": 403, "stale": 400, "replayed": 409}


def create_app(inst: Instance, *, testing: bool = False) -> Flask:
    app = QuietFlask(__name__)
    app.config.from_mapping(TESTING=testing, MAX_CONTENT_LENGTH=MAX_ENVELOPE_BYTES)
    app.extensions["peluit_instance"] = inst
    quiet_logs(app, logging.WARNING)

    @app.post(ENDPOINT)
    def exchange() -> Response | tuple[Response, int]:
        try:
            sealed = answer(inst, request.get_data(cache=False))
        except Refused as exc:
            return jsonify(error=exc.reason), _STATUS.get(exc.reason, 400)
        return Response(sealed, mimetype="application/json")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        # JSON, never Werkzeug's HTML page: 404, 405, 413 (an envelope over the limit).
        code = exc.code or 500
        return jsonify(error=(exc.name or "error").lower().replace(" ", "_")), code

    @app.errorhandler(Exception)
    def server_error(exc: Exception) -> tuple[Response, int]:
        # Logged by type and place only (QuietFlask); the member learns only that it failed,
        # and nothing of the request was applied (its transaction rolled back).
        app.log_exception(sys.exc_info())
        return jsonify(error="server_error"), 500

    app.after_request(add_security_headers)
    return app
