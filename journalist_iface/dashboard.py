"""KPK's monitoring dashboard (pemantau KPK) and one instansi's summary (admin instansi).

Both pages show only handling metadata, as :mod:`wbs.monitoring` computes it: counts by
status, category and MCP area, overdue cases, the first-response promise per institution, the
months' trend, filtered by period, province, kind, category and MCP area; every table is also a
download (CSV, or XLSX with a sheet per table: :mod:`journalist_iface.export`). Charts
are inline SVG bars drawn on the server (widths as attributes, colours from the stylesheet),
next to the numbers they show: no script, no style attribute, nothing from elsewhere. KPK's
and a province's pages also map reports and prone categories per province, as SVG tiles
(:mod:`journalist_iface.tilemap`), with the same figures as a table.
A verifikator sees neither page (403).
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, abort, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import format_date, format_decimal, format_percent, gettext

from journalist_iface import export, labels, tilemap
from journalist_iface.auth import investigator_required
from journalist_iface.context import db
from journalist_iface.labels import kind_label
from wbs.context import Context
from wbs.domain import CATEGORY_LABELS, MCP_AREA_LABELS, Role, TenantKind
from wbs.federation.status import link_lines
from wbs.models import Tenant, utcnow
from wbs.monitoring import (
    LAGGING_BELOW,
    LAGGING_MINIMUM,
    Dashboard,
    Filters,
    Period,
    dashboard,
    province_dashboard,
    tenant_summary,
)
from wbs.tenancy import PROVINCE_COORDINATES, ProvinceScope, TenantIsolationError
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


def percent(share: float | None) -> str:
    """A share as a whole percentage in the reader's language; a dash for none."""
    if share is None:
        return "—"
    return str(format_percent(share, format="#,##0%"))


def _render(board: Dashboard, *, view: str, **context: object) -> str:
    return render_template(
        "dashboard.html",
        board=board,
        view=view,
        across=view in ("hub", "province"),
        number=number,
        percent=percent,
        bar_width=bar_width,
        month_label=month_label,
        kind_label=kind_label,
        largest_status=max((row.count for row in board.by_status), default=0),
        largest_category=max((row.count for row in board.by_category), default=0),
        largest_area=max((row.count for row in board.by_mcp_area), default=0),
        largest_tenant=max((row.total for row in board.tenants), default=0),
        largest_month=max((row.received for row in board.trend), default=0),
        periods=_period_choices(board.today),
        categories=labels.categories(),
        mcp_areas=labels.mcp_areas(),
        export_args=_filter_args(board.filters),
        tables=export.TABLES,
        lagging_below=LAGGING_BELOW,
        lagging_minimum=LAGGING_MINIMUM,
        # The province map: KPK's and a province's pages, not one institution's summary.
        tiles=tilemap.map_view(board) if view in ("hub", "province") else None,
        class_range=tilemap.class_range,
        category_class=tilemap.category_class,
        **context,
    )


def month_label(month: dt.date) -> str:
    return str(format_date(month, "MMMM yyyy"))


def _period_choices(today: dt.date) -> list[tuple[str, str]]:
    """The periods offered: this year and the last two, each year's quarters and months."""
    choices: list[tuple[str, str]] = []
    for year in range(today.year, today.year - 3, -1):
        choices.append((str(year), str(year)))
        for quarter in range(4, 0, -1):
            if dt.date(year, 3 * quarter - 2, 1) <= today:
                label = gettext("Quarter %(number)s %(year)s", number=quarter, year=year)
                choices.append((f"{year}-Q{quarter}", label))
        for month in range(12, 0, -1):
            if dt.date(year, month, 1) <= today:
                choices.append((f"{year}-{month:02d}", month_label(dt.date(year, month, 1))))
    return choices


def _filters(provinces: list[str]) -> Filters:
    """The filters of the query string; a malformed value is a 400, never a guess."""
    args = request.args
    try:
        period = Period.parse(args["periode"]) if args.get("periode") else None
        kind = TenantKind(args["jenis"]) if args.get("jenis") else None
    except ValueError:
        abort(400)
    category = args.get("kategori") or None
    area = args.get("area") or None
    province = args.get("provinsi") or None
    if category is not None and category not in CATEGORY_LABELS:
        abort(400)
    if area is not None and area not in MCP_AREA_LABELS:
        abort(400)
    if province is not None and province not in provinces:
        abort(404)
    return Filters(period=period, province=province, kind=kind, category=category,
                   mcp_area=area)


def _filter_args(filters: Filters) -> dict[str, str]:
    found = {
        "periode": filters.period.key if filters.period else None,
        "provinsi": filters.province,
        "jenis": filters.kind.value if filters.kind else None,
        "kategori": filters.category,
        "area": filters.mcp_area,
    }
    return {key: value for key, value in found.items() if value}


def _monitor_board(ctx: Context) -> tuple[Dashboard, list[Tenant], Tenant | None, list[str]]:
    """KPK's figures for the query string: every connected instansi, one, or a filtered set."""
    if ctx.tenant.kind != TenantKind.HUB:
        abort(403)
    session = db()
    try:
        hub_scope = ctx.hub()
    except PermissionError:  # TenantIsolationError too: not the hub tenant
        abort(403)
    tenants = list(session.scalars(hub_scope.select(Tenant).order_by(Tenant.name, Tenant.id)))
    provinces = sorted({tenant.province for tenant in tenants if tenant.province})
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
        tenant_id=chosen.id if chosen else None,
        filters=_filters(provinces),
    )
    return board, tenants, chosen, provinces


