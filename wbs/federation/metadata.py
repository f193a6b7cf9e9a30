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

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crypto.errors import KeyRefused
from crypto.keyring import Keyring
from crypto.sketches import KEY_ID_RE, SketchFormatError, parse_signatures
from wbs.domain import CaseStatus, Channel, KpkSharing, TenantKind
from wbs.federation.wire import Message, canonical
from wbs.models import (
    Case,
    CaseSketch,
    FederationDigest,
    FederationOutbox,
    FederationPeer,
    RecipientKey,
    Source,
    Tenant,
)
from wbs.tenants import TenantError, add_recipient_key, current_keys, revoke_recipient_key

TENANT = "tenant"
CASE = "case"
CASE_GONE = "case_gone"
SKETCH = "sketch"
KPK_KEYS = "kpk_keys"
MEMBER_KINDS = (TENANT, CASE, CASE_GONE, SKETCH)
HUB_KINDS = (KPK_KEYS,)

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_CODE = re.compile(r"[a-z0-9_]{1,64}")


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


def tenant_body(tenant: Tenant) -> dict[str, Any]:
    return {
        "slug": tenant.slug,
        "name": tenant.name,
        "kind": str(tenant.kind),
        "province": tenant.province,
        "first_response_days": tenant.first_response_days,
        "categories": list(tenant.categories),
        "kpk_sharing": str(tenant.kpk_sharing),
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
    }


@dataclass
class _Queue:
    """The changes of one sync, gathered in memory and written in bulk (:meth:`write`): a
    statement per changed case would make a large catch-up crawl."""

    session: Session
    peer: FederationPeer
    digests: dict[str, str]
    seen: set[str] = field(default_factory=set)
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
        return sorted(set(self.digests) - self.seen)

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


def queue_changes(session: Session, hub: FederationPeer) -> int:
    """A member: queue for its hub every tenant and case whose metadata changed since it was
    last queued, and the removal of every case that is gone. Returns how many were queued;
    the caller commits (the digests and the queue together)."""
    queue = _open_queue(session, hub)
    tenants = {
        tenant.id: tenant
        for tenant in session.scalars(
            sa.select(Tenant)
            .where(Tenant.federation_peer_id.is_(None), Tenant.is_hub.is_(False))
            .order_by(Tenant.id)
        )
    }
    for tenant in tenants.values():
        queue.offer(f"tenant:{tenant.slug}", TENANT, tenant_body(tenant))
    if tenants:
        rows = session.execute(
            sa.select(*CASE_COLUMNS)
            .where(Case.tenant_id.in_(list(tenants)))
            .order_by(Case.id)
            .execution_options(yield_per=2000)
        )
        for row in rows:
            # Keyed by registration number (never changed, unique across the federation):
            # a removal names the case by it.
            queue.offer(
                f"case:{row.registration_number}",
                CASE,
                case_body(row, tenants[row.tenant_id].slug),
            )
        # After every case: a sketch names a case the hub must have by then.
        sketches = session.execute(
            sa.select(Case.registration_number, CaseSketch.key_id, CaseSketch.signatures)
            .join(Case, (Case.id == CaseSketch.case_id) & (Case.tenant_id == CaseSketch.tenant_id))
            .where(Case.tenant_id.in_(list(tenants)))
            .order_by(Case.id)
        )
        for number, key_id, signatures in sketches:
            queue.offer(
                f"sketch:{number}",
                SKETCH,
                {"number": number, "key_id": key_id, "signatures": json.loads(signatures)},
            )
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


def queue_kpk_keys(session: Session, member: FederationPeer) -> int:
    """A hub: queue KPK's current recipient keys for a member when they changed."""
    hub = session.scalar(
        sa.select(Tenant).where(Tenant.is_hub, Tenant.federation_peer_id.is_(None))
    )
    if hub is None:
        return 0
    body = {
        "hub": {"slug": hub.slug, "name": hub.name},
        "keys": [
            {"fingerprint": key.fingerprint, "public_key": key.public_key}
            for key in current_keys(session, hub)
        ],
    }
    queue = _open_queue(session, member)
    queue.offer("kpk_keys", KPK_KEYS, body)
    queue.write()
    return queue.queued


def outbox(session: Session, peer: FederationPeer, limit: int) -> tuple[Message, ...]:
    """The messages the peer has not confirmed yet, in order, at most ``limit``."""
    rows = session.execute(
        sa.select(FederationOutbox.seq, FederationOutbox.kind, FederationOutbox.body)
        .where(FederationOutbox.peer_id == peer.id, FederationOutbox.seq > peer.acked_seq)
        .order_by(FederationOutbox.seq)
        .limit(limit)
    )
    return tuple(Message(seq=row.seq, kind=row.kind, body=json.loads(row.body)) for row in rows)


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
    except ValueError:
        raise MessageRefused("malformed", f"{key}: not a time") from None
    if moment.tzinfo is None:
        raise MessageRefused("malformed", f"{key}: a time without its zone")
    return moment.astimezone(dt.UTC)


