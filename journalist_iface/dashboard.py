"""KPK's monitoring dashboard (pemantau KPK) and one instansi's summary (admin instansi).

Both pages show only handling metadata, as :mod:`wbs.monitoring` computes it: counts by
status, category and MCP area, overdue cases, and the median time to first response. Charts
are inline SVG bars drawn on the server (widths as attributes, colours from the stylesheet),
next to the numbers they show: no script, no style attribute, nothing from elsewhere.
A verifikator sees neither page (403).
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import format_decimal

from journalist_iface.auth import investigator_required
from journalist_iface.context import db, instance
from wbs.context import Context
from wbs.domain import Role, TenantKind
from wbs.models import Tenant, utcnow
from wbs.monitoring import Dashboard, dashboard, tenant_summary
from wbs.workdays import local_date

bp = Blueprint("dashboard", __name__)


def number(value: float | None) -> str:
    """A count or a median in the reader's language (3,5 in Indonesian); a dash for none."""
    if value is None:
        return "—"
    return str(format_decimal(value, format="#,##0.#"))


def bar_width(count: int, largest: int) -> str:
    """The bar's share of the chart's width (0-100), for an SVG attribute."""
    if largest <= 0 or count <= 0:
        return "0"
    return f"{max(100 * count / largest, 1):.1f}"


def _render(board: Dashboard, **context: object) -> str:
    return render_template(
        "dashboard.html",
        board=board,
        number=number,
        bar_width=bar_width,
        largest_status=max((row.count for row in board.by_status), default=0),
        largest_category=max((row.count for row in board.by_category), default=0),
        largest_area=max((row.count for row in board.by_mcp_area), default=0),
        largest_tenant=max((row.total for row in board.tenants), default=0),
        **context,
    )


@bp.get("/pemantauan")
@investigator_required(roles=[Role.PEMANTAU_KPK])
def monitor(ctx: Context) -> ResponseReturnValue:
    """Every connected instansi (or the one chosen with ``?instansi=<id>``)."""
    if ctx.tenant.kind != TenantKind.HUB:
        abort(403)
    session = db()
    try:
        hub_scope = ctx.hub()
    except PermissionError:  # TenantIsolationError too: not the hub tenant
        abort(403)
    tenants = list(session.scalars(hub_scope.select(Tenant).order_by(Tenant.name, Tenant.id)))
    chosen: Tenant | None = None
    wanted = request.args.get("instansi", "")
    if wanted:
        chosen = next((found for found in tenants if str(found.id) == wanted), None)
        if chosen is None:
            abort(404)
    board = dashboard(
        session,
        ctx.tenant,
        today=local_date(utcnow()),
        calendar=instance().calendar,
        tenant_id=chosen.id if chosen else None,
    )
    return _render(board, hub=True, tenants=tenants, chosen=chosen)


@bp.get("/ringkasan")
@investigator_required(roles=[Role.ADMIN_INSTANSI])
def summary(ctx: Context) -> ResponseReturnValue:
    """The admin's own instansi: its cases only."""
    board = tenant_summary(db(), ctx.tenant, local_date(utcnow()), calendar=instance().calendar)
    return _render(board, hub=False, tenants=[ctx.tenant], chosen=ctx.tenant)
