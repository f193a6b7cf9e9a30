"""What travels over the federation link, and nothing else; queued on one side, applied on
the other.

Member to hub, the handling metadata a hub reads of its own deployment's tenants
(:mod:`wbs.monitoring`): each instansi (``tenant``: name, kind, province, deadline, categories)
and each case (``case``: registration number, category, MCP area, status, channel, the
jurisdiction hint, the day it arrived, deadlines, first response, closure), ``case_gone``
when a case no longer exists, and each case's keyed similarity sketch (``sketch``, as the
member's workstation uploaded it: :mod:`wbs.sketches`), so KPK finds duplicates across
installations as it does within one. Never a source, an account, an assignment, a note, a flag of an
investigator's inbox, a file or its size. Hub to member: KPK's current recipient keys
(``kpk_keys``), which the member encrypts reports sent to KPK with.

**Queued by difference, not by hook.** :func:`queue_changes` compares each tenant's and case's
message body with the digest of what was last queued (:class:`FederationDigest`) and queues
the changed ones, so no code path that changes a case can forget to tell the hub. It runs
when the link syncs (a timer in production), never when a pelapor acts, so the times on the
link say nothing about when a report arrived; dates travel as the days they are at rest.

**Applied on the hub into mirrors.** A member's instansi becomes a *mirror tenant* on the hub
(``Tenant.federation_peer_id``: no accounts, keys, onion or drop box), its cases rows of that
tenant, so KPK's dashboard, map and statistics count them as their own deployment's. A member
writes only into its own mirrors: a slug or registration number held by the hub itself or by
another member is refused (logged), never overwritten.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from crypto.errors import KeyRefused
from crypto.keyring import Keyring
from crypto.padding import FRAMINGS
from crypto.recipients import NotAnEncryptedMessage, ciphertext_key_ids, key_id
from crypto.sketches import KEY_ID_RE, SketchFormatError, parse_signatures
from wbs.context import Context
from wbs.coordination import claim_case
from wbs.domain import (
    REGISTRATION_PREFIX,
    CaseStatus,
    Channel,
    EventKind,
    KpkSharing,
    SubmissionKind,
    TenantKind,
)
from wbs.federation.wire import Message, canonical
from wbs.forwarding import MAX_LINKS
from wbs.intake import IntakeClosed, ensure_space, new_case_row
from wbs.models import (
    Case,
    CaseSketch,
    Event,
    FederationDigest,
    FederationOutbox,
    FederationPeer,
    RecipientKey,
    Reply,
    Source,
    Submission,
    Tenant,
    utc_today_start,
)
from wbs.store import Store
from wbs.tenancy import TenantScope

if TYPE_CHECKING:
    from wbs.instance import Instance
from wbs.tenants import TenantError, add_recipient_key, current_keys, revoke_recipient_key

TENANT = "tenant"
CASE = "case"
CASE_GONE = "case_gone"
SKETCH = "sketch"
SHARED_ITEM = "shared_item"
# A case this member's investigators forwarded to KPK (a forwarding package uploaded here):
# its items travel first, as shared_item parts, then this (wbs.federation.handling).
CASE_OUT = "case_out"
KPK_KEYS = "kpk_keys"
MEMBER_KINDS = (TENANT, CASE, CASE_GONE, SKETCH, SHARED_ITEM, CASE_OUT)
# A shared item travels in parts of this size (one message each, read from the store when
# sent, never copied into the queue); an envelope carries at most ENVELOPE_DATA of them.
CHUNK = 4 * 1024 * 1024
ENVELOPE_DATA = 16 * 1024 * 1024
ITEM_KINDS = ("form", "file", "message", "reply")
MAX_ITEM_BYTES = 64 * 1024**3
# Unfinished staging files older than this are removed.
STAGING_DAYS = 7
HUB_KINDS = (KPK_KEYS,)

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_CODE = re.compile(r"[a-z0-9_]{1,64}")
_HEX = re.compile(r"[0-9a-f]+")


class ItemUnreadable(RuntimeError):
    """A member's shared item cannot be read now (an I/O error, not a deletion)."""


class NoSpace(RuntimeError):
    """The hub's disk is at its floor: the batch is refused whole and sent again later."""


class MessageRefused(ValueError):
    """A message signed by its sender but refused for its content (logged; the link goes on:
    its sequence number is used, so one bad message cannot stop every later one)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _digest(kind: str, body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({"kind": kind, "body": body})).hexdigest()


def _day(value: dt.datetime | dt.date | None) -> str | None:
    if value is None:
        return None
    return (value.date() if isinstance(value, dt.datetime) else value).isoformat()


def _moment(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat()


# --- queueing -------------------------------------------------------------------------------------


def tenant_body(tenant: Tenant, keys: Sequence[RecipientKey] = ()) -> dict[str, Any]:
    """An instansi as the hub mirrors it, with its current recipient PUBLIC keys: KPK's
    workstation encrypts a case it forwards to the instansi to them (the signed key list of
    :mod:`wbs.forwarding`), and a pelapor's follow-up on a case handled there goes to them."""
    return {
        "slug": tenant.slug,
        "name": tenant.name,
        "kind": str(tenant.kind),
        "province": tenant.province,
        "first_response_days": tenant.first_response_days,
        "categories": list(tenant.categories),
        "kpk_sharing": str(tenant.kpk_sharing),
        "keys": [{"fingerprint": key.fingerprint, "public_key": key.public_key} for key in keys],
    }


CASE_COLUMNS = (
    Case.id,
    Case.tenant_id,
    Case.registration_number,
    Case.category,
    Case.mcp_area,
    Case.status,
    Case.channel,
    Case.kpk_hint,
    Case.received_at,
    Case.first_response_due,
    Case.closure_due,
    Case.first_response_at,
    Case.first_response_days,
    Case.first_response_workdays,
    Case.first_response_in_time,
    Case.closed_at,
    Case.sent_to_kpk,
    # The pelapor's reply PUBLIC key, of a case shared with KPK only (see case_body).
    sa.case((Case.sent_to_kpk, Source.reply_public_key), else_=None).label("reply_key"),
)


def case_body(row: Any, slug: str) -> dict[str, Any]:
    return {
        "tenant": slug,
        "number": row.registration_number,
        "category": row.category,
        "mcp_area": row.mcp_area,
        "status": str(row.status),
        "channel": str(row.channel),
        "kpk_hint": row.kpk_hint,
        "received": _day(row.received_at),
        "first_response_due": _day(row.first_response_due),
        "closure_due": _day(row.closure_due),
        "first_response_at": _moment(row.first_response_at),
        "first_response_days": row.first_response_days,
        "first_response_workdays": row.first_response_workdays,
        "first_response_in_time": row.first_response_in_time,
        "closed_at": _moment(row.closed_at),
        "shared": bool(row.sent_to_kpk),
        # A case shared with KPK carries the pelapor's reply PUBLIC key (never the source's
        # id): KPK may take the case over or forward it, and its replies, or those of the
        # institution it forwards the case to, must reach the pelapor with the same codename,
        # as in one deployment (the hub's KPK reads the key there too).
        **({"reply_key": row.reply_key} if row.sent_to_kpk and row.reply_key else {}),
    }


