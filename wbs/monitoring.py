"""Monitoring figures: KPK's dashboard across the connected instansi, and one tenant's summary.

Everything here is computed from handling METADATA only (status, category, MCP area, deadlines,
the event log's kinds and times), never from report content, sources or accounts: that is all
the hub may read across tenants (:data:`wbs.tenancy.HUB_READABLE`), and all it needs to find
where reports are left unanswered and which areas are prone to corruption ("titik rawan").

Every figure is a GROUP BY in the database over cases, each read from a covering index
(migration 0021; the overdue counts read only the overdue rows), with no cache; the
architecture's budget is 100 ms for 100,000 reports (``bench/bench_investigator.py``).

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

import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, cast

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
from wbs.models import Case, Tenant
from wbs.tenancy import HubScope, ProvinceScope, TenantIsolationError, TenantScope

# What counts as the first response to the pelapor: a decision on the case or an answer.
FIRST_RESPONSE_KINDS: tuple[EventKind, ...] = (EventKind.STATUS_CHANGED, EventKind.REPLY_ADDED)


@dataclass(frozen=True)
class Period:
    """The reports received (WIB days) in a month, a quarter or a year, as a filter names it:
    ``2026-11``, ``2026-Q4`` or ``2026``."""

    key: str
    start: dt.date
    end: dt.date  # the first day after the period

    @classmethod
    def parse(cls, text: str) -> Period:
        """Raises ValueError for anything but the three forms (years 2000-2100)."""
        found = _PERIOD.fullmatch(text.strip())
        if found is None:
            raise ValueError(f"not a period: {text[:20]!r}")
        year = int(found["year"])
        if not 2000 <= year <= 2100:
            raise ValueError(f"not a period: {text[:20]!r}")
        if found["month"]:
            month = int(found["month"])
            if not 1 <= month <= 12:
                raise ValueError(f"not a period: {text[:20]!r}")
            start = dt.date(year, month, 1)
            return cls(f"{year}-{month:02d}", start, _add_months(start, 1))
        if found["quarter"]:
            quarter = int(found["quarter"])
            start = dt.date(year, 3 * quarter - 2, 1)
            return cls(f"{year}-Q{quarter}", start, _add_months(start, 3))
        return cls(str(year), dt.date(year, 1, 1), dt.date(year + 1, 1, 1))

    @classmethod
    def month_of(cls, day: dt.date) -> Period:
        return cls.parse(f"{day.year}-{day.month:02d}")


_PERIOD = re.compile(r"(?P<year>[0-9]{4})(?:-(?P<month>[0-9]{2})|-[Qq](?P<quarter>[1-4]))?")


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Filters:
    """What a dashboard counts: reports received in ``period``, of one category or MCP area,
    and (KPK's view) of the institutions in one province or of one kind."""

    period: Period | None = None
    province: str | None = None
    kind: TenantKind | None = None
    category: str | None = None
    mcp_area: str | None = None


# An institution falls behind when fewer than this share of its first responses, among those
# due by today, were given on time (and it has enough of them for the share to mean anything).
LAGGING_BELOW = 0.8
LAGGING_MINIMUM = 5
# Without a period, the trend shows the last twelve months up to today's.
TREND_MONTHS = 12


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
    # The first-response promise (wbs.deadlines.FirstResponse): met, late, missing.
    first_response_met: int = 0
    first_response_late: int = 0
    first_response_missing: int = 0
    median_first_response_working_days: float | None = None
    province: str | None = None

    @property
    def first_response_due(self) -> int:
        """Cases whose first response was given or is overdue (pending ones are not judged)."""
        return self.first_response_met + self.first_response_late + self.first_response_missing

    @property
    def compliance(self) -> float | None:
        """The share of those answered within the deadline; None when there is none."""
        due = self.first_response_due
        return self.first_response_met / due if due else None


@dataclass(frozen=True)
class MonthFigures:
    """Reports received in one month, and how their first response went (as of today)."""

    month: dt.date  # its first day
    received: int
    first_response_met: int
    first_response_late: int
    first_response_missing: int

    @property
    def compliance(self) -> float | None:
        due = self.first_response_met + self.first_response_late + self.first_response_missing
        return self.first_response_met / due if due else None


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
    # The same median in hari kerja (counted with the calendar when each response was given).
    median_first_response_working_days: float | None
    # Where the reports arrived: the drop box or a channel an operator recorded them from
    # (wbs.operator_intake). Most cases first; channels without a case are left out.
    by_channel: tuple[LabelledCount, ...] = ()
    filters: Filters = Filters()
    # Reports whose form points at KPK's jurisdiction (Case.kpk_hint: mungkin kewenangan KPK).
    kpk_hint: int = 0
    # Month by month, oldest first: the period's months, or the last TREND_MONTHS.
    trend: tuple[MonthFigures, ...] = ()
    # (tenant id, category code, cases) for every pair with a case: what the province map
    # sums into each province's prone categories.
    by_tenant_category: tuple[tuple[int, str, int], ...] = ()

    @property
    def lagging(self) -> tuple[TenantFigures, ...]:
        """The institutions that fall behind on the first-response promise, worst first."""
        behind = [
            line
            for line in self.tenants
            if line.first_response_due >= LAGGING_MINIMUM
            and (line.compliance or 0.0) < LAGGING_BELOW
        ]
        return tuple(sorted(behind, key=lambda line: (line.compliance or 0.0, line.name)))

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
    tenant_id: int | None = None,
    filters: Filters = Filters(),
) -> Dashboard:
    """KPK's view across every connected tenant (or the one ``tenant_id``), through HubScope.

    Raises :class:`~wbs.tenancy.TenantIsolationError` unless ``hub`` is the hub tenant.
    """
    scope = HubScope(session, hub)  # refuses any tenant but the hub
    tenants_query = scope.select(Tenant).order_by(Tenant.name, Tenant.id)
    if tenant_id is not None:
        tenants_query = tenants_query.where(Tenant.id == tenant_id)
    if filters.province is not None:
        tenants_query = tenants_query.where(Tenant.province == filters.province)
    if filters.kind is not None:
        tenants_query = tenants_query.where(Tenant.kind == filters.kind)
    tenants = list(session.scalars(tenants_query))
    narrowed = tenant_id is not None or filters.province is not None or filters.kind is not None
    reader = _Reader(
        scope.select, [tenant.id for tenant in tenants] if narrowed else None, filters
    )
    return _figures(
        session, reader, tenants, today=today, tenant_id=tenant_id,
        filters=filters,
    )