def _optional_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 100_000:
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

    def __init__(self, session: Session, member: FederationPeer, batch: Sequence[Message]):
        self.session = session
        self.member = member
        self.tenants: dict[str, Tenant] = {
            tenant.slug: tenant
            for tenant in session.scalars(
                sa.select(Tenant).where(Tenant.federation_peer_id == member.id)
            )
        }
        numbers = [
            str(message.body.get("number"))
            for message in batch
            if message.kind in (CASE, CASE_GONE, SKETCH)
        ]
        self.cases: dict[str, Case] = {}
        for chunk in _chunks(numbers, 500):
            for case in session.scalars(
                sa.select(Case).where(Case.registration_number.in_(chunk))
            ):
                self.cases[case.registration_number] = case
        self.sources: dict[int, str] = {}

    def apply(self, message: Message) -> None:
        if message.kind == TENANT:
            self._tenant(message.body)
        elif message.kind == CASE:
            self._case(message.body)
        elif message.kind == CASE_GONE:
            self._case_gone(message.body)
        elif message.kind == SKETCH:
            self._sketch(message.body)
        else:
            raise MessageRefused("unknown_kind", f"a member does not send {message.kind!r}")

    def _tenant(self, body: dict[str, Any]) -> None:
        slug = _text(body, "slug", 40)
        if not _SLUG.fullmatch(slug):
            raise MessageRefused("malformed", "slug: not a tenant slug")
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
        tenant = self.tenants.get(slug)
        if tenant is None:
            if self.session.scalar(sa.select(Tenant.id).where(Tenant.slug == slug)) is not None:
                raise MessageRefused(
                    "tenant_conflict", f"the slug {slug!r} belongs to another instansi here"
                )
            tenant = Tenant(slug=slug, federation_peer_id=self.member.id, is_hub=False)
            self.session.add(tenant)
            self.tenants[slug] = tenant
        tenant.name = _text(body, "name", 200)
        tenant.kind = kind
        tenant.province = _optional_text(body, "province", 100)
        tenant.first_response_days = days
        tenant.categories = list(categories)
        tenant.kpk_sharing = _choice(body, "kpk_sharing", KpkSharing)
        self.session.flush()

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

    def _case(self, body: dict[str, Any]) -> None:
        slug = _text(body, "tenant", 40)
        tenant = self.tenants.get(slug)
        if tenant is None:
            raise MessageRefused("unknown_tenant", f"no instansi {slug!r} of this member")
        number = _text(body, "number", 80)
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
        }
        case = self.cases.get(number)
        if case is None:
            if self.session.scalar(
                sa.select(Case.id).where(Case.registration_number == number)
            ) is not None:
                raise MessageRefused("case_conflict", f"{number} belongs to another instansi")
            case = Case(
                tenant_id=tenant.id,
                source_id=self._mirror_source(tenant),
                registration_number=number,
                unread=False,
                sent_to_kpk=False,
            )
            self.session.add(case)
            self.cases[number] = case
        elif case.tenant_id != tenant.id:
            raise MessageRefused("case_conflict", f"{number} belongs to another instansi")
        for name, value in values.items():
            setattr(case, name, value)

    def _case_gone(self, body: dict[str, Any]) -> None:
        number = _text(body, "number", 80)
        case = self.cases.get(number)
        if case is None:
            return  # never arrived, or gone already: the same outcome
        if case.tenant_id not in {tenant.id for tenant in self.tenants.values()}:
            raise MessageRefused("case_conflict", f"{number} belongs to another instansi")
        self.session.delete(case)
        del self.cases[case.registration_number]


    def _own_case(self, number: str) -> Case:
        case = self.cases.get(number)
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
    wanted: dict[str, str] = {}
    for key in keys:
        if not isinstance(key, dict):
            raise MessageRefused("malformed", "kpk_keys: a key is not an object")
        fingerprint = _text(key, "fingerprint", 40)
        public_key = _text(key, "public_key", 200_000)
        wanted[fingerprint.upper()] = public_key
    held = {key.fingerprint: key for key in session.scalars(
        sa.select(RecipientKey).where(RecipientKey.tenant_id == mirror.id)
    )}
    for fingerprint, public_key in wanted.items():
        if fingerprint in held:
            continue
        try:
            added = add_recipient_key(session, keyring, mirror, public_key, owner="KPK (hub)")
        except (KeyRefused, TenantError) as exc:
            raise MessageRefused("bad_key", f"KPK key {fingerprint}: {exc}") from None
        if added.fingerprint != fingerprint:
            raise MessageRefused("bad_key", f"the key sent as {fingerprint} is another key")
    for fingerprint, key in held.items():
        if fingerprint not in wanted and key.revoked_at is None:
            revoke_recipient_key(session, mirror, fingerprint)