@dataclass
class _Queue:
    """The changes of one sync, gathered in memory and written in bulk (:meth:`write`): a
    statement per changed case would make a large catch-up crawl."""

    session: Session
    peer: FederationPeer
    digests: dict[str, str]
    seen: set[str] = field(default_factory=set)
    # Registration numbers of cases that do not travel yet (received today).
    held: set[str] = field(default_factory=set)
    queued: int = 0
    outbox: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    added: list[dict[str, Any]] = field(default_factory=list)

    def offer(self, key: str, kind: str, body: dict[str, Any]) -> None:
        self.seen.add(key)
        digest = _digest(kind, body)
        if self.digests.get(key) == digest:
            return
        self.push(kind, body)
        row = {"peer_id": self.peer.id, "key": key, "digest": digest}
        (self.changed if key in self.digests else self.added).append(row)
        self.digests[key] = digest

    def push(self, kind: str, body: dict[str, Any]) -> None:
        self.peer.sent_seq += 1
        self.outbox.append(
            {
                "peer_id": self.peer.id,
                "seq": self.peer.sent_seq,
                "kind": kind,
                "body": canonical(body).decode(),
            }
        )
        self.queued += 1

    def gone(self) -> list[str]:
        """Keys not seen this time: what no longer exists here. Never the marks of what came
        from the peer (items received, kept so nothing is stored twice or sent back)."""
        return sorted(
            key for key in set(self.digests) - self.seen
            if not key.startswith(RECEIVED_PREFIX) and not self.digests[key].startswith(FROM)
        )

    def write(self) -> None:
        if self.outbox:
            self.session.execute(sa.insert(FederationOutbox), self.outbox)
        if self.added:
            self.session.execute(sa.insert(FederationDigest), self.added)
        if self.changed:
            # ORM bulk UPDATE by primary key (peer_id, key): one executemany.
            self.session.execute(sa.update(FederationDigest), self.changed)
        self.outbox, self.added, self.changed = [], [], []


def _open_queue(session: Session, peer: FederationPeer) -> _Queue:
    # The peer row locked (PostgreSQL; SQLite has one writer anyway): two syncs at once must
    # not hand out the same sequence numbers.
    session.refresh(peer, with_for_update=True)
    digests = dict(
        session.execute(
            sa.select(FederationDigest.key, FederationDigest.digest).where(
                FederationDigest.peer_id == peer.id
            )
        ).all()
    )
    return _Queue(session, peer, digests)


def queue_changes(
    session: Session,
    hub: FederationPeer,
    *,
    store: Store | None = None,
    keyring: Keyring | None = None,
) -> int:
    """A member: queue for its hub every tenant and case whose metadata changed since it was
    last queued, the removal of every case that is gone, and the items of cases shared with
    KPK not sent yet (with ``store``). Returns how many messages were queued; the caller
    commits (the digests and the queue together)."""
    queue = _open_queue(session, hub)
    # Its own instansi; and on a regional hub, its members' too (the mirrors they write here,
    # passed on to KPK as they are, a revoked member's included: KPK keeps what it learnt).
    members = sa.select(FederationPeer.id).where(FederationPeer.role == "member")
    tenants = {
        tenant.id: tenant
        for tenant in session.scalars(
            sa.select(Tenant)
            .where(
                Tenant.federation_peer_id.is_(None) | Tenant.federation_peer_id.in_(members),
                Tenant.is_hub.is_(False),
            )
            .order_by(Tenant.id)
        )
    }
    for tenant in tenants.values():
        # A regional hub's members' instansi travel without keys: a case KPK forwarded to
        # one would stop at the regional hub (handling across installations is not relayed),
        # so KPK gets no key list for it and cannot make the package.
        relayed = tenant.federation_peer_id is not None
        body = tenant_body(tenant, [] if relayed else current_keys(session, tenant))
        queue.offer(f"tenant:{tenant.slug}", TENANT, {**body, "relayed": True} if relayed else body)
    if tenants:
        rows = session.execute(
            sa.select(*CASE_COLUMNS)
            .join(Source, (Source.id == Case.source_id) & (Source.tenant_id == Case.tenant_id))
            .where(Case.tenant_id.in_(list(tenants)))
            .order_by(Case.id)
            .execution_options(yield_per=2000)
        )
        today = utc_today_start()
        # Cases KPK forwarded here over the link: the hub made them, it knows their day.
        mirrors = sa.select(Tenant.id).where(Tenant.federation_peer_id == hub.id)
        origin = aliased(Case)
        forwarded = set(session.scalars(sa.select(Case.id).where(
            Case.tenant_id.in_(list(tenants)),
            Case.linked_from_case_id.in_(sa.select(origin.id).where(origin.tenant_id.in_(mirrors))),
        )))
        for row in rows:
            # Keyed by registration number (never changed, unique across the federation):
            # a removal names the case by it.
            key = f"case:{row.registration_number}"
            if key not in queue.digests and row.received_at >= today and row.id not in forwarded:
                # A case first travels once the day it arrived is over: the hub learns the
                # day of a report, as it is kept at rest, never the sync that followed it.
                # Its sketch and items wait with it.
                queue.held.add(row.registration_number)
                continue
            queue.offer(key, CASE, case_body(row, tenants[row.tenant_id].slug))
        # After every case: a sketch names a case the hub must have by then.
        sketches = session.execute(
            sa.select(Case.registration_number, CaseSketch.key_id, CaseSketch.signatures)
            .join(Case, (Case.id == CaseSketch.case_id) & (Case.tenant_id == CaseSketch.tenant_id))
            .where(Case.tenant_id.in_(list(tenants)))
            .order_by(Case.id)
        )
        for number, key_id, signatures in sketches:
            if number in queue.held:
                continue
            queue.offer(
                f"sketch:{number}",
                SKETCH,
                {"number": number, "key_id": key_id, "signatures": json.loads(signatures)},
            )
        if store is not None and keyring is not None:
            _queue_shared_items(session, queue, list(tenants), store, keyring)
    gone = queue.gone()
    for key in gone:
        if key.startswith("case:"):
            queue.push(CASE_GONE, {"number": key.removeprefix("case:")})
    queue.write()
    for chunk in _chunks(gone, 500):
        session.execute(
            sa.delete(FederationDigest).where(
                FederationDigest.peer_id == hub.id, FederationDigest.key.in_(chunk)
            )
        )
    return queue.queued


def kpk_key_ids(session: Session, keyring: Keyring) -> frozenset[str]:
    """The encryption key ids of every key KPK has had here (current or revoked): an item is
    KPK's to read if any of them can."""
    hub = session.scalar(sa.select(Tenant).where(Tenant.is_hub))
    return frozenset() if hub is None else tenant_key_ids(session, keyring, hub.id)


def _item_rows(
    session: Session, cases: sa.ColumnElement[bool], *, replies: bool = True
) -> list[tuple[str, str, str, Any]]:
    """The items of the cases ``cases`` selects: (digest key, registration number, kind, row),
    submissions then replies, each in the order they were stored."""
    rows: list[tuple[str, str, str, Any]] = [
        (f"item:s{row.id}", row.registration_number, str(row.kind), row)
        for row in session.execute(
            sa.select(Submission.id, Submission.kind, Submission.store_path, Submission.size,
                      Submission.framing, Submission.created_at, Case.registration_number)
            .join(Case, (Case.id == Submission.case_id) & (Case.tenant_id == Submission.tenant_id))
            .where(cases).order_by(Submission.id)
        )
    ]
    if replies:
        rows += [
            (f"item:r{row.id}", row.registration_number, "reply", row)
            for row in session.execute(
                sa.select(Reply.id, Reply.store_path, Reply.size, Reply.framing, Reply.created_at,
                          Case.registration_number)
                .join(Case, (Case.id == Reply.case_id) & (Case.tenant_id == Reply.tenant_id))
                .where(cases).order_by(Reply.id)
            )
        ]
    return rows


