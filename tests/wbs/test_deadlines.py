"""The first-response promise at its boundaries: due today, answered on the due day (late in the
WIB evening, already the next day in UTC's terms or not), the day after, never."""

from __future__ import annotations

import datetime as dt

import pytest

from wbs.deadlines import Closure, FirstResponse, closure, first_response
from wbs.domain import CaseStatus
from wbs.models import Case

DUE = dt.date(2026, 12, 10)  # a Thursday


def _case(answered: dt.datetime | None, status: CaseStatus = CaseStatus.BARU) -> Case:
    return Case(first_response_due=DUE, first_response_at=answered, status=status)


@pytest.mark.parametrize(
    ("answered", "today", "expected"),
    [
        (None, DUE - dt.timedelta(days=1), FirstResponse.PENDING),
        (None, DUE, FirstResponse.PENDING),  # due today is not late yet
        (None, DUE + dt.timedelta(days=1), FirstResponse.MISSING),
        # 23:59 WIB on the due day is 16:59 UTC: in time.
        (dt.datetime(2026, 12, 10, 16, 59, tzinfo=dt.UTC), DUE + dt.timedelta(days=5),
         FirstResponse.MET),
        # 00:30 WIB the day after is still 10 December in UTC: late, all the same.
        (dt.datetime(2026, 12, 10, 17, 30, tzinfo=dt.UTC), DUE + dt.timedelta(days=5),
         FirstResponse.LATE),
        # Answered early, judged long after: still in time.
        (dt.datetime(2026, 12, 3, 2, 0, tzinfo=dt.UTC), DUE + dt.timedelta(days=60),
         FirstResponse.MET),
    ],
)
def test_first_response_boundaries(
    answered: dt.datetime | None, today: dt.date, expected: FirstResponse
) -> None:
    assert first_response(_case(answered), today) == expected


def test_a_closed_case_without_a_recorded_answer_is_not_overdue() -> None:
    # Older data may lack the column's value; a closed case is not called overdue for ever.
    closed = _case(None, CaseStatus.SELESAI)
    assert first_response(closed, DUE + dt.timedelta(days=30)) == FirstResponse.PENDING


CLOSURE_DUE = dt.date(2027, 1, 21)  # a Thursday


@pytest.mark.parametrize(
    ("status", "closed", "today", "expected"),
    [
        (CaseStatus.TELAAH, None, CLOSURE_DUE - dt.timedelta(days=1), Closure.PENDING),
        (CaseStatus.TELAAH, None, CLOSURE_DUE, Closure.PENDING),  # due today is not late yet
        (CaseStatus.DITERUSKAN, None, CLOSURE_DUE + dt.timedelta(days=1), Closure.OVERDUE),
        # 23:59 WIB on the due day is 16:59 UTC: in time.
        (CaseStatus.SELESAI, dt.datetime(2027, 1, 21, 16, 59, tzinfo=dt.UTC),
         CLOSURE_DUE + dt.timedelta(days=9), Closure.MET),
        # 00:30 WIB the day after is still 21 January in UTC: late.
        (CaseStatus.DIARSIPKAN, dt.datetime(2027, 1, 21, 17, 30, tzinfo=dt.UTC),
         CLOSURE_DUE + dt.timedelta(days=9), Closure.LATE),
        # Closed, but when is not recorded: counted neither way.
        (CaseStatus.SELESAI, None, CLOSURE_DUE + dt.timedelta(days=9), Closure.UNKNOWN),
    ],
)
def test_closure_boundaries(
    status: CaseStatus, closed: dt.datetime | None, today: dt.date, expected: Closure
) -> None:
    case = Case(first_response_due=DUE, closure_due=CLOSURE_DUE, status=status, closed_at=closed)
    assert closure(case, today) == expected


def test_a_case_without_a_closure_deadline_is_never_overdue() -> None:
    case = Case(first_response_due=DUE, closure_due=None, status=CaseStatus.TELAAH)
    assert closure(case, DUE + dt.timedelta(days=400)) == Closure.UNKNOWN