def tenant_summary(
    session: Session,
    tenant: Tenant,
    today: dt.date,
    *,
    filters: Filters = Filters(),
) -> Dashboard:
    """The same figures for one instansi's admin, through its TenantScope (own cases only).

    The province and kind of ``filters`` are the hub's: they are ignored here.
    """
    scope = TenantScope(session, tenant)
    filters = replace(filters, province=None, kind=None)
    reader = _Reader(scope.select, None, filters)
    return _figures(
        session, reader, [tenant], today=today, tenant_id=scope.tenant_id,
        filters=filters,
    )


def province_dashboard(
    session: Session,
    province: Tenant,
    *,
    today: dt.date,
    filters: Filters = Filters(),
    tenant_id: int | None = None,
) -> Dashboard:
    """A provincial government's view of its own and its kabupaten/kota's reports, through
    :class:`~wbs.tenancy.ProvinceScope` (metadata of cases only).

    Raises :class:`~wbs.tenancy.TenantIsolationError` unless ``province`` is a provincial
    government with a province. ``tenant_id`` outside the province counts nothing.
    """
    scope = ProvinceScope(session, province)
    filters = replace(filters, province=None)
    tenants = [
        tenant
        for tenant in scope.tenants
        if (tenant_id is None or tenant.id == tenant_id)
        and (filters.kind is None or tenant.kind == filters.kind)
    ]
    reader = _Reader(scope.select, [tenant.id for tenant in tenants], filters)
    return _figures(
        session, reader, tenants, today=today, tenant_id=tenant_id,
        filters=filters,
    )


# --- the queries ------------------------------------------------------------------------------


class _Reader:
    """Column selects of cases through a scope's ``select(Case)``, narrowed to some tenants
    (None: every tenant the scope allows) and to the filters."""

    def __init__(
        self,
        select: Callable[[Any], sa.Select[Any]],
        tenant_ids: list[int] | None,
        filters: Filters = Filters(),
    ) -> None:
        self._select = select
        self.tenant_ids = tenant_ids
        self.filters = filters

    @property
    def reads_rows(self) -> bool:
        """Whether the figures must be read from the table's rows: a category or an MCP area
        is in no covering index but the categories'."""
        return self.filters.category is not None or self.filters.mcp_area is not None

    def columns(self, model: type[Case], *columns: Any) -> sa.Select[Any]:
        # The scope's select (with its tenant condition and checks), reduced to the columns;
        # the WHERE clause and options survive with_only_columns.
        statement = self._select(model).with_only_columns(*columns)
        if self.tenant_ids is not None:
            statement = statement.where(Case.tenant_id.in_(self.tenant_ids))
        wanted = self.filters
        if wanted.period is not None:
            # received_at holds day labels (midnight UTC of the WIB date): compared as labels.
            statement = statement.where(
                Case.received_at >= _label(wanted.period.start),
                Case.received_at < _label(wanted.period.end),
            )
        if wanted.category is not None:
            statement = statement.where(Case.category == wanted.category)
        if wanted.mcp_area is not None:
            statement = statement.where(Case.mcp_area == wanted.mcp_area)
        return statement


