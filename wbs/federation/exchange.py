"""One exchange of the federation link: the member asks, the hub answers.

The member sends its queued messages (at most :data:`BATCH` a request) with the sequence
number of the last hub message it applied; the hub answers with the last member message it
applied and the hub messages after the member's. Both sides apply the other's messages in
order, each exactly once:

* a message's effect and the receiver's cursor (``received_seq``) commit in one transaction,
  so a receiver killed half-way applied the whole batch or none of it;
* a message at or below the cursor is a repeat (the answer to it was lost): acknowledged,
  not applied again;
* a message past the cursor's next number is out of order: refused and logged, and the
  answer tells the sender where to resume;
* the sender keeps each message until the receiver confirms it, so nothing queued is lost to
  a killed process, a dropped circuit or a week offline.

A request is refused as a whole, logged in ``federation_refusals``, and nothing applied, when
its envelope is malformed, from a key no active member holds (unknown, revoked, left), signed
by another key than the pinned one (forged), for another installation (foreign), outside the
freshness window (stale) or seen before (replayed nonce).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wbs.federation import handling, metadata
from wbs.federation.peers import hub_peer, own_fingerprint
from wbs.federation.wire import (
    FRESHNESS_SECONDS,
    Envelope,
    Message,
    WireError,
    new_envelope,
    parse,
    seal,
    verify,
)
from wbs.instance import Instance
from wbs.models import (
    FederationDigest,
    FederationNonce,
    FederationOutbox,
    FederationPeer,
    FederationRefusal,
    utcnow,
)

log = logging.getLogger(__name__)

BATCH = 500


class Refused(Exception):
    """A request refused; ``reason`` goes back to the sender (it names no internal detail)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# The same refusal within this time is counted on the row already written.
REFUSAL_WINDOW = dt.timedelta(hours=1)


def record_refusal(inst: Instance, peer_id: int | None, reason: str, detail: str) -> None:
    """Log a refusal, in a transaction of its own (the refused work is rolled back)."""
    log.warning("federation: refused (%s) %s", reason, detail[:200])
    with inst.sessions() as session:
        add_refusal(session, peer_id, reason, detail)
        session.commit()


def add_refusal(session: Session, peer_id: int | None, reason: str, detail: str) -> None:
    """One more refusal: a new row, or a count on the row of the same refusal (same peer, same
    reason) within the hour, so a revoked member's timer or a flood of garbage cannot grow
    the log without bound."""
    now = utcnow()
    found = session.scalar(
        sa.select(FederationRefusal)
        .where(
            FederationRefusal.peer_id.is_(None)
            if peer_id is None
            else FederationRefusal.peer_id == peer_id,
            FederationRefusal.reason == reason,
            FederationRefusal.last_at >= now - REFUSAL_WINDOW,
        )
        .order_by(FederationRefusal.id.desc())
        .limit(1)
    )
    if found is None:
        session.add(FederationRefusal(
            peer_id=peer_id, reason=reason, detail=detail[:300], created_at=now, last_at=now,
            repeated=1,
        ))
    else:
        found.repeated += 1
        found.last_at = now
        found.detail = detail[:300]
    session.flush()


@dataclass(frozen=True)
class Applied:
    through: int  # the receiver's cursor afterwards
    applied: int  # messages applied by this batch
    repeated: int  # messages already applied before (acknowledged again)
    refused: list[tuple[int, str, str]]  # (seq, reason, detail) of messages refused for content


_CONTENT_ERRORS = (ValueError, TypeError, OverflowError, KeyError, sa.exc.IntegrityError,
                   sa.exc.DataError)


