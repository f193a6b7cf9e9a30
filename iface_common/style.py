"""One style sheet per page, from one shared base.

Each interface answers ``/static/peluit.css`` with the base sheet both share
(``iface_common/static/base.css``) followed by its own ``static/peluit.css``, as a single
response: one request per page over Tor, nothing loaded from elsewhere, and the rules the two
interfaces share written once.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from flask import Blueprint, Flask, Response, send_file

HERE = Path(__file__).parent
BASE_SHEET = HERE / "static" / "base.css"
SHEET = "peluit.css"

# The shared templates (``common/layout.html``): found after the interface's own, so an
# interface's template of the same name wins. The blueprint has no routes.
shared_templates = Blueprint("common", __name__, template_folder="templates")


def serve_style_sheet(app: Flask) -> None:
    """Answer ``/static/peluit.css`` with the base sheet and ``app``'s additions; every other
    static file as Flask does."""
    if app.static_folder is None:
        raise RuntimeError("the interface has no static folder for its style sheet")
    parts = (BASE_SHEET, Path(app.static_folder) / SHEET)
    # Read when the app is made (not per request, not at import): a few kilobytes.
    sheet = b"".join(part.read_bytes() for part in parts)
    modified = max(part.stat().st_mtime for part in parts)
    etag = hashlib.sha256(sheet).hexdigest()[:32]

    def static(filename: str) -> Response:
        if filename != SHEET:
            return app.send_static_file(filename)
        # As Flask sends a static file: ranges, conditional requests, the same headers.
        return send_file(
            io.BytesIO(sheet),
            mimetype="text/css",
            download_name=SHEET,
            conditional=True,
            etag=etag,
            last_modified=modified,
        )

    app.view_functions["static"] = static