def _count_if(condition: Any) -> Any:
    return sa.func.sum(sa.case((condition, 1), else_=0))


def _label(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _figures(
    session: Session,
    reader: _Reader,
    tenants: list[Tenant],
    *,
    today: dt.date,
    tenant_id: int | None,
    filters: Filters,
) -> Dashboard:
    by_status: Counter[CaseStatus] = Counter()
    # total, open, overdue first, overdue closure, first response met, late, missing
    per_tenant: dict[int, list[int]] = {}
    # Each figure is read from its own covering index (migration 0021), and the two overdue
    # counts only from the rows that are overdue (the conditions are wbs.deadlines'), rather
    # than every figure evaluated for every case in one pass. Tenants x statuses x the stored
    # judgement of the first response (met, late, or none yet:
    # wbs.deadlines.record_first_response). Narrowed to a category or an MCP area, no index
    # covers the figures: the rows are read from the table anyway, so the overdue counts are
    # summed in the same pass rather than read again.
    in_one_pass = reader.reads_rows
    overdue = (
        (_count_if(first_response_overdue(today)), _count_if(closure_overdue(today)))
        if in_one_pass
        else ()
    )
    for row in session.execute(
        reader.columns(
            Case, Case.tenant_id, Case.status, Case.first_response_in_time, sa.func.count(),
            *overdue,
        ).group_by(Case.tenant_id, Case.status, Case.first_response_in_time)
    ):
        row_tenant, status, in_time, count = row[:4]
        status = CaseStatus(status)
        by_status[status] += count
        line = per_tenant.setdefault(row_tenant, [0] * 7)
        line[0] += count
        if status in OPEN_STATUSES:
            line[1] += count
        if in_time is True:
            line[4] += count
        elif in_time is False:
            line[5] += count
        if in_one_pass:
            late_first, late_closure = int(row[4] or 0), int(row[5] or 0)
            line[2] += late_first
            line[6] += late_first  # missing is overdue: one definition (wbs.deadlines)
            line[3] += late_closure
    if not in_one_pass:
        for row_tenant, count in session.execute(
            reader.columns(Case, Case.tenant_id, sa.func.count())
            .where(first_response_overdue(today))
            .group_by(Case.tenant_id)
        ):
            line = per_tenant.setdefault(row_tenant, [0] * 7)
            line[2] += count
            line[6] += count  # missing is overdue: one definition (wbs.deadlines)
        for row_tenant, count in session.execute(
            reader.columns(Case, Case.tenant_id, sa.func.count())
            .where(closure_overdue(today))
            .group_by(Case.tenant_id)
        ):
            per_tenant.setdefault(row_tenant, [0] * 7)[3] += count
    overdue_first = sum(line[2] for line in per_tenant.values())
    overdue_closure = sum(line[3] for line in per_tenant.values())

    categories: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    channels: Counter[str] = Counter()
    without_area = 0
    tenant_categories: Counter[tuple[int, str]] = Counter()
    # Categories, MCP areas and channels in one pass (one covering index).
    for row_tenant, category, area, channel, count in session.execute(
        reader.columns(
            Case, Case.tenant_id, Case.category, Case.mcp_area, Case.channel, sa.func.count()
        ).group_by(Case.tenant_id, Case.category, Case.mcp_area, Case.channel)
    ):
        categories[category] += count
        tenant_categories[row_tenant, category] += count
        channels[str(channel)] += count
        if area is None:
            without_area += count
        else:
            areas[area] += count

    kpk_hinted = session.scalar(
        reader.columns(Case, sa.func.count()).where(Case.kpk_hint == sa.true())
    )

    # Thousands of rows (tenants x days x working days): plain dicts, not Counters.
    days_histogram: dict[int, int] = {}
    working_histogram: dict[int, int] = {}
    tenant_working: dict[int, dict[int, int]] = {}
    for row_tenant, days, workdays, count in _response_figures(session, reader):
        days_histogram[days] = days_histogram.get(days, 0) + count
        working_histogram[workdays] = working_histogram.get(workdays, 0) + count
        histogram = tenant_working.get(row_tenant)
        if histogram is None:
            histogram = tenant_working[row_tenant] = {}
        histogram[workdays] = histogram.get(workdays, 0) + count

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
            _tenant_line(tenant, per_tenant.get(tenant.id, [0] * 7), tenant_working)
            for tenant in tenants
        ),
        overdue_first_response=overdue_first,
        overdue_closure=overdue_closure,
        responded=sum(days_histogram.values()),
        median_first_response_days=_median(days_histogram),
        median_first_response_working_days=_median(working_histogram),
        by_channel=_ranked(
            channels, {channel.value: label for channel, label in CHANNEL_LABELS.items()}
        ),
        filters=filters,
        kpk_hint=int(kpk_hinted or 0),
        trend=_trend(session, reader, today, filters.period),
        by_tenant_category=tuple(
            (row_tenant, category, count)
            for (row_tenant, category), count in sorted(tenant_categories.items())
        ),
    )


