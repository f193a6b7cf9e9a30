"""The two promises to the pelapor, judged one way everywhere: the first response (7 hari kerja
by default) and the closure (PP 43/2018: 30 hari kerja).

The inbox, the case page, the API and KPK's dashboard all ask this module, so the figure KPK
watches cannot say "overdue" where a case page says "answered on time". A first response is
the first status change or reply (``Case.first_response_at``, kept by :mod:`wbs.casework`);
it counts on its WIB day, the calendar the deadline is in.

* **pending**: no response yet, and the due day has not passed (due today is not late yet);
* **missing**: no response, the due day has passed and the case is still open: it is overdue
  (a closed case was answered by its closing; one without a recorded answer, from data older
  than the column, is not called overdue for ever);
* **met**: answered on or before the due day;
* **late**: answered, after the due day.

The closure (``Case.closure_due``; ``Case.closed_at``, kept by :mod:`wbs.casework`, is when the
case last entered a final status, on its WIB day too):

* **pending**: open, and the due day has not passed;
* **overdue**: open, and the due day has passed;
* **met** / **late**: closed on or before / after the due day;
* **unknown**: closed, but when is not recorded (data older than the column with no closing
  event in the log), or a case without a closure deadline: never counted either way.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import sqlalchemy as sa

from wbs.domain import OPEN_STATUSES
from wbs.models import Case
from wbs.workdays import WorkingCalendar, local_date


class FirstResponse(enum.StrEnum):
    PENDING = "pending"
    MISSING = "missing"
    MET = "met"
    LATE = "late"


def first_response(case: Case, today: dt.date) -> FirstResponse:
    if case.first_response_at is None:
        late = case.first_response_due < today and case.status in OPEN_STATUSES
        return FirstResponse.MISSING if late else FirstResponse.PENDING
    return FirstResponse.MET if first_response_met(case) else FirstResponse.LATE


def first_response_met(case: Case) -> bool:
    """Whether the pelapor had the first response on or before its due day (WIB): the
    :attr:`FirstResponse.MET` of :func:`first_response`, which does not depend on today, so
    the public statistics (:mod:`wbs.public_stats`) count exactly what the case page shows."""
    if case.first_response_at is None:
        return False
    return local_date(case.first_response_at) <= case.first_response_due


def record_first_response(case: Case, when: dt.datetime, calendar: WorkingCalendar) -> bool:
    """Record ``when`` as the case's first response if it has none yet; True if it did.

    With it, what the dashboards count of it (stored, like the due day, with the calendar in
    force when it is given): the days and working days since the day received, and whether it
    came by the due day (:attr:`FirstResponse.MET`, the judgement :func:`first_response` makes).
    """
    if case.first_response_at is not None:
        return False
    case.first_response_at = when
    fill_first_response_figures(case, calendar)
    return True


def fill_first_response_figures(case: Case, calendar: WorkingCalendar) -> None:
    """Set the stored figures of a case whose first response is known (also for migration
    0015's backfill)."""
    if case.first_response_at is None:
        return
    received = received_day(case.received_at)
    answered = local_date(case.first_response_at)
    case.first_response_days = (answered - received).days
    case.first_response_workdays = calendar.working_days_between(received, answered)
    case.first_response_in_time = first_response_met(case)


def backfill_first_response_figures(connection: sa.Connection, calendar: WorkingCalendar) -> int:
    """Fill the stored figures of every case answered before they were kept (migration 0015;
    the benchmark's bulk seed); return how many. Core statements only, in batches, so that it
    runs inside a migration on both dialects whatever the models look like later."""
    cases = sa.table(
        "cases",
        sa.column("id", sa.Integer),
        sa.column("received_at", sa.DateTime(timezone=True)),
        sa.column("first_response_at", sa.DateTime(timezone=True)),
        sa.column("first_response_due", sa.Date),
        sa.column("first_response_days", sa.Integer),
        sa.column("first_response_workdays", sa.Integer),
        sa.column("first_response_in_time", sa.Boolean),
    )
    rows = connection.execute(
        sa.select(cases.c.id, cases.c.received_at, cases.c.first_response_at,
                  cases.c.first_response_due)
        .where(cases.c.first_response_at.is_not(None), cases.c.first_response_workdays.is_(None))
    ).all()
    update = (
        sa.update(cases)
        .where(cases.c.id == sa.bindparam("case_id"))
        .values(
            first_response_days=sa.bindparam("days"),
            first_response_workdays=sa.bindparam("workdays"),
            first_response_in_time=sa.bindparam("in_time"),
        )
    )
    batch: list[dict[str, Any]] = []
    for case_id, received_at, answered_at, due in rows:
        received = received_day(received_at)
        if answered_at.tzinfo is None:
            answered_at = answered_at.replace(tzinfo=dt.UTC)  # SQLite keeps naive UTC
        answered = local_date(answered_at)
        batch.append({
            "case_id": case_id,
            "days": (answered - received).days,
            "workdays": calendar.working_days_between(received, answered),
            "in_time": answered <= due,
        })
        if len(batch) == 5000:
            connection.execute(update, batch)
            batch = []
    if batch:
        connection.execute(update, batch)
    return len(rows)


def received_day(value: dt.datetime) -> dt.date:
    """The WIB date a day label (``received_at``) stands for: its UTC date, never converted."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.date()


def first_response_overdue(today: dt.date) -> Any:
    """The SQL condition for :attr:`FirstResponse.MISSING`: for filters and counts."""
    return sa.and_(
        Case.first_response_at.is_(None),
        Case.first_response_due < today,
        Case.status.in_(OPEN_STATUSES),
    )


class Closure(enum.StrEnum):
    PENDING = "pending"
    OVERDUE = "overdue"
    MET = "met"
    LATE = "late"
    UNKNOWN = "unknown"


def closure(case: Case, today: dt.date) -> Closure:
    if case.closure_due is None:
        return Closure.UNKNOWN
    if case.status in OPEN_STATUSES:
        return Closure.OVERDUE if case.closure_due < today else Closure.PENDING
    if case.closed_at is None:
        return Closure.UNKNOWN
    closed = local_date(case.closed_at)
    return Closure.MET if closed <= case.closure_due else Closure.LATE


def closure_overdue(today: dt.date) -> Any:
    """The SQL condition for :attr:`Closure.OVERDUE`: for filters and counts."""
    return sa.and_(Case.closure_due < today, Case.status.in_(OPEN_STATUSES))


def first_response_due_between(first: dt.date, last: dt.date) -> Any:
    """The SQL condition for an open case still owing its first response (:attr:`PENDING`)
    due on a day from ``first`` to ``last``: what an alert calls "due soon"."""
    return sa.and_(
        Case.first_response_at.is_(None),
        Case.first_response_due >= first,
        Case.first_response_due <= last,
        Case.status.in_(OPEN_STATUSES),
    )


def closure_due_between(first: dt.date, last: dt.date) -> Any:
    """The SQL condition for an open case (:attr:`Closure.PENDING`) whose closure is due on a
    day from ``first`` to ``last``."""
    return sa.and_(
        Case.closure_due >= first,
        Case.closure_due <= last,
        Case.status.in_(OPEN_STATUSES),
    )
