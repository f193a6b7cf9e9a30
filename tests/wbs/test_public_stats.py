"""The public statistics (wbs.public_stats), on both databases: the figures agree with a count
done by hand over random cases, small figures are never given, another tenant's cases never
count, and the figures are computed once per WIB day.

The hand count below is written from the definitions, not from the module: quarters as
``year * 4 + quarter`` indexes, WIB dates with zoneinfo, due days from the working calendar
(weekends, national holidays, cuti bersama, an extra day off from configuration).
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine
from sqlalchemy.orm import Session

from wbs.deadlines import FirstResponse, first_response, first_response_met
from wbs.domain import CaseStatus, TenantKind
from wbs.models import Case, Source, Tenant
from wbs.public_stats import (
    MAX_QUARTERS,
    SUPPRESS_BELOW,
    Cell,
    DailyCache,
    PublicStatistics,
    Quarter,
    public_statistics,
)
from wbs.tenancy import TenantScope
from wbs.tenants import create_tenant
from wbs.workdays import WorkingCalendar

WIB = ZoneInfo("Asia/Jakarta")
UTC = dt.UTC
# A Monday just after a quarter ended: reports of late September are due in October, so some
# are answered on time *today* (counted from tomorrow only).
TODAY = dt.date(2026, 10, 5)
# A day off by SKB that the holidays package may not know: configuration adds it.
EXTRA_DAY_OFF = dt.date(2025, 12, 26)
CALENDAR = WorkingCalendar([EXTRA_DAY_OFF])
# Days around which working days and calendar days part ways the most.
HOLIDAY_SEASONS = [
    dt.date(2025, 3, 27),  # Nyepi and Idul Fitri 1446 H with its cuti bersama
    dt.date(2025, 6, 5),  # Idul Adha
    dt.date(2025, 12, 22),  # Christmas, the extra day off, New Year
    dt.date(2026, 3, 16),  # Nyepi and Idul Fitri 1447 H
    dt.date(2026, 9, 24),  # the end of the last ended quarter
]
FINAL = (CaseStatus.DIARSIPKAN, CaseStatus.SELESAI)


def _wib(day: dt.date, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=WIB).astimezone(UTC)


def _source(scope: TenantScope) -> Source:
    source = Source(
        id=secrets.token_hex(32),
        reply_fingerprint="D" * 40,
        reply_public_key="public",
        reply_secret_key="locked",
    )
    scope.add(source)
    return source


def _case(
    scope: TenantScope,
    received: dt.date,
    *,
    answered: dt.datetime | None = None,
    status: CaseStatus = CaseStatus.BARU,
    closed: dt.datetime | None = None,
    source: Source | None = None,
) -> Case:
    case = Case(
        source=source or _source(scope),
        registration_number=f"{scope.tenant.slug}/{secrets.token_hex(8)}",
        category="pemerasan",
        status=status,
        # What intake stores: the WIB day of arrival (the column keeps no more).
        received_at=_wib(received, 9),
        first_response_due=CALENDAR.add_working_days(received, scope.tenant.first_response_days),
        closure_due=CALENDAR.add_working_days(received, 30),
        first_response_at=answered,
        closed_at=closed,
    )
    scope.add(case)
    return case


def _tenant(session: Session, slug: str) -> Tenant:
    made = create_tenant(session, slug=slug, name=slug, kind=TenantKind.PEMERINTAH_KABUPATEN)
    session.flush()
    return made


def _random_moment(rng: random.Random, first: dt.date, last: dt.date) -> dt.datetime:
    """A moment on a WIB day from ``first`` to ``last``, at a random minute of that day."""
    day = first + dt.timedelta(days=rng.randint(0, (last - first).days))
    return _wib(day, rng.randint(0, 23), rng.randint(0, 59))


def _random_case(scope: TenantScope, rng: random.Random, source: Source) -> None:
    if rng.random() < 0.3:
        received = rng.choice(HOLIDAY_SEASONS) + dt.timedelta(days=rng.randint(0, 12))
    else:
        received = dt.date(2024, 5, 1) + dt.timedelta(days=rng.randint(0, 887))
    received = min(received, TODAY)
    due = CALENDAR.add_working_days(received, scope.tenant.first_response_days)
    kind = rng.choice(["missing", "on time", "late", "due 23:59", "due+1 00:00", "today"])
    answered: dt.datetime | None = {
        "missing": None,
        "on time": _random_moment(rng, received, due),
        "late": _random_moment(rng, due + dt.timedelta(days=1), due + dt.timedelta(days=40)),
        "due 23:59": _wib(due, 23, 59),  # 16:59 UTC: in time
        "due+1 00:00": _wib(due + dt.timedelta(days=1)),  # 17:00 UTC the due day: late
        "today": _wib(TODAY, 8, 30),
    }[kind]
    if answered is not None and answered.astimezone(WIB).date() > TODAY:
        answered = None  # nobody answers in the future
    status = rng.choice(list(CaseStatus))
    closed = None
    if status in FINAL and rng.random() < 0.9:
        # Closed some day after it arrived, today included; else older data without the time.
        closed = _random_moment(rng, received, TODAY)
        if rng.random() < 0.15:
            closed = _wib(TODAY, 10)
    _case(scope, received, answered=answered, status=status, closed=closed, source=source)


def _by_hand(cases: list[Case], today: dt.date) -> list[tuple[int | None, ...]]:
    """The published rows, counted from the definitions: one row per ended quarter, newest
    first, at most MAX_QUARTERS and none before the first report; small counts hidden."""

    def index(day: dt.date) -> int:
        return day.year * 4 + (day.month - 1) // 3

    def wib_date(moment: dt.datetime) -> dt.date:
        return moment.astimezone(WIB).date()

    def shown(n: int) -> int | None:
        return n if n >= SUPPRESS_BELOW else None

    if not cases:
        return []
    received_days = [case.received_at.astimezone(UTC).date() for case in cases]
    last = index(today) - 1
    oldest = max(last - MAX_QUARTERS + 1, min(index(day) for day in received_days))
    rows = []
    for q in range(last, oldest - 1, -1):
        received = answered = closed = 0
        for case, day in zip(cases, received_days, strict=True):
            if index(day) != q:
                continue
            received += 1
            due = CALENDAR.add_working_days(day, 7)
            at = case.first_response_at
            if at is not None and wib_date(at) <= due and wib_date(at) < today:
                answered += 1
            closed_at = case.closed_at
            if case.status in FINAL and (closed_at is None or wib_date(closed_at) < today):
                closed += 1
        rows.append((q // 4, q % 4 + 1, shown(received), shown(answered), shown(closed)))
    return rows


def _rows(stats: PublicStatistics) -> list[tuple[int | None, ...]]:
    return [
        (row.quarter.year, row.quarter.number, row.received.count, row.answered_in_time.count,
         row.closed.count)
        for row in stats.quarters
    ]


# --- the figures -------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_figures_agree_with_a_count_by_hand(session: Session, seed: int) -> None:
    rng = random.Random(seed)
    own, other = _tenant(session, "pemkab-a"), _tenant(session, "pemkab-b")
    scopes = {own.id: TenantScope(session, own), other.id: TenantScope(session, other)}
    for scope in scopes.values():
        source = _source(scope)
        for _ in range(rng.randint(150, 250)):
            _random_case(scope, rng, source)
    session.commit()
    session.expire_all()

    for tenant_id, scope in scopes.items():
        cases = list(session.scalars(sa.select(Case).where(Case.tenant_id == tenant_id)))
        stats = public_statistics(scope, TODAY)
        expected = _by_hand(cases, TODAY)
        assert _rows(stats) == expected
        assert len(expected) == MAX_QUARTERS  # the world spans more than two years
        # The world is rich enough to test something: hidden and shown cells, and answers
        # given today that count only from tomorrow.
        cells = [cell for row in expected for cell in row[2:]]
        assert None in cells and any(cell is not None for cell in cells)
        tomorrow = _by_hand(cases, TODAY + dt.timedelta(days=1))
        assert _rows(public_statistics(scope, TODAY + dt.timedelta(days=1))) == tomorrow


def test_the_public_count_is_the_case_pages_judgement(session: Session) -> None:
    # One rule everywhere: what the statistics count as "on time" is FirstResponse.MET.
    tenant = _tenant(session, "pemkab-a")
    scope = TenantScope(session, tenant)
    received = dt.date(2026, 12, 24)  # Christmas Eve: cuti bersama, then Christmas, a weekend
    due = CALENDAR.add_working_days(received, 7)
    for answered in (None, _wib(due, 23, 59), _wib(due + dt.timedelta(days=1))):
        case = _case(scope, received, answered=answered)
        judged = first_response(case, due + dt.timedelta(days=30))
        assert first_response_met(case) == (judged == FirstResponse.MET)
    assert first_response_met(_case(scope, received, answered=_wib(due, 23, 59)))
    midnight = _wib(due + dt.timedelta(days=1))  # 17:00 UTC on the due day
    assert not first_response_met(_case(scope, received, answered=midnight))


@pytest.mark.parametrize(("count", "shown"), [(0, None), (4, None), (5, 5), (6, 6)])
def test_small_counts_are_never_published(session: Session, count: int, shown: int | None) -> None:
    tenant = _tenant(session, "pemkab-a")
    scope = TenantScope(session, tenant)
    _case(scope, dt.date(2026, 4, 1))  # the tenant's first report: Q2 is shown, with one case
    for _ in range(count):
        day = dt.date(2026, 7, 14)
        _case(scope, day, answered=_wib(day, 10), status=CaseStatus.SELESAI,
              closed=_wib(dt.date(2026, 8, 3)))
    session.commit()

    stats = public_statistics(scope, TODAY)
    q3, q2 = stats.quarters
    assert (q3.quarter, q2.quarter) == (Quarter(2026, 3), Quarter(2026, 2))
    assert q3.received == q3.answered_in_time == q3.closed == Cell(shown)
    assert q3.received.suppressed is (shown is None)
    assert q2.received == Cell(None)  # one report: never "1"


def test_another_tenants_cases_never_count(session: Session) -> None:
    own, other = _tenant(session, "pemkab-a"), _tenant(session, "pemkab-b")
    own_scope, other_scope = TenantScope(session, own), TenantScope(session, other)
    day = dt.date(2026, 8, 12)
    for _ in range(4):
        _case(own_scope, day, answered=_wib(day, 11))
    for _ in range(20):
        _case(other_scope, day, answered=_wib(day, 11), status=CaseStatus.SELESAI,
              closed=_wib(day, 12))
    # The other tenant's earlier reports do not make the own page start earlier either.
    _case(other_scope, dt.date(2025, 1, 6))
    session.commit()

    (own_q3,) = public_statistics(own_scope, TODAY).quarters
    assert own_q3.quarter == Quarter(2026, 3)
    assert own_q3.received == own_q3.answered_in_time == own_q3.closed == Cell(None)
    other_rows = public_statistics(other_scope, TODAY).quarters
    assert other_rows[0].received == Cell(20) and other_rows[-1].quarter == Quarter(2025, 1)


def test_only_ended_quarters_are_published(session: Session) -> None:
    tenant = _tenant(session, "pemkab-a")
    scope = TenantScope(session, tenant)
    for _ in range(9):
        _case(scope, dt.date(2026, 10, 1))  # this quarter: nobody sees it yet
    session.commit()
    assert public_statistics(scope, TODAY) == PublicStatistics(TODAY, ())
    next_quarter = public_statistics(scope, dt.date(2027, 1, 1))
    assert [(r.quarter, r.received) for r in next_quarter.quarters] == [
        (Quarter(2026, 4), Cell(9))
    ]


def test_a_tenant_without_reports_has_no_rows(session: Session) -> None:
    tenant = _tenant(session, "pemkab-a")
    assert public_statistics(TenantScope(session, tenant), TODAY).quarters == ()


# --- once a day --------------------------------------------------------------------------------


@dataclass
class Counting:
    calls: int = 0

    def __call__(self, scope: TenantScope, today: dt.date) -> PublicStatistics:
        self.calls += 1
        return public_statistics(scope, today)


@pytest.mark.postgres
def test_figures_are_computed_once_a_wib_day_and_refresh_at_17_utc(session: Session) -> None:
    tenant, other = _tenant(session, "pemkab-a"), _tenant(session, "pemkab-b")
    scope, other_scope = TenantScope(session, tenant), TenantScope(session, other)
    for _ in range(5):
        _case(scope, dt.date(2026, 9, 7), answered=_wib(dt.date(2026, 9, 8), 9))
    for _ in range(6):
        _case(scope, dt.date(2026, 11, 9))  # Q4: published from 1 January (WIB)
        _case(other_scope, dt.date(2026, 8, 3))
    session.commit()
    counting = Counting()
    cache = DailyCache(counting)

    with time_machine.travel(dt.datetime(2026, 12, 31, 2, 0, tzinfo=UTC), tick=False) as clock:
        first = cache.current(scope)
        assert first.today == dt.date(2026, 12, 31)
        assert _rows(first) == [(2026, 3, 5, 5, None)]
        assert _rows(cache.current(other_scope)) == [(2026, 3, 6, None, None)]
        assert counting.calls == 2  # once for each tenant

        # Five more reports of the third quarter appear in the database (say, typed in by an
        # operator): today's page does not move, though a fresh count would.
        for _ in range(5):
            _case(scope, dt.date(2026, 9, 21))
        session.commit()
        assert _rows(public_statistics(scope, dt.date(2026, 12, 31)))[0][2] == 10
        for moment in (dt.datetime(2026, 12, 31, 9, 0), dt.datetime(2026, 12, 31, 16, 59, 59)):
            clock.move_to(moment.replace(tzinfo=UTC))
            assert cache.current(scope) is first
        assert counting.calls == 2

        # 17:00 UTC is midnight in Jakarta: a new WIB day, a new year, a quarter ended.
        clock.move_to(dt.datetime(2026, 12, 31, 17, 0, tzinfo=UTC))
        fresh = cache.current(scope)
        assert counting.calls == 3
        assert fresh.today == dt.date(2027, 1, 1)
        assert _rows(fresh) == [(2026, 4, 6, None, None), (2026, 3, 10, 5, None)]
        clock.move_to(dt.datetime(2027, 1, 1, 16, 59, tzinfo=UTC))
        assert cache.current(scope) is fresh
        assert counting.calls == 3