def _queue_shared_items(
    session: Session, queue: _Queue, tenant_ids: list[int], store: Store, keyring: Keyring
) -> None:
    """Each item of a case shared with KPK, once, in parts: its ciphertext as it is stored,
    which is readable by KPK's keys already (the share encrypted it to them). An item that
    is not (stored before the case was shared) is never sent: KPK could not read it.

    And the items of a case handled across installations (:mod:`wbs.federation.handling`):
    the pelapor's follow-ups on a case handled at another installation (stored here on its
    mirror, encrypted to the handler's keys), and what this installation's investigators add
    to a case KPK forwarded here (their replies, encrypted to the pelapor's reply key). Items
    that came over the link are recorded as the hub's already and never go back."""
    mirrors = sa.select(Tenant.id).where(Tenant.federation_peer_id == queue.peer.id)
    origin = aliased(Case)
    from_hub = sa.select(origin.id).where(origin.tenant_id.in_(mirrors))
    waiting = _queue_cases_out(session, queue, tenant_ids, store, keyring)
    # A case forwarded to KPK from here is named by its package too (the hub may have given
    # KPK's case another number).
    packages: dict[str, str | None] = {
        number: package for number, package in session.execute(
            sa.select(Case.registration_number, Case.intake_package)
            .where(Case.tenant_id.in_(mirrors), Case.intake_package.is_not(None))
        )
    }
    relayed = _item_rows(session, Case.tenant_id.in_(mirrors)) + [
        # Of a case KPK forwarded here, only what this side adds: its investigators' replies
        # (the pelapor's follow-ups come from the hub).
        row for row in _item_rows(
            session, Case.tenant_id.in_(tenant_ids) & Case.linked_from_case_id.in_(from_hub)
        ) if row[2] == "reply"
    ]
    for key, number, kind, row in relayed:
        if number in waiting:
            continue  # a case forwarded to KPK that has not gone yet: its items go with it
        if kind == "reply" and key in queue.digests:
            # The handler's replies came from the hub (and only from it): kept as its own.
            queue.seen.add(key)
            continue
        package = packages.get(number)
        _offer_item(queue, store, keyring.gpg_binary, key, number, kind, row, None,
                    {"package": package} if package else None)
    kpk = kpk_key_ids(session, keyring)
    shared = Case.tenant_id.in_(tenant_ids) & Case.sent_to_kpk.is_(True)
    for key, number, kind, row in _item_rows(session, shared):
        if key not in queue.seen:
            _offer_item(queue, store, keyring.gpg_binary, key, number, kind, row, kpk)


def item_name(key: str) -> str:
    """An item's name on the link (the receiver's staging file): from its key, not its id."""
    return hashlib.sha256(f"peluit/federation-item\0{key}".encode()).hexdigest()[:32]


def _queue_cases_out(
    session: Session, queue: _Queue, tenant_ids: list[int], store: Store, keyring: Keyring
) -> set[str]:
    """Each case this member's investigators forwarded to KPK (its linked case in KPK's
    mirror here, made from their package), once: its items, then the case. Returns the
    numbers of those that wait (their origin has not travelled yet: the hub must know it)."""
    origin = aliased(Case)
    rows = session.execute(
        sa.select(Case, origin.registration_number, Tenant.slug)
        .join(origin, origin.id == Case.linked_from_case_id)
        .join(Tenant, Tenant.id == origin.tenant_id)
        .where(
            Case.tenant_id.in_(
                sa.select(Tenant.id).where(Tenant.federation_peer_id == queue.peer.id)
            ),
            Case.intake_package.is_not(None),
            origin.tenant_id.in_(tenant_ids),
        )
        .order_by(Case.id)
    ).all()
    waiting: set[str] = set()
    for case, origin_number, origin_slug in rows:
        # By the package: the hub may give KPK's case another number (taken there).
        key = f"case_out:{case.intake_package}"
        if origin_number in queue.held:
            waiting.add(case.registration_number)
            continue
        queue.seen.add(key)
        if key in queue.digests:
            continue
        items = []
        for item_key_, number, kind, row in _item_rows(session, Case.id == case.id):
            item = _offer_item(queue, store, keyring.gpg_binary, item_key_, number, kind, row,
                               None, {"package": case.intake_package or ""})
            if item is not None:
                items.append({name: value for name, value in item.items() if name != "number"})
        source = session.get(Source, case.source_id)
        tenant = session.get(Tenant, case.tenant_id)
        if source is None or tenant is None:  # pragma: no cover - a case keeps both
            continue
        queue.push(CASE_OUT, {
            "number": case.registration_number,
            "package": case.intake_package,
            "tenant": tenant.slug,
            "from": {"tenant": origin_slug, "number": origin_number},
            "category": case.category,
            "mcp_area": case.mcp_area,
            "channel": str(case.channel),
            "reply_key": source.reply_public_key,
            "items": items,
        })
        queue.added.append({"peer_id": queue.peer.id, "key": key, "digest": "sent"})
        queue.digests[key] = "sent"
    return waiting


