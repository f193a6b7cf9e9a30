"""Monitoring figures: KPK's dashboard across tenants and one tenant's summary, on both databases.

A small world with answers worked out by hand (today is Monday 16 June 2025):

======  ======  ===========  ==========  =====================  =========  ===========  ========
case    tenant  status       category    MCP area               received   first due    closure
======  ======  ===========  ==========  =====================  =========  ===========  ========
a1      A       baru         pemerasan   pengadaan_barang_jasa  2 Jun      11 Jun late  14 Jul
a2      A       verifikasi   pemerasan   perizinan              2 Jun      11 Jun late  10 Jun late
a3      A       selesai      gratifikasi pengadaan_barang_jasa  1 May      12 May       12 Jun
b1      B       telaah       suap        (none)                 10 Jun     19 Jun       (none)
b2      B       diarsipkan   pemerasan   pengadaan_barang_jasa  1 Jun      5 Jun        10 Jul
k1      KPK     baru         suap        perizinan              16 Jun     25 Jun       28 Jul
======  ======  ===========  ==========  =====================  =========  ===========  ========

First responses (earliest status_changed or reply_added): a2 on 4 Jun (2 days; 2 hari kerja),
a3 on 5 May (4 days; 2 hari kerja: 1 May is a holiday, 3-4 May a weekend), b1 on 11 Jun
(1 day; 1), b2 on 8 Jun (7 days; 4: 6 Jun Idul Adha, 7-8 Jun a weekend). Calendar days
1, 2, 4, 7: median 3; working days 1, 2, 2, 4: median 2.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import statistics
from collections import Counter
from dataclasses import dataclass, replace

import pytest
import sqlalchemy as sa
import time_machine
from sqlalchemy.orm import Session

from wbs import db
from wbs.casework import change_status
from wbs.context import Context
from wbs.deadlines import (
    Closure,
    FirstResponse,
    closure,
    fill_first_response_figures,
    first_response,
    record_first_response,
)
from wbs.domain import CaseStatus, Channel, EventKind, TenantKind
from wbs.instance import Instance, init_instance
from wbs.models import Case, Event, Source, Submission, Tenant, new_registration_number
from wbs.monitoring import (
    FIRST_RESPONSE_KINDS,
    Filters,
    Period,
    dashboard,
    province_dashboard,
    tenant_summary,
)
from wbs.tenancy import ProvinceScope, TenantIsolationError, TenantScope
from wbs.tenants import create_tenant
from wbs.workdays import WorkingCalendar, local_date

TODAY = dt.date(2025, 6, 16)
UTC = dt.UTC


def _at(day: str, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=UTC)


@dataclass
class World:
    session: Session
    hub: Tenant
    a: Tenant
    b: Tenant
    c: Tenant


def _case(
    session: Session,
    tenant: Tenant,
    status: CaseStatus,
    category: str,
    area: str | None,
    received: str,
    first_due: str,
    closure_due: str | None,
    events: list[tuple[EventKind, dt.datetime]],
    calendar: WorkingCalendar | None = None,
) -> Case:
    scope = TenantScope(session, tenant)
    source = Source(
        id=secrets.token_hex(32),
        reply_fingerprint="D" * 40,
        reply_public_key="public",
        reply_secret_key="locked",
    )
    case = Case(
        source=source,
        registration_number=new_registration_number(session, tenant, 2025),
        category=category,
        mcp_area=area,
        status=status,
        received_at=_at(received, 0),
        first_response_due=dt.date.fromisoformat(first_due),
        closure_due=dt.date.fromisoformat(closure_due) if closure_due else None,
        # What wbs.casework keeps (and migration 0005 fills from the log): the earliest answer.
        first_response_at=min(
            (when for kind, when in events if kind in FIRST_RESPONSE_KINDS), default=None
        ),
    )
    # And what wbs.deadlines.record_first_response stores with it (migration 0015 for old rows).
    fill_first_response_figures(case, calendar or WorkingCalendar())
    scope.add(case)
    session.flush()
    scope.add(Event(case_id=case.id, kind=EventKind.CASE_CREATED, created_at=_at(received, 0)))
    for kind, when in events:
        scope.add(Event(case_id=case.id, kind=kind, created_at=when))
    return case


@pytest.fixture
def world(session: Session) -> World:
    hub = create_tenant(session, slug="kpk", name="KPK", kind=TenantKind.HUB)
    a = create_tenant(
        session, slug="pemprov-a", name="Pemprov A", kind=TenantKind.PEMERINTAH_PROVINSI
    )
    b = create_tenant(session, slug="pemkot-b", name="Pemkot B", kind=TenantKind.PEMERINTAH_KOTA)
    c = create_tenant(session, slug="lembaga-c", name="Lembaga C", kind=TenantKind.LEMBAGA)
    changed, replied = EventKind.STATUS_CHANGED, EventKind.REPLY_ADDED
    rows = [
        (a, CaseStatus.BARU, "pemerasan", "pengadaan_barang_jasa", "2025-06-02", "2025-06-11",
         "2025-07-14",
         # Neither is a response: a message from the pelapor, an export.
         [(EventKind.SUBMISSION_ADDED, _at("2025-06-03", 0)),
          (EventKind.EXPORTED, _at("2025-06-04"))]),
        (a, CaseStatus.VERIFIKASI, "pemerasan", "perizinan", "2025-06-02", "2025-06-11",
         "2025-06-10", [(changed, _at("2025-06-04")), (replied, _at("2025-06-05"))]),
        (a, CaseStatus.SELESAI, "gratifikasi", "pengadaan_barang_jasa", "2025-05-01", "2025-05-12",
         "2025-06-12", [(changed, _at("2025-05-20")), (replied, _at("2025-05-05"))]),
        (b, CaseStatus.TELAAH, "suap_menyuap", None, "2025-06-10", "2025-06-19", None,
         # Assigning is not answering; 23:30 WIB is still the 11th (WIB days throughout).
         [(EventKind.ASSIGNED, _at("2025-06-10", 8)), (changed, _at("2025-06-11", 16, 30))]),
        (b, CaseStatus.DIARSIPKAN, "pemerasan", "pengadaan_barang_jasa", "2025-06-01", "2025-06-05",
         "2025-07-10", [(changed, _at("2025-06-08"))]),
        (hub, CaseStatus.BARU, "suap_menyuap", "perizinan", "2025-06-16", "2025-06-25",
         "2025-07-28", []),
    ]  # fmt: skip
    for row in rows:
        _case(session, *row)
    # A tenant-level entry of the log, with no case: never a response.
    TenantScope(session, a).add(Event(case_id=None, kind=EventKind.KEY_ADDED))
    session.commit()
    return World(session, hub, a, b, c)


def test_dashboard_counts_every_tenants_cases(world: World) -> None:
    board = dashboard(world.session, world.hub, today=TODAY)

    assert board.total == 6
    assert board.open == 4
    assert board.status_counts() == {
        CaseStatus.BARU: 2,
        CaseStatus.VERIFIKASI: 1,
        CaseStatus.KLARIFIKASI: 0,
        CaseStatus.TELAAH: 1,
        CaseStatus.DITERUSKAN: 0,
        CaseStatus.DIARSIPKAN: 1,
        CaseStatus.SELESAI: 1,
    }
    assert [row.status for row in board.by_status] == list(CaseStatus)
    assert [(row.code, row.count) for row in board.by_category] == [
        ("pemerasan", 3),
        ("suap_menyuap", 2),
        ("gratifikasi", 1),
    ]
    assert board.by_category[0].label == "Pemerasan"
    assert [(row.code, row.count) for row in board.by_mcp_area] == [
        ("pengadaan_barang_jasa", 3),
        ("perizinan", 2),
    ]
    assert board.by_mcp_area[0].label == "Pengadaan Barang dan Jasa"
    assert board.without_mcp_area == 1


def test_dashboard_overdue_counts_only_open_cases(world: World) -> None:
    board = dashboard(world.session, world.hub, today=TODAY)

    # a1 is late: never answered. a2 passed its date too but was answered in time (4 June, due
    # 11 June): not overdue, although still open (issue 11: the figure used to count it).
    # a3 and b2 passed their dates too, but are closed.
    assert board.overdue_first_response == 1
    assert board.overdue_closure == 1
    # On the due date itself a case is not late yet.
    on_the_day = dashboard(world.session, world.hub, today=dt.date(2025, 6, 11))
    assert on_the_day.overdue_first_response == 0


def test_dashboard_lines_per_tenant_include_tenants_without_cases(world: World) -> None:
    board = dashboard(world.session, world.hub, today=TODAY)

    lines = {line.slug: line for line in board.tenants}
    assert [line.name for line in board.tenants] == ["KPK", "Lembaga C", "Pemkot B", "Pemprov A"]
    assert (lines["pemprov-a"].total, lines["pemprov-a"].open) == (3, 2)
    assert lines["pemprov-a"].overdue_first_response == 1
    assert lines["pemprov-a"].overdue_closure == 1
    assert (lines["pemkot-b"].total, lines["pemkot-b"].open) == (2, 1)
    assert lines["pemkot-b"].overdue_first_response == 0
    assert (lines["lembaga-c"].total, lines["lembaga-c"].open) == (0, 0)
    assert (lines["kpk"].total, lines["kpk"].open) == (1, 1)
    assert lines["kpk"].kind == TenantKind.HUB


def test_median_time_to_first_response(world: World) -> None:
    board = dashboard(world.session, world.hub, today=TODAY)

    assert board.responded == 4
    assert board.median_first_response_days == 3.0
    assert board.median_first_response_working_days == 2.0


def test_median_in_working_days_follows_the_calendar_of_the_response(
    world: World, make_config, database_url: str  # type: ignore[no-untyped-def]
) -> None:
    board = dashboard(world.session, world.hub, today=TODAY)
    assert board.median_first_response_days == 3.0
    assert board.median_first_response_working_days == 2.0

    # An instance with a configured cuti bersama on 17 June: a case received on the 16th and
    # answered on the 18th through casework took 1 working day, not 2 (1, 1, 2, 2, 4).
    config = make_config(database_url=database_url, cuti_bersama="2025-06-17")
    init_instance(config)
    inst = Instance.open(config)
    late = _case(world.session, world.c, CaseStatus.BARU, "pemerasan", None, "2025-06-16",
                 "2025-06-26", None, [])
    world.session.commit()
    with time_machine.travel(_at("2025-06-18", 3), tick=False):
        change_status(Context(inst, world.session, world.c), late, CaseStatus.VERIFIKASI)
    assert (late.first_response_days, late.first_response_workdays,
            late.first_response_in_time) == (2, 1, True)
    board = dashboard(world.session, world.hub, today=TODAY)
    assert board.median_first_response_working_days == 2.0
    assert {line.slug: line.median_first_response_working_days
            for line in board.tenants}["lembaga-c"] == 1.0
    inst.close()


def test_first_response_day_is_the_wib_day(world: World) -> None:
    # Received on 10 June; answered at 00:30 WIB on 11 June, which is still 10 June in UTC.
    _case(world.session, world.c, CaseStatus.VERIFIKASI, "pemerasan", None, "2025-06-10",
          "2025-06-19", None, [(EventKind.STATUS_CHANGED, _at("2025-06-10", 17, 30))])
    world.session.commit()
    board = dashboard(world.session, world.hub, today=TODAY, tenant_id=world.c.id)
    assert board.responded == 1
    assert board.median_first_response_days == 1.0


def test_dashboard_for_one_tenant(world: World) -> None:
    board = dashboard(world.session, world.hub, today=TODAY, tenant_id=world.a.id)

    assert board.tenant_id == world.a.id
    assert board.total == 3
    assert board.status_counts()[CaseStatus.BARU] == 1
    assert board.status_counts()[CaseStatus.SELESAI] == 1
    assert board.category_counts() == {"pemerasan": 2, "gratifikasi": 1}
    assert board.mcp_area_counts() == {"pengadaan_barang_jasa": 2, "perizinan": 1}
    assert [line.slug for line in board.tenants] == ["pemprov-a"]
    assert board.overdue_first_response == 1
    assert board.median_first_response_days == 3.0  # 2 and 4

    board = dashboard(world.session, world.hub, today=TODAY, tenant_id=world.b.id)
    assert board.total == 2
    assert board.median_first_response_days == 4.0  # 1 and 7
    assert board.without_mcp_area == 1

    board = dashboard(world.session, world.hub, today=TODAY, tenant_id=world.c.id)
    assert board.total == 0
    assert board.responded == 0
    assert board.median_first_response_days is None
    assert [(line.slug, line.total) for line in board.tenants] == [("lembaga-c", 0)]


def test_only_the_hub_may_see_the_dashboard(world: World) -> None:
    with pytest.raises(TenantIsolationError):
        dashboard(world.session, world.a, today=TODAY)


def test_tenant_summary_sees_only_the_own_cases(world: World) -> None:
    summary = tenant_summary(world.session, world.b, TODAY)

    assert summary.tenant_id == world.b.id
    assert summary.total == 2
    assert summary.open == 1
    assert summary.status_counts()[CaseStatus.TELAAH] == 1
    assert summary.status_counts()[CaseStatus.BARU] == 0
    assert summary.category_counts() == {"pemerasan": 1, "suap_menyuap": 1}
    assert [(line.slug, line.total) for line in summary.tenants] == [("pemkot-b", 2)]
    assert summary.overdue_first_response == 0
    assert summary.median_first_response_days == 4.0
    assert summary.median_first_response_working_days == 2.5  # 1 and 4

    # The hub's own summary is its own cases only, not everyone's.
    assert tenant_summary(world.session, world.hub, TODAY).total == 1


def test_figures_follow_new_events(world: World) -> None:
    # Nothing is cached: a first response set after one view shows in the next.
    assert dashboard(world.session, world.hub, today=TODAY).responded == 4
    a1 = world.session.scalars(
        TenantScope(world.session, world.a).select(Case).where(Case.status == CaseStatus.BARU)
    ).one()
    TenantScope(world.session, world.a).add(
        Event(case_id=a1.id, kind=EventKind.REPLY_ADDED, created_at=_at("2025-06-12"))
    )
    assert record_first_response(a1, _at("2025-06-12"), WorkingCalendar())
    assert not record_first_response(a1, _at("2025-06-13"), WorkingCalendar())  # once only
    world.session.commit()

    board = dashboard(world.session, world.hub, today=TODAY)
    assert board.responded == 5
    assert board.median_first_response_days == 4.0  # 1, 2, 4, 7, 10
    assert tenant_summary(world.session, world.a, TODAY).median_first_response_days == 4.0


def test_change_status_sets_the_first_response_once(
    world: World, make_config, database_url: str  # type: ignore[no-untyped-def]
) -> None:
    # Casework runs with a real instance: the same database, its own store and keyring.
    config = make_config(database_url=database_url)
    init_instance(config)
    inst = Instance.open(config)
    ctx = Context(inst, world.session, world.a)
    a1 = world.session.scalars(
        TenantScope(world.session, world.a).select(Case).where(Case.status == CaseStatus.BARU)
    ).one()
    assert a1.first_response_at is None
    event = change_status(ctx, a1, CaseStatus.VERIFIKASI)
    world.session.refresh(a1)
    assert a1.first_response_at is not None
    assert a1.first_response_at == event.created_at
    assert a1.first_response_at.tzinfo is not None
    first = a1.first_response_at
    change_status(ctx, a1, CaseStatus.TELAAH)
    world.session.refresh(a1)
    assert a1.first_response_at == first
    assert dashboard(world.session, world.hub, today=TODAY).responded == 5
    inst.close()


def test_migration_0005_fills_the_column_from_the_log(world: World, database_url: str) -> None:
    def stored() -> dict[int, object]:
        rows = world.session.execute(sa.text("SELECT id, first_response_at FROM cases"))
        found = {case_id: value for case_id, value in rows}
        world.session.rollback()
        return found

    before = stored()
    board = dashboard(world.session, world.hub, today=TODAY)
    assert sum(value is not None for value in before.values()) == 4
    world.session.close()

    db.downgrade(database_url, "0004")  # drops the column
    db.upgrade(database_url)  # adds it again, filled from the event log

    assert stored() == before
    assert dashboard(world.session, world.hub, today=TODAY) == board


def test_closing_records_when_and_reopening_forgets_it(
    world: World, make_config, database_url: str  # type: ignore[no-untyped-def]
) -> None:
    config = make_config(database_url=database_url)
    init_instance(config)
    inst = Instance.open(config)
    ctx = Context(inst, world.session, world.a)
    a1 = world.session.scalars(
        TenantScope(world.session, world.a).select(Case).where(Case.status == CaseStatus.BARU)
    ).one()
    change_status(ctx, a1, CaseStatus.VERIFIKASI)
    assert a1.closed_at is None
    closing = change_status(ctx, a1, CaseStatus.DIARSIPKAN, "Bukan kewenangan instansi.")
    world.session.refresh(a1)
    assert a1.closed_at == closing.created_at
    # Closed now, long after its due day (14 July 2025): late, whenever it is judged.
    assert closure(a1, TODAY) == closure(a1, dt.date(2099, 1, 1)) == Closure.LATE
    change_status(ctx, a1, CaseStatus.TELAAH)  # reopened: the clock runs again
    world.session.refresh(a1)
    assert a1.closed_at is None
    assert closure(a1, TODAY) == Closure.PENDING
    assert closure(a1, dt.date(2025, 7, 15)) == Closure.OVERDUE
    inst.close()


def test_migration_0009_fills_the_closing_time_from_the_log(
    world: World, make_config, database_url: str  # type: ignore[no-untyped-def]
) -> None:
    config = make_config(database_url=database_url)
    init_instance(config)
    inst = Instance.open(config)
    ctx = Context(inst, world.session, world.a)
    a1 = world.session.scalars(
        TenantScope(world.session, world.a).select(Case).where(Case.status == CaseStatus.BARU)
    ).one()
    change_status(ctx, a1, CaseStatus.VERIFIKASI)
    change_status(ctx, a1, CaseStatus.TELAAH)
    first = change_status(ctx, a1, CaseStatus.SELESAI)
    change_status(ctx, a1, CaseStatus.TELAAH)
    last = change_status(ctx, a1, CaseStatus.SELESAI)
    case_id, first_at, last_at = a1.id, first.created_at, last.created_at
    assert first_at < last_at
    inst.close()
    world.session.close()
    db.downgrade(database_url, "0008")
    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    try:
        with db.make_session_factory(engine)() as session:
            closed = {
                case.id: case.closed_at
                for case in session.scalars(sa.select(Case).where(Case.status.in_(
                    [CaseStatus.SELESAI, CaseStatus.DIARSIPKAN])))
            }
            # The latest closing; a closed case with no closing event stays unknown.
            assert closed[case_id] == last_at
            assert all(at is None for cid, at in closed.items() if cid != case_id)
            assert session.scalar(sa.select(sa.func.count()).select_from(Case).where(
                Case.closed_at.is_not(None))) == 1
    finally:
        engine.dispose()
def test_cases_are_counted_by_channel(world: World) -> None:
    # Every case of the world came by the drop box; two more of tenant A by operator intake.
    for channel in (Channel.WHATSAPP, Channel.WHATSAPP, Channel.SURAT):
        case = _case(world.session, world.a, CaseStatus.BARU, "pemerasan", None, "2025-06-16",
                     "2025-06-25", "2025-07-28", [])
        case.channel = channel
    world.session.commit()

    board = dashboard(world.session, world.hub, today=TODAY)
    assert [(row.code, row.count) for row in board.by_channel] == [
        ("situs", 6), ("whatsapp", 2), ("surat", 1),
    ]
    assert board.by_channel[1].label == "WhatsApp"
    summary = tenant_summary(world.session, world.b, TODAY)
    assert [(row.code, row.count) for row in summary.by_channel] == [("situs", 2)]
    only_a = dashboard(world.session, world.hub, today=TODAY, tenant_id=world.a.id)
    assert {row.code: row.count for row in only_a.by_channel} == {
        "situs": 3, "whatsapp": 2, "surat": 1,
    }


def test_first_response_promise_per_institution_and_who_falls_behind(world: World) -> None:
    board = dashboard(world.session, world.hub, today=TODAY)
    lines = {line.slug: line for line in board.tenants}

    # A: a1 never answered (missing), a2 and a3 answered in time. B: b1 in time, b2 late
    # (8 June, due 5 June). KPK: k1 is due on 25 June (pending, not judged). C: nothing.
    a, b = lines["pemprov-a"], lines["pemkot-b"]
    assert (a.first_response_met, a.first_response_late, a.first_response_missing) == (2, 0, 1)
    assert (b.first_response_met, b.first_response_late, b.first_response_missing) == (1, 1, 0)
    assert a.compliance == pytest.approx(2 / 3) and b.compliance == pytest.approx(0.5)
    assert lines["kpk"].first_response_due == 0 and lines["kpk"].compliance is None
    assert lines["lembaga-c"].compliance is None
    # Working days to the first response: A 2 (a2) and 2 (a3); B 1 (b1) and 4 (b2).
    assert a.median_first_response_working_days == 2.0
    assert b.median_first_response_working_days == 2.5
    # Too few judged cases to call anyone lagging (LAGGING_MINIMUM). Three more each: B's
    # never answered (1 of 5 in time), A's answered a day late (2 of 6): named, worst first.
    assert board.lagging == ()
    for _ in range(3):
        _case(world.session, world.b, CaseStatus.BARU, "suap_menyuap", None, "2025-06-02",
              "2025-06-11", "2025-07-14", [])
        _case(world.session, world.a, CaseStatus.BARU, "suap_menyuap", None, "2025-06-03",
              "2025-06-12", "2025-07-15", [(EventKind.REPLY_ADDED, _at("2025-06-13"))])
    world.session.commit()
    again = dashboard(world.session, world.hub, today=TODAY)
    assert [line.slug for line in again.lagging] == ["pemkot-b", "pemprov-a"]


def test_monthly_trend_counts_by_the_month_received(world: World) -> None:
    board = dashboard(world.session, world.hub, today=TODAY)

    # The last twelve months up to June 2025, oldest first, empty months included.
    assert len(board.trend) == 12
    assert board.trend[0].month == dt.date(2024, 7, 1)
    assert board.trend[-1].month == dt.date(2025, 6, 1)
    by_month = {row.month: row for row in board.trend}
    may, june = by_month[dt.date(2025, 5, 1)], by_month[dt.date(2025, 6, 1)]
    assert (may.received, may.first_response_met) == (1, 1)
    assert (june.received, june.first_response_met, june.first_response_late,
            june.first_response_missing) == (5, 2, 1, 1)
    assert sum(row.received for row in board.trend) == board.total
    quarter = dashboard(world.session, world.hub, today=TODAY,
                        filters=Filters(period=Period.parse("2025-Q2")))
    assert [row.month for row in quarter.trend] == [
        dt.date(2025, 4, 1), dt.date(2025, 5, 1), dt.date(2025, 6, 1)]


def test_filters_narrow_every_figure(world: World) -> None:
    world.a.province = "Sumatera Selatan"
    world.b.province = "Sumatera Selatan"
    world.c.province = "Jawa Barat"
    world.session.commit()
    june = Filters(period=Period.parse("2025-06"))

    # a3 was received in May: June holds five reports.
    board = dashboard(world.session, world.hub, today=TODAY, filters=june)
    assert board.total == 5 and board.filters == june
    assert {line.slug: line.total for line in board.tenants}["pemprov-a"] == 2

    province = dashboard(world.session, world.hub, today=TODAY,
                         filters=Filters(province="Sumatera Selatan"))
    assert [line.slug for line in province.tenants] == ["pemkot-b", "pemprov-a"]
    assert province.total == 5 and province.overdue_first_response == 1

    cities = dashboard(world.session, world.hub, today=TODAY,
                       filters=Filters(kind=TenantKind.PEMERINTAH_KOTA))
    assert [line.slug for line in cities.tenants] == ["pemkot-b"] and cities.total == 2

    extortion = dashboard(world.session, world.hub, today=TODAY,
                          filters=Filters(category="pemerasan", mcp_area="pengadaan_barang_jasa"))
    assert extortion.total == 2  # a1, b2
    assert extortion.category_counts() == {"pemerasan": 2}

    # A province with no institution counts nothing (never every tenant).
    nowhere = dashboard(world.session, world.hub, today=TODAY, filters=Filters(province="Bali"))
    assert nowhere.total == 0 and nowhere.tenants == ()

    # The admin's summary takes the period and the category, never another tenant's province.
    own = tenant_summary(world.session, world.a, TODAY,
                         filters=Filters(period=Period.parse("2025-05"), province="Jawa Barat"))
    assert own.total == 1 and [line.slug for line in own.tenants] == ["pemprov-a"]


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [("2025-06", "2025-06-01", "2025-07-01"), ("2025-Q4", "2025-10-01", "2026-01-01"),
     ("2025-q1", "2025-01-01", "2025-04-01"), ("2025", "2025-01-01", "2026-01-01"),
     ("2025-12", "2025-12-01", "2026-01-01")],
)
def test_periods_are_months_quarters_and_years(text: str, start: str, end: str) -> None:
    period = Period.parse(text)
    assert (period.start, period.end) == (dt.date.fromisoformat(start), dt.date.fromisoformat(end))


@pytest.mark.parametrize("text", ["", "2025-13", "2025-00", "2025-Q5", "1999", "25-06", "²025",
                                  "2025-06-01", "9" * 5000])
def test_a_malformed_period_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a period"):
        Period.parse(text)


def test_figures_agree_with_a_brute_force_count(session: Session) -> None:
    """Random cases, statuses, answers (at any hour, so the WIB date differs from UTC's after
    17:00), holidays: every figure equals a count in Python with wbs.deadlines' own rules."""
    rng = random.Random(11)
    # Holidays (Idul Adha, 1 May, ...) and a cuti bersama day.
    calendar = WorkingCalendar([dt.date(2025, 5, 30)])
    hub = create_tenant(session, slug="kpk", name="KPK", kind=TenantKind.HUB)
    tenants = [hub] + [
        create_tenant(session, slug=f"t{n}", name=f"Instansi {n}", kind=rng.choice(
            [TenantKind.PEMERINTAH_KOTA, TenantKind.PEMERINTAH_KABUPATEN, TenantKind.LEMBAGA]),
            province=rng.choice(["Sumatera Selatan", "Jawa Barat", None]))
        for n in range(5)
    ]
    session.flush()
    by_id = {tenant.id: tenant for tenant in tenants}
    cases = []
    for _ in range(160):
        tenant = rng.choice(tenants)
        received = dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(0, 167))
        due = calendar.add_working_days(received, 7)
        answered = None
        if rng.random() < 0.7:
            answered = dt.datetime.combine(
                received + dt.timedelta(days=rng.randrange(0, 20)), dt.time(), UTC
            ) + dt.timedelta(minutes=rng.randrange(0, 24 * 60))
        case = _case(session, tenant, rng.choice(list(CaseStatus)),
                     rng.choice(["pemerasan", "suap_menyuap", "gratifikasi"]),
                     rng.choice(["perizinan", "pengadaan_barang_jasa", None]),
                     received.isoformat(), due.isoformat(),
                     calendar.add_working_days(received, 30).isoformat(),
                     [(EventKind.REPLY_ADDED, answered)] if answered else [], calendar)
        case.kpk_hint = rng.choice([True, False, None])
        case.channel = rng.choice(list(Channel))
        # Handed on or in (the links' targets need not exist for counting).
        moment = dt.datetime(2025, 6, 2, 9, tzinfo=UTC)
        case.linked_to_case_id = rng.choice([None, None, 90_000 + len(cases)])
        case.taken_over_at = moment if case.linked_to_case_id and rng.random() < 0.5 else None
        case.merged_at = rng.choice([None, None, moment])
        case.linked_from_case_id = rng.choice([None, None, 80_000 + len(cases)])
        cases.append(case)
    session.commit()

    # Today mid-month, on the first of a month and the last (the overdue counts read the
    # months before this one and the days of this one: wbs.tallies.overdue_ranges).
    for today in (dt.date(2025, 6, 16), dt.date(2025, 6, 1), dt.date(2025, 5, 31)):
        for filters in [Filters(), Filters(period=Period.parse("2025-Q1")),
                        Filters(period=Period.parse("2025")),
                        Filters(period=Period.parse("2025-03")),
                        Filters(province="Jawa Barat"), Filters(kind=TenantKind.LEMBAGA),
                        Filters(period=Period.parse("2025-05"), category="suap_menyuap"),
                        Filters(period=Period.parse("2025-Q2"), category="suap_menyuap"),
                        Filters(period=Period.parse("2025"), mcp_area="perizinan"),
                        # A category or an area alone: their own tallies (wbs.monitoring).
                        Filters(category="gratifikasi"), Filters(mcp_area="perizinan")]:
            board = dashboard(session, hub, today=today, filters=filters)
            chosen = [c for c in cases if _matches(c, filters, by_id)]
            assert board.total == len(chosen)
            assert board.overdue_first_response == sum(
                first_response(c, today) == FirstResponse.MISSING for c in chosen)
            assert board.overdue_closure == sum(
                closure(c, today) == Closure.OVERDUE for c in chosen)
            assert board.mcp_area_counts() == Counter(c.mcp_area for c in chosen if c.mcp_area)
            assert board.without_mcp_area == sum(c.mcp_area is None for c in chosen)
            assert board.kpk_hint == sum(bool(c.kpk_hint) for c in chosen)
            assert {row.code: row.count for row in board.by_channel} == Counter(
                c.channel.value for c in chosen)
            per_province = Counter((by_id[c.tenant_id].province, c.category) for c in chosen)
            assert sorted(board.by_province_category, key=repr) == sorted(
                ((province, category, count)
                 for (province, category), count in per_province.items()), key=repr)
            for line in board.tenants:
                own = [c for c in chosen if c.tenant_id == line.tenant_id]
                judged = Counter(first_response(c, today) for c in own)
                assert (line.forwarded, line.taken_over, line.merged, line.received) == (
                    sum(c.linked_to_case_id is not None and c.taken_over_at is None
                        for c in own),
                    sum(c.taken_over_at is not None for c in own),
                    sum(c.merged_at is not None for c in own),
                    sum(c.linked_from_case_id is not None for c in own)), line.slug
                assert (line.total, line.first_response_met, line.first_response_late,
                        line.first_response_missing) == (
                    len(own), judged[FirstResponse.MET], judged[FirstResponse.LATE],
                    judged[FirstResponse.MISSING]), line.slug
                working = sorted(
                    calendar.working_days_between(c.received_at.date(),
                                                  local_date(c.first_response_at))
                    for c in own if c.first_response_at is not None)
                assert line.median_first_response_working_days == (
                    statistics.median(working) if working else None), line.slug
            for month in board.trend:
                own = [c for c in cases if _matches(c, replace(filters, period=None), by_id)
                       and (c.received_at.year, c.received_at.month)
                       == (month.month.year, month.month.month)]
                judged = Counter(first_response(c, today) for c in own)
                assert (month.received, month.first_response_met, month.first_response_late,
                        month.first_response_missing) == (
                    len(own), judged[FirstResponse.MET], judged[FirstResponse.LATE],
                    judged[FirstResponse.MISSING])