def _tenant_line(
    tenant: Tenant,
    line: list[int],
    working: Mapping[int, Mapping[int, int]],
) -> TenantFigures:
    total, open_, late_first, late_closure, met, late, missing = line
    return TenantFigures(
        tenant.id,
        tenant.slug,
        tenant.name,
        tenant.kind,
        total,
        open_,
        late_first,
        late_closure,
        first_response_met=met,
        first_response_late=late,
        first_response_missing=missing,
        median_first_response_working_days=_median(working.get(tenant.id, {})),
        province=tenant.province,
    )


def _trend(
    session: Session, reader: _Reader, today: dt.date, period: Period | None
) -> tuple[MonthFigures, ...]:
    """Month by month: GROUP BYs of received day (labels), summed into months here: every
    case with its judged first response, and the overdue ones (read from their own index)."""
    if period is not None:
        first, end = period.start, period.end
    else:
        end = _add_months(dt.date(today.year, today.month, 1), 1)
        first = _add_months(end, -TREND_MONTHS)
    months: dict[dt.date, list[int]] = {}
    month = first
    while month < end:
        months[month] = [0, 0, 0, 0]
        month = _add_months(month, 1)
    window = (Case.received_at >= _label(first), Case.received_at < _label(end))
    in_one_pass = reader.reads_rows  # as in _figures: no covering index, one pass
    missing_here = (_count_if(first_response_overdue(today)),) if in_one_pass else ()
    received = (
        reader.columns(
            Case, Case.received_at, Case.first_response_in_time, sa.func.count(), *missing_here
        )
        .where(*window)
        .group_by(Case.received_at, Case.first_response_in_time)
    )
    for row in session.execute(received):
        line = months.get(_month(row[0]))
        if line is None:
            continue
        in_time, count = row[1], row[2]
        line[0] += count
        if in_time is True:
            line[1] += count
        elif in_time is False:
            line[2] += count
        if in_one_pass:
            line[3] += int(row[3] or 0)
    if in_one_pass:
        return tuple(MonthFigures(month, *line) for month, line in months.items())
    missing = (
        reader.columns(Case, Case.received_at, sa.func.count())
        .where(*window, first_response_overdue(today))
        .group_by(Case.received_at)
    )
    for day_label, count in session.execute(missing):
        line = months.get(_month(day_label))
        if line is not None:
            line[3] += count
    return tuple(MonthFigures(month, *line) for month, line in months.items())


def _month(label: Any) -> dt.date:
    day = _as_date(label)
    return dt.date(day.year, day.month, 1)


def _response_figures(
    session: Session, reader: _Reader
) -> Iterable[tuple[int, int, int, int]]:
    """(tenant, days, working days, cases) over the cases that had a first response.

    One GROUP BY of small stored integers (:func:`wbs.deadlines.record_first_response`, filled
    for older cases by migration 0015), always current: no cache, no date arithmetic per row.
    """
    statement = (
        reader.columns(
            Case,
            Case.tenant_id,
            Case.first_response_days,
            Case.first_response_workdays,
            sa.func.count(),
        )
        .where(Case.first_response_workdays.is_not(None))
        .group_by(Case.tenant_id, Case.first_response_days, Case.first_response_workdays)
    )
    # Integer columns and a count: the rows are those tuples already (thousands of them).
    return cast(Iterable[tuple[int, int, int, int]], session.execute(statement))


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _ranked(counts: Counter[str], labels: Mapping[str, str]) -> tuple[LabelledCount, ...]:
    return tuple(
        LabelledCount(code, labels.get(code, code), count)
        for code, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    )


def _median(histogram: Mapping[int, int]) -> float | None:
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
    "LAGGING_BELOW",
    "LAGGING_MINIMUM",
    "Dashboard",
    "Filters",
    "LabelledCount",
    "MonthFigures",
    "Period",
    "StatusCount",
    "TenantFigures",
    "TenantIsolationError",
    "dashboard",
    "province_dashboard",
    "tenant_summary",
]
