"""Monitoring figures: KPK's dashboard across the connected instansi, and one tenant's summary.

Everything here is computed from handling METADATA only (status, category, MCP area, deadlines,
the event log's kinds and times), never from report content, sources or accounts: that is all
the hub may read across tenants (:data:`wbs.tenancy.HUB_READABLE`), and all it needs to find
where reports are left unanswered and which areas are prone to corruption ("titik rawan").

Every figure is read from the tallies the database keeps current as cases change
(:mod:`wbs.tallies`, migration 0024): a view reads rows per institution and value, however many
cases there are, and today's overdue counts from the open cases' due months and this month's
due days. A single month of one category or one MCP area, or a category and an area at once,
which the tallies do not keep, is counted from those cases' rows (one pass through an index).
The budget is 50 ms at 100,000 cases and 100 ms at 1,000,000 (``bench/bench_dashboard.py``).

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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
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
from wbs.models import Case, CaseTally, Tenant
from wbs.tallies import (
    ALL_MONTHS,
    EVERY_INSTITUTION,
    EVERY_MONTH,
    MONTH,
    facet,
    grain_of,
    overdue_ranges,
)
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
    # Handed on or in (wbs.forwarding, wbs.takeover, wbs.matters): forwarded to another
    # institution, taken over by KPK, closed into a matter's lead, received from another.
    forwarded: int = 0
    taken_over: int = 0
    merged: int = 0
    received: int = 0

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
    # (an institution's province as entered, category code, cases) for every pair with a
    # case: what the province map sums into each province's prone categories.
    by_province_category: tuple[tuple[str | None, str, int], ...] = ()

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

    @property
    def handed(self) -> tuple[TenantFigures, ...]:
        """The institutions with a report forwarded, taken over, merged or received."""
        return tuple(
            line for line in self.tenants
            if line.forwarded or line.taken_over or line.merged or line.received
        )

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
    reader = _Reader(scope.select, [scope.tenant_id], filters)
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
        """Whether the figures are counted from the cases' rows: narrowed to a category and
        an MCP area at once, or to one of them in a single month, which no tally counts
        (:func:`wbs.tallies.facet`): a small share of the cases."""
        wanted = self.filters
        return facet(wanted.category, wanted.mcp_area, grain=_grain(wanted)) is None

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


class _Counts:
    """What a dashboard's figures are made of, however they were read."""

    def __init__(self) -> None:
        self.by_status: Counter[CaseStatus] = Counter()
        # total, open, overdue first, overdue closure, first response met, late, missing
        self.per_tenant: dict[int, list[int]] = {}
        self.categories: Counter[str] = Counter()
        self.areas: Counter[str] = Counter()
        self.channels: Counter[str] = Counter()
        self.without_area = 0
        self.tenant_categories: Counter[tuple[int, str]] = Counter()
        self.kpk_hint = 0
        # Thousands of rows (tenants x days x working days): plain dicts, not Counters.
        self.days: dict[int, int] = {}
        self.working: dict[int, int] = {}
        self.tenant_working: dict[int, dict[int, int]] = {}
        # Or each institution's median working days, computed in the database.
        self.tenant_medians: dict[int, float] | None = None
        # Or the categories per province (as entered), summed in the database.
        self.province_categories: Counter[tuple[str | None, str]] | None = None
        # forwarded, taken over, merged, received
        self.handoffs: dict[int, list[int]] = {}

    def line(self, tenant_id: int) -> list[int]:
        line = self.per_tenant.get(tenant_id)
        if line is None:
            line = self.per_tenant[tenant_id] = [0] * 7
        return line

    def status(self, tenant_id: int, status: CaseStatus, in_time: bool | None, count: int) -> None:
        self.by_status[status] += count
        line = self.line(tenant_id)
        line[0] += count
        if status in OPEN_STATUSES:
            line[1] += count
        if in_time is True:
            line[4] += count
        elif in_time is False:
            line[5] += count

    def overdue(self, tenant_id: int, first: int, closure: int) -> None:
        line = self.line(tenant_id)
        line[2] += first
        line[6] += first  # missing is overdue: one definition (wbs.deadlines)
        line[3] += closure

    def handed(self, tenant_id: int, which: int, count: int) -> None:
        line = self.handoffs.get(tenant_id)
        if line is None:
            line = self.handoffs[tenant_id] = [0, 0, 0, 0]
        line[which] += count

    def classified(self, tenant_id: int, category: str, count: int) -> None:
        self.categories[category] += count
        self.tenant_categories[tenant_id, category] += count

    def area(self, area: str | None, count: int) -> None:
        if area is None:
            self.without_area += count
        else:
            self.areas[area] += count

    def response(self, tenant_id: int | None, days: int | None, workdays: int | None,
                 count: int) -> None:
        if days is not None:
            self.days[days] = self.days.get(days, 0) + count
        if workdays is not None and tenant_id is not None:
            self.working[workdays] = self.working.get(workdays, 0) + count
            histogram = self.tenant_working.get(tenant_id)
            if histogram is None:
                histogram = self.tenant_working[tenant_id] = {}
            histogram[workdays] = histogram.get(workdays, 0) + count


