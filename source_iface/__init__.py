"""The source interface: the pelapor's whole journey, in Bahasa Indonesia, without JavaScript.

Served only on the instansi's onion service. Every page works in Tor Browser at its "Safest"
level: no script at all, nothing loaded from elsewhere, one small style sheet from this origin.
Nothing about a visitor is logged: no request line, no address, no user agent, no codename.
(gunicorn runs with its access log off; see ``deploy/``.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask, abort, current_app, g, request
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect

from iface_common.app import QuietFlask, quiet_logs, set_up
from source_iface import errors, views
from source_iface.context import (
    DEV_SLUG_KEY,
    LOOPBACK_HOSTS,
    DevTenantPaths,
    db,
    find_tenant,
    instance,
    request_host,
    select_locale,
)
from source_iface.flood import FloodGuard, FloodLimits
from wbs.instance import Instance
from wbs.models import Tenant
from wbs.public_stats import DailyCache

HERE = Path(__file__).parent



def create_app(
    inst: Instance,
    *,
    testing: bool = False,
    dev_tenant_paths: bool | None = None,
    flood_limits: FloodLimits | None = None,
    flood_guard: FloodGuard | None = None,
) -> Flask:
    """The source interface of ``inst``.

    ``dev_tenant_paths``: whether loopback requests may pick a tenant by ``/t/<slug>/``. By
    default only when no tenant has an onion address yet (a development or demo instance);
    a production deployment answers only to each tenant's onion host.

    ``flood_guard``: the flood counters to use, e.g. the one gunicorn's master made for all its
    workers (:func:`source_iface.flood.share_with_workers`); by default this app's own, with
    ``flood_limits``.
    """
    app = QuietFlask(__name__, static_folder="static", template_folder="templates")
    if dev_tenant_paths is None:
        with inst.sessions() as session:
            dev_tenant_paths = testing or not session.scalar(
                sa.select(sa.func.count()).where(Tenant.onion_address.is_not(None))
            )
    app.config.from_mapping(
        TESTING=testing,
        SECRET_KEY=inst.secrets.session_key,
        # Flask's signed cookie holds the CSRF secret and nothing else (no source id).
        SESSION_COOKIE_NAME="peluit_csrf",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        # Onion services are plain HTTP; tor authenticates and encrypts the connection.
        SESSION_COOKIE_SECURE=False,
        # Small forms only; the two upload views raise the limit for themselves.
        MAX_CONTENT_LENGTH=64 * 1024,
        # A report with evidence can take hours to upload over Tor.
        WTF_CSRF_TIME_LIMIT=6 * 3600,
        BABEL_DEFAULT_LOCALE="id",
        BABEL_DEFAULT_TIMEZONE="Asia/Jakarta",
        BABEL_TRANSLATION_DIRECTORIES=str(HERE / "translations"),
        PELUIT_DEV_TENANT_PATHS=dev_tenant_paths,
        TEMPLATES_AUTO_RELOAD=False,
        JSON_SORT_KEYS=False,
    )
    app.extensions["peluit_instance"] = inst
    app.extensions["peluit_flood"] = flood_guard or FloodGuard(flood_limits)
    # The public statistics page's figures, once per tenant and day (see wbs.public_stats).
    app.extensions["peluit_public_stats"] = DailyCache()
    quiet_logs(app)
    if dev_tenant_paths:
        app.wsgi_app = DevTenantPaths(app.wsgi_app)  # type: ignore[method-assign]

    # Order matters: the tenant is known before CSRF is checked, so its error page is themed.
    app.before_request(_resolve_tenant)
    csrf = CSRFProtect(app)
    for name in views.STREAMED_UPLOAD_VIEWS:
        # These views read request.stream themselves and check the token inside the stream;
        # CSRFProtect would read request.form, which spools files to disk in plaintext.
        csrf.exempt(f"{views.__name__}.{name}")
    Babel(app, locale_selector=select_locale)
    app.register_blueprint(views.bp)
    errors.register(app)
    set_up(app)
    app.context_processor(_template_context)
    return app


def _resolve_tenant() -> None:
    g.tenant = find_tenant()
    if g.tenant is None and not (
        _dev_index_allowed() and request.endpoint in ("source.index", "source.language", "static")
    ):
        abort(404)


def _dev_index_allowed() -> bool:
    """Loopback in development, without a /t/<slug>/ prefix: the list of tenants."""
    return bool(
        current_app.config["PELUIT_DEV_TENANT_PATHS"]
        and request_host(request.host) in LOOPBACK_HOSTS
        and DEV_SLUG_KEY not in request.environ
    )


def _template_context() -> dict[str, Any]:
    return {
        "tenant": g.get("tenant"),
        "locale": select_locale(),
    }


__all__ = ["create_app", "db", "instance"]
