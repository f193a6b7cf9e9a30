"""KPK's inbox reads KPK's copy in two disjoint parts (wbs.tenancy.SharedScope.select_parts) so
that each is counted and sorted through an index: on SQLite and PostgreSQL, every page, count
and filter must equal the brute-force answer over the one rule (the hub's own cases and the
cases sent to KPK), with ties of the sort keys and a hub case sent to KPK (in both halves of
the rule, listed once)."""

from __future__ import annotations

import datetime as dt
import random
import secrets
from typing import Any, cast

import pytest
from sqlalchemy.orm import Session

from wbs import inbox as inbox_module
from wbs.context import Context
from wbs.deadlines import FirstResponse, first_response
from wbs.domain import CaseStatus, Role, TenantKind
from wbs.inbox import InboxFilters, inbox
from wbs.models import Case, Investigator, Source, Tenant, new_registration_number
from wbs.tenancy import SharedScope, TenantIsolationError, TenantScope
from wbs.tenants import create_tenant

TODAY = dt.date(2025, 6, 16)
UTC = dt.UTC


def _world(session: Session) -> tuple[Tenant, Investigator, list[Case]]:
    rng = random.Random(21)
    hub = create_tenant(session, slug="kpk", name="KPK", kind=TenantKind.HUB)
    others = [
        create_tenant(session, slug=f"t{n}", name=f"Instansi {n}", kind=TenantKind.LEMBAGA)
        for n in range(3)
    ]
    session.flush()
    monitor = Investigator(
        tenant_id=hub.id, username="pemantau", display_name="Pemantau",
        role=Role.PEMANTAU_KPK, password_hash="$argon2id$not-a-real-hash",
    )
    session.add(monitor)
    cases = []
    for _ in range(60):
        tenant = rng.choice([hub, *others])
        scope = TenantScope(session, tenant)
        # Few distinct days, so the sort keys tie often and the ids decide.
        received = dt.date(2025, 6, 1) + dt.timedelta(days=rng.randrange(0, 4))
        status = rng.choice(list(CaseStatus))
        case = Case(
            source=Source(
                id=secrets.token_hex(32), reply_fingerprint="D" * 40,
                reply_public_key="public", reply_secret_key="locked",
            ),
            registration_number=new_registration_number(session, tenant, 2025),
            category="gratifikasi",
            status=status,
            # The hub's own cases are sent to KPK now and then too: in both parts of the rule.
            sent_to_kpk=rng.random() < 0.5,
            received_at=dt.datetime.combine(received, dt.time(), UTC),
            first_response_due=received + dt.timedelta(days=rng.randrange(5, 8)),
            unread=rng.random() < 0.4,
            first_response_at=(
                dt.datetime.combine(received, dt.time(12), UTC) if rng.random() < 0.3 else None
            ),
        )
        scope.add(case)
        cases.append(case)
    session.commit()
    assert any(c.tenant_id == hub.id and c.sent_to_kpk for c in cases)
    assert any(c.tenant_id != hub.id and not c.sent_to_kpk for c in cases)
    return hub, monitor, cases


def _expected(cases: list[Case], hub: Tenant, filters: InboxFilters) -> list[Case]:
    readable = [c for c in cases if c.tenant_id == hub.id or c.sent_to_kpk]
    if filters.status is not None:
        readable = [c for c in readable if c.status == filters.status]
    if filters.unread:
        readable = [c for c in readable if c.unread]
    if filters.overdue:
        readable = [c for c in readable if first_response(c, TODAY) == FirstResponse.MISSING]
    if filters.sort == "received":
        return sorted(readable, key=lambda c: (c.received_at, c.id), reverse=True)
    return sorted(readable, key=lambda c: (c.first_response_due, c.id))


@pytest.mark.parametrize("sort", ["deadline", "received"])
def test_kpks_inbox_pages_equal_the_brute_force_order(
    session: Session, sort: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox_module, "PAGE_SIZE", 7)
    hub, monitor, cases = _world(session)
    # The instance is not read by the inbox; the context needs only the session and account.
    ctx = Context(cast(Any, None), session, hub, monitor)
    unread = sum(1 for c in cases if (c.tenant_id == hub.id or c.sent_to_kpk) and c.unread)
    for filters in [
        InboxFilters(sort=sort),
        InboxFilters(sort=sort, unread=True),
        InboxFilters(sort=sort, status=CaseStatus.BARU),
        InboxFilters(sort=sort, overdue=True),
    ]:
        expected = [c.id for c in _expected(cases, hub, filters)]
        assert expected, filters
        pages = -(-len(expected) // 7)
        seen: list[int] = []
        for number in range(1, pages + 2):  # and one past the last: it shows the last
            page = inbox(ctx, InboxFilters(**{**filters.__dict__, "page": number}), TODAY)
            assert (page.total, page.pages, page.unread) == (len(expected), pages, unread)
            assert page.page == min(number, pages)
            start = (page.page - 1) * 7
            assert [c.id for c in page.cases] == expected[start : start + 7], (filters, number)
            if number <= pages:
                seen += [c.id for c in page.cases]
        assert seen == expected


def test_the_shared_scopes_parts_are_disjoint_and_make_up_its_select(session: Session) -> None:
    hub, _, cases = _world(session)
    scope = SharedScope(session, hub)
    whole = set(session.scalars(scope.select(Case).with_only_columns(Case.id)))
    parts = [set(session.scalars(part.with_only_columns(Case.id)))
             for part in scope.select_parts(Case)]
    assert whole == {c.id for c in cases if c.tenant_id == hub.id or c.sent_to_kpk}
    assert set().union(*parts) == whole
    assert sum(len(part) for part in parts) == len(whole)
    with pytest.raises(TenantIsolationError):
        scope.select_parts(cast(Any, Source))