def _figures(
    session: Session,
    reader: _Reader,
    tenants: list[Tenant],
    *,
    today: dt.date,
    tenant_id: int | None,
    filters: Filters,
) -> Dashboard:
    # Read from the maintained tallies (wbs.tallies), whatever the number of cases; narrowed
    # to both a category and an MCP area, or to one of them and a single month, counted from
    # those cases' rows.
    if reader.reads_rows:
        counts, trend = _counts_from_rows(session, reader, today, filters.period)
    else:
        with _serial(session):
            counts = _counts_from_tallies(session, reader, today)
            trend = _trend_from_tallies(session, reader, today, filters.period)
    by_status = counts.by_status
    province_categories = counts.province_categories
    if province_categories is None:
        province_of = {tenant.id: tenant.province for tenant in tenants}
        province_categories = Counter()
        for (row_tenant, category), count in counts.tenant_categories.items():
            province_categories[province_of.get(row_tenant), category] += count
    medians = counts.tenant_medians
    if medians is None:
        medians = {tenant: median for tenant, histogram in counts.tenant_working.items()
                   if (median := _median(histogram)) is not None}
    return Dashboard(
        today=today,
        tenant_id=tenant_id,
        total=sum(by_status.values()),
        open=sum(count for status, count in by_status.items() if status in OPEN_STATUSES),
        by_status=tuple(StatusCount(status, by_status[status]) for status in CaseStatus),
        by_category=_ranked(counts.categories, CATEGORY_LABELS),
        by_mcp_area=_ranked(counts.areas, MCP_AREA_LABELS),
        without_mcp_area=counts.without_area,
        tenants=tuple(
            _tenant_line(tenant, counts.per_tenant.get(tenant.id, [0] * 7),
                         medians.get(tenant.id), counts.handoffs.get(tenant.id, [0] * 4))
            for tenant in tenants
        ),
        overdue_first_response=sum(line[2] for line in counts.per_tenant.values()),
        overdue_closure=sum(line[3] for line in counts.per_tenant.values()),
        responded=sum(counts.days.values()),
        median_first_response_days=_median(counts.days),
        median_first_response_working_days=_median(counts.working),
        by_channel=_ranked(
            counts.channels, {channel.value: label for channel, label in CHANNEL_LABELS.items()}
        ),
        filters=filters,
        kpk_hint=counts.kpk_hint,
        trend=trend,
        by_province_category=tuple(
            (province, category, count)
            for (province, category), count in sorted(
                province_categories.items(), key=lambda item: (item[0][0] or "", item[0][1])
            )
            if count
        ),
    )


