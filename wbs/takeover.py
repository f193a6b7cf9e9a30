"""Pengambilalihan: KPK takes over the handling of a case shared with it.

A coordination act between KPK and the instansi (UU 19/2019; ``docs/takeover.md``), recorded
on both sides. An account of KPK, on a case of another tenant shared with KPK (KPK's copy,
:class:`wbs.tenancy.SharedScope`), takes it over for a reason chosen from a list
(:class:`wbs.domain.TakeoverReason`: the grounds of UU 19/2019 Pasal 10A ayat (2) and KPK's
jurisdiction, never free text: the institution reads it at once and may be the office the
report is about). The server never decrypts:

* It opens a **linked case in KPK's tenant** the way a forwarding does (:mod:`wbs.forwarding`):
  the pelapor's linked source there (their reply public key only), a new registration number,
  deadlines in working days from today, ``linked_from_case_id`` and ``linked_to_case_id``.
* The linked case's items are **copies of the stored ciphertext** of the origin case's items,
  byte for byte, each into a new file of the store. That is only allowed because a shared case's
  items are encrypted to KPK's keys too: before anything is written, every item is read by
  ``crypto.recipients.ciphertext_key_ids`` (``gpg --list-packets`` in an empty home, no key) and
  must name at least one of KPK's current keys. An item that does not (KPK's keys changed since,
  or an item from before the share) refuses the whole takeover: only the origin's workstation
  can re-encrypt it, so the origin must forward the case (pelimpahan) instead.
* In one transaction (:func:`wbs.intake.committed_with_files`): the linked case with its items
  and entries (``case_created``, ``takeover_received``); the origin **claimed** by a
  conditional write (:func:`wbs.coordination.claim_case`: refused when a forwarding or another
  takeover claimed it first, on SQLite as on PostgreSQL); the origin's items **listed again**
  after the claim and compared with the ones copied (a follow-up that arrived meanwhile
  refuses the takeover, ``takeover_items_changed``: KPK tries again and copies it too);
  ``taken_over`` in both logs about the origin case; the origin becomes *diteruskan* and
  ``taken_over_at`` is set. Any failure rolls the rows back and removes every copied file:
  both cases stay as they were.

Why copies and not the forwarding package: KPK already holds what it needs to read the items
(they are encrypted to its keys), so no workstation has to decrypt and re-encrypt anything,
and the instansi, whose office a report may be about, cannot hold the takeover up. What the
copies do not change: the items stay readable by the origin's keys as well (they were the
origin's to read); every NEW item (a follow-up, KPK's replies) is KPK's alone, encrypted to
KPK's current keys and the pelapor's reply key, and the origin keeps metadata only: no status,
reply, download or export any more (:func:`wbs.casework.check_handles`,
:func:`wbs.casework.check_content_readable`).
"""

from __future__ import annotations

import datetime as dt
import shutil

from crypto.recipients import NotAnEncryptedMessage, ciphertext_key_ids, key_id
from wbs.casework import Refusal
from wbs.context import Context
from wbs.coordination import (
    check_kpk_on_shared_case,
    check_still_handled_there,
    claim_case,
    reason_code,
)
from wbs.deadlines import record_first_response
from wbs.domain import CaseStatus, EventKind, SubmissionKind, TakeoverReason, can_transition
from wbs.forwarding import linked_source
from wbs.intake import (
    IntakeClosed,
    committed_with_files,
    disk_was_full,
    ensure_space,
    new_case_row,
)
from wbs.items import Item, case_items
from wbs.matters import carry_forward
from wbs.models import Case, Event, Reply, Source, Submission, Tenant
from wbs.tenancy import TenantScope
from wbs.tenants import current_keys

_CHUNK = 1024 * 1024


def may_take_over(ctx: Context, case: Case) -> bool:
    """Whether the case page offers *Ambil alih* to this account (the rules, without keys)."""
    try:
        if check_kpk_on_shared_case(ctx, case).federation_relayed:
            return False
        check_still_handled_there(case, "takeover_refused")
    except Refusal:
        return False
    return True


