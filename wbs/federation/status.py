"""What an operator (``peluit federation status``) and KPK's dashboard see of the link."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from wbs.instance import Instance
from wbs.models import FederationPeer, FederationRefusal, Tenant, utcnow

# A member that has not synced for this long is shown as stale on the hub's dashboard
# (the sync timer runs every few minutes; a day covers a restart and a short outage).
STALE_AFTER = dt.timedelta(hours=24)


@dataclass(frozen=True)
class Link:
    role: str  # what the peer is to this installation: hub or member
    name: str
    status: str
    last_contact: dt.datetime | None
    lag: dt.timedelta | None  # since the last verified exchange
    pending: int  # queued here for the peer, not yet confirmed
    received: int  # the peer's messages applied here
    refused: int  # the peer's requests and messages refused here
    last_error: str | None
    tenants: int  # on a hub: the member's instansi mirrored here

    @property
    def stale(self) -> bool:
        return self.status == "active" and (self.lag is None or self.lag > STALE_AFTER)

    @property
    def lag_text(self) -> str:
        if self.lag is None:
            return "-"
        minutes = int(self.lag.total_seconds() // 60)
        if minutes < 60:
            return f"{minutes} min"
        if minutes < 48 * 60:
            return f"{minutes // 60} h"
        return f"{minutes // (24 * 60)} d"


def link_lines(session: Session, now: dt.datetime | None = None) -> list[Link]:
    current = now or utcnow()
    refused = dict(
        session.execute(
            sa.select(FederationRefusal.peer_id, sa.func.sum(FederationRefusal.repeated))
            .where(FederationRefusal.peer_id.is_not(None))
            .group_by(FederationRefusal.peer_id)
        ).all()
    )
    mirrored = dict(
        session.execute(
            sa.select(Tenant.federation_peer_id, sa.func.count())
            .where(Tenant.federation_peer_id.is_not(None))
            .group_by(Tenant.federation_peer_id)
        ).all()
    )
    lines = []
    for peer in session.scalars(
        sa.select(FederationPeer).order_by(FederationPeer.role, FederationPeer.name)
    ):
        lines.append(
            Link(
                role=peer.role,
                name=peer.name,
                status=peer.status,
                last_contact=peer.last_contact_at,
                lag=None if peer.last_contact_at is None else max(
                    current - peer.last_contact_at, dt.timedelta(0)
                ),
                pending=peer.sent_seq - peer.acked_seq,
                received=peer.received_seq,
                refused=int(refused.get(peer.id, 0)),
                last_error=peer.last_error,
                tenants=int(mirrored.get(peer.id, 0)) if peer.role == "member" else 0,
            )
        )
    return lines


def links(inst: Instance) -> list[Link]:
    with inst.sessions() as session:
        return link_lines(session)


def unattributed_refusals(session: Session) -> int:
    """Requests refused before a sender could be named (malformed, unknown key)."""
    return int(
        session.scalar(
            sa.select(sa.func.sum(FederationRefusal.repeated)).where(
                FederationRefusal.peer_id.is_(None)
            )
        ) or 0
    )
