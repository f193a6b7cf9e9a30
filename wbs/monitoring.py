"""Monitoring figures: KPK's dashboard across the connected instansi, and one tenant's summary.

Everything here is computed from handling METADATA only (status, category, MCP area, deadlines,
the event log's kinds and times), never from report content, sources or accounts: that is all
the hub may read across tenants (:data:`wbs.tenancy.HUB_READABLE`), and all it needs to find
where reports are left unanswered and which areas are prone to corruption ("titik rawan").

Every figure is a GROUP BY in the database over cases (covering indexes from migration 0004;
the first response is the column ``cases.first_response_at`` from migration 0005), with no
cache; the architecture's budget is 100 ms for 100,000 reports (``bench/bench_investigator.py``).

Definitions, shared with the inbox so the numbers agree with what a click shows:

* **open**: a status in :data:`~wbs.domain.OPEN_STATUSES` (not diarsipkan, not selesai).
* **overdue (first response)**: not answered, and ``first_response_due`` before ``today``
  (:func:`wbs.deadlines.first_response_overdue`, as in the inbox's "overdue" filter). A case
  answered on time is not overdue, whatever its status.
* **overdue (closure)**: open, and ``closure_due`` (PP 43/2018, 30 hari kerja) before ``today``.
* **first response**: the earliest ``status_changed`` or ``reply_added`` event of a case, kept
  in ``cases.first_response_at`` by :mod:`wbs.casework` (and filled from the log by migration
  0005). The delay is counted in whole days from the day the report was received
  (``received_at``, kept at day precision) to the WIB day of that event; cases without one are
  left out of the median.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from wbs.deadlines import closure_overdue, first_response_overdue
from wbs.domain import (
    CATEGORY_LABELS,
    CHANNEL_LABELS,
    MCP_AREA_LABELS,
    OPEN_STATUSES,
    CaseStatus,
    EventKind,
    TenantKind,
)
from wbs.models import Base, Case, Tenant
from wbs.tenancy import HubScope, TenantIsolationError, TenantScope
from wbs.workdays import DEFAULT_TIMEZONE, WorkingCalendar

# What counts as the first response to the pelapor: a decision on the case or an answer.
FIRST_RESPONSE_KINDS: tuple[EventKind, ...] = (EventKind.STATUS_CHANGED, EventKind.REPLY_ADDED)


@dataclass(frozen=True)
class StatusCount:
    status: CaseStatus
    count: int

    @property
    def label(self) -> str:
        return self.status.label


@dataclass(frozen=True)
class LabelledCount:
    """Cases of one category or MCP area; ``label`` falls back to the code if unknown."""

    code: str
    label: str
    count: int


@dataclass(frozen=True)
class TenantFigures:
    """One instansi's line on the dashboard."""

    tenant_id: int
    slug: str
    name: str
    kind: TenantKind
    total: int
    open: int
    overdue_first_response: int
    overdue_closure: int


@dataclass(frozen=True)
class Dashboard:
    """The figures of every case the reader may count (all tenants, or one)."""

    today: dt.date
    # The hub's tenant filter, or the summarised tenant's id; None for every tenant.
    tenant_id: int | None
    total: int
    open: int
    # Every status in workflow order, zeros included.
    by_status: tuple[StatusCount, ...]
    # Most cases first; codes without a case are left out.
    by_category: tuple[LabelledCount, ...]
    by_mcp_area: tuple[LabelledCount, ...]
    # Cases nobody has mapped to an MCP area yet.
    without_mcp_area: int
    # By tenant name; for the hub every tenant (with zeros), for a tenant its own line.
    tenants: tuple[TenantFigures, ...]
    overdue_first_response: int
    overdue_closure: int
    # Cases that have had a first response (the median's sample).
    responded: int
    median_first_response_days: float | None
    # Only when a working calendar was given: the same median in hari kerja.
    median_first_response_working_days: float | None
    # Where the reports arrived: the drop box or a channel an operator recorded them from
    # (wbs.operator_intake). Most cases first; channels without a case are left out.
    by_channel: tuple[LabelledCount, ...] = ()

    def status_counts(self) -> dict[CaseStatus, int]:
        return {row.status: row.count for row in self.by_status}

    def category_counts(self) -> dict[str, int]:
        return {row.code: row.count for row in self.by_category}

    def mcp_area_counts(self) -> dict[str, int]:
        return {row.code: row.count for row in self.by_mcp_area}