def _offer_item(
    queue: _Queue, store: Store, gpg: str, key: str, number: str, kind: str, row: Any,
    readers: frozenset[str] | None, extra: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """Queue one item in parts unless it went (or came) over the link already, or is not for
    ``readers`` (when given: an item none of them can read is withheld, for good). Returns
    what the parts say of the item when it was queued now."""
    if number in queue.held:
        return None
    queue.seen.add(key)
    if queue.digests.get(key, "").endswith(f":{file_tag(row.store_path)}"):
        return None  # sent (or withheld, or received from the peer) already
    path = store.resolve(row.store_path)
    try:
        readable = readers is None or bool(readers & ciphertext_key_ids(path, gpg))
        digest = hashlib.sha256()
        with path.open("rb") as data:
            while chunk := data.read(CHUNK):
                digest.update(chunk)
        size = path.stat().st_size
    except NotAnEncryptedMessage:
        readable, size = False, 0
    except OSError:
        return None  # unreadable now (I/O error): no digest, so the next sync tries again
    # The file's name with the state: a row id SQLite gives again after a deletion names
    # another file, so a new item is never taken for one sent before.
    state = f"{'sent' if readable else 'withheld'}:{file_tag(row.store_path)}"
    (queue.changed if key in queue.digests else queue.added).append(
        {"peer_id": queue.peer.id, "key": key, "digest": state}
    )
    queue.digests[key] = state
    if not readable:
        return None
    parts = max(1, -(-size // CHUNK))
    item = {
        "number": number, "item": item_name(key), "kind": kind, "framing": row.framing,
        "created": _day(row.created_at), "size": size, "sha256": digest.hexdigest(),
        **(extra or {}),
    }
    for part in range(parts):
        queue.push(SHARED_ITEM, {**item, "part": part, "parts": parts, "path": row.store_path})
    return item


def queue_kpk_keys(session: Session, member: FederationPeer) -> int:
    """A hub: queue KPK's current recipient keys for a member when they changed (a regional
    hub: the keys its own hub sent it)."""
    hub = session.scalar(sa.select(Tenant).where(Tenant.is_hub))
    if hub is None:
        return 0
    body = {
        "hub": {"slug": hub.slug, "name": hub.name},
        # KPK's own installation, or a regional hub passing KPK's keys on (which cannot hand
        # a case on to KPK: the member's forwarding to KPK would stop there).
        "direct": hub.federation_peer_id is None,
        "keys": [
            {"fingerprint": key.fingerprint, "public_key": key.public_key}
            for key in current_keys(session, hub)
        ],
    }
    queue = _open_queue(session, member)
    queue.offer("kpk_keys", KPK_KEYS, body)
    queue.write()
    return queue.queued


def outbox(
    session: Session, peer: FederationPeer, limit: int, store: Store | None = None
) -> tuple[Message, ...]:
    """The messages the peer has not confirmed yet, in order, at most ``limit``; a shared
    item's part with its ciphertext read from ``store``, up to :data:`ENVELOPE_DATA` a batch."""
    rows = session.execute(
        sa.select(FederationOutbox.seq, FederationOutbox.kind, FederationOutbox.body)
        .where(FederationOutbox.peer_id == peer.id, FederationOutbox.seq > peer.acked_seq)
        .order_by(FederationOutbox.seq)
        .limit(limit)
    )
    messages: list[Message] = []
    carried = 0
    for row in rows:
        body = json.loads(row.body)
        if row.kind == SHARED_ITEM:
            if messages and carried + CHUNK > ENVELOPE_DATA:
                break
            body["data"] = _part_of(store, body.pop("path"), int(body["part"]))
            carried += CHUNK
        messages.append(Message(seq=row.seq, kind=row.kind, body=body))
    return tuple(messages)


def _part_of(store: Store | None, path: str, part: int) -> str | None:
    """One part of a stored item, base64; None if it is gone (the case was deleted since):
    the hub then records the item as withdrawn."""
    if store is None:
        return None
    try:
        with store.open(path) as data:
            data.seek(part * CHUNK)
            return base64.b64encode(data.read(CHUNK)).decode("ascii")
    except FileNotFoundError:
        return None
    except OSError as exc:
        # Not gone, only unreadable now: the exchange stops here and the next one resends.
        raise ItemUnreadable(f"a shared item cannot be read now ({exc.strerror})") from exc


def confirm(session: Session, peer: FederationPeer, through: int) -> None:
    """The peer applied everything up to ``through``: those messages are no longer kept."""
    if through > peer.acked_seq:
        peer.acked_seq = through
    session.execute(
        sa.delete(FederationOutbox).where(
            FederationOutbox.peer_id == peer.id, FederationOutbox.seq <= peer.acked_seq
        )
    )


# --- applying -------------------------------------------------------------------------------------


def _text(body: dict[str, Any], key: str, limit: int) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise MessageRefused("malformed", f"{key}: a text of at most {limit} characters")
    return value


def _optional_text(body: dict[str, Any], key: str, limit: int) -> str | None:
    return None if body.get(key) is None else _text(body, key, limit)


def _date(body: dict[str, Any], key: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(body.get(key)))
    except ValueError:
        raise MessageRefused("malformed", f"{key}: not a date") from None


def _optional_date(body: dict[str, Any], key: str) -> dt.date | None:
    return None if body.get(key) is None else _date(body, key)


def _when(body: dict[str, Any], key: str) -> dt.datetime | None:
    value = body.get(key)
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(str(value))
        if moment.tzinfo is None:
            raise MessageRefused("malformed", f"{key}: a time without its zone")
        return moment.astimezone(dt.UTC)
    except (ValueError, OverflowError) as exc:
        if isinstance(exc, MessageRefused):
            raise
        raise MessageRefused("malformed", f"{key}: not a time") from None


def _optional_int(body: dict[str, Any], key: str, limit: int = 100_000) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
        raise MessageRefused("malformed", f"{key}: a small whole number")
    return value


def _optional_bool(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise MessageRefused("malformed", f"{key}: true or false")
    return value


def _choice(body: dict[str, Any], key: str, enum: Any) -> Any:
    try:
        return enum(body.get(key))
    except ValueError:
        raise MessageRefused("malformed", f"{key}: not a known value") from None


class MirrorWriter:
    """Applies a member's metadata messages into its mirrors on the hub (one batch)."""

    def __init__(
        self,
        session: Session,
        member: FederationPeer,
        batch: Sequence[Message],
        inst: Instance | None = None,
    ):
        self.session = session
        self.member = member
        self.inst = inst
        # Items put into the store by this batch (removed if it is rolled back) and the
        # staging files of the items completed (removed once it is committed).
        self.stored: list[str] = []
        self.completed: list[Path] = []
        self._kpk: frozenset[str] | None = None
        self.tenants: dict[str, Tenant] = {
            tenant.slug: tenant
            for tenant in session.scalars(
                sa.select(Tenant).where(Tenant.federation_peer_id == member.id)
            )
        }
        numbers = [
            str(message.body.get("number"))
            for message in batch
            if message.kind in (CASE, CASE_GONE, SKETCH, SHARED_ITEM)
        ]
        self.cases: dict[str, Case] = {}
        for chunk in _chunks(numbers, 500):
            for case in session.scalars(
                sa.select(Case).where(Case.registration_number.in_(chunk))
            ):
                self.cases[case.registration_number] = case
        self.sources: dict[int, str] = {}
        self._reply_sources: dict[str, str] = {}
        self._start = (dict(self.tenants), dict(self.cases), dict(self.sources))

    def reset(self) -> None:
        """The batch's savepoint was rolled back: forget what was cached and stored since."""
        self.tenants, self.cases, self.sources = self._start
        self.tenants, self.cases, self.sources = (
            dict(self.tenants), dict(self.cases), dict(self.sources)
        )
        self.discard_stored()
        self.completed.clear()
        self._reply_sources.clear()

    def apply(self, message: Message) -> None:
        """Apply one message; if it fails, forget what this writer cached or stored for it
        (the caller rolls its savepoint back)."""
        tenants, cases, sources = dict(self.tenants), dict(self.cases), dict(self.sources)
        stored = len(self.stored)
        try:
            self._apply(message)
        except BaseException:
            self.tenants, self.cases, self.sources = tenants, cases, sources
            self._reply_sources.clear()
            if self.inst is not None:
                for path in self.stored[stored:]:
                    self.inst.store.discard(path)
            del self.stored[stored:]
            raise

    def _apply(self, message: Message) -> None:
        if message.kind == TENANT:
            self._tenant(message.body)
        elif message.kind == CASE:
            self._case(message.body)
        elif message.kind == CASE_GONE:
            self._case_gone(message.body)
        elif message.kind == SKETCH:
            self._sketch(message.body)
        elif message.kind == SHARED_ITEM:
            self._shared_item(message.body)
        elif message.kind == CASE_OUT:
            self._case_out(message.body)
        else:
            raise MessageRefused("unknown_kind", f"a member does not send {message.kind!r}")

    def _tenant(self, body: dict[str, Any]) -> None:
        slug = _text(body, "slug", 40)
        if not _SLUG.fullmatch(slug):
            raise MessageRefused("malformed", "slug: not a tenant slug")
        if slug not in self.member.instansi_slugs:
            # Which instansi a member runs is the hub operator's decision (add-member,
            # allow), never the member's claim: a member naming another's instansi would
            # otherwise take its name, and its cases would be refused forever.
            raise MessageRefused("not_allowed", f"{slug!r} is not an instansi of this member")
        kind = _choice(body, "kind", TenantKind)
        if kind == TenantKind.HUB:
            raise MessageRefused("malformed", "a member's instansi cannot be the hub")
        categories = body.get("categories")
        if not isinstance(categories, list) or not all(
            isinstance(code, str) and _CODE.fullmatch(code) for code in categories
        ):
            raise MessageRefused("malformed", "categories: a list of codes")
        days = _optional_int(body, "first_response_days")
        if days is None or days < 1:
            raise MessageRefused("malformed", "first_response_days: at least one")
        values = {
            "name": _text(body, "name", 200),
            "kind": kind,
            "province": _optional_text(body, "province", 100),
            "first_response_days": days,
            "categories": list(categories),
            "kpk_sharing": _choice(body, "kpk_sharing", KpkSharing),
            "federation_relayed": bool(_optional_bool(body, "relayed")),
        }
        tenant = self.tenants.get(slug)
        if tenant is None:
            if self.session.scalar(sa.select(Tenant.id).where(Tenant.slug == slug)) is not None:
                raise MessageRefused(
                    "tenant_conflict", f"the slug {slug!r} belongs to another instansi here"
                )
            tenant = Tenant(slug=slug, federation_peer_id=self.member.id, is_hub=False, **values)
            self.session.add(tenant)
            self.session.flush()
            if self.inst is not None:
                # Its store folder now, at a sync's time, not at its first shared item's.
                self.inst.store.ensure_tenant(slug)
            self.tenants[slug] = tenant
        else:
            for name, value in values.items():
                setattr(tenant, name, value)
            self.session.flush()
        if self.inst is not None and "keys" in body:
            # The instansi's recipient keys: what KPK forwards to it is encrypted to them.
            sync_keys(self.session, self.inst.keyring, tenant, body["keys"], f"{slug} (member)")

    def _mirror_source(self, tenant: Tenant) -> str:
        """The one source row a mirror tenant's cases hang on: a placeholder without keys.
        The member never sends who reported (not even its derived source ids)."""
        found = self.sources.get(tenant.id)
        if found is not None:
            return found
        source_id = hashlib.sha256(f"peluit/federation-mirror\0{tenant.slug}".encode()).hexdigest()
        if self.session.get(Source, source_id) is None:
            self.session.add(
                Source(
                    id=source_id,
                    tenant_id=tenant.id,
                    reply_fingerprint="0" * 40,
                    reply_public_key="",
                    reply_secret_key="",
                )
            )
            self.session.flush()
        self.sources[tenant.id] = source_id
        return source_id

    def _case_source(self, tenant: Tenant, body: dict[str, Any]) -> str:
        """A shared case's source: the pelapor's reply PUBLIC key (KPK's replies, or those of
        the instansi KPK forwards the case to, are encrypted to it); the placeholder else."""
        if "reply_key" not in body or self.inst is None:
            return self._mirror_source(tenant)
        armored = _text(body, "reply_key", 100_000)
        found = self._reply_sources.get(armored)
        if found is None:
            found = reply_source(self.session, self.inst.keyring, tenant, armored).id
            self._reply_sources[armored] = found
        return found

    def _case(self, body: dict[str, Any]) -> None:
        slug = _text(body, "tenant", 40)
        tenant = self.tenants.get(slug)
        if tenant is None:
            raise MessageRefused("unknown_tenant", f"no instansi {slug!r} of this member")
        number = _text(body, "number", 80)
        if not number.startswith(f"{REGISTRATION_PREFIX}-{tenant.slug.upper()}-"):
            # A registration number names its instansi: a member cannot take another's.
            raise MessageRefused("not_allowed", f"{number} is not a number of {tenant.slug}")
        received = _date(body, "received")
        values = {
            "category": _text(body, "category", 64),
            "mcp_area": _optional_text(body, "mcp_area", 64),
            "status": _choice(body, "status", CaseStatus),
            "channel": _choice(body, "channel", Channel),
            "kpk_hint": _optional_bool(body, "kpk_hint"),
            "received_at": dt.datetime.combine(received, dt.time(), dt.UTC),
            "last_activity_at": dt.datetime.combine(received, dt.time(), dt.UTC),
            "first_response_due": _date(body, "first_response_due"),
            "closure_due": _optional_date(body, "closure_due"),
            "first_response_at": _when(body, "first_response_at"),
            "first_response_days": _optional_int(body, "first_response_days"),
            "first_response_workdays": _optional_int(body, "first_response_workdays"),
            "first_response_in_time": _optional_bool(body, "first_response_in_time"),
            "closed_at": _when(body, "closed_at"),
            # Shared with KPK: KPK's accounts read it, as a local case shared with KPK (its
            # items arrive as shared_item messages, readable by KPK's keys only).
            "sent_to_kpk": bool(_optional_bool(body, "shared")),
        }
        case = self.cases.get(number)
        if case is None:
            if self.session.scalar(
                sa.select(Case.id).where(Case.registration_number == number)
            ) is not None:
                raise MessageRefused("case_conflict", f"{number} belongs to another instansi")
            case = Case(
                tenant_id=tenant.id,
                source_id=self._case_source(tenant, body),
                registration_number=number,
                unread=False,
                sent_to_kpk=False,
            )
            self.session.add(case)
            self.cases[number] = case
        elif case.tenant_id != tenant.id:
            raise MessageRefused("case_conflict", f"{number} belongs to another instansi")
        elif "reply_key" in body and case.source_id == self._mirror_source(tenant):
            # Shared since it first travelled: the pelapor's reply key arrives now.
            case.source_id = self._case_source(tenant, body)
        for name, value in values.items():
            setattr(case, name, value)

    def _case_gone(self, body: dict[str, Any]) -> None:
        number = _text(body, "number", 80)
        case = self.cases.get(number)
        if case is None:
            return  # never arrived, or gone already: the same outcome
        if case.tenant_id not in {tenant.id for tenant in self.tenants.values()}:
            raise MessageRefused("case_conflict", f"{number} belongs to another instansi")
        if case.linked_to_case_id is not None or case.linked_from_case_id is not None:
            # Handled across installations: the cases linked to it would lose their way (the
            # pelapor's follow-ups, the replies). KPK keeps it.
            raise MessageRefused("linked", f"{number} is linked to a case handled elsewhere")
        self.session.delete(case)
        del self.cases[case.registration_number]


    def _own_case(self, number: str) -> Case:
        case = self.cases.get(number)
        if case is None:
            # Not named by a case message of this batch (a case_out's origin, say).
            case = self.session.scalar(sa.select(Case).where(Case.registration_number == number))
        if case is None or case.tenant_id not in {tenant.id for tenant in self.tenants.values()}:
            raise MessageRefused("unknown_case", f"{number} is no case of this member")
        return case

    def _sketch(self, body: dict[str, Any]) -> None:
        case = self._own_case(_text(body, "number", 80))
        key_id = _text(body, "key_id", 16)
        try:
            if not KEY_ID_RE.match(key_id):
                raise SketchFormatError("key_id must be 16 lower-case hex digits")
            signatures = parse_signatures(body.get("signatures"))
        except SketchFormatError as exc:
            raise MessageRefused("malformed", f"sketch: {exc}") from None
        encoded = json.dumps({part: list(values) for part, values in signatures.items()},
                             separators=(",", ":"))
        self.session.flush()  # the case row first, when it arrived in this batch
        row = self.session.get(CaseSketch, case.id)
        if row is None:
            self.session.add(CaseSketch(
                case_id=case.id, tenant_id=case.tenant_id, key_id=key_id, signatures=encoded,
            ))
        else:
            row.key_id, row.signatures = key_id, encoded


    def _shared_item(self, body: dict[str, Any]) -> None:
        """One part of an item of a case shared with KPK: written at its offset in a staging
        file (so a part applied again after a crash writes the same bytes), and with the last
        part, checked without decrypting (the whole size and hash; readable by KPK's keys)
        and put into the store as the mirror case's item, as KPK's copy of a local case is.

        Or an item of a case handled across installations (:mod:`wbs.federation.handling`):
        a reply of the member's investigators on a case KPK forwarded to it (readable by the
        pelapor's reply key), or the pelapor's follow-up on a case of the member's that is
        handled here or at another member now (readable by the handler's keys)."""
        if self.inst is None:
            raise MessageRefused("no_store", "items are not taken here")
        number = _text(body, "number", 80)
        package = body.get("package")
        part = ItemPart.parse(body)
        if received_before(self.session, self.member.id, part):
            return  # sent again after the link started over: stored already
        if isinstance(package, str):
            # A case the member forwarded to KPK, named by its package: KPK's case may have
            # another number here (the member's was taken).
            found = self._by_package(package)
            if found is not None:
                number = found.registration_number
        if (isinstance(package, str) and found is None) or self._for_case_out(number):
            # An item of a case the member forwards to KPK: its case_out follows and takes it
            # from staging.
            stage_part(self.inst, self.member.id, part, number)
            return
        case, readers, what = self._item_case(self.inst, number, part.kind)
        staging = stage_part(self.inst, self.member.id, part, number)
        if staging is None:
            return
        self.completed.append(staging)
        try:
            check_staged(staging, part, number)
            if not ciphertext_readers(staging, self.inst.config.gpg_binary) & readers():
                raise MessageRefused(what, f"an item of {number} cannot be read by whom it is for")
        except MessageRefused:
            staging.unlink(missing_ok=True)
            raise
        row = store_staged(self.inst, self.session, case, self._slug(case), staging, part,
                           self.stored)
        # Never sent back to the member it came from (wbs.federation.handling), nor stored
        # twice.
        mark_received(self.session, self.member.id, part, row)

    def _by_package(self, package: str) -> Case | None:
        """KPK's case that a package of this member's opened (a case it forwarded to KPK)."""
        kpk = self._kpk_tenant()
        found = None if kpk is None else self.session.scalar(
            sa.select(Case).where(Case.tenant_id == kpk.id, Case.intake_package == package)
        )
        if found is None or found.linked_from_case_id is None:
            return None
        origin = self.session.get(Case, found.linked_from_case_id)
        own = {tenant.id for tenant in self.tenants.values()}
        return found if origin is not None and origin.tenant_id in own else None

    def _kpk_tenant(self) -> Tenant | None:
        return self.session.scalar(
            sa.select(Tenant).where(Tenant.is_hub, Tenant.federation_peer_id.is_(None))
        )

    def _for_case_out(self, number: str) -> bool:
        """A number of KPK's that no case here has yet: a case the member forwards to KPK."""
        kpk = self._kpk_tenant()
        return (
            kpk is not None
            and number.startswith(f"{REGISTRATION_PREFIX}-{kpk.slug.upper()}-")
            and number not in self.cases
            and self.session.scalar(
                sa.select(Case.id).where(Case.registration_number == number)
            ) is None
        )

    def _case_out(self, body: dict[str, Any]) -> None:
        """A case the member's investigators forwarded to KPK, with a package their
        workstation made (encrypted to KPK's keys, signed by the instansi's key, checked by
        the member's server): KPK's own case from now on, linked from the member's case's
        mirror, its items checked again without decrypting (size, hash, readable by KPK's
        keys; a reply by the pelapor's)."""
        inst = self.inst
        kpk = self._kpk_tenant()
        if inst is None or kpk is None:
            raise MessageRefused("no_store", "cases are not taken here")
        if _text(body, "tenant", 40) != kpk.slug:
            raise MessageRefused("not_allowed", "a member forwards cases to KPK only")
        number = _text(body, "number", 80)
        if not number.startswith(f"{REGISTRATION_PREFIX}-{kpk.slug.upper()}-"):
            raise MessageRefused("not_allowed", f"{number} is not a number of {kpk.slug}")
        sender = body.get("from")
        items = body.get("items")
        if not isinstance(sender, dict) or not isinstance(items, list) or not items:
            raise MessageRefused("malformed", "case_out: from and items")
        origin = self._own_case(_text(sender, "number", 80))
        package = _text(body, "package", 32)
        if not (len(package) == 32 and _HEX.fullmatch(package)):
            raise MessageRefused("malformed", "case_out: package")
        again = self.session.scalar(
            sa.select(Case).where(Case.tenant_id == kpk.id, Case.intake_package == package)
        )
        if again is not None:
            if again.linked_from_case_id == origin.id:
                return  # sent again after the link started over: received already
            raise MessageRefused("case_conflict", f"package {package} opened another case")
        if origin.linked_to_case_id is not None:
            raise MessageRefused(
                "handled_elsewhere", f"{origin.registration_number} is handled elsewhere"
            )
        armored = _text(body, "reply_key", 100_000)
        source = reply_source(self.session, inst.keyring, kpk, armored)
        ctx = Context(inst, self.session, kpk)
        case = new_case_row(
            ctx, source.id, _text(body, "category", 64), _optional_text(body, "mcp_area", 64),
            to_kpk=False,
        )
        if self.session.scalar(
            sa.select(Case.id).where(Case.registration_number == number)
        ) is None:
            # The member's number (drawn from the range kept for it); if another member drew
            # it first, KPK's case keeps the one new_case_row drew, and the handling chain
            # tells the member.
            case.registration_number = number
        case.intake_package = package
        case.channel = _choice(body, "channel", Channel)
        case.linked_from_case_id = origin.id
        ctx.scope.add(case)
        self.session.flush()
        origin_tenant = next(t for t in self.tenants.values() if t.id == origin.tenant_id)
        origin_scope = TenantScope(self.session, origin_tenant)
        if not claim_case(self.session, origin_scope, origin.id, case.id):
            raise MessageRefused(
                "handled_elsewhere", f"{origin.registration_number} is handled elsewhere"
            )
        self.session.refresh(origin, ["linked_to_case_id"])
        complete_items(
            inst, self.session, self.member.id, case, kpk.slug, items,
            {"reply": public_key_ids(inst.keyring, [armored]),
             "other": tenant_key_ids(self.session, inst.keyring, kpk.id)},
            self.stored, self.completed,
        )
        now = dt.datetime.now(dt.UTC)
        ctx.scope.add(Event(case_id=case.id, kind=EventKind.CASE_CREATED,
                            to_status=CaseStatus.BARU, created_at=now))
        ctx.scope.add(Event(
            case_id=case.id, kind=EventKind.FORWARD_RECEIVED, created_at=now,
            note=f"Dilimpahkan dari {origin_tenant.name} ({origin.registration_number}) "
                 "melalui federasi",
        ))
        if origin.status != CaseStatus.DITERUSKAN:
            origin_scope.add(Event(
                case_id=origin.id, kind=EventKind.STATUS_CHANGED, from_status=origin.status,
                to_status=CaseStatus.DITERUSKAN, note=f"Diteruskan ke {kpk.name}", created_at=now,
            ))
            origin.status = CaseStatus.DITERUSKAN

    def _slug(self, case: Case) -> str:
        tenant = self.session.get(Tenant, case.tenant_id)
        if tenant is None:  # pragma: no cover - a case's tenant cannot go (the log refuses)
            raise MessageRefused("unknown_case", f"{case.registration_number} has no tenant")
        return tenant.slug

    def _item_case(
        self, inst: Instance, number: str, kind: str
    ) -> tuple[Case, Callable[[], frozenset[str]], str]:
        """The case an item of this member may be added to, who must be able to read it, and
        the refusal's reason when no one of them can."""
        case = self.cases.get(number)
        if case is None:
            case = self.session.scalar(sa.select(Case).where(Case.registration_number == number))
        if case is None:
            raise MessageRefused("unknown_case", f"{number} is no case of this member")
        own = {tenant.id for tenant in self.tenants.values()}
        if case.tenant_id in own and case.linked_from_case_id is None:
            # The member's own case shared with KPK: KPK must read what it is sent.
            if self._kpk is None:
                self._kpk = kpk_key_ids(self.session, inst.keyring)
            kpk = self._kpk
            return case, lambda: kpk, "not_for_kpk"
        if case.tenant_id in own:
            # A case KPK forwarded to the member: its investigators' replies to the pelapor;
            # and when it is shared with KPK, the pelapor's follow-ups there (KPK reads them).
            if kind != "reply" and case.sent_to_kpk:
                if self._kpk is None:
                    self._kpk = kpk_key_ids(self.session, inst.keyring)
                kpk_ids = self._kpk
                return case, lambda: kpk_ids, "not_for_kpk"
            if kind != "reply":
                raise MessageRefused("not_allowed", f"only replies are added to {number}")
            source = self.session.get(Source, case.source_id)
            reply_key = source.reply_public_key if source is not None else ""
            return case, lambda: public_key_ids(inst.keyring, [reply_key]), "not_for_pelapor"
        if kind not in ("message", "file") or not handles_for(self.session, case, own):
            raise MessageRefused("unknown_case", f"{number} is no case of this member")
        # The pelapor's follow-up on a case of the member handled here (or at another member)
        # now: for the handler's keys.
        return case, lambda: tenant_key_ids(self.session, inst.keyring, case.tenant_id), (
            "not_for_handler"
        )

    def discard_stored(self) -> None:
        """The batch was rolled back: its items leave the store too."""
        if self.inst is not None:
            for path in self.stored:
                self.inst.store.discard(path)
        self.stored.clear()

    def settle(self) -> None:
        """The batch was committed: the staging files of its completed items go, and any of
        this member's left unfinished for a week (an item withdrawn half-way, a crash between
        a commit and this cleanup)."""
        for staging in self.completed:
            staging.unlink(missing_ok=True)
        self.completed.clear()
        if self.inst is None:
            return
        cutoff = time.time() - STAGING_DAYS * 86400
        for staging in _staging_dir(self.inst).glob(f"{self.member.id}-*.part"):
            with suppress(FileNotFoundError):
                if staging.stat().st_mtime < cutoff:
                    staging.unlink()


# --- items over the link (both directions) -------------------------------------------------------


@dataclass(frozen=True)
class ItemPart:
    """One part of an item as a message carries it (``shared_item``)."""

    item: str
    kind: str
    framing: str
    created: dt.date
    size: int
    sha256: str
    part: int
    parts: int
    data: str | None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> ItemPart:
        item = _text(body, "item", 32)
        digest = _text(body, "sha256", 64)
        framing = _text(body, "framing", 16)
        kind = _text(body, "kind", 16)
        size = _optional_int(body, "size", MAX_ITEM_BYTES) or 0
        part = _optional_int(body, "part", MAX_ITEM_BYTES) or 0
        parts = _optional_int(body, "parts", MAX_ITEM_BYTES) or 0
        if (
            not (_HEX.fullmatch(item) and _HEX.fullmatch(digest))
            or kind not in ITEM_KINDS
            or framing not in FRAMINGS
        ):
            raise MessageRefused("malformed", "shared item: a field is out of range")
        if not (0 < size <= MAX_ITEM_BYTES and parts == -(-size // CHUNK) and 0 <= part < parts):
            raise MessageRefused("malformed", "shared item: size and parts disagree")
        data = body.get("data")
        return cls(item, kind, framing, _date(body, "created"), size, digest, part, parts,
                   None if data is None else str(data))


# Digest keys of the items received from a peer (its name for the item and its hash): an item
# sent again after the link started over (wbs.federation.exchange.reset_link) is not stored
# twice, and one the sender made anew after a restore (the same row id, other content) is.
RECEIVED_PREFIX = "in:"
# The digest of an item that came from the peer: it is the peer's, never sent back to it.
FROM = "from"


def file_tag(store_path: str) -> str:
    """A short name of a stored file, for a digest (which holds 64 characters)."""
    return hashlib.sha256(store_path.encode()).hexdigest()[:20]


def received_key(part: ItemPart) -> str:
    return f"{RECEIVED_PREFIX}{part.item}:{part.sha256}"


def received_before(session: Session, peer_id: int, part: ItemPart) -> bool:
    return session.get(FederationDigest, (peer_id, received_key(part))) is not None


def mark_received(session: Session, peer_id: int, part: ItemPart, row: Submission | Reply) -> None:
    """The item is stored here: never again from this peer, never back to it."""
    session.add(FederationDigest(peer_id=peer_id, key=received_key(part), digest="in"))
    key = item_key(row)
    found = session.get(FederationDigest, (peer_id, key))
    if found is None:
        session.add(FederationDigest(peer_id=peer_id, key=key,
                                     digest=f"{FROM}:{file_tag(row.store_path)}"))
    else:  # a digest of a row that had this id before (SQLite gives ids again)
        found.digest = f"{FROM}:{file_tag(row.store_path)}"


def staging_path(inst: Instance, peer_id: int, item: str) -> Path:
    return _staging_dir(inst) / f"{peer_id}-{item}.part"


def stage_part(inst: Instance, peer_id: int, part: ItemPart, number: str) -> Path | None:
    """Write one part at its offset in the item's staging file; the file once this was the
    last part, else None. A part applied again after a crash writes the same bytes."""
    staging = staging_path(inst, peer_id, part.item)
    if part.data is None:
        staging.unlink(missing_ok=True)
        raise MessageRefused("withdrawn", f"an item of {number} is gone")
    try:
        raw = base64.b64decode(part.data, validate=True)
    except ValueError:
        raise MessageRefused("malformed", "shared item: data is not base64") from None
    if len(raw) != min(CHUNK, part.size - part.part * CHUNK):
        raise MessageRefused("malformed", "shared item: a part of the wrong length")
    held = staging.stat().st_size if staging.exists() else 0
    if held < part.part * CHUNK:
        # Parts come in order (a part again after a crash lands on bytes already held):
        # a gap would make a sparse file of any size.
        staging.unlink(missing_ok=True)
        raise MessageRefused("malformed", "shared item: a part arrived before the one before")
    try:
        # The reporters' drop box comes first: below the disk floor nothing is staged,
        # and the batch is refused whole, to be sent again (nothing is lost).
        ensure_space(inst.store, inst.config.disk_floor_bytes, len(raw))
    except IntakeClosed as exc:
        raise NoSpace(str(exc)) from exc
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, raw, part.part * CHUNK)
        os.fsync(fd)
    finally:
        os.close(fd)
    return staging if part.part == part.parts - 1 else None


def check_staged(staging: Path, part: ItemPart, number: str) -> None:
    """The whole item is what its parts promised: its size and SHA-256."""
    found = hashlib.sha256()
    with staging.open("rb") as data:
        while chunk := data.read(CHUNK):
            found.update(chunk)
    if staging.stat().st_size != part.size or found.hexdigest() != part.sha256:
        raise MessageRefused("damaged", f"an item of {number} is damaged")


def ciphertext_readers(staging: Path, gpg_binary: str) -> frozenset[str]:
    """The key ids an item is encrypted to, read without any key (never decrypted)."""
    try:
        return frozenset(ciphertext_key_ids(staging, gpg_binary))
    except NotAnEncryptedMessage:
        raise MessageRefused("not_encrypted", "an item is not encrypted") from None


def store_staged(
    inst: Instance, session: Session, case: Case, slug: str, staging: Path, part: ItemPart,
    stored: list[str],
) -> Submission | Reply:
    """Put a checked item into the store (in ``slug``'s folder) as ``case``'s item; its path
    is added to ``stored`` (removed again if the batch is rolled back)."""
    path = inst.store.new_name(slug)
    with staging.open("rb") as data, inst.store.create(path) as out:
        stored.append(path)
        shutil.copyfileobj(data, out, CHUNK)
    day = dt.datetime.combine(part.created, dt.time(), dt.UTC)
    session.flush()
    row: Submission | Reply
    if part.kind == "reply":
        # Not read by the pelapor here: on a case handled across installations it is
        # passed on to the installation where the pelapor reads it.
        row = Reply(tenant_id=case.tenant_id, case_id=case.id, store_path=path, size=part.size,
                    framing=part.framing, created_at=day, read_by_source=False)
    else:
        row = Submission(tenant_id=case.tenant_id, case_id=case.id,
                         kind=SubmissionKind(part.kind), store_path=path, size=part.size,
                         framing=part.framing, created_at=day, seen=False)
    session.add(row)
    session.flush()
    return row


def complete_items(
    inst: Instance, session: Session, peer_id: int, case: Case, slug: str,
    items: list[Any], readers: dict[str, frozenset[str]], stored: list[str],
    completed: list[Path],
) -> None:
    """The items of a case that came over the link before it (``case_in``, ``case_out``),
    taken from staging: each whole, what it promised, readable by ``readers["reply"]`` (a
    reply) or ``readers["other"]``, stored as ``case``'s and remembered as received."""
    for entry in items:
        if not isinstance(entry, dict):
            raise MessageRefused("malformed", "an item is not an object")
        size = _optional_int(entry, "size", MAX_ITEM_BYTES) or 0
        parts = -(-size // CHUNK)
        part = ItemPart.parse({**entry, "part": parts - 1, "parts": parts})
        staging = staging_path(inst, peer_id, part.item)
        if received_before(session, peer_id, part):
            continue
        if not staging.exists():
            raise MessageRefused("malformed", f"item {part.item} did not arrive")
        completed.append(staging)
        try:
            check_staged(staging, part, case.registration_number)
            wanted = readers["reply" if part.kind == "reply" else "other"]
            if not ciphertext_readers(staging, inst.config.gpg_binary) & wanted:
                raise MessageRefused("not_readable", f"an item of {case.registration_number} "
                                     "cannot be read by whom it is for")
        except MessageRefused:
            staging.unlink(missing_ok=True)
            raise
        row = store_staged(inst, session, case, slug, staging, part, stored)
        if isinstance(row, Reply):
            row.read_by_source = True  # a reply of the package: the pelapor read it before
        mark_received(session, peer_id, part, row)


def item_key(row: Submission | Reply) -> str:
    """An item's name in a peer's digests: the peer has it (sent, or received from it)."""
    return f"item:{'r' if isinstance(row, Reply) else 's'}{row.id}"


def public_key_ids(keyring: Keyring, armored: Iterable[str]) -> frozenset[str]:
    """The encryption key ids of public keys (one expired since still counts: what it could
    read stays readable to its secret half)."""
    found: set[str] = set()
    for key in armored:
        if not key or key == "-":
            continue
        try:
            info = keyring.inspect_public_key(key)
        except KeyRefused:
            continue
        found |= {key_id(fpr) for fpr in info.encryption_fingerprints}
    return frozenset(found)


def tenant_key_ids(session: Session, keyring: Keyring, tenant_id: int) -> frozenset[str]:
    """The encryption key ids of every key a tenant has had here (current or revoked)."""
    return public_key_ids(keyring, session.scalars(
        sa.select(RecipientKey.public_key).where(RecipientKey.tenant_id == tenant_id)
    ))


def handles_for(session: Session, case: Case, origins: set[int]) -> bool:
    """Whether ``case`` handles a case of one of the tenants ``origins``: it was taken over
    or forwarded from one of them, directly or over links (A's case to KPK to B's)."""
    current = case
    for _ in range(MAX_LINKS):
        if current.linked_from_case_id is None:
            return False
        previous = session.get(Case, current.linked_from_case_id)
        if previous is None or previous.linked_to_case_id != current.id:
            return False
        if previous.tenant_id in origins:
            return True
        current = previous
    return False


def sync_keys(
    session: Session, keyring: Keyring, tenant: Tenant, keys: object, owner: str
) -> None:
    """Make a mirror tenant's recipient keys the ones the other side sent: new ones added
    (checked by gpg), missing ones revoked."""
    if not isinstance(keys, list):
        raise MessageRefused("malformed", "keys: a list")
    wanted: dict[str, str] = {}
    for key in keys:
        if not isinstance(key, dict):
            raise MessageRefused("malformed", "keys: a key is not an object")
        fingerprint = _text(key, "fingerprint", 40)
        wanted[fingerprint.upper()] = _text(key, "public_key", 200_000)
    held = {key.fingerprint: key for key in session.scalars(
        sa.select(RecipientKey).where(RecipientKey.tenant_id == tenant.id)
    )}
    for fingerprint, public_key in wanted.items():
        if fingerprint in held:
            continue
        try:
            added = add_recipient_key(session, keyring, tenant, public_key, owner=owner)
        except (KeyRefused, TenantError) as exc:
            raise MessageRefused("bad_key", f"key {fingerprint}: {exc}") from None
        if added.fingerprint != fingerprint:
            raise MessageRefused("bad_key", f"the key sent as {fingerprint} is another key")
    for fingerprint, key in held.items():
        if fingerprint not in wanted and key.revoked_at is None:
            revoke_recipient_key(session, tenant, fingerprint)


def reply_source(session: Session, keyring: Keyring, tenant: Tenant, armored: str) -> Source:
    """The source row of a pelapor in a tenant on the other side of the link: their reply
    PUBLIC key only, its id derived from the tenant and the key's fingerprint (the pelapor's
    source id never travels)."""
    try:
        info = keyring.inspect_public_key(armored)
    except KeyRefused as exc:
        raise MessageRefused("bad_key", f"the pelapor's reply key: {exc}") from None
    source_id = hashlib.sha256(
        f"peluit/federation-source\0{tenant.slug}\0{info.fingerprint}".encode()
    ).hexdigest()
    source = session.get(Source, source_id)
    if source is None:
        source = Source(id=source_id, tenant_id=tenant.id, reply_fingerprint=info.fingerprint,
                        reply_public_key=armored, reply_secret_key="")
        session.add(source)
        session.flush()
    elif source.tenant_id != tenant.id:
        raise MessageRefused("malformed", "a reply key's source belongs to another tenant")
    return source


def _staging_dir(inst: Instance) -> Path:
    # Ciphertext only (as the member stored it), in the instance, readable by its owner only.
    path = inst.config.instance_dir / "federation" / "incoming"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _chunks(values: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def apply_kpk_keys(
    session: Session, keyring: Keyring, hub: FederationPeer, body: dict[str, Any]
) -> None:
    """A member: KPK's current keys, kept on a mirror of the hub tenant, which is what the
    member's intake encrypts a report sent to KPK to (wbs.tenants.kpk_recipients)."""
    info = body.get("hub")
    keys = body.get("keys")
    if not isinstance(info, dict) or not isinstance(keys, list):
        raise MessageRefused("malformed", "kpk_keys: hub and keys")
    slug = _text(info, "slug", 40)
    local = session.scalar(sa.select(Tenant).where(Tenant.is_hub))
    if local is not None and local.federation_peer_id != hub.id:
        raise MessageRefused("hub_conflict", "this installation has a hub tenant of its own")
    mirror = local
    if mirror is None:
        if session.scalar(sa.select(Tenant.id).where(Tenant.slug == slug)) is not None:
            raise MessageRefused("tenant_conflict", f"the slug {slug!r} is taken here")
        mirror = Tenant(
            slug=slug,
            name=_text(info, "name", 200),
            kind=TenantKind.HUB,
            is_hub=True,
            federation_peer_id=hub.id,
        )
        session.add(mirror)
        session.flush()
    sync_keys(session, keyring, mirror, keys, "KPK (hub)")
    hub.kpk_direct = body.get("direct", True) is not False
