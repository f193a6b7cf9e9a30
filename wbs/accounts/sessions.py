"""Server-side investigator sessions: the cookie holds a random token, the database only its
hash; sessions expire when idle and in all, and end when the account is deactivated or reset.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from wbs.accounts.settings import (
    DEFAULT_SETTINGS,
    AuthSettings,
    SessionParams,
)
from wbs.models import (
    Investigator,
    InvestigatorSession,
    Tenant,
    utcnow,
)
from wbs.tenancy import TenantScope

_TOKEN_BYTES = 32
# last_seen_at is written at most this often, to spare a write per request; idle expiry may
# so come up to this much early, never late.
_SEEN_GRANULARITY = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class ActiveSession:
    """What a resumed session gives the view: who is logged in, and their tenant."""

    investigator: Investigator
    tenant: Tenant


def _session_row_id(token: str) -> str:
    return hashlib.sha256(b"peluit/investigator-session/v1\0" + token.encode()).hexdigest()


def open_session(
    session: Session, investigator: Investigator, now: dt.datetime | None = None
) -> str:
    """Open a session for a freshly authenticated investigator; return the cookie value.

    Commits. Only the token's hash is stored.
    """
    now = now or utcnow()
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    session.add(
        InvestigatorSession(
            id=_session_row_id(token),
            investigator_id=investigator.id,
            tenant_id=investigator.tenant_id,
            created_at=now,
            last_seen_at=now,
        )
    )
    session.commit()
    return token


def _expired(row: InvestigatorSession, now: dt.datetime, lifetimes: SessionParams) -> bool:
    return now - row.last_seen_at >= lifetimes.idle or now - row.created_at >= lifetimes.absolute


def resume_session(
    session: Session,
    token: str,
    now: dt.datetime | None = None,
    *,
    settings: AuthSettings = DEFAULT_SETTINGS,
) -> ActiveSession | None:
    """The investigator of a live session, or None (unknown, expired, account deactivated).

    Commits: the sliding idle time, or the removal of a dead session.
    """
    now = now or utcnow()
    if not token or len(token) > 128:
        return None
    row = session.get(InvestigatorSession, _session_row_id(token))
    if row is None:
        return None
    tenant = session.get(Tenant, row.tenant_id)
    investigator = None
    if tenant is not None:
        investigator = TenantScope(session, tenant).get(Investigator, row.investigator_id)
    if (
        tenant is None
        or investigator is None
        or not investigator.active
        or _expired(row, now, settings.sessions)
    ):
        session.delete(row)
        session.commit()
        return None
    if now - row.last_seen_at >= _SEEN_GRANULARITY:
        row.last_seen_at = now
        session.commit()
    return ActiveSession(investigator=investigator, tenant=tenant)


def close_session(session: Session, token: str) -> None:
    """End one session (logout). An unknown token is ignored. Commits."""
    if token and len(token) <= 128:
        session.execute(
            sa.delete(InvestigatorSession).where(
                InvestigatorSession.id == _session_row_id(token)
            )
        )
    session.commit()


def end_all_sessions(session: Session, investigator: Investigator) -> int:
    """End every session of ``investigator``; return how many. Flushes, the caller commits."""
    result = session.execute(
        sa.delete(InvestigatorSession)
        .where(
            InvestigatorSession.investigator_id == investigator.id,
            InvestigatorSession.tenant_id == investigator.tenant_id,
        )
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def purge_expired_sessions(
    session: Session,
    now: dt.datetime | None = None,
    *,
    settings: AuthSettings = DEFAULT_SETTINGS,
) -> int:
    """Delete the expired sessions of every tenant; return how many. Commits."""
    now = now or utcnow()
    lifetimes = settings.sessions
    result = session.execute(
        sa.delete(InvestigatorSession).where(
            sa.or_(
                InvestigatorSession.last_seen_at <= now - lifetimes.idle,
                InvestigatorSession.created_at <= now - lifetimes.absolute,
            )
        )
    )
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