def dashboard(
    session: Session,
    hub: Tenant,
    *,
    today: dt.date,
    calendar: WorkingCalendar | None = None,
    tenant_id: int | None = None,
) -> Dashboard:
    """KPK's view across every connected tenant (or the one ``tenant_id``), through HubScope.

    Raises :class:`~wbs.tenancy.TenantIsolationError` unless ``hub`` is the hub tenant.
    """
    scope = HubScope(session, hub)  # refuses any tenant but the hub
    reader = _Reader(scope.select, tenant_id)
    tenants_query = scope.select(Tenant).order_by(Tenant.name, Tenant.id)
    if tenant_id is not None:
        tenants_query = tenants_query.where(Tenant.id == tenant_id)
    tenants = list(session.scalars(tenants_query))
    return _figures(session, reader, tenants, today=today, calendar=calendar, tenant_id=tenant_id)


def tenant_summary(
    session: Session,
    tenant: Tenant,
    today: dt.date,
    *,
    calendar: WorkingCalendar | None = None,
) -> Dashboard:
    """The same figures for one instansi's admin, through its TenantScope (own cases only)."""
    scope = TenantScope(session, tenant)
    reader = _Reader(scope.select, None)
    return _figures(
        session, reader, [tenant], today=today, calendar=calendar, tenant_id=scope.tenant_id
    )


# --- the queries ------------------------------------------------------------------------------


class _Reader:
    """Column selects through a scope's ``select(model)``, optionally narrowed to one tenant."""

    def __init__(self, select: Callable[[Any], sa.Select[Any]], tenant_id: int | None) -> None:
        self._select = select
        self.tenant_id = tenant_id

    def columns(self, model: type[Base], *columns: Any) -> sa.Select[Any]:
        # The scope's select (with its tenant condition and checks), reduced to the columns;
        # the WHERE clause and options survive with_only_columns.
        statement = self._select(model).with_only_columns(*columns)
        if self.tenant_id is not None:
            statement = statement.where(model.tenant_id == self.tenant_id)  # type: ignore[attr-defined]
        return statement


def _figures(
    session: Session,
    reader: _Reader,
    tenants: list[Tenant],
    *,
    today: dt.date,
    calendar: WorkingCalendar | None,
    tenant_id: int | None,
) -> Dashboard:
    open_statuses = [status.value for status in OPEN_STATUSES]
    by_status: Counter[CaseStatus] = Counter()
    per_tenant: dict[int, list[int]] = {}  # total, open, overdue first, overdue closure
    overdue_first = overdue_closure = 0
    # One pass over cases: tenants x statuses groups, with the two overdue sums per group.
    rows = session.execute(
        reader.columns(
            Case,
            Case.tenant_id,
            Case.status,
            sa.func.count(),
            sa.func.sum(sa.case((first_response_overdue(today), 1), else_=0)),
            sa.func.sum(sa.case((closure_overdue(today), 1), else_=0)),
        ).group_by(Case.tenant_id, Case.status)
    )
    for row_tenant, status, count, late_first, late_closure in rows:
        status = CaseStatus(status)
        by_status[status] += count
        line = per_tenant.setdefault(row_tenant, [0, 0, 0, 0])
        line[0] += count
        line[2] += int(late_first or 0)  # open statuses only, by its definition
        if status.value in open_statuses:
            line[1] += count
            line[3] += int(late_closure or 0)
    for line in per_tenant.values():
        overdue_first += line[2]
        overdue_closure += line[3]

    categories: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    without_area = 0
    for category, area, count in session.execute(
        reader.columns(Case, Case.category, Case.mcp_area, sa.func.count()).group_by(
            Case.category, Case.mcp_area
        )
    ):
        categories[category] += count
        if area is None:
            without_area += count
        else:
            areas[area] += count

    channels: Counter[str] = Counter()
    for channel, count in session.execute(
        reader.columns(Case, Case.channel, sa.func.count()).group_by(Case.channel)
    ):
        channels[str(channel)] += count

    pairs = _response_pairs(session, reader)
    days_histogram: Counter[int] = Counter()
    working_histogram: Counter[int] = Counter()
    for (received, answered), count in pairs.items():
        days_histogram[(answered - received).days] += count
    if calendar is not None:
        counter = _WorkingDayCounter(calendar, [day for pair in pairs for day in pair])
        for (received, answered), count in pairs.items():
            working_histogram[counter.between(received, answered)] += count

    total = sum(by_status.values())
    return Dashboard(
        today=today,
        tenant_id=tenant_id,
        total=total,
        open=sum(count for status, count in by_status.items() if status in OPEN_STATUSES),
        by_status=tuple(StatusCount(status, by_status[status]) for status in CaseStatus),
        by_category=_ranked(categories, CATEGORY_LABELS),
        by_mcp_area=_ranked(areas, MCP_AREA_LABELS),
        without_mcp_area=without_area,
        tenants=tuple(
            TenantFigures(
                tenant.id,
                tenant.slug,
                tenant.name,
                tenant.kind,
                *per_tenant.get(tenant.id, [0, 0, 0, 0]),
            )
            for tenant in tenants
        ),
        overdue_first_response=overdue_first,
        overdue_closure=overdue_closure,
        responded=sum(days_histogram.values()),
        median_first_response_days=_median(days_histogram),
        median_first_response_working_days=(
            _median(working_histogram) if calendar is not None else None
        ),
        by_channel=_ranked(
            channels, {channel.value: label for channel, label in CHANNEL_LABELS.items()}
        ),
    )