# --- from the tallies -------------------------------------------------------------------------


@contextmanager
def _serial(session: Session) -> Iterator[None]:
    """PostgreSQL without parallel workers for the tallies' reads: each is a few thousand
    rows from an index, and starting workers costs more than that (~40 ms a statement
    measured at 100,000 cases, against ~4 ms of work). For this transaction only."""
    postgresql = session.get_bind().dialect.name == "postgresql"
    if postgresql:
        session.execute(sa.text("SET LOCAL max_parallel_workers_per_gather = 0"))
    try:
        yield
    finally:
        if postgresql:
            session.execute(sa.text("SET LOCAL max_parallel_workers_per_gather TO DEFAULT"))


# A figure to read, and (optionally) the range of its values to sum: from .. before (None:
# from the first). The due days before today, say.
_Wanted = Mapping[str, tuple[str | None, str] | None]


def _tally(
    session: Session,
    reader: _Reader,
    wanted: _Wanted,
    *keys: Any,
    months: tuple[dt.date, dt.date] | None = None,
    across: bool = False,
) -> dict[str, list[Any]]:
    """Sums of some figures' tallies by ``keys``, over the reader's institutions and the months
    received of its period (``months`` instead, for the trend), or the all-months rows; in one
    query; ``across``: figures kept summed over every institution, without it as a key. Each
    figure's rows (``keys`` and the sum), by figure."""
    common = _where(reader, across=across, months=months)
    # One SELECT per figure (each a range of the key), sent as one statement.
    parts = []
    for figure, values in wanted.items():
        # Summed over a range of values, the value itself is not a key ('' in its place).
        columns = list(keys)
        if values is not None:
            columns = [sa.literal("") if key is CaseTally.value else key for key in keys]
        part = sa.select(sa.literal(figure), *columns, sa.func.sum(CaseTally.cases)).where(
            CaseTally.figure == figure, *common
        )
        if values is not None:
            low, high = values
            part = part.where(CaseTally.value < high)
            if low is not None:
                part = part.where(CaseTally.value >= low)
        # Grouped in the key's order (month, value, institution): no sort.
        grouped = [key for key in _KEY_ORDER if any(key is column for column in columns)]
        parts.append(part.group_by(*grouped) if grouped else part)
    found: dict[str, list[Any]] = {figure: [] for figure in wanted}
    for row in session.execute(sa.union_all(*parts)).all():
        # Rows a change brought down to zero stay in the table: they count nothing.
        if row[-1]:
            found[row[0]].append(row[1:])
    return found


def _where(
    reader: _Reader, *, across: bool = False, months: tuple[dt.date, dt.date] | None = None
) -> list[Any]:
    """The tallies a reader counts: its facet, its period's grain (or the trend's ``months``
    one by one), and each institution it may count (``across``: the rows summed over every
    institution, where it may count them all)."""
    filters = reader.filters
    conditions = [
        CaseTally.facet == facet(filters.category, filters.mcp_area, grain=_grain(filters)),
    ]
    if months is not None:
        conditions += [CaseTally.grain == MONTH, CaseTally.month >= months[0],
                       CaseTally.month < months[1]]
    else:
        conditions += _period(filters)
    if reader.tenant_ids is not None:
        conditions.append(CaseTally.tenant_id.in_(reader.tenant_ids))
    elif across:
        conditions.append(CaseTally.tenant_id == EVERY_INSTITUTION)
    else:
        conditions.append(CaseTally.tenant_id != EVERY_INSTITUTION)
    return conditions


def _per_institution(reader: _Reader, figure: str) -> list[Any]:
    """The conditions for one figure's rows of each institution the reader counts."""
    return [CaseTally.figure == figure, *_where(reader)]


def _grain(filters: Filters) -> str | None:
    """The grain of the tallies that count the filters' period (wbs.tallies); None for a
    period that is not a month, a quarter or a year."""
    period = filters.period
    return EVERY_MONTH if period is None else grain_of(period.start, period.end)


