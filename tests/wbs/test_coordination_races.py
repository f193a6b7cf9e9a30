"""Who handles a case is decided by one conditional write, on SQLite as on PostgreSQL.

Two KPK accounts (two sessions) read the same shared case; the first takes it over and
commits; the second acts with its stale copy of the row (``linked_to_case_id`` still empty in
its memory), as a request that read the case just before the first committed would. A
``SELECT ... FOR UPDATE`` before an unconditional write let both commit on SQLite (the clause
does nothing there): one report, two handling cases. The claim refuses the second, and nothing
of it stays: no case, no file, no log entry. Likewise for two requests to forward and two
declines, and for a follow-up that arrives while a takeover copies the items.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tests.conftest import DemoInstance
from tests.journalist_iface.conftest import HUB, TENANT, Demo, make_account, make_report
from wbs import coordination, takeover
from wbs.casework import Refusal, change_status
from wbs.context import Context
from wbs.domain import CaseStatus, EventKind
from wbs.instance import Instance
from wbs.intake import Intake
from wbs.models import Case, Event, Investigator, Reply, Source, Submission
from wbs.tenants import get_tenant


@pytest.fixture
def demo(demo_any_db: DemoInstance) -> Iterator[Demo]:
    # The helpers of the interface tests read ``.inst`` only.
    yield cast("Demo", type("Shim", (), {"inst": demo_any_db.instance})())


def kpk(inst: Instance, session: Session, account_id: int) -> Context:
    return Context(inst, session, get_tenant(session, HUB), session.get(Investigator, account_id))


def own(inst: Instance, session: Session, account_id: int) -> Context:
    return Context(inst, session, get_tenant(session, TENANT),
                   session.get(Investigator, account_id))


def state(inst: Instance, case_id: int) -> tuple[Any, ...]:
    """Rows of every kind, the log, the files of the store, and the case's columns."""
    with inst.sessions() as session:
        counts = tuple(
            session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in (Case, Submission, Reply, Source, Event)
        )
        case = session.get_one(Case, case_id)
        columns = (case.status, case.linked_to_case_id, case.taken_over_at,
                   case.forward_requested_at)
    files = sorted(p.name for p in inst.store.root.rglob("*") if p.is_file())
    return counts, columns, files


def test_a_second_takeover_with_a_stale_case_is_refused_and_stores_nothing(demo: Demo) -> None:
    inst = demo.inst
    report = make_report(demo, TENANT, to_kpk=True, files=(b"bukti",))
    first, second = make_account(demo, HUB), make_account(demo, HUB)
    with inst.sessions() as one, inst.sessions() as two:
        ctx_one, ctx_two = kpk(inst, one, first.id), kpk(inst, two, second.id)
        case_one = ctx_one.shared().get(Case, report.case_id)
        case_two = ctx_two.shared().get(Case, report.case_id)
        assert case_one is not None and case_two is not None
        linked = takeover.take_over(ctx_one, case_one, "kewenangan_kpk")
        after_first = state(inst, report.case_id)
        assert after_first[1][1] == linked.id
        # The second session's row still says nobody handles the case elsewhere.
        assert case_two.linked_to_case_id is None
        with pytest.raises(Refusal) as refused:
            takeover.take_over(ctx_two, case_two, "berlarut")
        assert refused.value.code == "takeover_refused"
        assert refused.value.params["why"] == "handled_elsewhere"
    assert state(inst, report.case_id) == after_first
    with inst.sessions() as session:
        handlers = session.scalars(
            sa.select(Case.id).where(Case.linked_from_case_id == report.case_id)
        ).all()
        assert handlers == [linked.id]
        taken = session.scalar(sa.select(sa.func.count(Event.id)).where(
            Event.case_id == report.case_id, Event.kind == EventKind.TAKEN_OVER))
        assert taken == 2  # one entry on each side, of the first takeover only