def apply_in_order(
    session: Session,
    peer: FederationPeer,
    messages: tuple[Message, ...],
    apply: Callable[[Message], None],
    reset: Callable[[], None] | None = None,
) -> Applied:
    """Apply the messages after the peer's cursor, in order, once each; the caller commits
    (the effects with the cursor). A gap refuses the batch: nothing of it is applied.

    A message refused for its content leaves nothing of itself behind (not half a mirror
    row): it is logged, and its number is used so the link goes on. A value the database
    refuses (a constraint, a byte it cannot hold) is such a refusal too; a database that is
    unavailable is not (the batch fails and is sent again). The batch is applied in one
    savepoint; only when something in it is refused is it applied again message by message,
    each in a savepoint of its own (``reset`` forgets what the first attempt cached).
    """
    todo = [message for message in messages if message.seq > peer.received_seq]
    repeated = len(messages) - len(todo)
    for expected, message in enumerate(todo, start=peer.received_seq + 1):
        if message.seq != expected:
            raise Refused(
                "out_of_order", f"message {message.seq} after {expected - 1}: one is missing"
            )
    refused: list[tuple[int, str, str]] = []
    try:
        with session.begin_nested():
            for message in todo:
                apply(message)
            session.flush()
    except _CONTENT_ERRORS:
        if reset is not None:
            reset()
        for message in todo:
            try:
                with session.begin_nested():
                    _apply_one(session, message, apply)
            except metadata.MessageRefused as exc:
                refused.append((message.seq, exc.reason, exc.detail))
    if todo:
        peer.received_seq = todo[-1].seq
        peer.applied_count += len(todo)
    return Applied(peer.received_seq, len(todo), repeated, refused)


def _apply_one(session: Session, message: Message, apply: Callable[[Message], None]) -> None:
    try:
        apply(message)
        session.flush()
    except metadata.MessageRefused:
        raise
    except (sa.exc.IntegrityError, sa.exc.DataError) as exc:
        raise metadata.MessageRefused(
            "malformed", f"{message.kind}: the database refused a value"
        ) from exc
    except (ValueError, TypeError, OverflowError, KeyError) as exc:
        raise metadata.MessageRefused(
            "malformed", f"{message.kind}: {type(exc).__name__}"
        ) from None


# --- starting a link over (after a restore) -------------------------------------------------------

# Written by a restore from a backup (wbs.backup); the next exchange starts every link over.
RESTORED_MARKER = "restored"


# An epoch further ahead of this side's clock than this is refused: a peer (or its stolen key)
# could otherwise push the link to the end of the numbers.
EPOCH_AHEAD_MS = 24 * 3600 * 1000


def _check_epoch(epoch: int) -> None:
    if epoch > int(time.time() * 1000) + EPOCH_AHEAD_MS:
        raise Refused("malformed", "the link's epoch is further ahead than a day")


def new_epoch(peer: FederationPeer) -> int:
    """A new epoch for the link: the time in milliseconds, later than any the link had."""
    return max(int(time.time() * 1000), peer.epoch + 1)


def reset_link(session: Session, peer: FederationPeer, epoch: int) -> None:
    """Start the link's numbering over in ``epoch``: both cursors and the count back to zero,
    the messages not yet confirmed dropped, and what was queued forgotten, so the next
    exchange queues everything again by difference. Kept: which items came from the peer
    (``from``) and which the peer's items were received here (``in:``), so nothing comes back
    or is stored twice."""
    log.warning("federation: the link with %s starts over (epoch %s)", peer.name, epoch)
    # Removals not confirmed yet are kept, numbered first: what was removed is known by
    # nothing else once the digests are forgotten.
    removals = list(session.scalars(
        sa.select(FederationOutbox.body)
        .where(FederationOutbox.peer_id == peer.id, FederationOutbox.seq > peer.acked_seq,
               FederationOutbox.kind == metadata.CASE_GONE)
        .order_by(FederationOutbox.seq)
    ))
    peer.epoch = epoch
    peer.received_seq = peer.acked_seq = peer.applied_count = 0
    peer.sent_seq = len(removals)
    session.execute(sa.delete(FederationOutbox).where(FederationOutbox.peer_id == peer.id))
    if removals:
        session.execute(sa.insert(FederationOutbox), [
            {"peer_id": peer.id, "seq": seq, "kind": metadata.CASE_GONE, "body": body}
            for seq, body in enumerate(removals, start=1)
        ])
    session.execute(sa.delete(FederationDigest).where(
        FederationDigest.peer_id == peer.id,
        ~FederationDigest.digest.startswith(metadata.FROM),
        ~FederationDigest.key.startswith(metadata.RECEIVED_PREFIX),
    ))
    session.flush()


