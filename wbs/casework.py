"""Casework: every action an investigator takes on a case, once, below HTTP.

The HTML views and the JSON API are adapters over these functions: they parse a request, call
one function here with the request's :class:`~wbs.context.Context`, and turn a
:class:`Refusal` into a translated message or a JSON error. The rules (which status may follow
which, which notes are required, who may assign whom, what can be deleted) and every entry of
the event log live here, so a second interface, or forwarding between institutions, cannot
drift from the first.

Nothing here decrypts: replies are encrypted on the way in, items and export bundles leave as
the ciphertext the store holds.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from crypto.padding import FRAMING_PADME
from crypto.recipients import NotAnEncryptedMessage, ciphertext_key_ids, key_id
from crypto.replykeys import encrypt_reply
from wbs.bundle import write_bundle
from wbs.context import Context
from wbs.deadlines import record_first_response
from wbs.domain import (
    CATEGORY_LABELS,
    FINAL_STATUSES,
    MCP_AREA_LABELS,
    CaseFlag,
    CaseStatus,
    EventKind,
    Role,
    can_transition,
)
from wbs.intake import committed_with_files
from wbs.items import Item, Reader, TimelineEntry, case_items, case_timeline, number_width
from wbs.models import Case, Event, Investigator, Reply, Source, Submission, Tenant
from wbs.tenants import (
    NoKpkKey,
    TenantError,
    current_keys,
    current_recipients,
    hub_tenant,
)

# The log is plaintext: a reason, never report content. Klarifikasi's question goes to the
# pelapor as an encrypted reply, and the log says only that it did.
NOTE_REQUIRED = frozenset({CaseStatus.DIARSIPKAN, CaseStatus.KLARIFIKASI})
KLARIFIKASI_LOG_NOTE = "Pertanyaan dikirim sebagai balasan"
MAX_NOTE = 500
MAX_REPLY = 20_000
# A typed reply is a few KiB; this leaves room for a long one without letting an upload of
# anything at all through.
MAX_ENCRYPTED_REPLY_BYTES = 1024 * 1024
# What a monitor's or an admin's role adds: assigning a case to anyone of the tenant. A
# verifikator may only take a case themselves or give up their own assignment.
ASSIGNS_ANYONE = frozenset({Role.ADMIN_INSTANSI, Role.PEMANTAU_KPK})
_CHUNK = 256 * 1024


class Refusal(Exception):
    """An action the rules refuse. ``code`` is stable (the API sends it; the HTML interface
    picks its translated sentence by it); ``params`` fill that sentence; the message is
    English, for the API and for tests. Never report content in any of them."""

    def __init__(self, code: str, message: str, **params: Any) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


def _not_found() -> Refusal:
    # The same answer for another tenant's case as for one that does not exist: ids of other
    # tenants cannot be probed.
    return Refusal("not_found", "No such case or item.")


def _log(ctx: Context, case: Case, kind: EventKind, note: str | None = None) -> None:
    """An entry of the case's log, by the acting investigator. ``note`` is plaintext: what
    was acted on (a kind and number, an account name), never report content."""
    ctx.scope.add(
        Event(case_id=case.id, kind=kind, actor_investigator_id=ctx.actor_id, note=note)
    )


# --- finding cases -----------------------------------------------------------------------------


def check_handles(case: Case) -> None:
    """The case's own tenant still handles it: not forwarded to another institution of the
    system and not taken over by KPK (``linked_to_case_id``, :mod:`wbs.forwarding`,
    :mod:`wbs.takeover`). After that the handler's case is where status, replies and the
    classification live; a status changed or a reply posted here would reach no one (the
    pelapor's page shows the handler's), so they are refused rather than lost. The team's own
    marks, assignment and "read" stay: they are the team's housekeeping, not the handling."""
    if case.linked_to_case_id is not None:
        raise Refusal(
            "handled_elsewhere",
            f"{case.registration_number} was "
            + ("taken over by KPK" if case.taken_over_at is not None else "forwarded")
            + ": it is handled by another institution now and is read-only here.",
            taken_over=case.taken_over_at is not None,
        )


def check_content_readable(ctx: Context, case: Case) -> None:
    """After a takeover the origin keeps read-only metadata: no download or export of the
    items, which KPK handles now (:mod:`wbs.takeover`). KPK, reading the origin case as its
    copy, still may."""
    if case.tenant_id == ctx.tenant.id and case.taken_over_at is not None:
        raise Refusal(
            "taken_over",
            f"{case.registration_number} was taken over by KPK: its items are KPK's to read "
            "now; this institution keeps the case's metadata only.",
        )


def own_case(ctx: Context, case_id: int) -> Case:
    """A case the investigator may act on: their own tenant's, nothing else."""
    case = ctx.scope.get(Case, case_id)
    if case is None:
        raise _not_found()
    return case


def readable_case(ctx: Context, case_id: int) -> Case:
    """A case the investigator may read: their tenant's, or (an account of KPK) one shared
    with KPK, read-only (KPK's copy, :class:`wbs.tenancy.SharedScope`)."""
    case = ctx.scope.get(Case, case_id)
    if case is None and ctx.reads_shared_cases:
        case = ctx.shared().get(Case, case_id)
    if case is None:
        raise _not_found()
    return case


def reader_for(ctx: Context, case: Case) -> Reader:
    """The scope to read ``case`` through: the own tenant's, else KPK's copy (read-only)."""
    return ctx.scope if case.tenant_id == ctx.tenant.id else ctx.shared()


def timeline(ctx: Context, case: Case) -> list[TimelineEntry]:
    """The case's log, oldest first, as this reader may see it (:func:`wbs.items.case_timeline`:
    KPK never reads the notes of another tenant's log, even on a case shared with it)."""
    return case_timeline(ctx.session, reader_for(ctx, case), ctx.tenant.id, case)


def items(ctx: Context, case: Case) -> list[Item]:
    return case_items(ctx.session, reader_for(ctx, case), case)


@dataclass(frozen=True)
class OpenedItem:
    stream: BinaryIO
    filename: str


def open_item(ctx: Context, case: Case, number: int) -> OpenedItem:
    """The ciphertext of item ``number`` of a readable case, to send as it is. Commits.

    Logged like an export (committed first): who took a copy of which item is on record,
    even if the download is then cut. The note names the item's kind and number only. KPK's
    download of a shared case's item goes into KPK's own log (the reader's scope adds it).
    """
    check_content_readable(ctx, case)
    found = items(ctx, case)
    item = next((one for one in found if one.number == number), None)
    if item is None:
        raise _not_found()
    _log(ctx, case, EventKind.ITEM_DOWNLOADED, f"{item.kind} #{item.number}")
    ctx.session.commit()
    return OpenedItem(
        ctx.inst.store.open(item.store_path),
        item.filename(case.registration_number, number_width(found)),
    )


# --- status, assignment, seen --------------------------------------------------------------------


def parse_status(raw: str) -> CaseStatus:
    try:
        return CaseStatus(raw)
    except ValueError:
        raise Refusal(
            "bad_status",
            "status must be one of " + ", ".join(status.value for status in CaseStatus),
        ) from None


def change_status(ctx: Context, case: Case, new: CaseStatus, note: str = "") -> Event:
    """Move an own case along the workflow (:data:`wbs.domain.ALLOWED_TRANSITIONS`). Commits.

    Diarsipkan needs its reason, which the log keeps (plaintext: a short reason, never report
    content). Klarifikasi needs the question for the pelapor, which goes to them as an
    encrypted reply; the log says only that it did.
    """
    check_handles(case)
    note = note.strip()
    if not can_transition(case.status, new):
        raise Refusal(
            "transition_refused",
            f"A case cannot go from {case.status.value} to {new.value}.",
            current=case.status,
            new=new,
        )
    if new in NOTE_REQUIRED and not note:
        raise Refusal(
            "note_required",
            "note must hold the question for the reporter."
            if new == CaseStatus.KLARIFIKASI
            else "note must hold the reason for archiving.",
            status=new,
        )
    limit = MAX_REPLY if new == CaseStatus.KLARIFIKASI else MAX_NOTE
    if len(note) > limit:
        raise Refusal("note_too_long", f"note has at most {limit} characters.", limit=limit)
    log_note: str | None = note or None
    if new == CaseStatus.KLARIFIKASI:
        post_reply(ctx, case, note, what="question")
        log_note = KLARIFIKASI_LOG_NOTE
    now = dt.datetime.now(dt.UTC)
    event = Event(
        case_id=case.id,
        kind=EventKind.STATUS_CHANGED,
        from_status=case.status,
        to_status=new,
        actor_investigator_id=ctx.actor_id,
        note=log_note,
        created_at=now,
    )
    case.status = new
    # The same instant as the event, so the column and the log agree (migration 0005).
    record_first_response(case, now, ctx.inst.calendar)
    # Closing stops the 30-working-day clock (wbs.deadlines); reopening restarts the judgement.
    case.closed_at = now if new.is_final else None
    if not new.is_final:
        case.merged_at = None  # reopened: no longer closed into a lead (wbs.matters)
    ctx.scope.add(event)
    ctx.session.commit()
    return event


def reclassify(ctx: Context, case: Case, category: str, mcp_area: str | None) -> bool:
    """Correct an own case's category and MCP area after reading it. Commits.

    The pelapor's choice is a guess; the investigator's correction is what statistics count
    (they read the case's columns). The log keeps both codes (a code is not content).
    Returns whether anything changed; no change logs nothing.
    """
    check_handles(case)
    if category not in CATEGORY_LABELS:
        raise Refusal("bad_category", "category must be one of the known category codes.")
    mcp_area = mcp_area or None
    if mcp_area is not None and mcp_area not in MCP_AREA_LABELS:
        raise Refusal("bad_mcp_area", "mcp_area must be a known MCP area code or empty.")
    changes = [
        f"{name}: {old or '-'} -> {new or '-'}"
        for name, old, new in (
            ("category", case.category, category),
            ("mcp_area", case.mcp_area, mcp_area),
        )
        if old != new
    ]
    if not changes:
        return False
    case.category, case.mcp_area = category, mcp_area
    _log(ctx, case, EventKind.RECLASSIFIED, "; ".join(changes))
    ctx.session.commit()
    return True


def assign(ctx: Context, case: Case, assignee_id: int | None) -> Investigator | None:
    """Give an own case to an active investigator of the tenant, or (None) to no one. Commits.

    A verifikator may only take a case or give up their own; admins and monitors assign anyone.
    Returns the new assignee. Assigning to the current assignee changes and logs nothing.
    """
    target: Investigator | None = None
    if assignee_id is not None:
        target = ctx.scope.get(Investigator, assignee_id)
        if target is None or not target.active:
            raise Refusal("bad_assignee", "No such active investigator of this institution.")
    actor = ctx.actor
    if actor is None or actor.role not in ASSIGNS_ANYONE:
        own = target is not None and actor is not None and target.id == actor.id
        giving_up = target is None and actor is not None and case.assignee_id == actor.id
        if not (own or giving_up):
            raise Refusal("forbidden", "Your role does not allow this assignment.")
    if (target.id if target else None) == case.assignee_id:
        return target
    case.assignee_id = target.id if target else None
    # Who the case went to: an account name, never report content.
    _log(ctx, case, EventKind.ASSIGNED if target else EventKind.UNASSIGNED,
         target.username if target else None)
    ctx.session.commit()
    return target


def mark_seen(ctx: Context, case: Case) -> None:
    """Mark an own case and all its submissions as read. Commits."""
    case.unread = False
    for submission in ctx.session.scalars(
        ctx.scope.select(Submission).where(
            Submission.case_id == case.id, Submission.seen.is_(False)
        )
    ):
        submission.seen = True
    _log(ctx, case, EventKind.MARKED_SEEN)
    ctx.session.commit()


def parse_flag(raw: str) -> CaseFlag:
    try:
        return CaseFlag(raw)
    except ValueError:
        raise Refusal(
            "bad_flag", "flag must be one of " + ", ".join(flag.value for flag in CaseFlag)
        ) from None


def set_flag(ctx: Context, case: Case, flag: CaseFlag, on: bool) -> bool:
    """Set (``on``) or clear one of the team's marks on an own case. Commits.

    The log says which mark changed and who changed it (its kind says all: no note). Setting
    a mark that is already set changes and logs nothing; returns whether anything changed.
    """
    if _flag_value(case, flag) == on:
        return False
    _write_flag(ctx, case, flag, on)
    ctx.session.commit()
    return True


def _flag_value(case: Case, flag: CaseFlag) -> bool:
    return case.starred if flag == CaseFlag.STAR else case.needs_reply


def _write_flag(ctx: Context, case: Case, flag: CaseFlag, on: bool) -> None:
    if flag == CaseFlag.STAR:
        case.starred = on
    else:
        case.needs_reply = on
    _log(ctx, case, flag.event_kind(on))


# --- replies -----------------------------------------------------------------------------------


def _case_source(ctx: Context, case: Case) -> Source:
    source = ctx.scope.get(Source, case.source_id)
    if source is None:
        raise Refusal("no_source", "The case has no source to answer.")
    return source


def _store_reply(ctx: Context, case: Case, ciphertext: bytes, framing: str) -> Reply:
    path = ctx.inst.store.new_name(ctx.tenant.slug)
    with ctx.inst.store.create(path) as out:
        out.write(ciphertext)
    reply = Reply(
        case=case, investigator_id=ctx.actor_id, store_path=path, size=len(ciphertext),
        framing=framing,
    )
    now = dt.datetime.now(dt.UTC)
    with committed_with_files(ctx.session, ctx.inst.store, [path]):
        ctx.scope.add(reply)
        ctx.scope.add(
            Event(
                case_id=case.id,
                kind=EventKind.REPLY_ADDED,
                actor_investigator_id=ctx.actor_id,
                created_at=now,
            )
        )
        record_first_response(case, now, ctx.inst.calendar)
        if case.needs_reply:
            # Answered: the mark has done its work (and the log says the reply cleared it).
            _write_flag(ctx, case, CaseFlag.NEEDS_REPLY, False)
    return reply


def post_reply(ctx: Context, case: Case, text: str, *, what: str = "reply") -> Reply:
    """Encrypt a reply to the source's reply key and the tenant's keys, and store it. Commits.

    The tenant's keys are recipients too, so the case history stays readable on the
    workstation, and so are KPK's current keys when the case is shared with KPK (KPK reads
    the whole exchange). Fails closed: without a current key nothing is stored (``no_key``,
    or ``no_kpk_key`` for a shared case when KPK has none). ``what`` names the text in a
    refusal: a ``reply``, or a Klarifikasi ``question``.
    """
    check_handles(case)
    text = text.strip()
    if not text:
        raise Refusal("reply_required", "Write the reply.")
    if len(text) > MAX_REPLY:
        raise Refusal("reply_too_long", f"text has at most {MAX_REPLY} characters.",
                      limit=MAX_REPLY)
    source = _case_source(ctx, case)
    try:
        recipients = current_recipients(ctx.session, ctx.tenant, to_kpk=case.sent_to_kpk)
    except NoKpkKey:
        raise Refusal(
            "no_kpk_key",
            f"The {what} could not be encrypted: the report is shared with KPK and KPK has no "
            "current key.",
            what=what,
        ) from None
    except TenantError:
        raise Refusal(
            "no_key", f"The {what} could not be encrypted: the institution has no key.",
            what=what,
        ) from None
    ciphertext = encrypt_reply(
        ctx.inst.keyring, recipients, source.reply_public_key, text.encode("utf-8"),
        framing=FRAMING_PADME,
    )
    return _store_reply(ctx, case, ciphertext, FRAMING_PADME)


def accept_encrypted_reply(ctx: Context, case: Case, ciphertext: bytes) -> Reply:
    """Store a reply encrypted on the air-gapped workstation, as it is. Commits.

    The plaintext never reaches the server. What is checked, without decrypting: it is an
    OpenPGP message encrypted to public keys, one of them the source's reply key (or the
    pelapor could not read it), every current recipient key of the tenant (or the case
    history would not stay readable on the workstation) and, for a case shared with KPK,
    every current key of KPK (or KPK's copy would miss the reply). Refused
    (``reply_refused``, with a ``reason`` code) saying which is missing: keys and shapes,
    never content.

    The workstation pads every reply it encrypts (:mod:`crypto.padding`, the same frame as
    the server's), so an uploaded reply is recorded as padded; the server cannot look inside
    to check, and the pelapor's reply page refuses a reply whose frame does not hold.
    """

    def refuse(reason: str, message: str, **params: Any) -> Refusal:
        # ``reason`` is a stable code the interfaces put in words; the message is English,
        # for the API and the logs of a client.
        return Refusal("reply_refused", message, reason=reason, **params)

    check_handles(case)
    if not ciphertext or len(ciphertext) > MAX_ENCRYPTED_REPLY_BYTES:
        raise refuse("size", "an encrypted reply must be between 1 byte and 1 MiB")
    source = _case_source(ctx, case)
    try:
        key_ids = ciphertext_key_ids(ciphertext, ctx.inst.config.gpg_binary)
    except NotAnEncryptedMessage as exc:
        raise refuse("not_encrypted", f"not an encrypted reply: {exc}") from exc

    def readable_by(armored: str) -> bool:
        info = ctx.inst.keyring.inspect_public_key(armored)
        return any(key_id(fpr) in key_ids for fpr in info.encryption_fingerprints)

    if not readable_by(source.reply_public_key):
        raise refuse(
            "not_to_reply_key",
            "the reply is not encrypted to the pelapor's reply key of "
            + case.registration_number,
        )
    current = current_keys(ctx.session, ctx.tenant)
    if not current:
        raise refuse("no_current_key", "the instansi has no current key")
    unreadable = [key.fingerprint for key in current if not readable_by(key.public_key)]
    if unreadable:
        raise refuse(
            "not_to_every_key",
            "the reply is not encrypted to every current key of the instansi: "
            + ", ".join(unreadable),
            fingerprints=unreadable,
        )
    if case.sent_to_kpk:
        hub = hub_tenant(ctx.session)
        kpk = current_keys(ctx.session, hub) if hub is not None else []
        if not kpk:
            raise refuse("no_kpk_key", "the case is shared with KPK and KPK has no current key")
        missing = [key.fingerprint for key in kpk if not readable_by(key.public_key)]
        if missing:
            raise refuse(
                "not_to_every_kpk_key",
                "the case is shared with KPK and the reply is not encrypted to every current "
                "key of KPK: " + ", ".join(missing),
                fingerprints=missing,
            )
    if _already_a_reply(ctx, case, ciphertext):
        # The same file uploaded twice (a double click, a retried upload): a second copy adds
        # nothing for anyone, and bundles name items by their hash, so two would collide.
        raise refuse("duplicate", "this encrypted file is already a reply of this case")
    return _store_reply(ctx, case, ciphertext, FRAMING_PADME)


def _already_a_reply(ctx: Context, case: Case, ciphertext: bytes) -> bool:
    """Whether ``ciphertext`` is byte for byte a stored reply of ``case``.

    Only replies of the same size are read, each at most MAX_ENCRYPTED_REPLY_BYTES.
    """
    same_size = ctx.session.scalars(
        ctx.scope.select(Reply).where(Reply.case_id == case.id, Reply.size == len(ciphertext))
    )
    for reply in same_size:
        with ctx.inst.store.open(reply.store_path) as stored:
            if stored.read(MAX_ENCRYPTED_REPLY_BYTES + 1) == ciphertext:
                return True
    return False


# --- export --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    filename: str
    chunks: Iterator[bytes]


def export(ctx: Context, case: Case, logger: logging.Logger) -> Export:
    """Log the export of a readable case (committed first: the log must say who took a copy,
    even if the download is then cut) and stream its signed bundle (see :mod:`wbs.bundle`).

    KPK exports a case shared with it as it exports its own: the bundle names the case's
    tenant and KPK as its reader, and the export goes into KPK's own log.
    """
    check_content_readable(ctx, case)
    _log(ctx, case, EventKind.EXPORTED)
    ctx.session.commit()
    return Export(
        f"{case.registration_number}.zip",
        _stream_bundle(ctx, ctx.tenant.id, case.id, logger),
    )


def _stream_bundle(
    ctx: Context, reader_id: int, case_id: int, logger: logging.Logger
) -> Iterator[bytes]:
    """The bundle of one case, written by a thread into a pipe and read from it here.

    A pipe, not a temporary file: the manifest holds the case's metadata in plaintext, and
    nothing of it should be left on disk; memory stays flat whatever the items' size. The
    thread has its own database session: the request's is not thread-safe. What the reading
    tenant may put in a bundle is decided again there, by :func:`wbs.bundle.write_bundle`.
    """
    inst = ctx.inst
    read_fd, write_fd = os.pipe()

    def write() -> None:
        try:
            with os.fdopen(write_fd, "wb") as out, inst.sessions() as session:
                reader = session.get(Tenant, reader_id)
                case = session.get(Case, case_id)
                if reader is None or case is None:
                    return
                write_bundle(inst, session, reader, [case], out)
        except BrokenPipeError:
            pass  # the browser went away; the partial bundle has no signature
        except Exception as exc:  # a thread's error must be logged, not lost
            # The type only: a message could name a path of the store.
            logger.error("bundle export failed: %s", type(exc).__name__)

    thread = threading.Thread(target=write, name="peluit-export", daemon=True)
    thread.start()
    with os.fdopen(read_fd, "rb") as source:
        while chunk := source.read(_CHUNK):
            yield chunk
    thread.join()


# --- deletion ------------------------------------------------------------------------------------


def require_deleter(ctx: Context) -> None:
    """Deleting is the admin instansi's alone: it erases evidence, so it belongs to the role
    that answers for the tenant's accounts and keys, not to the verifikator."""
    if ctx.actor is None or ctx.actor.role != Role.ADMIN_INSTANSI:
        raise Refusal("forbidden", "Only an admin instansi deletes.")


def item_by_number(ctx: Context, case: Case, number: int) -> Item:
    found = next(
        (item for item in case_items(ctx.session, ctx.scope, case) if item.number == number),
        None,
    )
    if found is None:
        raise _not_found()
    return found


def delete_item(ctx: Context, case: Case, item: Item) -> None:
    """Delete one submission or reply: its ciphertext and its row together. Commits.

    Never on a case sent to KPK (:func:`check_items_deletable`).
    """
    require_deleter(ctx)
    check_items_deletable(case)
    check_handles(case)
    row: Reply | Submission | None = (
        ctx.scope.get(Reply, item.row_id)
        if item.kind == "reply"
        else ctx.scope.get(Submission, item.row_id)
    )
    if row is None or row.case_id != case.id:
        raise _not_found()
    # The kind and the number only: what was deleted, never what it said.
    _log(ctx, case, EventKind.ITEM_DELETED, f"{item.kind} #{item.number}")
    ctx.inst.store.remove_with_rows(ctx.session, [row.store_path], [row])


def check_items_deletable(case: Case) -> None:
    """Items of a case sent to KPK stay: emptying it item by item would make the report vanish
    from KPK's view as surely as deleting the case."""
    if case.sent_to_kpk:
        raise Refusal("sent_to_kpk", "This report was sent to KPK and cannot be deleted here.")


def check_case_deletable(case: Case) -> None:
    """Only a closed case, and only one KPK does not hold too.

    Deleting is the one action that erases a report, so it needs a decision already in the
    log: the case was archived (with its reason) or finished first. A case sent to KPK is
    handled there as well; the instansi must not make it vanish from KPK's view, which would
    be a way for the reported office to bury a report.
    """
    if case.sent_to_kpk:
        raise Refusal("sent_to_kpk", "This report was sent to KPK and cannot be deleted here.")
    if case.status not in FINAL_STATUSES:
        raise Refusal("not_final", "Only a case that is Diarsipkan or Selesai can be deleted.")
    if case.matter_id is not None:
        # A lead, or a case closed into one: its reporters and the matter's other cases
        # point at it (wbs.matters).
        raise Refusal("in_matter", "A case linked in a matter cannot be deleted.")


def delete_case(ctx: Context, case: Case) -> None:
    """Delete a case with all its items, files and rows together. Commits.

    The event log keeps its entries (``Event.case_id`` has no foreign key) plus one
    CASE_DELETED naming the registration number, so the deletion itself stays on record.
    """
    require_deleter(ctx)
    check_case_deletable(case)
    scope = ctx.scope
    submissions = list(
        ctx.session.scalars(scope.select(Submission).where(Submission.case_id == case.id))
    )
    replies = list(ctx.session.scalars(scope.select(Reply).where(Reply.case_id == case.id)))
    _log(ctx, case, EventKind.CASE_DELETED, case.registration_number)
    found: list[Submission | Reply] = [*submissions, *replies]
    rows: list[object] = [*found, case]
    ctx.inst.store.remove_with_rows(ctx.session, [row.store_path for row in found], rows)
