"""Cases handled across installations: KPK takes over a member's shared case, or forwards a
case to a member's instansi, and the pelapor keeps one codename wherever it is handled.

On the hub a member's case is a mirror case (:mod:`wbs.federation.metadata`); KPK takes it
over (:mod:`wbs.takeover`, the ciphertext copied as in one deployment: it is encrypted to
KPK's keys) and may forward its own case to a member's instansi (:mod:`wbs.forwarding`: the
signed key list holds the instansi's keys, sent with its ``tenant`` message; the package is
checked as in one deployment and becomes a case of the instansi's mirror, with a number the
hub draws from the range kept for it, :data:`wbs.models.FEDERATION_NUMBERS`). What the hub
then tells each member, found by difference at each exchange like everything on the link:

* ``case_in`` to the member whose instansi KPK forwarded a case to: the case (category, MCP
  area, channel, whether shared with KPK, the forwarder's name and number, the pelapor's reply
  PUBLIC key) after its items (``shared_item`` parts, the package's ciphertext as checked on
  the hub). The member opens it as its own case, with that number, linked from a mirror of
  the forwarding case: its investigators read it on their workstation, as a forwarded case.
* ``handled`` to the member whose case it was: the chain of cases that handle it now (each
  institution's name, kind and current recipient keys, the case's number and status, taken
  over or forwarded). The member marks its case *diteruskan*, read-only, and keeps a mirror
  case per link, so the pelapor's page names who handles the report and its status.
* the replies on those cases (``shared_item``) to the member where the pelapor reads them
  (KPK's, and the receiving member's, which reach the hub as that member's items), and the
  pelapor's follow-ups, which the member stores on the handler's mirror encrypted to the
  handler's keys, to the hub and on to the member that handles the case.

An item is never sent back to where it came from (the receiver records it as the sender's
in its digests). Each side checks every item without decrypting: its size and hash, and that
whom it is for can read it (the pelapor's reply key for a reply; the handler's keys for a
follow-up). A member never receives another member's cases: only the one forwarded to it,
and of the handlers of its own cases, their names, keys, numbers and statuses.
"""

from __future__ import annotations

import datetime as dt
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from wbs.context import Context
from wbs.coordination import claim_case
from wbs.deadlines import record_first_response
from wbs.domain import REGISTRATION_PREFIX, CaseStatus, Channel, EventKind, TenantKind
from wbs.federation import metadata
from wbs.federation.metadata import MessageRefused
from wbs.federation.wire import Message
from wbs.forwarding import MAX_LINKS, handling_chain, linked_source
from wbs.instance import Instance
from wbs.intake import new_case_row
from wbs.models import Case, Event, FederationPeer, Reply, Source, Tenant
from wbs.sharing import log_share
from wbs.tenancy import TenantScope
from wbs.tenants import current_keys

HANDLED = "handled"
CASE_IN = "case_in"


# --- the hub: what a member is told ---------------------------------------------------------------


def _keys(session: Session, tenant: Tenant) -> list[dict[str, str]]:
    return [
        {"fingerprint": key.fingerprint, "public_key": key.public_key}
        for key in current_keys(session, tenant)
    ]


def _tenant_entry(session: Session, tenant: Tenant) -> dict[str, Any]:
    return {"tenant": tenant.slug, "name": tenant.name, "kind": str(tenant.kind),
            "keys": _keys(session, tenant)}