def test_a_second_request_or_decline_with_a_stale_case_is_refused(demo: Demo) -> None:
    inst = demo.inst
    report = make_report(demo, TENANT, to_kpk=True)
    first, second = make_account(demo, HUB), make_account(demo, HUB)
    with inst.sessions() as one, inst.sessions() as two:
        ctx_one, ctx_two = kpk(inst, one, first.id), kpk(inst, two, second.id)
        case_one = ctx_one.shared().get(Case, report.case_id)
        case_two = ctx_two.shared().get(Case, report.case_id)
        assert case_one is not None and case_two is not None
        coordination.request_forward(ctx_one, case_one, "penyelenggara_negara")
        asked = state(inst, report.case_id)
        assert case_two.forward_requested_at is None
        with pytest.raises(Refusal) as refused:
            coordination.request_forward(ctx_two, case_two, "koordinasi")
        assert refused.value.code == "request_open"
    assert state(inst, report.case_id) == asked

    a_first, a_second = make_account(demo, TENANT), make_account(demo, TENANT)
    with inst.sessions() as one, inst.sessions() as two:
        ctx_one, ctx_two = own(inst, one, a_first.id), own(inst, two, a_second.id)
        case_one = ctx_one.scope.get(Case, report.case_id)
        case_two = ctx_two.scope.get(Case, report.case_id)
        assert case_one is not None and case_two is not None
        coordination.decline_request(ctx_one, case_one, "ditangani_sendiri")
        declined = state(inst, report.case_id)
        assert case_two.forward_requested_at is not None
        with pytest.raises(Refusal) as refused:
            coordination.decline_request(ctx_two, case_two, "sudah_selesai")
        assert refused.value.code == "no_request"
    assert state(inst, report.case_id) == declined
    with inst.sessions() as session:
        kinds = session.scalars(sa.select(Event.kind).where(
            Event.case_id == report.case_id,
            Event.kind.in_([EventKind.FORWARD_REQUESTED, EventKind.FORWARD_REQUEST_DECLINED]),
        )).all()
        assert sorted(kinds) == sorted([EventKind.FORWARD_REQUESTED] * 2
                                       + [EventKind.FORWARD_REQUEST_DECLINED] * 2)


def test_a_follow_up_arriving_while_a_takeover_copies_refuses_it(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    inst = demo.inst
    report = make_report(demo, TENANT, to_kpk=True, files=(b"bukti",))
    account = make_account(demo, HUB)
    checked = takeover._check_readable_by_kpk
    seen: dict[str, Any] = {}

    def then_a_follow_up(ctx: Context, items: list[Any]) -> None:
        # After the items were listed and checked, before anything is claimed: the pelapor
        # sends a follow-up (its own session, committed).
        checked(ctx, items)
        with inst.sessions() as session:
            owner = get_tenant(session, TENANT)
            case = session.get_one(Case, report.case_id)
            Intake(Context(inst, session, owner), report.secrets.source_id,
                   to_kpk=True).follow_up(case, "Tambahan: bukti transfer.")
        seen["before"] = state(inst, report.case_id)

    monkeypatch.setattr("wbs.takeover._check_readable_by_kpk", then_a_follow_up)
    with inst.sessions() as session:
        ctx = kpk(inst, session, account.id)
        case = ctx.shared().get(Case, report.case_id)
        assert case is not None
        with pytest.raises(Refusal) as refused:
            takeover.take_over(ctx, case, "kewenangan_kpk")
        assert refused.value.code == "takeover_items_changed"
    # The follow-up is kept at the origin, which still handles the case; no copy stayed.
    assert state(inst, report.case_id) == seen["before"]
    assert seen["before"][1][1] is None

    # Tried again, the takeover copies every item, the follow-up too.
    monkeypatch.setattr("wbs.takeover._check_readable_by_kpk", checked)
    with inst.sessions() as session:
        ctx = kpk(inst, session, account.id)
        case = ctx.shared().get(Case, report.case_id)
        assert case is not None
        linked = takeover.take_over(ctx, case, "kewenangan_kpk")
        copied = session.scalar(sa.select(sa.func.count(Submission.id)).where(
            Submission.case_id == linked.id))
        origin = session.scalar(sa.select(sa.func.count(Submission.id)).where(
            Submission.case_id == report.case_id))
        assert copied == origin == 3


def test_a_takeover_of_a_case_closed_meanwhile_is_refused(demo: Demo) -> None:
    """The origin closes the case after KPK read it: the takeover reads the committed status
    after its claim and refuses, rather than mark a closed case forwarded."""
    inst = demo.inst
    report = make_report(demo, TENANT, to_kpk=True)
    account, closer = make_account(demo, HUB), make_account(demo, TENANT)
    with inst.sessions() as one, inst.sessions() as two:
        ctx = kpk(inst, one, account.id)
        case = ctx.shared().get(Case, report.case_id)
        assert case is not None
        origin_ctx = own(inst, two, closer.id)
        mine = origin_ctx.scope.get(Case, report.case_id)
        assert mine is not None
        change_status(origin_ctx, mine, CaseStatus.DIARSIPKAN, "Bukan wewenang")
        closed = state(inst, report.case_id)
        assert case.status == CaseStatus.BARU  # KPK's copy of the row is stale
        with pytest.raises(Refusal) as refused:
            takeover.take_over(ctx, case, "kewenangan_kpk")
        assert refused.value.code == "takeover_refused"
        assert refused.value.params["why"] == "closed"
    assert state(inst, report.case_id) == closed
