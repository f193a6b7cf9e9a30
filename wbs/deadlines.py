"""The first-response promise (7 hari kerja by default), judged one way everywhere.

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
    answered = local_date(case.first_response_at)
    return FirstResponse.MET if answered <= case.first_response_due else FirstResponse.LATE


def first_response_overdue(today: dt.date) -> Any:
    """The SQL condition for :attr:`FirstResponse.MISSING`: for filters and counts."""
    return sa.and_(
        Case.first_response_at.is_(None),
        Case.first_response_due < today,
        Case.status.in_(OPEN_STATUSES),
    )