def queue_for_member(session: Session, member: FederationPeer, inst: Instance) -> int:
    """A hub: queue for ``member`` what changed in the handling of its cases and of the cases
    forwarded to it (see the module's text). Returns how many messages; the caller commits."""
    queue = metadata._open_queue(session, member)
    mirrors = sa.select(Tenant.id).where(Tenant.federation_peer_id == member.id)
    gpg = inst.config.gpg_binary
    # Cases KPK forwarded to the member's instansi: their items, then the case.
    forwarded = list(session.scalars(
        sa.select(Case)
        .where(Case.tenant_id.in_(mirrors), Case.linked_from_case_id.is_not(None))
        .order_by(Case.id)
    ))
    for case in forwarded:
        key = f"case_in:{case.registration_number}"
        if key not in queue.digests:
            _queue_case_in(session, queue, inst, case)
            queue.added.append({"peer_id": member.id, "key": key, "digest": "sent"})
            queue.digests[key] = "sent"
    # The pelapor's follow-ups on those cases (from the member where the pelapor reads).
    for key, number, kind, row in metadata._item_rows(
        session, Case.id.in_([case.id for case in forwarded]), replies=False
    ):
        metadata._offer_item(queue, inst.store, gpg, key, number, kind, row, None)
    # The member's cases handled elsewhere now: who handles them, and their replies.
    handled = session.scalars(
        sa.select(Case)
        .where(Case.tenant_id.in_(mirrors), Case.linked_to_case_id.is_not(None),
               Case.linked_from_case_id.is_(None))
        .order_by(Case.id)
    )
    followers: list[int] = []
    for case in handled:
        tenant = session.get(Tenant, case.tenant_id)
        if tenant is None:  # pragma: no cover - a tenant with cases cannot be removed
            continue
        chain = handling_chain(Context(inst, session, tenant), case)
        if not chain:
            continue
        queue.offer(f"handled:{case.registration_number}", HANDLED, {
            "number": case.registration_number,
            "chain": [
                {**_tenant_entry(session, step.tenant), "number": step.case.registration_number,
                 "status": str(step.case.status), "shared": bool(step.case.sent_to_kpk),
                 "how": "taken_over" if step.taken_over else "forwarded"}
                for step in chain
            ],
        })
        followers += [step.case.id for step in chain]
    for key, number, kind, row in metadata._item_rows(session, Case.id.in_(followers)):
        if kind == "reply":
            metadata._offer_item(queue, inst.store, gpg, key, number, kind, row, None)
    queue.write()
    return queue.queued


def _queue_case_in(session: Session, queue: metadata._Queue, inst: Instance, case: Case) -> None:
    origin = session.get(Case, case.linked_from_case_id)
    origin_tenant = session.get(Tenant, origin.tenant_id) if origin is not None else None
    source = session.get(Source, case.source_id)
    if origin is None or origin_tenant is None or source is None:
        return  # pragma: no cover - a forwarded case keeps its origin and source
    items = []
    for key, number, kind, row in metadata._item_rows(session, Case.id == case.id):
        item = metadata._offer_item(
            queue, inst.store, inst.config.gpg_binary, key, number, kind, row, None
        )
        if item is not None:
            items.append({name: value for name, value in item.items() if name != "number"})
    tenant = session.get(Tenant, case.tenant_id)
    assert tenant is not None  # noqa: S101 - the case's own tenant
    queue.push(CASE_IN, {
        "number": case.registration_number,
        "tenant": tenant.slug,
        "from": {**_tenant_entry(session, origin_tenant), "number": origin.registration_number},
        "category": case.category,
        "mcp_area": case.mcp_area,
        "channel": str(case.channel),
        "shared": bool(case.sent_to_kpk),
        "reply_key": source.reply_public_key,
        "items": items,
    })


# --- a member: what the hub says ------------------------------------------------------------------


