"""Joining a federation, leaving it, revoking a member: the offline exchange.

1. The member's operator writes a **join request** (:func:`join_request`): the member's name
   and its instance signing key, signed by that key. It is carried to the hub offline, and
   the member's operator reads the key's fingerprint to the hub's operator over another
   channel (a call, a letter).
2. The hub's operator adds the member with the fingerprint they were told
   (:func:`add_member`): the request must be signed by exactly that key. The hub pins the
   key, makes the member an x25519 client key for its federation onion, and writes a
   **join ticket**: the hub's key, its federation onion and the member's client key, signed
   by the hub. The ticket holds a secret (the client key): it goes back offline, mode 0600.
3. The member's operator joins with the hub's fingerprint, told the same way
   (:func:`join`): the ticket must be signed by exactly that key.

A revoked member (:func:`revoke_member`) is refused at once: its key is dropped from the
federation onion (when tor is reachable; the next ``peluit onion publish`` otherwise) and the
endpoint refuses its signature from the same moment, whatever tor does. A member that leaves
(:func:`leave`) forgets its hub's key and its client key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crypto.keyring import normalize_fingerprint
from crypto.signing import SignatureError, verify_detached
from wbs import onion
from wbs.federation.wire import canonical
from wbs.instance import Instance
from wbs.models import FederationPeer, Tenant, utcnow

JOIN_PROTOCOL = "peluit-federation-join/1"
_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MAX_JOIN_FILE = 256 * 1024


class FederationError(ValueError):
    """A federation step that cannot be done; the message says why in plain words."""


def _check_name(name: str) -> str:
    if not (_NAME.fullmatch(name) and 2 <= len(name) <= 40):
        raise FederationError(
            f"name {name!r}: 2-40 characters, lower-case letters and digits, words joined by "
            "single hyphens"
        )
    return name


def _signed_file(inst: Instance, value: dict[str, Any]) -> bytes:
    data = canonical({"protocol": JOIN_PROTOCOL, **value})
    signature = inst.signing.sign_detached(data)
    return json.dumps({"signed": data.decode(), "signature": signature.decode("ascii")}).encode()


def _open_signed_file(
    inst: Instance, raw: bytes, kind: str, confirmed_fingerprint: str
) -> dict[str, Any]:
    """The content of a join file, if it is signed by exactly the confirmed key."""
    if len(raw) > MAX_JOIN_FILE:
        raise FederationError(f"this is too large to be a join {kind}")
    try:
        outer = json.loads(raw)
        data = outer["signed"].encode()
        signature = outer["signature"].encode("ascii")
        value = json.loads(data)
        public_key = str(value["public_key"])
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeError):
        raise FederationError(f"this is not a join {kind}") from None
    if value.get("protocol") != JOIN_PROTOCOL or value.get("kind") != kind:
        raise FederationError(f"this is not a join {kind}")
    try:
        expected = normalize_fingerprint(confirmed_fingerprint)
    except ValueError:
        raise FederationError("the confirmed fingerprint is not 40 hexadecimal digits") from None
    try:
        signer = verify_detached(data, signature, public_key, expected, inst.config.gpg_binary)
    except SignatureError as exc:
        raise FederationError(
            f"the join {kind} is not signed by the key {expected} you confirmed: {exc}"
        ) from None
    if str(value.get("fingerprint", "")).upper() != signer:
        raise FederationError(f"the join {kind} names another key than the one that signed it")
    return dict(value)


def own_fingerprint(inst: Instance) -> str:
    return inst.signing.fingerprint


# --- the member ---------------------------------------------------------------------------------


def local_instansi(session: Session) -> list[str]:
    """The slugs of the instansi this installation runs itself (not KPK, not a mirror)."""
    return list(
        session.scalars(
            sa.select(Tenant.slug)
            .where(Tenant.federation_peer_id.is_(None), Tenant.is_hub.is_(False))
            .order_by(Tenant.slug)
        )
    )


def join_request(inst: Instance, name: str) -> bytes:
    """The member's join request: its name, the instansi it runs, and its public instance
    key, signed by it."""
    with inst.sessions() as session:
        instansi = local_instansi(session)
    return _signed_file(
        inst,
        {
            "kind": "request",
            "name": _check_name(name),
            "instansi": instansi,
            "fingerprint": own_fingerprint(inst),
            "public_key": inst.signing.public_key(),
        },
    )


def hub_peer(session: Session) -> FederationPeer | None:
    """This member's hub, while it is joined."""
    return session.scalar(
        sa.select(FederationPeer).where(
            FederationPeer.role == "hub", FederationPeer.status == "active"
        )
    )