def _period(filters: Filters) -> list[Any]:
    """The tallies of the filters' period: its own row (a month's, a quarter's or a year's),
    or the rows of every month."""
    period = filters.period
    if period is None:
        return [CaseTally.grain == EVERY_MONTH, CaseTally.month == ALL_MONTHS]
    return [CaseTally.grain == _grain(filters), CaseTally.month == period.start]


def _tenant_lines(session: Session, reader: _Reader) -> list[Any]:
    """(institution, cases, open, answered in time, answered late) from the ``status``
    tallies, summed per institution in the database: a row an institution."""
    values = CaseTally.value
    statement = sa.select(
        CaseTally.tenant_id,
        sa.func.sum(CaseTally.cases),
        sa.func.sum(sa.case((values.in_(_OPEN_VALUES), CaseTally.cases), else_=0)),
        sa.func.sum(sa.case((values.like("%|met"), CaseTally.cases), else_=0)),
        sa.func.sum(sa.case((values.like("%|late"), CaseTally.cases), else_=0)),
    ).where(*_per_institution(reader, "status"))
    return [row for row in session.execute(statement.group_by(CaseTally.tenant_id)).all()
            if row[1]]


def _province_categories(session: Session, reader: _Reader) -> list[Any]:
    """(province as entered, category, cases): the ``category`` tallies of the institutions
    the reader counts, summed per province in the database (a few rows, not one per
    institution and category)."""
    statement = (
        sa.select(Tenant.province, CaseTally.value, sa.func.sum(CaseTally.cases))
        .join(Tenant, Tenant.id == CaseTally.tenant_id)
        .where(*_per_institution(reader, "category"))
        .group_by(Tenant.province, CaseTally.value)
    )
    return [row for row in session.execute(statement).all() if row[-1]]


def _tenant_medians(session: Session, reader: _Reader) -> dict[int, float]:
    """Each institution's median working days to the first response, from its histogram
    (the ``workdays`` tallies) in the database: a row an institution. With n answers, the
    middle ranks are the smallest values whose running count reaches n/2 (2 * upto >= n)
    and passes it (2 * upto > n), as :func:`_median` takes them."""
    histogram = (
        sa.select(
            CaseTally.tenant_id.label("tenant"),
            sa.cast(CaseTally.value, sa.Integer).label("days"),
            sa.func.sum(CaseTally.cases).label("cases"),
        )
        .where(*_per_institution(reader, "workdays"))
        .group_by(CaseTally.tenant_id, CaseTally.value)
        .subquery()
    )
    running = sa.select(
        histogram.c.tenant,
        histogram.c.days,
        sa.func.sum(histogram.c.cases).over(
            partition_by=histogram.c.tenant, order_by=histogram.c.days
        ).label("upto"),
        sa.func.sum(histogram.c.cases).over(partition_by=histogram.c.tenant).label("total"),
    ).subquery()
    statement = (
        sa.select(
            running.c.tenant,
            sa.func.min(sa.case((2 * running.c.upto >= running.c.total, running.c.days))),
            sa.func.min(sa.case((2 * running.c.upto > running.c.total, running.c.days))),
        )
        .where(running.c.total > 0)
        .group_by(running.c.tenant)
    )
    return {tenant: (low + high) / 2 for tenant, low, high in session.execute(statement).all()}


def _overdue_figures(today: dt.date, month_figure: str, day_figure: str) -> _Wanted:
    """Open cases due before today (wbs.deadlines' rule): those due in an earlier month, and
    those due earlier in this one (wbs.tallies.overdue_ranges)."""
    earlier_months, this_month = overdue_ranges(today)
    return {month_figure: (None, earlier_months), day_figure: this_month}


