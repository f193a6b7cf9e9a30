import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crypto.kdf import SourceSecrets
from wbs.domain import TenantKind
from wbs.models import SourceSession, Tenant
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
    token = open_session(session, tenant, SECRETS, idle_minutes=30)
    live = open_session(session, tenant, SECRETS, idle_minutes=30)
    row = session.scalars(sa.select(SourceSession)).first()
    assert row is not None
    for item in session.scalars(sa.select(SourceSession)):
        if item is row:
            item.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    session.commit()
    results = [resume_session(session, tenant, t, idle_minutes=30) for t in (token, live)]
    assert results.count(None) == 1
    assert purge_expired(session) == 0  # the expired one was removed when it was touched
    for item in session.scalars(sa.select(SourceSession)):
        item.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    session.commit()
    assert purge_expired(session) == 1


def test_resume_slides_the_expiry(session: Session, tenant: Tenant) -> None:
    token = open_session(session, tenant, SECRETS, idle_minutes=1)
    before = session.scalars(sa.select(SourceSession.expires_at)).one()
    resume_session(session, tenant, token, idle_minutes=60)
    after = session.scalars(sa.select(SourceSession.expires_at)).one()
    assert after - before > dt.timedelta(minutes=50)


def test_action_counter_per_window(session: Session, tenant: Tenant) -> None:
    token = open_session(session, tenant, SECRETS, idle_minutes=30)
    assert [count_action(session, tenant, token) for _ in range(3)] == [1, 2, 3]
    row = session.scalars(sa.select(SourceSession)).one()
    row.window_start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    session.commit()
    assert count_action(session, tenant, token) == 1
    assert count_action(session, tenant, "garbage") == 0