def take_over(ctx: Context, case: Case, reason: object) -> Case:
    """KPK takes over ``case`` (another tenant's, shared with KPK) for ``reason``, a
    :class:`~wbs.domain.TakeoverReason` code, whose label both logs keep. Commits; returns
    KPK's linked case. Raises :class:`Refusal` with nothing stored and neither case
    changed."""
    origin_tenant = check_kpk_on_shared_case(ctx, case)
    if origin_tenant.federation_relayed:
        # Behind a regional hub: the takeover would stop there (not relayed), and the
        # instansi would go on handling the case without knowing.
        raise Refusal(
            "takeover_refused",
            f"{origin_tenant.name} is connected through a regional hub: its cases are not "
            "taken over across installations yet.",
            why="relayed",
        )
    code = reason_code(TakeoverReason, reason, what="takeover")
    check_still_handled_there(case, "takeover_refused")
    origin_scope = TenantScope(ctx.session, origin_tenant)
    source = origin_scope.get(Source, case.source_id)
    if source is None:
        raise Refusal("no_source", "The case has no reporter.")
    items = case_items(ctx.session, origin_scope, case)
    _check_readable_by_kpk(ctx, items)
    store = ctx.inst.store
    try:
        ensure_space(store, ctx.inst.config.disk_floor_bytes, sum(i.size for i in items))
    except IntakeClosed as exc:
        raise Refusal("intake_closed", str(exc)) from exc
    stored: list[str] = []
    try:
        for item in items:
            path = store.new_name(ctx.tenant.slug)
            try:
                with store.open(item.store_path) as raw, store.create(path) as out:
                    stored.append(path)
                    shutil.copyfileobj(raw, out, _CHUNK)
            except OSError as exc:
                if disk_was_full(store, ctx.inst.config.disk_floor_bytes, exc):
                    raise Refusal("intake_closed", "The store's disk is full.") from exc
                raise
        linked = _take_over(ctx, case, origin_tenant, source, items, stored, code)
    except BaseException:
        ctx.session.rollback()
        for path in stored:
            store.discard(path)
        raise
    return linked


def _check_readable_by_kpk(ctx: Context, items: list[Item]) -> None:
    """Every item names at least one of KPK's current keys as a recipient, or KPK could not
    read its copy: read from the packets, never decrypted."""
    keys = current_keys(ctx.session, ctx.tenant)
    if not keys:
        raise Refusal("takeover_no_key", "KPK has no current recipient key.")
    kpk_ids: set[str] = set()
    for key in keys:
        info = ctx.inst.keyring.inspect_public_key(key.public_key)
        kpk_ids |= {key_id(fpr) for fpr in info.encryption_fingerprints}
    unreadable = []
    for item in items:
        try:
            found = ciphertext_key_ids(
                ctx.inst.store.resolve(item.store_path), ctx.inst.config.gpg_binary
            )
        except NotAnEncryptedMessage:
            found = frozenset()
        if not found & kpk_ids:
            unreadable.append(f"{item.kind} #{item.number}")
    if unreadable:
        raise Refusal(
            "takeover_not_for_kpk",
            "Not every item of the case is encrypted to a current key of KPK ("
            + ", ".join(unreadable)
            + "): the institution must forward the case to KPK (pelimpahan) instead.",
            items=", ".join(unreadable),
        )