_ANSWERS: dict[str, bool | None] = {"met": True, "late": False, "none": None}
_KEY_ORDER = (CaseTally.grain, CaseTally.month, CaseTally.value, CaseTally.tenant_id)
# The ``status`` tallies' values of the open statuses, whatever the answer.
_OPEN_VALUES = tuple(f"{status.value}|{answer}" for status in OPEN_STATUSES for answer in _ANSWERS)
# The figures of TenantFigures' forwarded, taken_over, merged, received (wbs.tallies).
_HANDOFFS = ("forwarded", "taken", "merged", "received")


def _counts_from_tallies(session: Session, reader: _Reader, today: dt.date) -> _Counts:
    counts = _Counts()
    wanted = reader.filters
    # Each institution's line, summed in the database from its statuses and answers.
    for row_tenant, total, open_, met, late in _tenant_lines(session, reader):
        line = counts.line(row_tenant)
        line[0], line[1], line[4], line[5] = int(total), int(open_), int(met), int(late)
    for status_answer, count in _tally(session, reader, {"status": None}, CaseTally.value,
                                       across=True)["status"]:
        counts.by_status[CaseStatus(status_answer.partition("|")[0])] += int(count)
    # By institution: overdue counts, categories, working days, the cases handed on or in.
    by_tenant = _tally(
        session, reader,
        {**{figure: None for figure in _HANDOFFS},
         **_overdue_figures(today, "frdue", "frday"),
         **_overdue_figures(today, "cldue", "clday")},
        CaseTally.tenant_id, CaseTally.value,
    )
    for figure in ("frdue", "frday"):
        for row_tenant, _due, count in by_tenant[figure]:
            counts.overdue(row_tenant, int(count), 0)
    for figure in ("cldue", "clday"):
        for row_tenant, _due, count in by_tenant[figure]:
            counts.overdue(row_tenant, 0, int(count))
    counts.tenant_medians = _tenant_medians(session, reader)
    for which, figure in enumerate(_HANDOFFS):
        for row_tenant, _value, count in by_tenant[figure]:
            counts.handed(row_tenant, which, int(count))
    # Narrowed to a category (or an area), its tally is that one value: each instansi's
    # total, not kept again (wbs.tallies).
    if wanted.category is not None:
        for row_tenant, line in counts.per_tenant.items():
            if line[0]:
                counts.classified(row_tenant, wanted.category, line[0])
    else:
        counts.province_categories = Counter()
        for province, category, count in _province_categories(session, reader):
            counts.categories[category] += int(count)
            counts.province_categories[province, category] += int(count)
    overall = _tally(
        session, reader,
        {"area": None, "channel": None, "hint": None, "days": None, "workdays": None},
        CaseTally.value, across=True,
    )
    if wanted.mcp_area is not None:
        in_area = sum(line[0] for line in counts.per_tenant.values())
        if in_area:
            counts.area(wanted.mcp_area, in_area)
    else:
        for area, count in overall["area"]:
            counts.area(area or None, int(count))
    for channel, count in overall["channel"]:
        counts.channels[channel] += int(count)
    counts.kpk_hint = sum(int(count) for _value, count in overall["hint"])
    for days, count in overall["days"]:
        counts.response(None, int(days), None, int(count))
    for workdays, count in overall["workdays"]:
        counts.working[int(workdays)] = counts.working.get(int(workdays), 0) + int(count)
    return counts


def _trend_from_tallies(
    session: Session, reader: _Reader, today: dt.date, period: Period | None
) -> tuple[MonthFigures, ...]:
    months = _trend_months(today, period)
    found = _tally(
        session, reader, {"answer": None, **_overdue_figures(today, "frdue", "frday")},
        CaseTally.month, CaseTally.value, months=(min(months), _add_months(max(months), 1)),
        across=True,
    )
    for day, answer, count in found["answer"]:
        line = months.get(_month(day))
        if line is None:
            continue
        in_time = _ANSWERS[answer]
        line[0] += int(count)
        if in_time is True:
            line[1] += int(count)
        elif in_time is False:
            line[2] += int(count)
    for figure in ("frdue", "frday"):
        for day, _due, count in found[figure]:
            line = months.get(_month(day))
            if line is not None:
                line[3] += int(count)
    return tuple(MonthFigures(month, *line) for month, line in months.items())


