import datetime as dt
from pathlib import Path

import sqlalchemy as sa
import time_machine
from sqlalchemy.orm import Session

from crypto.kdf import SourceSecrets
from wbs import db
from wbs.domain import TenantKind
from wbs.models import SourceSession, Tenant, utcnow
from wbs.source_sessions import (
    close_session,
    count_action,
    open_session,
    purge_expired,
    resume_session,
)
from wbs.tenants import create_tenant

SECRETS = SourceSecrets(source_id="ab" * 32, reply_passphrase="cd" * 32)




def test_round_trip_and_logout(session: Session, tenant: Tenant) -> None:
    token = open_session(session, tenant, SECRETS, idle_minutes=30)
    assert resume_session(session, tenant, token, idle_minutes=30) == SECRETS
    close_session(session, tenant, token)
    assert resume_session(session, tenant, token, idle_minutes=30) is None
    assert session.scalar(sa.select(sa.func.count()).select_from(SourceSession)) == 0


def test_disk_alone_reveals_nothing(session: Session, tenant: Tenant) -> None:
    token = open_session(session, tenant, SECRETS, idle_minutes=30)
    row = session.execute(sa.select(SourceSession.__table__)).one()
    stored = b" ".join(v if isinstance(v, bytes) else str(v).encode() for v in row)
    assert SECRETS.source_id.encode() not in stored
    assert SECRETS.reply_passphrase.encode() not in stored
    # Neither part of the cookie is stored as such.
    for part in token.split("."):
        assert part.encode() not in stored


def test_cookie_alone_or_tampered_opens_nothing(session: Session, tenant: Tenant) -> None:
    token = open_session(session, tenant, SECRETS, idle_minutes=30)
    session_id = token.split(".")[0]
    other_key = open_session(session, tenant, SECRETS, idle_minutes=30).split(".")[1]
    for bad in (f"{session_id}.{other_key}", "garbage", "", f"{session_id}.", "a.b.c"):
        assert resume_session(session, tenant, bad, idle_minutes=30) is None
    assert resume_session(session, tenant, token, idle_minutes=30) == SECRETS


def test_session_is_bound_to_its_tenant(session: Session, tenant: Tenant) -> None:
    other = create_tenant(session, slug="kpk", name="KPK", kind=TenantKind.HUB)
    session.commit()
    token = open_session(session, tenant, SECRETS, idle_minutes=30)
    assert resume_session(session, other, token, idle_minutes=30) is None


def test_idle_expiry_and_purge(session: Session, tenant: Tenant) -> None:
    start = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)  # 16:00 WIB
    with time_machine.travel(start, tick=False) as clock:
        token = open_session(session, tenant, SECRETS, idle_minutes=30)
        clock.shift(dt.timedelta(minutes=20))
        live = open_session(session, tenant, SECRETS, idle_minutes=30)
        clock.shift(dt.timedelta(minutes=11))  # the first is 31 minutes idle, the second 11
        results = [resume_session(session, tenant, t, idle_minutes=30) for t in (token, live)]
        assert results == [None, SECRETS]
        # The expired one was removed when it was touched; the other's day is not over.
        assert session.scalar(sa.select(sa.func.count()).select_from(SourceSession)) == 1
        assert purge_expired(session) == 0
        # A session left without logout ends after its idle time, and the purge takes its row
        # once its day (WIB) is over, without ever having seen when it ended.
        clock.shift(dt.timedelta(hours=2))
        assert resume_session(session, tenant, live, idle_minutes=30) is None
        session.add(session.merge(SourceSession(id="f" * 64, tenant_id=tenant.id,
                                                sealed=b"x" * 40, purge_after=utcnow())))
        session.commit()
        assert purge_expired(session) == 0  # the same day: kept, unopened
        clock.shift(dt.timedelta(days=1))
        assert purge_expired(session) == 1


def test_resume_slides_the_expiry(session: Session, tenant: Tenant) -> None:
    with time_machine.travel(dt.datetime(2026, 12, 2, 3, 0, tzinfo=dt.UTC), tick=False) as clock:
        token = open_session(session, tenant, SECRETS, idle_minutes=1)
        assert resume_session(session, tenant, token, idle_minutes=60) == SECRETS
        clock.shift(dt.timedelta(minutes=50))  # past the first minute, within the hour
        assert resume_session(session, tenant, token, idle_minutes=60) == SECRETS
        clock.shift(dt.timedelta(minutes=61))
        assert resume_session(session, tenant, token, idle_minutes=60) is None


def test_action_counter_per_window(session: Session, tenant: Tenant) -> None:
    with time_machine.travel(dt.datetime(2026, 12, 2, 3, 0, tzinfo=dt.UTC), tick=False) as clock:
        token = open_session(session, tenant, SECRETS, idle_minutes=300)
        assert [count_action(session, tenant, token) for _ in range(3)] == [1, 2, 3]
        clock.shift(dt.timedelta(minutes=59))
        assert count_action(session, tenant, token) == 4
        clock.shift(dt.timedelta(hours=2))
        assert count_action(session, tenant, token) == 1
    assert count_action(session, tenant, "garbage") == 0


def test_no_exact_time_of_a_visit_at_rest(tmp_path: Path) -> None:
    """After a pelapor's visit, neither the database file nor SQLite's WAL holds when it was:
    only the sealed blob (opaque) and a day."""
    url = f"sqlite:///{tmp_path / 'peluit.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    with db.make_session_factory(engine)() as session:
        tenant = create_tenant(session, slug="pemkot-medan", name="Pemkot Medan",
                               kind=TenantKind.PEMERINTAH_KOTA)
        session.commit()
        visit = dt.datetime(2026, 12, 2, 6, 41, 17, 123456, tzinfo=dt.UTC)
        with time_machine.travel(visit, tick=False) as clock:
            token = open_session(session, tenant, SECRETS, idle_minutes=30)
            clock.shift(dt.timedelta(minutes=3))
            count_action(session, tenant, token)
            resume_session(session, tenant, token, idle_minutes=30)
            close_session(session, tenant, token)
        # Read while the connection is open: closing the last one checkpoints the WAL away.
        wal = tmp_path / "peluit.db-wal"
        assert wal.exists() and wal.stat().st_size > 0
        stored = (tmp_path / "peluit.db").read_bytes() + wal.read_bytes()
    engine.dispose()
    # The visit (06:41, 06:44) and its expiries (07:11, 07:14), in any form SQLite keeps.
    for moment in ("06:41", "06:44", "07:11", "07:14"):
        assert moment.encode() not in stored, moment
    for seconds in (visit.timestamp(), visit.timestamp() + 180):
        assert str(int(seconds)).encode()[:8] not in stored