def resync(inst: Instance, name: str | None = None) -> list[str]:
    """Start links over: the one with the peer ``name``, or every link (what a restore from a
    backup needs). The other side follows at the next exchange. Returns the peers' names."""
    with inst.sessions() as session:
        query = sa.select(FederationPeer).where(FederationPeer.status == "active")
        if name is not None:
            query = query.where(FederationPeer.name == name)
        peers = list(session.scalars(query.with_for_update()))
        if name is not None and not peers:
            raise SyncError(f"no active link with {name!r}")
        for peer in peers:
            reset_link(session, peer, new_epoch(peer))
        session.commit()
        names = [peer.name for peer in peers]
    (_folder(inst) / RESTORED_MARKER).unlink(missing_ok=True)
    return names


def _after_restore(inst: Instance) -> None:
    """A restore from a backup turned this side's sequence numbers back: start every link
    over before anything is exchanged (structural: no operator has to remember it)."""
    if (_folder(inst) / RESTORED_MARKER).exists():
        resync(inst)


def _folder(inst: Instance) -> Path:
    folder = inst.config.instance_dir / "federation"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


# --- the hub ------------------------------------------------------------------------------------


def answer(inst: Instance, raw: bytes) -> bytes:
    """The hub's answer to a member's request (sealed), or :class:`Refused`, logged."""
    try:
        unverified = parse(raw)
    except WireError as exc:
        record_refusal(inst, None, exc.reason, exc.detail)
        raise Refused(exc.reason, exc.detail) from None
    _after_restore(inst)
    own = own_fingerprint(inst)
    with inst.sessions() as session:
        peer = session.scalar(
            sa.select(FederationPeer).where(
                FederationPeer.fingerprint == unverified.sender.upper(),
                FederationPeer.role == "member",
            )
        )
        if peer is None:
            session.rollback()
            record_refusal(inst, None, "unknown_sender", "no member holds the envelope's key")
            raise Refused("unknown_sender", "this installation is not a member here")
        peer_id = peer.id
        if peer.status != "active":
            session.rollback()
            record_refusal(inst, peer_id, "revoked", f"{peer.name} is {peer.status}")
            raise Refused("revoked", "this member's access was revoked")
        try:
            envelope = verify(
                unverified,
                public_key=peer.public_key,
                fingerprint=peer.fingerprint,
                own_fingerprint=own,
                gpg_binary=inst.config.gpg_binary,
            )
            response = _answer_verified(inst, session, peer, envelope)
        except WireError as exc:
            session.rollback()
            record_refusal(inst, peer_id, exc.reason, exc.detail)
            raise Refused(exc.reason, exc.detail) from None
        except Refused as exc:
            session.rollback()
            record_refusal(inst, peer_id, exc.reason, exc.detail)
            raise
        except metadata.NoSpace as exc:
            # Not the member's fault and nothing lost: the batch is sent again later.
            session.rollback()
            log.warning("federation: the disk is at its floor, a batch of %s waits", peer_id)
            raise Refused("no_space", str(exc)) from None
    return seal(inst.signing, response)


def _answer_verified(
    inst: Instance, session: Session, peer: FederationPeer, envelope: Envelope
) -> Envelope:
    _remember_nonce(session, envelope.nonce)
    session.refresh(peer, with_for_update=True)
    if peer.status != "active":
        # Revoked while this request was being checked: refused all the same.
        raise Refused("revoked", f"{peer.name} is {peer.status}")
    restored = _restored_side(peer, envelope)
    _check_epoch(envelope.epoch)
    if envelope.epoch > peer.epoch:
        # The member started the link over (restored from a backup): so does the hub.
        reset_link(session, peer, envelope.epoch)
    elif envelope.epoch < peer.epoch or restored is not None:
        # The hub started over (restored, or resynchronised) and the member does not know
        # yet; or one side was restored from a backup and the numbers disagree. Nothing of
        # the request is applied (its numbers may name other messages than the hub's); the
        # answer names the epoch, and the member starts over in it. If anything was
        # exchanged in the hub's epoch already, the hub starts over again too: both sides
        # then count from one.
        if restored is not None:
            add_refusal(session, peer.id, "started_over", restored)
        if restored is not None or peer.received_seq or peer.acked_seq:
            reset_link(session, peer, new_epoch(peer))
        peer.last_contact_at = utcnow()
        session.commit()
        return new_envelope(
            own_fingerprint(inst), peer.fingerprint, ack=0, in_reply_to=envelope.nonce,
            applied_through=0, epoch=peer.epoch,
        )
    metadata.confirm(session, peer, envelope.ack)
    writer = metadata.MirrorWriter(session, peer, envelope.messages, inst)
    try:
        result = apply_in_order(
            session, peer, envelope.messages, writer.apply, writer.reset
        )
        peer.last_contact_at = utcnow()
        metadata.queue_kpk_keys(session, peer)
        handling.queue_for_member(session, peer, inst)
        for seq, reason, detail in result.refused:
            add_refusal(session, peer.id, reason, f"message {seq}: {detail}")
        session.commit()
    except BaseException:
        session.rollback()
        writer.discard_stored()
        raise
    writer.settle()
    return new_envelope(
        own_fingerprint(inst),
        peer.fingerprint,
        ack=peer.received_seq,
        messages=_outbox(session, peer, inst),
        in_reply_to=envelope.nonce,
        applied_through=peer.received_seq,
        epoch=peer.epoch,
        acked=peer.acked_seq,
    )


def _outbox(session: Session, peer: FederationPeer, inst: Instance) -> tuple[Message, ...]:
    try:
        return metadata.outbox(session, peer, BATCH, inst.store)
    except metadata.ItemUnreadable as exc:
        # Its effects are committed; the member gets the items at its next sync.
        log.warning("federation: %s", exc)
        return ()


def _restored_side(peer: FederationPeer, envelope: Envelope) -> str | None:
    """Why one side must have been restored from a backup, if the numbers say so: each side's
    cursors only grow within an epoch, so one that went back was restored."""
    if envelope.epoch != peer.epoch:
        return None
    if envelope.ack < peer.acked_seq:
        return (f"{peer.name} applied {envelope.ack} of this side's messages, it had "
                f"confirmed {peer.acked_seq}: it was restored from a backup")
    if envelope.ack > peer.sent_seq or envelope.acked > peer.received_seq:
        return (f"{peer.name} holds more of this link than this side: this side was restored "
                "from a backup")
    return None


def _remember_nonce(session: Session, nonce: str) -> None:
    cutoff = utcnow() - dt.timedelta(seconds=2 * FRESHNESS_SECONDS)
    session.execute(sa.delete(FederationNonce).where(FederationNonce.seen_at < cutoff))
    try:
        with session.begin_nested():
            session.add(FederationNonce(nonce=nonce))
            session.flush()
    except IntegrityError:
        raise Refused("replayed", "this request was seen before") from None


# --- the member ---------------------------------------------------------------------------------


class SyncError(RuntimeError):
    """The exchange did not complete; what was queued stays queued for the next one."""


# How a member reaches its hub: posts a sealed request, returns the raw answer. Raises
# SyncError for anything but an answer (unreachable, refused: the hub's reason in the text).
Post = Callable[[bytes], bytes]


@dataclass(frozen=True)
class SyncResult:
    sent: int  # member messages the hub confirmed in this sync
    received: int  # hub messages applied here
    pending: int  # member messages still queued


def sync(inst: Instance, post: Post, *, max_rounds: int = 10_000) -> SyncResult:
    """Queue what changed, then exchange with the hub until both sides are up to date.
    One sync at a time per installation (a file lock): the timer's and an operator's must not
    read the same cursor (SQLite takes no row lock)."""
    with _sync_lock(inst):
        return _sync(inst, post, max_rounds)


@contextmanager
def _sync_lock(inst: Instance) -> Iterator[None]:
    with (_folder(inst) / "sync.lock").open("a") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SyncError("another sync with the hub is running") from None
        yield


def _sync(inst: Instance, post: Post, max_rounds: int) -> SyncResult:
    _after_restore(inst)
    with inst.sessions() as session:
        peer = hub_peer(session)
        if peer is None:
            raise SyncError("this installation is not joined to a hub")
        metadata.queue_changes(session, peer, store=inst.store, keyring=inst.keyring)
        session.commit()
    sent = received = 0
    for _ in range(max_rounds):
        round_sent, round_received, more = _round(inst, post)
        sent += round_sent
        received += round_received
        if not more:
            break
    with inst.sessions() as session:
        peer = hub_peer(session)
        if peer is None:
            raise SyncError("this installation left its hub during the sync")
        pending = peer.sent_seq - peer.acked_seq
    return SyncResult(sent=sent, received=received, pending=pending)


def _round(inst: Instance, post: Post) -> tuple[int, int, bool]:
    own = own_fingerprint(inst)
    with inst.sessions() as session:
        peer = hub_peer(session)
        if peer is None:
            raise SyncError("this installation left its hub")
        try:
            outgoing = metadata.outbox(session, peer, BATCH, inst.store)
        except metadata.ItemUnreadable as exc:
            raise SyncError(str(exc)) from None
        request = new_envelope(own, peer.fingerprint, ack=peer.received_seq, messages=outgoing,
                               epoch=peer.epoch, acked=peer.acked_seq)
        hub_key, hub_fingerprint, peer_id = peer.public_key, peer.fingerprint, peer.id
        session.rollback()
    sealed = seal(inst.signing, request)
    try:
        raw = post(sealed)
    except SyncError as exc:
        _note_error(inst, peer_id, str(exc))
        raise
    try:
        response = verify(
            parse(raw),
            public_key=hub_key,
            fingerprint=hub_fingerprint,
            own_fingerprint=own,
            gpg_binary=inst.config.gpg_binary,
        )
    except WireError as exc:
        record_refusal(inst, peer_id, exc.reason, f"the hub's answer: {exc.detail}")
        _note_error(inst, peer_id, f"the hub's answer was refused ({exc.reason})")
        raise SyncError(f"the hub's answer was refused: {exc.detail}") from None
    if response.in_reply_to != request.nonce or response.applied_through is None:
        record_refusal(inst, peer_id, "foreign", "an answer to another request")
        raise SyncError("the hub's answer belongs to another request")
    with inst.sessions() as session:
        peer = session.get(FederationPeer, peer_id, with_for_update=True)
        if peer is None or peer.status != "active":
            raise SyncError("this installation left its hub during the sync")
        if response.epoch > peer.epoch:
            # The hub started the link over: so does this side, and sends everything again.
            try:
                _check_epoch(response.epoch)
            except Refused as exc:
                session.rollback()
                record_refusal(inst, peer_id, exc.reason, f"the hub's answer: {exc.detail}")
                raise SyncError(f"the hub's answer was refused: {exc.detail}") from None
            reset_link(session, peer, response.epoch)
            metadata.queue_changes(session, peer, store=inst.store, keyring=inst.keyring)
            peer.last_contact_at = utcnow()
            session.commit()
            return 0, 0, True
        if response.epoch < peer.epoch:
            session.rollback()
            record_refusal(inst, peer_id, "stale_epoch", "the hub answered in an older epoch")
            raise SyncError("the hub answered in an older epoch of the link")
        if response.applied_through > peer.sent_seq:
            session.rollback()
            record_refusal(inst, peer_id, "bad_ack", "the hub confirms messages never sent")
            raise SyncError("the hub confirms messages this installation never sent")
        before = peer.acked_seq
        metadata.confirm(session, peer, response.applied_through)
        writer = handling.HubWriter(inst, session, peer)
        try:
            result = apply_in_order(
                session, peer, response.messages, writer.apply, writer.reset
            )
        except Refused as exc:
            session.rollback()
            writer.discard_stored()
            record_refusal(inst, peer_id, exc.reason, exc.detail)
            raise SyncError(f"the hub's messages were refused: {exc.detail}") from None
        except metadata.NoSpace as exc:
            session.rollback()
            writer.discard_stored()
            _note_error(inst, peer_id, str(exc))
            raise SyncError(f"the disk is at its floor: {exc}") from None
        except BaseException:
            session.rollback()
            writer.discard_stored()
            raise
        for seq, reason, detail in result.refused:
            add_refusal(session, peer_id, reason, f"message {seq}: {detail}")
        peer.last_contact_at = utcnow()
        peer.last_error = None
        confirmed = peer.acked_seq - before
        more = peer.acked_seq < peer.sent_seq or len(response.messages) > 0
        if confirmed == 0 and result.applied == 0:
            more = False  # nothing moved: the hub applies nothing more now (see its refusals)
        try:
            session.commit()
        except BaseException:
            writer.discard_stored()
            raise
    writer.settle()
    return confirmed, result.applied, more


def _note_error(inst: Instance, peer_id: int, text: str) -> None:
    with inst.sessions() as session:
        peer = session.get(FederationPeer, peer_id)
        if peer is not None:
            peer.last_error = text[:300]
            session.commit()