def _trend_months(today: dt.date, period: Period | None) -> dict[dt.date, list[int]]:
    """The trend's months, oldest first, each [received, met, late, missing] at zero: the
    period's, or the last TREND_MONTHS up to today's."""
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
    return months


# --- from the cases' rows (narrowed to a category or an MCP area) ----------------------------


def _counts_from_rows(
    session: Session, reader: _Reader, today: dt.date, period: Period | None
) -> tuple[_Counts, tuple[MonthFigures, ...]]:
    """Every figure and the months' trend from one pass over the chosen cases (through the
    index of their category or area and day received): a row per distinct combination of
    what the figures read, about a row a case. The trend's months are among the rows read
    (the period's, or the last twelve of all the cases)."""
    counts = _Counts()
    months = _trend_months(today, period)
    handed_on = (
        # As wbs.tallies counts them: forwarded, taken over, merged, received.
        _count_if(sa.and_(Case.linked_to_case_id.is_not(None), Case.taken_over_at.is_(None))),
        _count_if(Case.taken_over_at.is_not(None)),
        _count_if(Case.merged_at.is_not(None)),
        _count_if(Case.linked_from_case_id.is_not(None)),
    )
    # The month received as text in the database (fewer groups than days, no datetime to
    # convert a row).
    if session.get_bind().dialect.name == "sqlite":
        received_month = sa.func.strftime("%Y-%m", Case.received_at)
    else:
        received_month = sa.func.to_char(sa.func.timezone("UTC", Case.received_at), "YYYY-MM")
    keys = (
        Case.tenant_id, Case.status, Case.first_response_in_time, Case.category,
        Case.mcp_area, Case.channel, received_month, Case.first_response_days,
        Case.first_response_workdays,
    )
    statement = reader.columns(
        Case, *keys, sa.func.count(), _count_if(Case.kpk_hint == sa.true()),
        _count_if(first_response_overdue(today)), _count_if(closure_overdue(today)),
        *handed_on,
    ).group_by(*keys)
    for row in session.execute(statement).all():
        (row_tenant, status, in_time, category, area, channel, received, days, workdays,
         count, hinted, late_first, late_closure, *handed) = row
        counts.status(row_tenant, CaseStatus(status), in_time, count)
        counts.overdue(row_tenant, int(late_first or 0), int(late_closure or 0))
        for which, handed_count in enumerate(handed):
            if handed_count:
                counts.handed(row_tenant, which, int(handed_count))
        counts.classified(row_tenant, category, count)
        counts.area(area, count)
        counts.channels[str(channel)] += count
        counts.kpk_hint += int(hinted or 0)
        if workdays is not None:
            counts.response(row_tenant, days, workdays, count)
        line = months.get(dt.date(int(received[:4]), int(received[5:7]), 1))
        if line is not None:
            line[0] += count
            if in_time is True:
                line[1] += count
            elif in_time is False:
                line[2] += count
            line[3] += int(late_first or 0)
    return counts, tuple(MonthFigures(month, *line) for month, line in months.items())


def _tenant_line(
    tenant: Tenant,
    line: list[int],
    median: float | None,
    handoffs: list[int],
) -> TenantFigures:
    total, open_, late_first, late_closure, met, late, missing = line
    forwarded, taken_over, merged, received = handoffs
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
        median_first_response_working_days=median,
        province=tenant.province,
        forwarded=forwarded,
        taken_over=taken_over,
        merged=merged,
        received=received,
    )


def _month(label: Any) -> dt.date:
    day = _as_date(label)
    return dt.date(day.year, day.month, 1)


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
