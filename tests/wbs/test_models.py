"""The data model on SQLite and PostgreSQL, with the schema built by the migrations."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from wbs import db
from wbs.domain import (
    ALLOWED_TRANSITIONS,
    DEFAULT_CATEGORY_CODES,
    FINAL_STATUSES,
    MCP_AREAS,
    CaseStatus,
    EventKind,
    Role,
    SubmissionKind,
    TenantKind,
    can_transition,
)
from wbs.models import (
    AppendOnlyError,
    Base,
    Case,
    Event,
    Investigator,
    RecipientKey,
    Reply,
    Source,
    Submission,
    Tenant,
    new_registration_number,
)
from wbs.workdays import local_date

WIB = dt.timezone(dt.timedelta(hours=7))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with db.make_session_factory(engine)() as session:
        yield session


def make_tenant(session: Session, slug: str = "kemendes", **fields: object) -> Tenant:
    fields.setdefault("kind", TenantKind.KEMENTERIAN)
    tenant = Tenant(slug=slug, name=f"Instansi {slug}", **fields)
    session.add(tenant)
    session.flush()
    return tenant


def make_source(session: Session, tenant: Tenant, **fields: object) -> Source:
    source = Source(
        id=secrets.token_hex(32),
        tenant_id=tenant.id,
        reply_fingerprint="A" * 40,
        reply_public_key="-----BEGIN PGP PUBLIC KEY BLOCK-----",
        reply_secret_key="-----BEGIN PGP PRIVATE KEY BLOCK-----",
        **fields,
    )
    session.add(source)
    session.flush()
    return source


def make_case(session: Session, tenant: Tenant, source: Source | None = None) -> Case:
    case = Case(
        tenant_id=tenant.id,
        source=source or make_source(session, tenant),
        registration_number=new_registration_number(session, tenant, 2025),
        category="gratifikasi",
        first_response_due=dt.date(2025, 3, 12),
    )
    session.add(case)
    session.flush()
    return case


def make_investigator(session: Session, tenant: Tenant, username: str) -> Investigator:
    investigator = Investigator(
        tenant_id=tenant.id,
        username=username,
        display_name=username.title(),
        role=Role.VERIFIKATOR,
        password_hash="argon2id$...",
    )
    session.add(investigator)
    session.flush()
    return investigator


def add_submission(session: Session, case: Case, path: str) -> Submission:
    submission = Submission(
        tenant_id=case.tenant_id, case=case, kind=SubmissionKind.FILE, store_path=path, size=10
    )
    session.add(submission)
    session.flush()
    return submission


# --- Constraints ------------------------------------------------------------------------------


def test_tenant_slug_is_unique(session: Session) -> None:
    make_tenant(session, "pemprov-sumsel")
    with pytest.raises(sa.exc.IntegrityError):
        make_tenant(session, "pemprov-sumsel")


def test_there_is_at_most_one_hub(session: Session) -> None:
    make_tenant(session, "kpk", kind=TenantKind.HUB, is_hub=True)
    make_tenant(session, "lain")  # any number of ordinary tenants
    make_tenant(session, "lain-lagi")
    with pytest.raises(sa.exc.IntegrityError):
        make_tenant(session, "kpk-2", kind=TenantKind.HUB, is_hub=True)


@pytest.mark.parametrize(("kind", "is_hub"), [(TenantKind.HUB, False), (TenantKind.BUMN, True)])
def test_hub_flag_and_kind_agree(session: Session, kind: TenantKind, is_hub: bool) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        make_tenant(session, "x", kind=kind, is_hub=is_hub)


def test_tenant_defaults(session: Session) -> None:
    tenant = make_tenant(session)
    session.commit()
    session.expire_all()
    assert tenant.first_response_days == 7
    assert tenant.categories == list(DEFAULT_CATEGORY_CODES)
    assert tenant.is_hub is False
    assert tenant.max_upload_bytes is None


def test_tenant_slug_must_be_plain() -> None:
    with pytest.raises(ValueError, match="slug"):
        Tenant(slug="Pemprov Sumsel", name="x", kind=TenantKind.PEMERINTAH_PROVINSI)


def test_recipient_fingerprint_is_unique_per_tenant_only(session: Session) -> None:
    one, two = make_tenant(session, "satu"), make_tenant(session, "dua")
    fingerprint = "0123456789abcdef0123456789abcdef01234567"
    for tenant in (one, two):
        session.add(RecipientKey(tenant_id=tenant.id, fingerprint=fingerprint, public_key="k"))
    session.flush()
    stored = session.scalars(sa.select(RecipientKey.fingerprint)).all()
    assert stored == [fingerprint.upper()] * 2

    session.add(RecipientKey(tenant_id=one.id, fingerprint=fingerprint, public_key="k"))
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()


def test_recipient_fingerprint_must_be_40_hex_digits() -> None:
    with pytest.raises(ValueError, match="fingerprint"):
        RecipientKey(fingerprint="ABCD", public_key="k")


def test_deleting_a_case_cascades_to_its_submissions_and_replies(session: Session) -> None:
    tenant = make_tenant(session)
    case, other = make_case(session, tenant), make_case(session, tenant)
    add_submission(session, case, "a/1.gpg")
    add_submission(session, other, "b/1.gpg")
    session.add(Reply(tenant_id=tenant.id, case=case, store_path="a/r1.gpg", size=5))
    session.commit()

    session.delete(case)
    session.commit()
    assert session.scalars(sa.select(Submission.store_path)).all() == ["b/1.gpg"]
    assert session.scalars(sa.select(Reply)).all() == []


def test_cascade_happens_in_the_database_too(session: Session) -> None:
    tenant = make_tenant(session)
    case = make_case(session, tenant)
    add_submission(session, case, "a/1.gpg")
    session.commit()
    session.execute(sa.text("DELETE FROM cases WHERE id = :id"), {"id": case.id})
    session.commit()
    count = session.scalar(sa.text("SELECT count(*) FROM submissions"))
    assert count == 0


def test_store_paths_are_unique(session: Session) -> None:
    tenant = make_tenant(session)
    case = make_case(session, tenant)
    add_submission(session, case, "same.gpg")
    with pytest.raises(sa.exc.IntegrityError):
        add_submission(session, case, "same.gpg")


def test_database_refuses_a_submission_on_another_tenants_case(session: Session) -> None:
    mine, theirs = make_tenant(session, "mine"), make_tenant(session, "theirs")
    their_case = make_case(session, theirs)
    session.add(
        Submission(
            tenant_id=mine.id,
            case_id=their_case.id,
            kind=SubmissionKind.MESSAGE,
            store_path="x.gpg",
            size=1,
        )
    )
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()


def test_database_refuses_assigning_another_tenants_investigator(session: Session) -> None:
    mine, theirs = make_tenant(session, "mine"), make_tenant(session, "theirs")
    case = make_case(session, mine)
    outsider = make_investigator(session, theirs, "outsider")
    case.assignee_id = outsider.id
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()


def test_assignment_through_the_relationship(session: Session) -> None:
    tenant = make_tenant(session)
    case = make_case(session, tenant)
    investigator = make_investigator(session, tenant, "rina")
    case.assignee = investigator
    session.commit()
    session.expire_all()
    assert case.assignee_id == investigator.id
    assert case.assignee is not None and case.assignee.username == "rina"


def test_source_id_must_be_derived_hex_not_a_codename() -> None:
    with pytest.raises(ValueError, match="source id"):
        Source(id="gula kopi meja sawah jendela pasar")


def test_registration_numbers_are_readable_random_and_unique(session: Session) -> None:
    tenant = make_tenant(session, "pemprov-sumsel")
    numbers = {make_case(session, tenant).registration_number for _ in range(5)}
    assert len(numbers) == 5
    for number in numbers:
        assert re.fullmatch(r"PLT-PEMPROV-SUMSEL-2025-\d{6}", number)
    # Random, not a sequence: consecutive reports do not reveal how many came in between.
    assert sorted(numbers) != [f"PLT-PEMPROV-SUMSEL-2025-{n:06d}" for n in range(1, 6)]


def test_registration_number_is_unique_in_the_database(session: Session) -> None:
    tenant = make_tenant(session)
    first = make_case(session, tenant)
    second = make_case(session, tenant)
    second.registration_number = first.registration_number
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()


def test_tenant_with_history_cannot_be_deleted(session: Session) -> None:
    tenant = make_tenant(session)
    make_case(session, tenant)
    session.add(Event(tenant_id=tenant.id, kind=EventKind.KEY_ADDED))
    session.commit()
    with pytest.raises(sa.exc.IntegrityError):
        session.execute(sa.text("DELETE FROM tenants WHERE id = :id"), {"id": tenant.id})
        session.commit()


def test_tenant_without_history_deletes_with_its_rows(session: Session) -> None:
    tenant = make_tenant(session)
    case = make_case(session, tenant)
    add_submission(session, case, "a.gpg")
    session.commit()
    session.execute(sa.text("DELETE FROM tenants WHERE id = :id"), {"id": tenant.id})
    session.commit()
    for table in ("sources", "cases", "submissions"):
        assert session.scalar(sa.text(f"SELECT count(*) FROM {table}")) == 0  # noqa: S608


# --- The append-only event log ------------------------------------------------------------


@pytest.fixture
def logged_event(session: Session) -> Event:
    tenant = make_tenant(session)
    entry = Event(
        tenant_id=tenant.id,
        case_id=1,
        kind=EventKind.STATUS_CHANGED,
        from_status=CaseStatus.BARU,
        to_status=CaseStatus.VERIFIKASI,
    )
    session.add(entry)
    session.commit()
    return entry


def test_orm_refuses_to_change_an_event(session: Session, logged_event: Event) -> None:
    logged_event.note = "rewritten"
    with pytest.raises(AppendOnlyError):
        session.flush()


def test_orm_refuses_to_delete_an_event(session: Session, logged_event: Event) -> None:
    session.delete(logged_event)
    with pytest.raises(AppendOnlyError):
        session.flush()


def test_orm_refuses_bulk_changes_to_events(session: Session, logged_event: Event) -> None:
    with pytest.raises(AppendOnlyError):
        session.execute(sa.update(Event).values(note="rewritten"))
    with pytest.raises(AppendOnlyError):
        session.execute(sa.delete(Event).where(Event.id == logged_event.id))


@pytest.mark.parametrize(
    "statement", ["UPDATE events SET note = 'rewritten'", "DELETE FROM events"]
)
def test_database_refuses_to_change_or_delete_events(
    engine: Engine, logged_event: Event, statement: str
) -> None:
    with engine.connect() as connection:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            connection.execute(sa.text(statement))
        connection.rollback()
        assert connection.scalar(sa.text("SELECT count(*) FROM events")) == 1


def test_database_refuses_truncating_events(engine: Engine, logged_event: Event) -> None:
    # PostgreSQL's TRUNCATE skips row triggers, hence its own statement trigger. SQLite has no
    # TRUNCATE; its equivalent, an unqualified DELETE, must hit the row trigger.
    statement = "TRUNCATE events" if engine.dialect.name == "postgresql" else "DELETE FROM events"
    with engine.connect() as connection, pytest.raises(sa.exc.DBAPIError, match="append-only"):
        connection.execute(sa.text(statement))


def test_events_can_still_be_appended(session: Session, logged_event: Event) -> None:
    session.add(Event(tenant_id=logged_event.tenant_id, kind=EventKind.EXPORTED))
    session.commit()
    assert session.scalar(sa.select(sa.func.count()).select_from(Event)) == 2


def test_event_log_outlives_a_deleted_case(session: Session) -> None:
    tenant = make_tenant(session)
    case = make_case(session, tenant)
    session.add(Event(tenant_id=tenant.id, case_id=case.id, kind=EventKind.CASE_CREATED))
    session.commit()
    case_id = case.id
    session.delete(case)
    session.add(Event(tenant_id=tenant.id, case_id=case_id, kind=EventKind.CASE_DELETED))
    session.commit()
    kinds = session.scalars(sa.select(Event.kind).where(Event.case_id == case_id)).all()
    assert sorted(kinds) == [EventKind.CASE_CREATED, EventKind.CASE_DELETED]


# --- Time -----------------------------------------------------------------------------------


def test_timestamps_round_trip_as_aware_utc(session: Session) -> None:
    tenant = make_tenant(session)
    revoked = dt.datetime(2025, 1, 2, 8, 30, 15, 123456, tzinfo=WIB)
    key = RecipientKey(
        tenant_id=tenant.id, fingerprint="B" * 40, public_key="k", revoked_at=revoked
    )
    session.add(key)
    session.commit()
    session.expire_all()

    assert key.revoked_at == revoked
    assert key.revoked_at is not None and key.revoked_at.utcoffset() == dt.timedelta(0)
    assert key.revoked_at.hour == 1  # 08:30 WIB is 01:30 UTC
    assert key.created_at.tzinfo is not None and key.created_at.utcoffset() == dt.timedelta(0)


def test_naive_timestamps_are_refused(session: Session) -> None:
    tenant = make_tenant(session)
    session.add(
        RecipientKey(
            tenant_id=tenant.id,
            fingerprint="C" * 40,
            public_key="k",
            revoked_at=dt.datetime(2025, 1, 2, 8, 30),  # naive on purpose
        )
    )
    with pytest.raises(sa.exc.StatementError, match="naive"):
        session.flush()


def _midnight_utc(value: dt.datetime) -> bool:
    return value.utcoffset() == dt.timedelta(0) and value.time() == dt.time(0, 0)


def test_source_side_times_are_rounded_to_the_day(session: Session) -> None:
    tenant = make_tenant(session)
    # 23:59 WIB on 5 March is 16:59 UTC on 5 March: the stored day is 5 March.
    precise = dt.datetime(2025, 3, 5, 23, 59, 58, 999, tzinfo=WIB)
    source = make_source(session, tenant, created_at=precise)
    case = make_case(session, tenant, source)
    case.received_at = precise
    case.last_activity_at = precise
    submission = add_submission(session, case, "s.gpg")
    submission.created_at = precise
    session.commit()
    # Rounded in memory already, before any reload.
    assert source.created_at == dt.datetime(2025, 3, 5, tzinfo=dt.UTC)
    session.expire_all()

    for value in (source.created_at, case.received_at, case.last_activity_at):
        assert value == dt.datetime(2025, 3, 5, tzinfo=dt.UTC)
    assert _midnight_utc(submission.created_at)


@pytest.mark.parametrize(
    ("moment", "day"),
    [
        # 00:00 and 00:30 WIB on 6 March are still 5 March in UTC: the day kept is WIB's, the
        # day the deadlines count from (a UTC day would file them a day early).
        (dt.datetime(2025, 3, 5, 17, 0, tzinfo=dt.UTC), dt.date(2025, 3, 6)),
        (dt.datetime(2025, 3, 5, 17, 30, tzinfo=dt.UTC), dt.date(2025, 3, 6)),
        (dt.datetime(2025, 3, 5, 16, 59, 59, tzinfo=dt.UTC), dt.date(2025, 3, 5)),
        # 23:59 WIB on 31 December, and the first minute of the new year.
        (dt.datetime(2025, 12, 31, 16, 59, tzinfo=dt.UTC), dt.date(2025, 12, 31)),
        (dt.datetime(2025, 12, 31, 17, 0, tzinfo=dt.UTC), dt.date(2026, 1, 1)),
    ],
)
def test_source_side_day_is_the_wib_day(
    session: Session, moment: dt.datetime, day: dt.date
) -> None:
    tenant = make_tenant(session)
    source = make_source(session, tenant, created_at=moment)
    case = make_case(session, tenant, source)
    case.received_at = moment
    session.commit()
    session.expire_all()
    label = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    assert (source.created_at, case.received_at) == (label, label)
    # Read back as a WIB date it is the same day: labels never shift by the seven hours.
    assert local_date(case.received_at) == day


def test_source_side_defaults_are_rounded_to_the_day(session: Session) -> None:
    tenant = make_tenant(session)
    source = make_source(session, tenant)
    case = make_case(session, tenant, source)
    session.commit()
    session.expire_all()
    assert _midnight_utc(source.created_at)
    assert _midnight_utc(case.received_at)


def test_events_caused_by_the_pelapor_are_rounded_but_investigators_are_not(
    session: Session,
) -> None:
    tenant = make_tenant(session)
    precise = dt.datetime(2025, 3, 5, 10, 11, 12, tzinfo=dt.UTC)
    by_source = Event(tenant_id=tenant.id, kind=EventKind.SUBMISSION_ADDED, created_at=precise)
    by_staff = Event(tenant_id=tenant.id, kind=EventKind.STATUS_CHANGED, created_at=precise)
    session.add_all([by_source, by_staff])
    session.commit()
    session.expire_all()
    assert by_source.created_at == dt.datetime(2025, 3, 5, tzinfo=dt.UTC)
    assert by_staff.created_at == precise


# --- Nothing identifying ----------------------------------------------------------------------

# Name parts that would mean a table stores who a visitor is or where they came from.
IDENTIFYING_PARTS = {
    "ip",
    "ipv4",
    "ipv6",
    "ipaddr",
    "addr",
    "address",
    "remote",
    "useragent",
    "agent",
    "ua",
    "codename",
    "passphrase",
    "referer",
    "referrer",
    "forwarded",
    "xff",
    "browser",
    "hostname",
}
# Onion services' own addresses (an instansi's drop box, a hub's federation endpoint): never
# a person's.
ALLOWED = {("tenants", "onion_address"), ("federation_peers", "onion_address")}


def _identifying(table: str, column: str) -> bool:
    if (table, column) in ALLOWED:
        return False
    name = column.lower()
    parts = set(name.split("_")) | {name.replace("_", "")}
    return bool(parts & IDENTIFYING_PARTS) or "user_agent" in name or "codename" in name


def test_identifying_column_detector_catches_the_usual_names() -> None:
    for column in ("ip", "remote_addr", "client_ip", "user_agent", "codename", "ip_address"):
        assert _identifying("sources", column)
    assert not _identifying("cases", "description")


def test_no_column_could_hold_an_ip_user_agent_or_codename(engine: Engine) -> None:
    inspector = sa.inspect(engine)
    columns = {
        (table, column["name"])
        for table in inspector.get_table_names()
        for column in inspector.get_columns(table)
    }
    columns |= {(t.name, c.name) for t in Base.metadata.tables.values() for c in t.columns}
    assert [pair for pair in sorted(columns) if _identifying(*pair)] == []


# --- The workflow -------------------------------------------------------------------------


def test_every_status_has_transitions_and_never_to_itself() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(CaseStatus)
    for status, targets in ALLOWED_TRANSITIONS.items():
        assert targets and status not in targets


def test_closed_cases_reopen_only_to_telaah() -> None:
    for status in FINAL_STATUSES:
        assert ALLOWED_TRANSITIONS[status] == {CaseStatus.TELAAH}


def test_a_new_report_is_screened_before_it_can_be_finished() -> None:
    assert not can_transition(CaseStatus.BARU, CaseStatus.SELESAI)
    assert not can_transition(CaseStatus.BARU, CaseStatus.TELAAH)
    assert can_transition(CaseStatus.BARU, CaseStatus.VERIFIKASI)


def test_every_open_status_can_reach_a_final_one() -> None:
    for start in CaseStatus:
        reachable, frontier = {start}, [start]
        while frontier:
            for target in ALLOWED_TRANSITIONS[frontier.pop()]:
                if target not in reachable:
                    reachable.add(target)
                    frontier.append(target)
        assert reachable & FINAL_STATUSES


def test_labels_and_pelapor_wording_exist_for_every_status() -> None:
    assert CaseStatus.BARU.source_wording == "Pengaduan diterima"
    assert CaseStatus.DIARSIPKAN.label == "Diarsipkan"
    for status in CaseStatus:
        assert status.label and status.source_wording


def test_codes_are_lower_snake_case_and_unique() -> None:
    for code, label in MCP_AREAS:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", code) and label
    assert len(DEFAULT_CATEGORY_CODES) == len(set(DEFAULT_CATEGORY_CODES)) == 12
    assert len(MCP_AREAS) == len({code for code, _ in MCP_AREAS}) == 11
