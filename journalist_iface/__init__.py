"""The investigator interface: inbox, case pages and actions for verifikator, admin instansi
and pemantau KPK, in Bahasa Indonesia (default) and English, without JavaScript.

Served only on its own onion service with client authorisation (production) or on loopback
(``peluit run``, port 8081). Like the source interface it sends no script and nothing from
elsewhere, and logs nothing about a request: no request line, no path (a path names a case),
no username. (gunicorn runs with its access log off; see ``deploy/``.)
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from flask import Flask
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect

from iface_common.app import SECURITY_HEADERS, QuietFlask, quiet_logs, set_up
from journalist_iface import (
    account,
    admin,
    api,
    dashboard,
    duplicates,
    errors,
    formatting,
    intake,
    matters,
    views,
)
from journalist_iface.context import db, instance, select_locale
from wbs.accounts import AuthSettings, totp_key
from wbs.casework import MAX_ENCRYPTED_REPLY_BYTES
from wbs.forwarding import MAX_FORM_PACKAGE_BYTES
from wbs.instance import Instance

HERE = Path(__file__).parent



def create_app(
    inst: Instance, *, testing: bool = False, auth_settings: AuthSettings | None = None
) -> Flask:
    """The investigator interface of ``inst``.

    ``auth_settings``: password costs, throttling and session lifetimes; by default the
    instance's argon2id cost (``Config.kdf``) with the other defaults of :mod:`wbs.accounts`.
    The TOTP sealing key is always the instance's.
    """
    app = QuietFlask(__name__, static_folder="static", template_folder="templates")
    app.config.from_mapping(
        TESTING=testing,
        SECRET_KEY=inst.secrets.session_key,
        # Flask's signed cookie holds the CSRF secret and one-shot notices, nothing else; who
        # is logged in lives server-side behind the "peluit_j" cookie (journalist_iface.auth).
        SESSION_COOKIE_NAME="peluit_jc",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        # Onion services are plain HTTP; tor authenticates and encrypts the connection.
        SESSION_COOKIE_SECURE=False,
        # Forms only: notes, replies. Pre-encrypted uploads will raise it for their own view.
        MAX_CONTENT_LENGTH=256 * 1024,
        WTF_CSRF_TIME_LIMIT=12 * 3600,
        BABEL_DEFAULT_LOCALE="id",
        BABEL_DEFAULT_TIMEZONE="Asia/Jakarta",
        BABEL_TRANSLATION_DIRECTORIES=str(HERE / "translations"),
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.extensions["peluit_instance"] = inst
    # The instance's TOTP sealing key, whatever settings were passed: secrets sealed under
    # another key would not open.
    app.extensions["peluit_auth"] = dataclasses.replace(
        auth_settings or AuthSettings.from_kdf(inst.config.kdf), totp_key=totp_key(inst.secrets)
    )
    quiet_logs(app, logging.WARNING)
    # Before CSRFProtect: its check parses the form, so a larger limit must already be set.
    app.before_request(_upload_limit)
    CSRFProtect(app)
    Babel(app, locale_selector=select_locale)
    app.register_blueprint(views.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(intake.bp)
    app.register_blueprint(duplicates.bp)
    app.register_blueprint(matters.bp)
    api.register(app)  # the JSON API (/api/v1): bearer tokens, exempt from CSRFProtect
    errors.register(app)
    formatting.register(app)
    set_up(app)
    app.context_processor(_template_context)
    return app


# The few views that take a file, and how much each may receive (with room for the form).
UPLOAD_LIMITS: dict[str, int] = {
    "journalist.upload_encrypted_reply": MAX_ENCRYPTED_REPLY_BYTES + 64 * 1024,
    "admin.add_key": admin.MAX_KEY_BYTES + 64 * 1024,
    # A forwarding package: the case's own limit is applied in the view (it needs the case).
    "journalist.forward_case": MAX_FORM_PACKAGE_BYTES + 64 * 1024,
    duplicates.UPLOAD_ENDPOINT: duplicates.UPLOAD_LIMIT,
}


def _upload_limit() -> None:
    from flask import request

    if request.endpoint == intake.UPLOAD_ENDPOINT:
        # The instance's limit for one submission: an intake package carries one report.
        request.max_content_length = intake.upload_limit()
        return
    limit = UPLOAD_LIMITS.get(request.endpoint or "")
    if limit is not None:
        request.max_content_length = limit
        # A key may be pasted: the text field needs the same room as the file.
        request.max_form_memory_size = limit


def _template_context() -> dict[str, Any]:
    from flask import g

    return {"locale": select_locale(), "user": g.get("user")}


__all__ = ["SECURITY_HEADERS", "create_app", "db", "instance"]
