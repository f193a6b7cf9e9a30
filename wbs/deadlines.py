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
from wbs.workdays import local_date


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