def join(inst: Instance, ticket: bytes, hub_fingerprint: str) -> FederationPeer:
    """Join the hub whose ticket this is, if it is signed by the confirmed hub key. Every
    check comes first: a refused ticket changes nothing (not the client key of a hub this
    installation is joined to)."""
    value = _open_signed_file(inst, ticket, "ticket", hub_fingerprint)
    if str(value.get("member_fingerprint", "")) != own_fingerprint(inst):
        raise FederationError("this ticket was issued to another installation")
    try:
        name = _check_name(str(value["hub_name"]))
        auth = onion.parse_client_auth(str(value["client_auth"]))
    except (KeyError, onion.OnionError) as exc:
        raise FederationError(f"the ticket is incomplete: {exc}") from None
    if auth.hostname != value.get("hub_onion"):
        raise FederationError("the ticket's client key is for another onion than the hub's")
    with inst.sessions() as session:
        if hub_peer(session) is not None:
            raise FederationError("this installation is joined to a hub already: leave first")
        if session.scalar(sa.select(FederationPeer).where(
            FederationPeer.fingerprint == value["fingerprint"]
        )) is not None:
            raise FederationError(
                "this hub was joined before and left: a hub is not taken back, it issues a "
                "new key"
            )
        peer = FederationPeer(
            name=name,
            role="hub",
            fingerprint=str(value["fingerprint"]),
            public_key=str(value["public_key"]),
            onion_address=auth.hostname,
            status="active",
        )
        session.add(peer)
        session.flush()
        onion.store_hub_client_auth(inst, auth)
        try:
            session.commit()
        except BaseException:
            onion.forget_hub_client_auth(inst)
            raise
        session.refresh(peer)
        session.expunge(peer)
        return peer


def leave(inst: Instance) -> FederationPeer:
    """Leave the hub: its key stops being trusted and the client key is forgotten. What is
    still queued for it is dropped; joining again starts a new link."""
    with inst.sessions() as session:
        peer = hub_peer(session)
        if peer is None:
            raise FederationError("this installation is not joined to a hub")
        peer.status = "left"
        peer.revoked_at = utcnow()
        session.commit()
        onion.forget_hub_client_auth(inst)
        session.refresh(peer)
        session.expunge(peer)
        return peer


# --- the hub ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Added:
    peer: FederationPeer
    ticket: bytes  # holds the member's client key: handed over offline, never kept here