class HubWriter:
    """Applies the hub's messages on a member (one batch): KPK's keys, the handling of the
    member's cases, cases forwarded to it, and items of those."""

    def __init__(self, inst: Instance, session: Session, hub: FederationPeer) -> None:
        self.inst = inst
        self.session = session
        self.hub = hub
        self.stored: list[str] = []
        self.completed: list[Path] = []

    def reset(self) -> None:
        self.discard_stored()
        self.completed.clear()

    def apply(self, message: Message) -> None:
        stored = len(self.stored)
        try:
            self._apply(message)
        except BaseException:
            for path in self.stored[stored:]:
                self.inst.store.discard(path)
            del self.stored[stored:]
            raise

    def _apply(self, message: Message) -> None:
        if message.kind == metadata.KPK_KEYS:
            metadata.apply_kpk_keys(self.session, self.inst.keyring, self.hub, message.body)
        elif message.kind == HANDLED:
            self._handled(message.body)
        elif message.kind == CASE_IN:
            self._case_in(message.body)
        elif message.kind == metadata.SHARED_ITEM:
            self._item(message.body)
        else:
            raise MessageRefused("unknown_kind", f"a hub does not send {message.kind!r}")

    # -- the institutions of the other side

    def _mirror(self, entry: dict[str, Any]) -> Tenant:
        """The tenant here that stands for an institution of the other side: KPK's mirror,
        or a mirror of another installation's instansi (its name, kind and keys)."""
        slug = metadata._text(entry, "tenant", 40)
        tenant = self.session.scalar(sa.select(Tenant).where(Tenant.slug == slug))
        if tenant is not None and tenant.federation_peer_id != self.hub.id:
            raise MessageRefused(
                "tenant_conflict",
                f"{slug!r} is an instansi of this installation: a case handed back to it over "
                "the link is not taken",
            )
        if tenant is not None and tenant.is_hub:
            return tenant  # KPK's keys come with kpk_keys
        kind = metadata._choice(entry, "kind", TenantKind)
        if kind == TenantKind.HUB:
            raise MessageRefused("malformed", "KPK's tenant is not mirrored twice")
        name = metadata._text(entry, "name", 200)
        if tenant is None:
            if not metadata._SLUG.fullmatch(slug):
                raise MessageRefused("malformed", "tenant: not a slug")
            tenant = Tenant(slug=slug, name=name, kind=kind, is_hub=False,
                            federation_peer_id=self.hub.id)
            self.session.add(tenant)
            self.session.flush()
            self.inst.store.ensure_tenant(slug)
        else:
            tenant.name, tenant.kind = name, kind
        metadata.sync_keys(self.session, self.inst.keyring, tenant, entry.get("keys"),
                           f"{slug} (federation)")
        return tenant

    def _chain_tenant(self, entry: dict[str, Any]) -> Tenant:
        """A link's institution: one of this installation's own (KPK handed the case back
        to it), or a mirror of the other side's."""
        slug = metadata._text(entry, "tenant", 40)
        own = self.session.scalar(sa.select(Tenant).where(
            Tenant.slug == slug, Tenant.federation_peer_id.is_(None), Tenant.is_hub.is_(False)
        ))
        return own if own is not None else self._mirror(entry)

    def _own_tenant(self, slug: str) -> Tenant:
        tenant = self.session.scalar(sa.select(Tenant).where(Tenant.slug == slug))
        if tenant is None or tenant.federation_peer_id is not None or tenant.is_hub:
            raise MessageRefused("unknown_tenant", f"no instansi {slug!r} here")
        return tenant

    def _case_number(self, body: dict[str, Any], tenant: Tenant, key: str = "number") -> str:
        number = metadata._text(body, key, 80)
        if not number.startswith(f"{REGISTRATION_PREFIX}-{tenant.slug.upper()}-"):
            raise MessageRefused("not_allowed", f"{number} is not a number of {tenant.slug}")
        return number

    def _by_number(self, number: str) -> Case | None:
        return self.session.scalar(sa.select(Case).where(Case.registration_number == number))

    # -- handled

    def _handled(self, body: dict[str, Any]) -> None:
        """The member's case is handled by the chain of cases the hub names. Only a case the
        member shared with KPK or forwarded to KPK, and KPK first: the hub cannot take any
        other case of the member away (nor link the member's own cases to one another)."""
        origin = self._by_number(metadata._text(body, "number", 80))
        if origin is None:
            raise MessageRefused("unknown_case", "no such case here")
        origin_tenant = self.session.get(Tenant, origin.tenant_id)
        if origin_tenant is None or origin_tenant.federation_peer_id is not None:
            raise MessageRefused("unknown_case", f"{origin.registration_number} is not ours")
        source = self.session.get(Source, origin.source_id)
        chain = body.get("chain")
        if source is None or not isinstance(chain, list) or not 1 <= len(chain) <= MAX_LINKS:
            raise MessageRefused("malformed", "handled: a chain of 1 to 10 links")
        # Forwarded to KPK from here: the case in KPK's mirror that the package made.
        sent = self._case_by_id(origin.linked_to_case_id)
        if sent is not None and not (sent.intake_package and self._is_kpk(sent.tenant_id)):
            sent = None
        if not origin.sent_to_kpk and sent is None:
            raise MessageRefused(
                "not_allowed",
                f"{origin.registration_number} was neither shared with nor forwarded to KPK",
            )
        seen = {origin.id}
        previous = origin
        for index, entry in enumerate(chain):
            if not isinstance(entry, dict):
                raise MessageRefused("malformed", "handled: a link is not an object")
            tenant = self._chain_tenant(entry)
            if index == 0 and not self._is_kpk(tenant.id):
                raise MessageRefused("not_allowed", "KPK handles a case first elsewhere")
            number = self._case_number(entry, tenant)
            status = metadata._choice(entry, "status", CaseStatus)
            step = self._by_number(number)
            if index == 0 and sent is not None and step is None:
                # The number this side drew for KPK's case was taken on the hub, which drew
                # another: the case keeps the hub's.
                sent.registration_number = number
                step = sent
            if tenant.federation_peer_id is None:
                # Handed back to this installation: its case_in made it, after the mirror
                # of the case KPK handed back.
                if (step is None or step.tenant_id != tenant.id
                        or step.linked_from_case_id != previous.id
                        or not self._is_mirror(previous.tenant_id)):
                    raise MessageRefused("case_conflict", f"{number} did not come back here")
            elif step is None:
                step = self._mirror_case(tenant, number, origin, source, previous, entry)
            elif step.tenant_id != tenant.id or step.linked_from_case_id not in (
                None, previous.id
            ):
                raise MessageRefused("case_conflict", f"{number} is another case here")
            if step.id in seen:
                raise MessageRefused("malformed", "handled: a chain that loops")
            seen.add(step.id)
            # A mirror made by a case_in before this told where it came from.
            step.linked_from_case_id = previous.id
            if previous.linked_to_case_id != step.id:
                self._link(previous, step, tenant, origin, entry)
            if tenant.federation_peer_id is None:
                previous = step  # this installation's own case: its status is its own
                continue
            if step.status != status:
                TenantScope(self.session, tenant).add(Event(
                    case_id=step.id, kind=EventKind.STATUS_CHANGED, from_status=step.status,
                    to_status=status,
                ))
                step.status = status
            step.sent_to_kpk = bool(metadata._optional_bool(entry, "shared"))
            previous = step

    def _case_by_id(self, case_id: int | None) -> Case | None:
        return None if case_id is None else self.session.get(Case, case_id)

    def _is_mirror(self, tenant_id: int) -> bool:
        tenant = self.session.get(Tenant, tenant_id)
        return tenant is not None and tenant.federation_peer_id == self.hub.id

    def _is_kpk(self, tenant_id: int) -> bool:
        tenant = self.session.get(Tenant, tenant_id)
        return tenant is not None and tenant.is_hub and tenant.federation_peer_id == self.hub.id

    def _mirror_case(
        self, tenant: Tenant, number: str, origin: Case, source: Source, previous: Case,
        entry: dict[str, Any],
    ) -> Case:
        ctx = Context(self.inst, self.session, tenant)
        linked = linked_source(ctx, source, tenant)
        step = Case(
            tenant_id=tenant.id, source_id=linked.id, registration_number=number,
            category=origin.category, mcp_area=origin.mcp_area, channel=origin.channel,
            status=CaseStatus.BARU, unread=False,
            sent_to_kpk=bool(metadata._optional_bool(entry, "shared")),
            first_response_due=origin.first_response_due, closure_due=origin.closure_due,
            linked_from_case_id=previous.id,
        )
        self.session.add(step)
        self.session.flush()
        ctx.scope.add(Event(case_id=step.id, kind=EventKind.CASE_CREATED,
                            to_status=CaseStatus.BARU))
        return step

    def _link(
        self, previous: Case, step: Case, tenant: Tenant, origin: Case, entry: dict[str, Any]
    ) -> None:
        """``previous`` is handled by ``step`` from now on, on record in its log."""
        previous_tenant = self.session.get(Tenant, previous.tenant_id)
        assert previous_tenant is not None  # noqa: S101 - the case's own tenant
        scope = TenantScope(self.session, previous_tenant)
        if not claim_case(self.session, scope, previous.id, step.id):
            # Forwarded here meanwhile (to another of this installation's instansi).
            raise MessageRefused(
                "handled_here", f"{previous.registration_number} is handled here already"
            )
        self.session.refresh(previous, ["linked_to_case_id"])
        now = dt.datetime.now(dt.UTC)
        taken_over = entry.get("how") == "taken_over"
        words = (f"Diambil alih oleh {tenant.name}" if taken_over
                 else f"Diteruskan ke {tenant.name}")
        if previous.id == origin.id:
            scope.add(Event(case_id=previous.id,
                            kind=EventKind.TAKEN_OVER if taken_over else EventKind.FORWARDED,
                            note=f"{words} ({step.registration_number})", created_at=now))
            if taken_over:
                previous.taken_over_at = now
            record_first_response(previous, now, self.inst.calendar)
            previous.forward_requested_at = None
        if previous.status != CaseStatus.DITERUSKAN:
            scope.add(Event(case_id=previous.id, kind=EventKind.STATUS_CHANGED,
                            from_status=previous.status, to_status=CaseStatus.DITERUSKAN,
                            note=words, created_at=now))
            previous.status = CaseStatus.DITERUSKAN

    # -- case_in

    def _case_in(self, body: dict[str, Any]) -> None:
        """A case KPK forwarded to one of this installation's instansi."""
        tenant = self._own_tenant(metadata._text(body, "tenant", 40))
        number = self._case_number(body, tenant)
        held = self._by_number(number)
        if held is not None:
            if held.tenant_id == tenant.id and self._forwarded_here(held):
                return  # sent again after the link started over: received already
            raise MessageRefused("case_conflict", f"{number} exists here")
        sender = body.get("from")
        items = body.get("items")
        if not isinstance(sender, dict) or not isinstance(items, list) or not items:
            raise MessageRefused("malformed", "case_in: from and items")
        origin_tenant = self._mirror(sender)
        origin_number = self._case_number(sender, origin_tenant)
        armored = metadata._text(body, "reply_key", 100_000)
        source = metadata.reply_source(self.session, self.inst.keyring, tenant, armored)
        origin_source = metadata.reply_source(
            self.session, self.inst.keyring, origin_tenant, armored
        )
        ctx = Context(self.inst, self.session, tenant)
        case = new_case_row(
            ctx, source.id, metadata._text(body, "category", 64),
            metadata._optional_text(body, "mcp_area", 64),
            to_kpk=bool(metadata._optional_bool(body, "shared")),
        )
        case.registration_number = number
        case.channel = metadata._choice(body, "channel", Channel)
        origin = self._by_number(origin_number) or Case(
            tenant_id=origin_tenant.id, source_id=origin_source.id,
            registration_number=origin_number, category=case.category,
            mcp_area=case.mcp_area, channel=case.channel, status=CaseStatus.DITERUSKAN,
            unread=False, sent_to_kpk=False, first_response_due=case.first_response_due,
            closure_due=case.closure_due,
        )
        if origin.tenant_id != origin_tenant.id or origin.linked_to_case_id is not None:
            raise MessageRefused("case_conflict", f"{origin_number} is another case here")
        self.session.add(origin)
        self.session.flush()
        case.linked_from_case_id = origin.id
        ctx.scope.add(case)
        self.session.flush()
        origin.linked_to_case_id = case.id
        metadata.complete_items(
            self.inst, self.session, self.hub.id, case, tenant.slug, items,
            {"reply": metadata.public_key_ids(self.inst.keyring, [armored]),
             "other": metadata.tenant_key_ids(self.session, self.inst.keyring, tenant.id)},
            self.stored, self.completed,
        )
        ctx.scope.add(Event(case_id=case.id, kind=EventKind.CASE_CREATED,
                            to_status=CaseStatus.BARU))
        ctx.scope.add(Event(
            case_id=case.id, kind=EventKind.FORWARD_RECEIVED,
            note=f"Dilimpahkan dari {origin_tenant.name} ({origin_number}) melalui federasi",
        ))
        if case.sent_to_kpk:
            log_share(ctx, case)

    def _item(self, body: dict[str, Any]) -> None:
        number = metadata._text(body, "number", 80)
        part = metadata.ItemPart.parse(body)
        if metadata.received_before(self.session, self.hub.id, part):
            return  # sent again after the link started over: stored already
        case = self._by_number(number)
        staging = metadata.stage_part(self.inst, self.hub.id, part, number)
        if staging is None:
            return
        if case is None:
            return  # an item of a case_in, which follows its items: it takes it from staging
        tenant = self.session.get(Tenant, case.tenant_id)
        assert tenant is not None  # noqa: S101 - the case's own tenant
        if tenant.federation_peer_id == self.hub.id and part.kind == "reply":
            # A reply of the institution handling the pelapor's case: for the reply key.
            source = self.session.get(Source, case.source_id)
            armored = source.reply_public_key if source is not None else ""
            readers = metadata.public_key_ids(self.inst.keyring, [armored])
        elif (tenant.federation_peer_id is None and part.kind in ("message", "file")
              and self._forwarded_here(case)):
            # The pelapor's follow-up on a case forwarded here: for this instansi's keys.
            readers = metadata.tenant_key_ids(self.session, self.inst.keyring, tenant.id)
        else:
            staging.unlink(missing_ok=True)
            raise MessageRefused("not_allowed", f"no such item is added to {number} here")
        self._store(case, tenant, staging, part, readers)
        if part.kind != "reply":
            case.unread = True
            case.last_activity_at = dt.datetime.now(dt.UTC)
            TenantScope(self.session, tenant).add(
                Event(case_id=case.id, kind=EventKind.SUBMISSION_ADDED)
            )

    def _forwarded_here(self, case: Case) -> bool:
        if case.linked_from_case_id is None:
            return False
        origin = self.session.get(Case, case.linked_from_case_id)
        if origin is None:
            return False
        tenant = self.session.get(Tenant, origin.tenant_id)
        return tenant is not None and tenant.federation_peer_id == self.hub.id

    def _store(
        self, case: Case, tenant: Tenant, staging: Path, part: metadata.ItemPart,
        readers: frozenset[str],
    ) -> None:
        self.completed.append(staging)
        number = case.registration_number
        try:
            metadata.check_staged(staging, part, number)
            if not metadata.ciphertext_readers(staging, self.inst.config.gpg_binary) & readers:
                raise MessageRefused("not_readable",
                                     f"an item of {number} cannot be read by whom it is for")
        except MessageRefused:
            staging.unlink(missing_ok=True)
            raise
        row = metadata.store_staged(self.inst, self.session, case, tenant.slug, staging, part,
                                    self.stored)
        if isinstance(row, Reply) and tenant.federation_peer_id is None:
            row.read_by_source = True  # a reply of the package: the pelapor read it before
        # Came from the hub: never sent back to it, nor stored twice.
        metadata.mark_received(self.session, self.hub.id, part, row)

    def discard_stored(self) -> None:
        for path in self.stored:
            self.inst.store.discard(path)
        self.stored.clear()

    def settle(self) -> None:
        """The batch was committed: the staging files of its items go, and any of the hub's
        left unfinished for a week."""
        for staging in self.completed:
            staging.unlink(missing_ok=True)
        self.completed.clear()
        cutoff = time.time() - metadata.STAGING_DAYS * 86400
        for staging in metadata._staging_dir(self.inst).glob(f"{self.hub.id}-*.part"):
            with suppress(FileNotFoundError):
                if staging.stat().st_mtime < cutoff:
                    staging.unlink()