def _matches(case: Case, filters: Filters, tenants: dict[int, Tenant]) -> bool:
    tenant = tenants[case.tenant_id]
    period = filters.period
    return (
        (period is None or period.start <= case.received_at.date() < period.end)
        and (filters.province is None or tenant.province == filters.province)
        and (filters.kind is None or tenant.kind == filters.kind)
        and (filters.category is None or case.category == filters.category)
        and (filters.mcp_area is None or case.mcp_area == filters.mcp_area)
    )


def test_a_province_reads_only_case_metadata_of_its_kabupaten_and_kota(world: World) -> None:
    province = create_tenant(world.session, slug="pemprov-x", name="Pemprov X",
                             kind=TenantKind.PEMERINTAH_PROVINSI, province="Sumatera Selatan")
    world.b.province = "Sumatera Selatan"  # a kota there: coordinated
    world.c.province = "Sumatera Selatan"  # a lembaga there: not the province's to see
    world.a.province = "Sumatera Selatan"  # another provincial government: not either
    world.session.commit()

    board = province_dashboard(world.session, province, today=TODAY)
    assert [line.slug for line in board.tenants] == ["pemkot-b", "pemprov-x"]
    assert board.total == 2 and board.overdue_first_response == 0
    scope = ProvinceScope(world.session, province)
    for model in (Submission, Event, Source, Tenant):
        with pytest.raises(TenantIsolationError):
            scope.select(model)
    # Only a provincial government with a province has such a view.
    for tenant in (world.b, world.hub, create_tenant(
            world.session, slug="pemprov-y", name="Pemprov Y",
            kind=TenantKind.PEMERINTAH_PROVINSI)):
        with pytest.raises(TenantIsolationError):
            province_dashboard(world.session, tenant, today=TODAY)


def test_migration_0015_fills_the_stored_figures_of_answered_cases(
    world: World, database_url: str
) -> None:
    def stored() -> dict[int, tuple[object, ...]]:
        rows = world.session.execute(sa.text(
            "SELECT id, first_response_days, first_response_workdays, first_response_in_time"
            " FROM cases"))
        # SQLite gives the boolean back as 0 or 1 to plain SQL; PostgreSQL as a bool.
        found = {row[0]: (row[1], row[2], None if row[3] is None else bool(row[3]))
                 for row in rows}
        world.session.rollback()
        return found

    before = stored()
    # a2 (2 days, 2 working days, in time), a3 (4, 2, in time), b1 (1, 1), b2 (7, 4, late).
    assert sorted(value for value in before.values() if value[0] is not None) == [
        (1, 1, True), (2, 2, True), (4, 2, True), (7, 4, False)]
    board = dashboard(world.session, world.hub, today=TODAY)
    world.session.close()

    db.downgrade(database_url, "0014")  # drops the columns
    db.upgrade(database_url)  # adds them again, filled from first_response_at

    assert stored() == before
    assert dashboard(world.session, world.hub, today=TODAY) == board
