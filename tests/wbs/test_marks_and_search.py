"""The team's marks and the search by registration number, below HTTP, on SQLite and
PostgreSQL: what is logged, what the inbox finds, and that neither crosses tenants."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from crypto.codenames import generate_codename
from tests.conftest import DemoInstance
from tests.support import wib_today
from wbs.casework import Refusal, parse_flag, set_flag
from wbs.context import Context
from wbs.domain import CaseFlag, CaseStatus, EventKind
from wbs.inbox import InboxFilters, inbox, number_query
from wbs.models import Case, Event, new_registration_number
from wbs.sources import register_source
from wbs.tenants import get_tenant


def _cases(demo: DemoInstance, slug: str, count: int) -> list[tuple[int, str]]:
    inst = demo.instance
    with inst.sessions() as session:
        tenant = get_tenant(session, slug)
        ctx = Context(inst, session, tenant)
        secrets = register_source(ctx, generate_codename())
        made = []
        for _ in range(count):
            case = Case(
                source_id=secrets.source_id,
                registration_number=new_registration_number(session, tenant, 2026),
                category="gratifikasi", status=CaseStatus.BARU,
                first_response_due=wib_today() + dt.timedelta(days=7),
            )
            ctx.scope.add(case)
            session.flush()
            made.append((case.id, case.registration_number))
        session.commit()
        return made


def _found(demo: DemoInstance, slug: str, **filters: object) -> list[str]:
    inst = demo.instance
    with inst.sessions() as session:
        ctx = Context(inst, session, get_tenant(session, slug))
        page = inbox(ctx, InboxFilters(**filters), wib_today())  # type: ignore[arg-type]
        return [case.registration_number for case in page.cases]


def test_number_query_keeps_what_numbers_are_made_of() -> None:
    assert number_query(" plt-pemprov-sumsel-2026-004817 ") == "PLT-PEMPROV-SUMSEL-2026-004817"
    assert number_query("0048 17") == "004817"
    assert number_query("%_'\"") is None
    assert number_query("x" * 500) == "X" * 80


def test_search_finds_whole_and_partial_numbers_within_the_tenant(
    demo_any_db: DemoInstance,
) -> None:
    (_, first), (_, second) = _cases(demo_any_db, "pemprov-sumsel", 2)
    (_, hubs) = _cases(demo_any_db, "kpk", 1)[0]
    assert _found(demo_any_db, "pemprov-sumsel", number=first) == [first]
    digits = second.rsplit("-", 1)[1]
    assert second in _found(demo_any_db, "pemprov-sumsel", number=digits)
    part = _found(demo_any_db, "pemprov-sumsel", number="PEMPROV-SUMSEL-2026")
    assert {first, second} <= set(part) and all("PEMPROV-SUMSEL-2026" in n for n in part)
    # Another tenant's number is not found, whole or in part.
    assert _found(demo_any_db, "pemprov-sumsel", number=hubs) == []
    assert _found(demo_any_db, "kpk", number=first) == []


def test_a_mark_is_set_once_logged_without_a_note_and_filtered(
    demo_any_db: DemoInstance,
) -> None:
    inst = demo_any_db.instance
    (case_id, number), (_, other) = _cases(demo_any_db, "pemprov-sumsel", 2)
    with inst.sessions() as session:
        ctx = Context(inst, session, get_tenant(session, "pemprov-sumsel"))
        case = ctx.scope.get(Case, case_id)
        assert case is not None
        assert set_flag(ctx, case, CaseFlag.STAR, True) is True
        assert set_flag(ctx, case, CaseFlag.STAR, True) is False  # already: nothing logged
        assert set_flag(ctx, case, CaseFlag.NEEDS_REPLY, True) is True
        assert set_flag(ctx, case, CaseFlag.STAR, False) is True
        events = session.execute(
            sa.select(Event.kind, Event.note).where(Event.case_id == case_id).order_by(Event.id)
        ).all()
    assert [tuple(row) for row in events] == [
        (EventKind.STARRED, None), (EventKind.NEEDS_REPLY_SET, None),
        (EventKind.UNSTARRED, None),
    ]
    assert _found(demo_any_db, "pemprov-sumsel", needs_reply=True) == [number]
    assert _found(demo_any_db, "pemprov-sumsel", starred=True) == []
    assert other not in _found(demo_any_db, "pemprov-sumsel", needs_reply=True)
    # The hub's own inbox knows nothing of another tenant's marks.
    assert _found(demo_any_db, "kpk", needs_reply=True) == []


def test_an_unknown_mark_is_refused() -> None:
    with pytest.raises(Refusal) as refused:
        parse_flag("merah")
    assert refused.value.code == "bad_flag"
    assert parse_flag("needs_reply") == CaseFlag.NEEDS_REPLY
