"""The items of a case, numbered: the one numbering the case page, the API and the export
bundle share, so item 3 is the same ciphertext wherever an investigator meets it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from wbs.domain import BOTH_SIDES_KINDS, CaseStatus, EventKind
from wbs.models import Case, Event, Reply, Submission, round_to_day
from wbs.tenancy import SharedScope, TenantScope

Reader = TenantScope | SharedScope


@dataclass(frozen=True)
class Item:
    """One encrypted item of a case, numbered the same on the case page, in the API and in an
    export bundle (which all get their numbers from :func:`case_items`)."""

    number: int
    kind: str  # form, message, file, reply
    size: int  # of the stored (padded) ciphertext
    created_at: dt.datetime
    row_id: int
    store_path: str
    framing: str  # how the plaintext inside is padded (crypto.padding)

    def filename(self, registration_number: str, width: int) -> str:
        # Never the original filename: it travels only inside the ciphertext.
        return f"{registration_number}-{self.number:0{width}d}-{self.kind}.gpg"

    @property
    def key(self) -> str:
        """What a confirmation form sends back, so the item acted on is the one confirmed even
        if the numbering shifted in between (a new submission sorts before today's replies)."""
        return f"{'reply' if self.kind == 'reply' else 'submission'}-{self.row_id}"


def case_items(session: Session, reader: Reader, case: Case) -> list[Item]:
    """Submissions then replies of ``case``, numbered.

    The pelapor's items keep only their WIB day (see :func:`wbs.models.round_to_day`); sorting
    by day puts them before replies of the same day, whose true order the server does not know.
    """
    subs = session.scalars(reader.select(Submission).where(Submission.case_id == case.id))
    reps = session.scalars(reader.select(Reply).where(Reply.case_id == case.id))
    rows: list[tuple[dt.datetime, int, int, dt.datetime, str, int, str, str]] = [
        (round_to_day(sub.created_at), 0, sub.id, sub.created_at, str(sub.kind), sub.size,
         sub.store_path, sub.framing)
        for sub in subs
    ]
    rows += [
        (round_to_day(rep.created_at), 1, rep.id, rep.created_at, "reply", rep.size,
         rep.store_path, rep.framing)
        for rep in reps
    ]
    rows.sort()
    return [
        Item(number, kind, size, created, row_id, path, framing)
        for number, (_, _, row_id, created, kind, size, path, framing) in enumerate(rows, start=1)
    ]


def number_width(found: list[Item]) -> int:
    return max(2, len(str(len(found))))


@dataclass(frozen=True)
class TimelineEntry:
    """One entry of a case's log as a reader may see it (a copy: the log itself is
    append-only, and what one reader is not shown must not be changed in it)."""

    id: int
    kind: EventKind
    from_status: CaseStatus | None
    to_status: CaseStatus | None
    actor_investigator_id: int | None
    note: str | None
    created_at: dt.datetime


def case_timeline(
    session: Session, reader: Reader, reader_tenant_id: int, case: Case
) -> list[TimelineEntry]:
    """The log of ``case`` as the tenant ``reader_tenant_id`` may see it, oldest first: the one
    rule the case page, the API and the export bundle share.

    Entries of another tenant's log (KPK reading a shared case) say what happened and when,
    never the notes or who: an archive reason or an assignment names people (the terlapor, an
    investigator), free text that may name people is content, and another tenant's accounts
    mean nothing to the reader. The reader's own entries about the case (KPK's downloads,
    exports, its side of the share) are shown whole. The share is logged on both sides; the
    reader sees its own entry of it, once.
    """
    entries = []
    events = list(
        session.scalars(reader.select(Event).where(Event.case_id == case.id).order_by(Event.id))
    )
    # An act the reader did on another tenant's case (KPK linking it into a matter) is in
    # both logs at the same instant: the reader's own entry stands for it, once.
    own_acts = {(e.kind, e.created_at) for e in events if e.tenant_id == reader_tenant_id}
    for event in events:
        own = event.tenant_id == reader_tenant_id
        if not own and (
            event.kind in BOTH_SIDES_KINDS or (event.kind, event.created_at) in own_acts
        ):
            continue  # the reader's own entry of the act (the share, a takeover) stands for it
        entries.append(
            TimelineEntry(
                id=event.id,
                kind=event.kind,
                from_status=event.from_status,
                to_status=event.to_status,
                actor_investigator_id=event.actor_investigator_id if own else None,
                note=event.note if own else None,
                created_at=event.created_at,
            )
        )
    return entries