def _summary_board(ctx: Context) -> Dashboard:
    return tenant_summary(
        db(), ctx.tenant, local_date(utcnow()),
        filters=_filters([]),
    )


def _province_board(ctx: Context) -> tuple[Dashboard, list[Tenant], Tenant | None]:
    """A provincial government's figures: its own and its kabupaten/kota's (404 for others)."""
    session = db()
    try:
        scope = ProvinceScope(session, ctx.tenant)
    except TenantIsolationError:
        abort(404)
    kinds = (*PROVINCE_COORDINATES, TenantKind.PEMERINTAH_PROVINSI)
    chosen: Tenant | None = None
    wanted = request.args.get("instansi", "")
    if wanted:
        chosen = next((found for found in scope.tenants if str(found.id) == wanted), None)
        if chosen is None:
            abort(404)
    filters = _filters([])
    if filters.kind is not None and filters.kind not in kinds:
        abort(400)
    board = province_dashboard(
        session, ctx.tenant, today=local_date(utcnow()),
        filters=filters, tenant_id=chosen.id if chosen else None,
    )
    return board, scope.tenants, chosen


@bp.get("/pemantauan")
@investigator_required(roles=[Role.PEMANTAU_KPK])
def monitor(ctx: Context) -> ResponseReturnValue:
    """Every connected instansi (or the one chosen with ``?instansi=<id>``), filtered."""
    board, tenants, chosen, provinces = _monitor_board(ctx)
    return _render(board, view="hub", own=ctx.tenant, tenants=tenants, chosen=chosen,
                   provinces=provinces, page_endpoint="dashboard.monitor",
                   federation=[link for link in link_lines(db()) if link.role == "member"],
                   export_endpoint="dashboard.monitor_export",
                   kinds=[kind for kind in TenantKind if kind != TenantKind.HUB])


@bp.get("/koordinasi")
@investigator_required(roles=[Role.ADMIN_INSTANSI])
def province(ctx: Context) -> ResponseReturnValue:
    """A provincial government's admin: the reports of the kabupaten and kota it coordinates."""
    board, tenants, chosen = _province_board(ctx)
    return _render(board, view="province", own=ctx.tenant, tenants=tenants, chosen=chosen,
                   provinces=[], page_endpoint="dashboard.province",
                   export_endpoint="dashboard.province_export",
                   kinds=[TenantKind.PEMERINTAH_PROVINSI, *PROVINCE_COORDINATES])


@bp.get("/koordinasi/ekspor.<fmt>")
@investigator_required(roles=[Role.ADMIN_INSTANSI])
def province_export(ctx: Context, fmt: str) -> ResponseReturnValue:
    board, _tenants, _chosen = _province_board(ctx)
    return _export(board, fmt, f"koordinasi-{ctx.tenant.slug}",
                   gettext("Province coordination") + f" · {ctx.tenant.name}")


@bp.get("/pemantauan/ekspor.<fmt>")
@investigator_required(roles=[Role.PEMANTAU_KPK])
def monitor_export(ctx: Context, fmt: str) -> ResponseReturnValue:
    board, _tenants, _chosen, _provinces = _monitor_board(ctx)
    return _export(board, fmt, "pemantauan", gettext("KPK monitoring"))


@bp.get("/ringkasan")
@investigator_required(roles=[Role.ADMIN_INSTANSI])
def summary(ctx: Context) -> ResponseReturnValue:
    """The admin's own instansi: its cases only."""
    return _render(_summary_board(ctx), view="tenant", own=ctx.tenant, tenants=[ctx.tenant],
                   chosen=ctx.tenant, provinces=[], page_endpoint="dashboard.summary",
                   export_endpoint="dashboard.summary_export", kinds=[])


@bp.get("/ringkasan/ekspor.<fmt>")
@investigator_required(roles=[Role.ADMIN_INSTANSI])
def summary_export(ctx: Context, fmt: str) -> ResponseReturnValue:
    return _export(_summary_board(ctx), fmt, f"ringkasan-{ctx.tenant.slug}",
                   gettext("Institution summary") + f" · {ctx.tenant.name}")


def _subtitle(board: Dashboard) -> str:
    period = board.filters.period
    parts = [gettext("As of %(day)s.", day=format_date(board.today, "d MMMM yyyy"))]
    if period is not None:
        parts.append(gettext("Reports received in %(period)s.", period=_period_label(period)))
    return " ".join(parts)


def _period_label(period: Period) -> str:
    if "-Q" in period.key:
        quarter = (period.start.month + 2) // 3
        return str(gettext("Quarter %(number)s %(year)s", number=quarter, year=period.start.year))
    if "-" in period.key:
        return month_label(period.start)
    return period.key


def _export(board: Dashboard, fmt: str, stem: str, title: str) -> ResponseReturnValue:
    """Every table of the page as XLSX (a sheet each) or as a printable PDF report, or one
    (``?tabel=``) as CSV."""
    name = f"{stem}-{board.filters.period.key if board.filters.period else board.today}"
    tables = export.tables(board)
    if fmt == "xlsx":
        body, mimetype = export.xlsx(tables), export.XLSX_TYPE
    elif fmt == "pdf":
        body = export.pdf(tables, title=title, subtitle=_subtitle(board))
        mimetype = "application/pdf"
    elif fmt == "csv":
        wanted = request.args.get("tabel", "institusi")
        table = next((table for table in tables if table.key == wanted), None)
        if table is None:
            abort(404)
        body, mimetype, name = export.csv_bytes(table), "text/csv", f"{name}-{table.key}"
    else:
        abort(404)
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )
