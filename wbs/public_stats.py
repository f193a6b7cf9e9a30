"""Public statistics of one instansi's drop box, per quarter: reports received, answered within
the first-response promise, closed.

Published on the source interface (``/statistik``), to anyone, so every choice here is about
what the figures must not say:

* **No figure points at one pelapor.** A count under :data:`SUPPRESS_BELOW` is never given, not
  even inside the returned object (a template cannot leak what it never receives): it is
  "fewer than 5". A reporter who knows their report is in a quarter must not be able to read
  "1 received" and know that everyone who watches the page knows it too.
* **No figure dates a report.** Only quarters that have ended are published, so the number of
  reports received in a quarter is fixed before anyone sees it: watching the page day by day
  cannot tell on which day a report arrived. (The current quarter's count, growing by one
  overnight, would say exactly that.)
* **The figures change once a day at most, and say the same thing to every worker.** Answers
  and closures count from the day after they happen (the WIB day, as every deadline), so the
  figures are a function of the data and of today's date alone, not of the hour the page was
  first asked for. :class:`DailyCache` then computes them once per tenant and day: the page is
  the same all day, and the time it takes to serve says nothing either (a page computed on
  demand would take measurably longer, or shorter, as reports arrive; see the cache).

Every figure is about the reports *received* in the quarter (a cohort): of those, how many had
their first response on time (:func:`wbs.deadlines.first_response_met`, the judgement the case
page and KPK's dashboard use) and how many are closed (diarsipkan or selesai). Only the tenant's
own cases count: the query goes through its :class:`~wbs.tenancy.TenantScope`.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import load_only

from wbs.deadlines import first_response_met
from wbs.domain import FINAL_STATUSES
from wbs.models import Case, utcnow
from wbs.tenancy import TenantScope
from wbs.workdays import local_date

# Counts under this are not published ("< 5"). Five is the usual floor of official statistics
# for small cells; below it a figure can single out a person.
SUPPRESS_BELOW = 5
# How many ended quarters the page shows, newest first: two years.
MAX_QUARTERS = 8


@dataclass(frozen=True)
class Cell:
    """One published count: ``count`` is None when it is under :data:`SUPPRESS_BELOW`."""

    count: int | None

    @classmethod
    def of(cls, count: int) -> Cell:
        return cls(count if count >= SUPPRESS_BELOW else None)

    @property
    def suppressed(self) -> bool:
        return self.count is None


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    number: int  # 1 to 4

    @classmethod
    def of(cls, day: dt.date) -> Quarter:
        return cls(day.year, (day.month - 1) // 3 + 1)

    @property
    def start(self) -> dt.date:
        return dt.date(self.year, 3 * (self.number - 1) + 1, 1)

    @property
    def end(self) -> dt.date:
        """The quarter's last day."""
        return self.next().start - dt.timedelta(days=1)

    def next(self) -> Quarter:
        if self.number == 4:
            return Quarter(self.year + 1, 1)
        return Quarter(self.year, self.number + 1)

    def previous(self) -> Quarter:
        if self.number == 1:
            return Quarter(self.year - 1, 4)
        return Quarter(self.year, self.number - 1)


@dataclass(frozen=True)
class QuarterFigures:
    quarter: Quarter
    received: Cell
    answered_in_time: Cell
    closed: Cell


@dataclass(frozen=True)
class PublicStatistics:
    today: dt.date  # the WIB day they were computed for; they count up to the day before
    quarters: tuple[QuarterFigures, ...]  # ended quarters, newest first

    @property
    def counted_until(self) -> dt.date:
        return self.today - dt.timedelta(days=1)


def _day_label(day: dt.date) -> dt.datetime:
    # How a day is stored in the day-precision columns (wbs.models.round_to_day).
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _received_day(case: Case) -> dt.date:
    # received_at is a day label (midnight UTC of the WIB date): read it in UTC.
    return case.received_at.astimezone(dt.UTC).date()


def public_statistics(scope: TenantScope, today: dt.date) -> PublicStatistics:
    """The figures of ``scope``'s tenant as published on ``today`` (a WIB date). Uncached: the
    page asks :class:`DailyCache`."""
    last = Quarter.of(today).previous()
    first_day = scope.session.scalar(
        scope.restrict(
            sa.select(Case.received_at).order_by(Case.received_at).limit(1), Case
        )
    )
    if first_day is None:
        return PublicStatistics(today, ())
    first = Quarter.of(first_day.astimezone(dt.UTC).date())
    if first > last:
        return PublicStatistics(today, ())
    oldest = last
    for _ in range(MAX_QUARTERS - 1):
        oldest = oldest.previous()
    # From the quarter of the tenant's first report: no run of empty years before it.
    oldest = max(oldest, first)
    cases = scope.session.scalars(
        scope.select(Case)
        .where(
            Case.received_at >= _day_label(oldest.start),
            Case.received_at < _day_label(last.next().start),
        )
        .options(
            load_only(
                Case.received_at,
                Case.status,
                Case.first_response_due,
                Case.first_response_at,
                Case.closed_at,
            )
        )
    )
    received: dict[Quarter, int] = {}
    answered: dict[Quarter, int] = {}
    closed: dict[Quarter, int] = {}
    for case in cases:
        quarter = Quarter.of(_received_day(case))
        received[quarter] = received.get(quarter, 0) + 1
        # Today's answers and closures count from tomorrow: see the module's docstring.
        if first_response_met(case) and _before(case.first_response_at, today):
            answered[quarter] = answered.get(quarter, 0) + 1
        if case.status in FINAL_STATUSES and (
            case.closed_at is None or _before(case.closed_at, today)
        ):
            # No closing time: data older than the column, closed long before today.
            closed[quarter] = closed.get(quarter, 0) + 1
    quarters = []
    quarter = last
    while quarter >= oldest:
        quarters.append(
            QuarterFigures(
                quarter,
                received=Cell.of(received.get(quarter, 0)),
                answered_in_time=Cell.of(answered.get(quarter, 0)),
                closed=Cell.of(closed.get(quarter, 0)),
            )
        )
        quarter = quarter.previous()
    return PublicStatistics(today, tuple(quarters))


def _before(moment: dt.datetime | None, today: dt.date) -> bool:
    return moment is not None and local_date(moment) < today


Compute = Callable[[TenantScope, dt.date], PublicStatistics]


class DailyCache:
    """The figures of each tenant, computed at most once per WIB day (per process).

    Why a cache, besides sparing the database a full pass per visit: the page is public and
    anyone may load it as often as they like. Computed on every request, its response time
    would grow with the tenant's cases, and a watcher timing it could notice that a report
    came in (or that an investigator just acted) before any figure moves. Served from memory,
    it costs the same every time, all day; the figures themselves only change from one day to
    the next anyway (:func:`public_statistics`). One entry per tenant, replaced the next day.
    """

    def __init__(self, compute: Compute = public_statistics) -> None:
        self._compute = compute
        self._lock = threading.Lock()
        self._entries: dict[int, PublicStatistics] = {}

    def current(self, scope: TenantScope) -> PublicStatistics:
        """The figures for today, the WIB date (after 17:00 UTC it is already tomorrow)."""
        return self.get(scope, local_date(utcnow()))

    def get(self, scope: TenantScope, today: dt.date) -> PublicStatistics:
        # One lock for all tenants: a computation is rare (once a day each), and holding the
        # lock while computing keeps it to once even when threads ask at the same moment.
        with self._lock:
            found = self._entries.get(scope.tenant_id)
            if found is None or found.today != today:
                found = self._entries[scope.tenant_id] = self._compute(scope, today)
            return found