def _take_over(
    ctx: Context,
    origin: Case,
    origin_tenant: Tenant,
    origin_source: Source,
    items: list[Item],
    stored: list[str],
    reason: TakeoverReason,
) -> Case:
    hub = ctx.tenant
    origin_scope = TenantScope(ctx.session, origin_tenant)
    now = dt.datetime.now(dt.UTC)
    with committed_with_files(ctx.session, ctx.inst.store, stored):
        source = linked_source(ctx, origin_source, hub)
        # KPK's own case from now on: never "shared with KPK" (it is KPK's).
        linked = new_case_row(
            ctx, source.id, origin.category, origin.mcp_area, to_kpk=False,
            kpk_hint=origin.kpk_hint,
        )
        linked.channel = origin.channel
        linked.linked_from_case_id = origin.id
        ctx.scope.add(linked)
        for item, path in zip(items, stored, strict=True):
            # The items keep their dates (the pelapor's to the day, as stored), so both
            # cases read in the same order.
            if item.kind == "reply":
                ctx.scope.add(Reply(case=linked, store_path=path, size=item.size,
                                    framing=item.framing, read_by_source=True,
                                    created_at=item.created_at))
            else:
                ctx.scope.add(Submission(case=linked, kind=SubmissionKind(item.kind),
                                         store_path=path, size=item.size, framing=item.framing,
                                         seen=False, created_at=item.created_at))
        ctx.session.flush()
        # A forwarding (or another takeover) of the same case at the same moment: the first
        # claim wins; the other finds the origin handled elsewhere and stores nothing.
        if not claim_case(ctx.session, origin_scope, origin.id, linked.id):
            raise Refusal(
                "takeover_refused",
                f"{origin.registration_number} was forwarded or taken over already: it is "
                "handled elsewhere.",
                why="handled_elsewhere",
            )
        # The origin is ours now (a follow-up updates its row, so it waits or went first):
        # its status as committed (closed meanwhile: refused; the entry's from_status), and
        # what was copied must be every item it has.
        ctx.session.refresh(origin, ["status", "forward_requested_at"])
        check_still_handled_there(origin, "takeover_refused")
        _check_items_unchanged(ctx, origin_scope, origin, items)
        label = reason.label
        by_kpk = f"Diambil alih oleh {hub.name} ({linked.registration_number}): {label}"
        ctx.scope.add(Event(case_id=linked.id, kind=EventKind.CASE_CREATED,
                            to_status=CaseStatus.BARU, created_at=now))
        ctx.scope.add(Event(
            case_id=linked.id, kind=EventKind.TAKEOVER_RECEIVED,
            actor_investigator_id=ctx.actor_id, created_at=now,
            note=f"Diambil alih dari {origin_tenant.name} ({origin.registration_number}): "
                 f"{label}",
        ))
        # Both sides of the act about the origin case, each naming only its own account.
        ctx.scope.add(Event(case_id=origin.id, kind=EventKind.TAKEN_OVER,
                            actor_investigator_id=ctx.actor_id, note=by_kpk, created_at=now))
        origin_scope.add(Event(case_id=origin.id, kind=EventKind.TAKEN_OVER, note=by_kpk,
                               created_at=now))
        if can_transition(origin.status, CaseStatus.DITERUSKAN):
            origin_scope.add(Event(
                case_id=origin.id, kind=EventKind.STATUS_CHANGED, from_status=origin.status,
                to_status=CaseStatus.DITERUSKAN, note=f"Diambil alih oleh {hub.name}",
                created_at=now,
            ))
            origin.status = CaseStatus.DITERUSKAN
        record_first_response(origin, now, ctx.inst.calendar)
        origin.linked_to_case_id = linked.id
        origin.taken_over_at = now
        # A case of a matter: KPK's case takes its place there (and its role as lead).
        carry_forward(ctx, origin, linked)
        # An open request to forward is answered by the takeover: the entries above say how.
        origin.forward_requested_at = None
    return linked


def _check_items_unchanged(
    ctx: Context, origin_scope: TenantScope, origin: Case, copied: list[Item]
) -> None:
    """The origin's items, read again inside the claiming transaction, are the ones copied:
    a follow-up (or a reply) stored after the first listing refuses the takeover rather
    than stay behind at the origin, which no longer handles the case."""
    now = {(i.kind, i.store_path) for i in case_items(ctx.session, origin_scope, origin)}
    if now != {(i.kind, i.store_path) for i in copied}:
        raise Refusal(
            "takeover_items_changed",
            f"{origin.registration_number} received new items while it was being taken "
            "over: nothing was stored; take it over again.",
        )


def taken_over_case(ctx: Context, case: Case) -> Case | None:
    """KPK's case that took ``case`` over, for KPK's account on the origin's page."""
    if case.taken_over_at is None or case.linked_to_case_id is None:
        return None
    return ctx.session.scalar(
        ctx.scope.select(Case).where(
            Case.id == case.linked_to_case_id, Case.linked_from_case_id == case.id
        )
    )