def _response_pairs(session: Session, reader: _Reader) -> Counter[tuple[dt.date, dt.date]]:
    """{(received day, first-response day): cases} over the cases that had a first response.

    One GROUP BY over cases (``first_response_at``, kept by :mod:`wbs.casework` and filled
    from the event log by migration 0005), with no cache: it is always current.
    """
    dialect = session.get_bind().dialect.name
    # received_at is already a day label: grouping by it is grouping by day. Both come back as
    # plain WIB days (no column type to run on each of the thousands of groups).
    received_day = _wib_day(Case.received_at, dialect).label("received")
    answered_day = _wib_day(Case.first_response_at, dialect).label("answered")
    statement = (
        reader.columns(Case, received_day, answered_day, sa.func.count())
        .where(Case.first_response_at.is_not(None))
        .group_by(Case.received_at, answered_day)
    )
    pairs: Counter[tuple[dt.date, dt.date]] = Counter()
    for received, answered, count in session.execute(statement):
        pairs[(_as_date(received), _as_date(answered))] += count
    return pairs


def _wib_day(column: Any, dialect: str) -> Any:
    """The WIB calendar day of a UTC column, in the database.

    WIB, not UTC: an answer at 01:00 WIB on 3 December was given on 3 December, the day the
    deadline counts in. For a source-side day label (midnight UTC of a WIB date) this is that
    date, so labels and exact times are read the same way.
    """
    if dialect == "sqlite":
        # SQLite keeps these columns as naive UTC text; Asia/Jakarta is UTC+7 all year (no
        # daylight saving since 1964), so a fixed offset is exact.
        return sa.func.date(column, "+7 hours")
    # timestamptz -> Jakarta's wall time -> its date; independent of the session's TimeZone.
    return sa.cast(sa.func.timezone(DEFAULT_TIMEZONE, column), sa.Date)


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


class _WorkingDayCounter:
    """``calendar.working_days_between`` in O(log n) per pair, from one walk over the days."""

    def __init__(self, calendar: WorkingCalendar, days: Iterable[dt.date]) -> None:
        self._working: list[dt.date] = []
        known = list(days)
        if not known:
            return
        day, last = min(known), max(known)
        while day <= last:
            if calendar.is_working_day(day):
                self._working.append(day)
            day += dt.timedelta(days=1)

    def _upto(self, day: dt.date) -> int:
        return bisect.bisect_right(self._working, day)

    def between(self, start: dt.date, end: dt.date) -> int:
        # Working days after start up to and including end (negative if end is earlier).
        return self._upto(end) - self._upto(start)


def _ranked(counts: Counter[str], labels: Mapping[str, str]) -> tuple[LabelledCount, ...]:
    return tuple(
        LabelledCount(code, labels.get(code, code), count)
        for code, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    )


def _median(histogram: Counter[int]) -> float | None:
    """The median of values given as {value: how many}; None when there are none."""
    size = sum(histogram.values())
    if size == 0:
        return None
    wanted = ((size - 1) // 2, size // 2)
    found: list[int] = []
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        while len(found) < 2 and wanted[len(found)] < seen:
            found.append(value)
        if len(found) == 2:
            break
    return (found[0] + found[1]) / 2


__all__ = [
    "FIRST_RESPONSE_KINDS",
    "Dashboard",
    "LabelledCount",
    "StatusCount",
    "TenantFigures",
    "TenantIsolationError",
    "dashboard",
    "tenant_summary",
]
