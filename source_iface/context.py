"""What a request of the source interface works with: the instance, a database session, the
tenant (instansi) whose drop box this is.

The tenant comes from the Host header: each instansi has its own onion address. On loopback in
development, ``/t/<slug>/`` selects one instead (see :class:`DevTenantPaths`), so several demo
tenants can be tried from one browser without tor.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from flask import abort, current_app, g, request

from iface_common.context import close_db, db, instance
from iface_common.language import chosen_language
from wbs.context import Context
from wbs.models import Tenant

LANGUAGE_COOKIE = "peluit_l"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
DEV_SLUG_KEY = "peluit.dev_tenant_slug"
_DEV_PATH = re.compile(r"^/t/([a-z0-9]+(?:-[a-z0-9]+)*)(/.*)?$")


def request_host(environ_host: str) -> str:
    """The host name without port, lower-case: ``abc.onion:80`` -> ``abc.onion``."""
    host = environ_host.strip().lower()
    if host.startswith("["):  # IPv6 literal, "[::1]:5000"
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class DevTenantPaths:
    """WSGI middleware: on loopback, move ``/t/<slug>`` from the path into the script root.

    Flask then generates every URL under the prefix by itself (``url_for`` uses the script
    root), so templates and views are the same in both modes. Onion hosts are never rewritten:
    there the Host header alone names the tenant.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        host = request_host(environ.get("HTTP_HOST") or environ.get("SERVER_NAME", ""))
        if host in LOOPBACK_HOSTS:
            match = _DEV_PATH.match(environ.get("PATH_INFO", ""))
            if match:
                slug, rest = match.group(1), match.group(2) or "/"
                environ[DEV_SLUG_KEY] = slug
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + f"/t/{slug}"
                environ["PATH_INFO"] = rest
        return self.app(environ, start_response)


# A federation mirror (another installation's instansi, or a member's copy of KPK) has its
# drop box on that installation: never here, whatever the slug or host says.
_LOCAL = Tenant.federation_peer_id.is_(None)


def find_tenant() -> Tenant | None:
    """The tenant this request is for, or None (then only the development index answers)."""
    host = request_host(request.host)
    dev_paths: bool = current_app.config["PELUIT_DEV_TENANT_PATHS"]
    if host in LOOPBACK_HOSTS and dev_paths:
        slug = request.environ.get(DEV_SLUG_KEY)
        if slug is None:
            return None
        return db().scalar(sa.select(Tenant).where(Tenant.slug == slug, _LOCAL))
    names = {host, host.removesuffix(".onion")}
    return db().scalar(sa.select(Tenant).where(Tenant.onion_address.in_(names), _LOCAL))


def tenant() -> Tenant:
    """The current tenant; 404 where there is none (an unknown host or slug)."""
    found: Tenant | None = g.get("tenant")
    if found is None:
        abort(404)
    return found


def context() -> Context:
    """The request's domain context: this tenant, and no actor (the pelapor has no account)."""
    found: Context | None = g.get("context")
    if found is None:
        found = g.context = Context(instance(), db(), tenant())
    return found


def select_locale() -> str:
    """The reporter's language: their explicit choice, else Indonesian."""
    return chosen_language(LANGUAGE_COOKIE)


__all__ = [
    "DEV_SLUG_KEY",
    "LANGUAGE_COOKIE",
    "LOOPBACK_HOSTS",
    "DevTenantPaths",
    "close_db",
    "context",
    "db",
    "find_tenant",
    "instance",
    "request_host",
    "select_locale",
    "tenant",
]
