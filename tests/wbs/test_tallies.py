"""The maintained tallies (wbs.tallies) on both databases: whatever writes to ``cases`` (the
ORM, a Core UPDATE, plain SQL, a DELETE), ``case_tallies`` equals a count of the cases made in
Python with the dashboards' own definitions, and equals a refill from scratch."""

from __future__ import annotations

import datetime as dt
import random
import secrets
from collections import Counter

import sqlalchemy as sa
from sqlalchemy.orm import Session

from wbs import tallies
from wbs.domain import OPEN_STATUSES, CaseStatus, Channel, TenantKind
from wbs.models import Case, CaseTally, Source, Tenant, new_registration_number
from wbs.tenancy import TenantScope
from wbs.tenants import create_tenant

UTC = dt.UTC
CATEGORIES = ["pemerasan", "suap_menyuap", "gratifikasi"]
AREAS = ["perizinan", "pengadaan_barang_jasa", None]


Key = tuple[str, str, int, tuple[str, dt.date], str]


def _expected(session: Session) -> Counter[Key]:
    """The tallies, counted here from every case row (zeros left out)."""
    counted: Counter[Key] = Counter()
    session.expire_all()
    for case in session.scalars(sa.select(Case)):
        received = case.received_at.date()
        answer = {None: "none", True: "met", False: "late"}[case.first_response_in_time]
        values = [
            ("status", f"{case.status.value}|{answer}"),
            ("answer", answer),
            ("category", case.category),
            ("area", case.mcp_area or ""),
            ("channel", case.channel.value),
        ]
        if case.kpk_hint:
            values.append(("hint", ""))
        if case.linked_to_case_id is not None and case.taken_over_at is None:
            values.append(("forwarded", ""))
        if case.taken_over_at is not None:
            values.append(("taken", ""))
        if case.merged_at is not None:
            values.append(("merged", ""))
        if case.linked_from_case_id is not None:
            values.append(("received", ""))
        if case.first_response_days is not None:
            values.append(("days", str(case.first_response_days)))
        if case.first_response_workdays is not None:
            values.append(("workdays", str(case.first_response_workdays)))
        is_open = case.status in OPEN_STATUSES
        if is_open and case.first_response_at is None:
            values.append(("frdue", f"{case.first_response_due:%Y-%m}"))
            values.append(("frday", case.first_response_due.isoformat()))
        if is_open and case.closure_due is not None:
            values.append(("cldue", f"{case.closure_due:%Y-%m}"))
            values.append(("clday", case.closure_due.isoformat()))
        category, area = f"c:{case.category}", f"a:{case.mcp_area or ''}"
        month = ("m", dt.date(received.year, received.month, 1))
        quarter = ("q", dt.date(received.year, (received.month - 1) // 3 * 3 + 1, 1))
        year = ("y", dt.date(received.year, 1, 1))
        every = ("a", tallies.ALL_MONTHS)
        for figure, value in values:
            # Every case's figures by month, quarter, year and over every month; per category
            # and per area by quarter, year and over every month (by month too for the
            # trend's), never the facet's own figure.
            grains = {("", month), ("", quarter), ("", year), ("", every)}
            for facet in {"category": [area], "area": [category]}.get(figure, [category, area]):
                grains |= {(facet, every), (facet, quarter), (facet, year)}
                if figure in ("answer", "frdue", "frday"):
                    grains.add((facet, month))
            # The figures KPK's whole view shows without a breakdown: summed over all too.
            across = figure in (
                "status", "answer", "area", "channel", "hint", "days", "workdays", "frdue",
                "frday")
            for facet, grain in grains:
                counted[figure, facet, case.tenant_id, grain, value] += 1
                if across:
                    counted[figure, facet, tallies.EVERY_INSTITUTION, grain, value] += 1
    return counted


def _stored(session: Session) -> Counter[Key]:
    session.expire_all()
    return Counter({
        (row.figure, row.facet, row.tenant_id, (row.grain, row.month), row.value): row.cases
        for row in session.scalars(sa.select(CaseTally)) if row.cases != 0
    })


def _add_case(session: Session, tenant: Tenant, rng: random.Random) -> Case:
    received = dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(0, 200))
    answered = rng.random() < 0.6
    case = Case(
        source=Source(id=secrets.token_hex(32), reply_fingerprint="D" * 40,
                      reply_public_key="public", reply_secret_key="locked"),
        registration_number=new_registration_number(session, tenant, 2025),
        category=rng.choice(CATEGORIES),
        mcp_area=rng.choice(AREAS),
        status=rng.choice(list(CaseStatus)),
        channel=rng.choice(list(Channel)),
        kpk_hint=rng.choice([True, False, None]),
        received_at=dt.datetime.combine(received, dt.time(), UTC),
        first_response_due=received + dt.timedelta(days=9),
        closure_due=rng.choice([None, received + dt.timedelta(days=42)]),
    )
    _hand_on(case, rng)
    if answered:
        case.first_response_at = dt.datetime.combine(
            received + dt.timedelta(days=rng.randrange(0, 12)), dt.time(9), UTC)
        case.first_response_days = rng.randrange(0, 12)
        case.first_response_workdays = rng.randrange(0, 9)
        case.first_response_in_time = rng.random() < 0.7
    TenantScope(session, tenant).add(case)
    session.flush()
    return case


def _hand_on(case: Case, rng: random.Random) -> None:
    """Forwarded, taken over, merged, received: at random (the links' targets need not exist
    for counting)."""
    moment = dt.datetime(2025, 7, 1, 9, tzinfo=UTC)
    case.linked_to_case_id = rng.choice([None, None, 10_000 + rng.randrange(100)])
    case.taken_over_at = moment if case.linked_to_case_id and rng.random() < 0.5 else None
    case.merged_at = rng.choice([None, None, moment])
    case.linked_from_case_id = rng.choice([None, None, 20_000 + rng.randrange(100)])


def test_tallies_follow_every_kind_of_write(session: Session) -> None:
    rng = random.Random(7)
    tenants = [
        create_tenant(session, slug=f"t{n}", name=f"Instansi {n}",
                      kind=TenantKind.PEMERINTAH_KOTA)
        for n in range(3)
    ]
    cases = [_add_case(session, rng.choice(tenants), rng) for _ in range(60)]
    session.commit()
    assert _stored(session) == _expected(session)

    # The ORM: statuses, classification, answers, the due days, a move between months.
    for case in rng.sample(cases, 25):
        case.status = rng.choice(list(CaseStatus))
        case.category = rng.choice(CATEGORIES)
        case.mcp_area = rng.choice(AREAS)
        case.kpk_hint = rng.choice([True, False, None])
        if rng.random() < 0.5:
            case.first_response_at = None
            case.first_response_days = case.first_response_workdays = None
            case.first_response_in_time = None
        case.closure_due = case.closure_due and case.closure_due + dt.timedelta(days=3)
        case.received_at = case.received_at + dt.timedelta(days=rng.randrange(0, 40))
        _hand_on(case, rng)
    # An UPDATE of a column no figure reads changes nothing.
    cases[0].unread = not cases[0].unread
    session.commit()
    assert _stored(session) == _expected(session)

    # Core UPDATEs (as conditional claims are written) and plain SQL.
    session.execute(sa.update(Case).where(Case.id.in_([c.id for c in cases[:10]]))
                    .values(status=CaseStatus.SELESAI))
    session.execute(sa.text("UPDATE cases SET mcp_area = 'perizinan' WHERE id % 3 = 0"))
    session.commit()
    assert _stored(session) == _expected(session)

    # Deletes; and what is left equals a count from scratch.
    session.execute(sa.delete(Case).where(Case.id.in_([c.id for c in cases[10:20]])))
    session.commit()
    expected = _expected(session)
    assert _stored(session) == expected and sum(expected.values()) > 0
    tallies.refill(session.connection())
    session.commit()
    assert _stored(session) == expected


def test_a_failed_transaction_leaves_the_tallies_as_they_were(session: Session) -> None:
    rng = random.Random(3)
    tenant = create_tenant(session, slug="t1", name="Instansi", kind=TenantKind.LEMBAGA)
    case = _add_case(session, tenant, rng)
    session.commit()
    before = _stored(session)
    case.status = CaseStatus.DIARSIPKAN if case.status != CaseStatus.DIARSIPKAN else CaseStatus.BARU
    session.flush()
    assert _stored(session) != before  # counted inside the transaction...
    session.rollback()
    assert _stored(session) == before == _expected(session)  # ...and undone with it


def test_the_triggers_exist_at_head(session: Session) -> None:
    # A SQLite migration that rebuilds ``cases`` would drop them silently.
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        names = set(connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'cases'"
        ).scalars())
        assert names >= {"case_tallies_insert", "case_tallies_delete", "case_tallies_update"}
    else:
        names = set(connection.exec_driver_sql(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'cases'::regclass"
            " AND NOT tgisinternal"
        ).scalars())
        assert names >= {"case_tallies_insert_delete", "case_tallies_update"}