def add_member(inst: Instance, request: bytes, member_fingerprint: str) -> Added:
    """Add the member whose join request this is, if it is signed by the confirmed key."""
    value = _open_signed_file(inst, request, "request", member_fingerprint)
    name = _check_name(str(value.get("name", "")))
    fingerprint = str(value["fingerprint"])
    if fingerprint == own_fingerprint(inst):
        raise FederationError("this is this installation's own key")
    service = onion.federation_key(inst)
    client_public, client_private = onion.new_client_auth(service)
    with inst.sessions() as session:
        # A member may be a hub too (a regional hub: a province's installation, a member of
        # KPK's, with its kabupaten's as members): what they send it, it passes on to KPK.
        taken = session.scalar(
            sa.select(FederationPeer).where(
                (FederationPeer.name == name) | (FederationPeer.fingerprint == fingerprint)
            )
        )
        if taken is not None:
            raise FederationError(
                f"a member with this name or key exists already ({taken.name}, {taken.status})"
            )
        instansi = value.get("instansi", [])
        if not isinstance(instansi, list) or not all(isinstance(s, str) for s in instansi):
            raise FederationError("the join request's list of instansi is not a list of slugs")
        for slug in instansi:
            _check_free(session, slug)
        peer = FederationPeer(
            name=name,
            role="member",
            fingerprint=fingerprint,
            public_key=str(value["public_key"]),
            client_key=client_public,
            instansi=sorted(set(instansi)),
            status="active",
        )
        session.add(peer)
        session.flush()
        hub = session.scalar(sa.select(Tenant.slug).where(
            Tenant.is_hub, Tenant.federation_peer_id.is_(None)
        )) or ", ".join(local_instansi(session))
        ticket = _signed_file(
            inst,
            {
                "kind": "ticket",
                "hub_name": hub or "hub",
                "fingerprint": own_fingerprint(inst),
                "public_key": inst.signing.public_key(),
                "hub_onion": service.hostname,
                "member": name,
                "member_fingerprint": fingerprint,
                "client_auth": client_private,
            },
        )
        session.commit()
        session.refresh(peer)
        session.expunge(peer)
    return Added(peer=peer, ticket=ticket)


def _check_free(session: Session, slug: str) -> None:
    """An instansi slug no one else holds here: not a tenant of this installation, not
    allowed to another member (a revoked one's included: names are never taken back)."""
    if not (_NAME.fullmatch(slug) and 2 <= len(slug) <= 40):
        raise FederationError(f"{slug!r} is not an instansi slug")
    if session.scalar(
        sa.select(Tenant.id).where(Tenant.slug == slug, Tenant.federation_peer_id.is_(None))
    ) is not None:
        raise FederationError(f"{slug} is an instansi of this installation")
    if session.scalar(
        sa.select(Tenant.id).where(Tenant.slug == slug, Tenant.federation_peer_id.in_(
            sa.select(FederationPeer.id).where(FederationPeer.role == "hub")
        ))
    ) is not None:
        # A regional hub mirrors KPK and the institutions that handle its cases.
        raise FederationError(f"{slug} is an institution of this installation's hub")
    for peer in session.scalars(sa.select(FederationPeer).where(FederationPeer.role == "member")):
        if slug in peer.instansi_slugs:
            raise FederationError(f"{slug} is an instansi of member {peer.name}")


def _locked_member(session: Session, name: str) -> FederationPeer:
    peer = session.scalar(
        sa.select(FederationPeer)
        .where(FederationPeer.name == name, FederationPeer.role == "member")
        .with_for_update()
    )
    if peer is None:
        raise FederationError(f"no member {name!r}")
    return peer


def allow_instansi(inst: Instance, name: str, slug: str) -> None:
    """Let a member run one more instansi (a new tenant on its installation)."""
    with inst.sessions() as session:
        peer = _locked_member(session, name)
        _check_free(session, slug)
        peer.instansi = sorted({*peer.instansi_slugs, slug})
        session.commit()


def revoke_member(inst: Instance, name: str, control: str | None = None) -> onion.Revocation:
    """Revoke a member: refused by the endpoint from now on, dropped from the onion."""
    with inst.sessions() as session:
        # Locked: an exchange of this member being applied finishes first, and the next
        # one finds it revoked (wbs.federation.exchange checks again under the same lock).
        peer = _locked_member(session, name)
        if peer.status != "active":
            raise FederationError(f"{name} is {peer.status} already")
        peer.status = "revoked"
        peer.revoked_at = utcnow()
        peer.client_key = None
        session.commit()
    return onion.republish_federation(inst, control)


def members(session: Session) -> list[FederationPeer]:
    return list(
        session.scalars(
            sa.select(FederationPeer)
            .where(FederationPeer.role == "member")
            .order_by(FederationPeer.name)
        )
    )
