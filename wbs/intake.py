"""Intake: what a pelapor sends, encrypted into the store and recorded, all of it or none.

Plaintext arrives as chunks (from the streaming form parser, :mod:`source_iface.upload`) and
goes straight into gpg through an :class:`EncryptedFile`; gpg writes ciphertext into the
store's ``.part`` file, which is renamed into place only when gpg has finished and verified.
Rows are committed after the files exist; if the commit fails, the files are removed, so a
crash or an error leaves no orphan file and no row without its file.

Everything the pelapor sends is encrypted to the tenant's recipient keys (and KPK's when the
report goes to KPK) before it touches disk; the server keeps ciphertext and metadata only.
Every item is padded inside the encryption (:mod:`crypto.padding`), so what is stored and
recorded is a bucket's size, never the document's exact one.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass

from sqlalchemy.orm import Session

from crypto.encrypt import EncryptWriter, encrypt_bytes, open_encryptor
from crypto.errors import CryptoError
from crypto.keyring import Keyring
from crypto.padding import FRAMING_PADME
from wbs.context import Context
from wbs.domain import (
    CaseStatus,
    EventKind,
    OfficialAnswer,
    SubmissionKind,
    ValueBracket,
    kpk_hint,
)
from wbs.models import Case, Event, Submission, new_registration_number
from wbs.sharing import log_share
from wbs.store import Store
from wbs.tenants import NoKpkKey, TenantError, current_recipients
from wbs.workdays import local_date

# PP 43/2018 Pasal 10(2): the answer to the reporter within 30 working days.
ANSWER_DAYS = 30
# How often a long upload re-checks the disk floor, at most (see space_check_interval).
SPACE_CHECK_BYTES = 16 * 1024 * 1024
# Free space below which a failed write is taken for a full disk (see disk_was_full).
FULL_MARGIN_BYTES = 1024 * 1024
FORM_FILENAME = "laporan.json"
MESSAGE_FILENAME = "pesan.txt"


class ReportError(ValueError):
    """A pelapor action that cannot be done (unknown case, wrong state)."""


class IntakeClosed(RuntimeError):
    """Intake refuses new data for now (disk floor reached, no recipient key, ...)."""


class KpkUnavailable(IntakeClosed):
    """What the pelapor sends would go to KPK too (the report is, or becomes, shared with
    KPK) and KPK has no current key: refused before anything is read, nothing is stored."""


@dataclass(frozen=True)
class StoredItem:
    path: str
    size: int  # of the padded ciphertext
    framing: str = FRAMING_PADME


def ensure_space(store: Store, floor_bytes: int, incoming_bytes: int = 0) -> None:
    """Refuse intake that would take the store's disk below its floor.

    The floor keeps room for the database, the logs and investigators' replies when a flood of
    uploads (or one huge one) would otherwise fill the disk and stop everything.
    """
    if store.free_bytes() - incoming_bytes < floor_bytes:
        raise IntakeClosed("the store's disk is at its free-space floor")


def space_check_interval(floor_bytes: int) -> int:
    """How many bytes an upload may write between two checks of the floor.

    At most half the floor: with a fixed 16 MiB, a floor under ~17 MiB let the disk fill
    between two checks, and the reporter got an error instead of the "closed" page. A small
    floor means a check before every write (a statvfs call, cheap beside gpg).
    """
    return max(1, min(SPACE_CHECK_BYTES, floor_bytes // 2))


def disk_was_full(store: Store, floor_bytes: int, exc: BaseException) -> bool:
    """Whether ``exc``, a failed write into the store, came from the store's disk being full.

    Call it before the partial file is removed. The system says so directly (ENOSPC, EDQUOT)
    for the writes Peluit makes itself; gpg writes the ciphertext itself and reports only that
    it failed, so there a disk left (nearly) without space when it did is the reason.
    """
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if not isinstance(exc, (OSError, CryptoError)):
        return False
    try:
        return store.free_bytes() < floor_bytes + FULL_MARGIN_BYTES
    except OSError:
        return False


@contextmanager
def committed_with_files(session: Session, store: Store, paths: list[str]) -> Iterator[None]:
    """Commit the rows added in the block; if anything fails, remove ``paths`` as well.

    ``paths`` is read when the block ends, so items stored inside the block can be appended.
    """
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        for path in paths:
            store.discard(path)
        raise


@dataclass(frozen=True)
class ReportAnswers:
    """The guided report (4W+1H+berapa). Validation is the interface's job."""

    category: str
    mcp_area: str | None
    apa: str
    siapa: str
    kapan: str
    dimana: str
    bagaimana: str
    berapa: str
    kronologi: str
    # The two coarse questions of the jurisdiction hint: inside the encryption only; the case
    # row keeps the derived hint (Case.kpk_hint).
    pejabat: OfficialAnswer = OfficialAnswer.TIDAK_TAHU
    nilai: ValueBracket = ValueBracket.TIDAK_TAHU

    def document(self) -> bytes:
        """The encrypted form document: JSON, versioned for the workstation's reader."""
        return json.dumps(
            {"format": "peluit-report/1", **asdict(self)}, ensure_ascii=False, indent=2
        ).encode("utf-8")

    @property
    def kpk_hint(self) -> bool:
        return kpk_hint(self.pejabat, self.nilai)


def new_case_row(
    ctx: Context,
    source_id: str,
    category: str,
    mcp_area: str | None,
    *,
    to_kpk: bool,
    kpk_hint: bool | None = None,
) -> Case:
    """A new case of ``source_id``, received today, with its deadlines (not added yet).

    One place for every way a report arrives (the drop box, an operator's intake), so their
    registration numbers and deadlines cannot drift apart.
    """
    now = dt.datetime.now(dt.UTC)
    # The WIB date: the day the report arrived, which the deadlines count from.
    received = local_date(now)
    calendar = ctx.inst.calendar
    return Case(
        source_id=source_id,
        registration_number=new_registration_number(ctx.session, ctx.tenant, now.year),
        category=category,
        mcp_area=mcp_area,
        status=CaseStatus.BARU,
        sent_to_kpk=to_kpk,
        kpk_hint=kpk_hint,
        first_response_due=calendar.add_working_days(received, ctx.tenant.first_response_days),
        closure_due=calendar.add_working_days(received, ANSWER_DAYS),
    )


class EncryptedFile:
    """One file on its way into the store: plaintext chunks in, ciphertext out, in one pass.

    :meth:`close` finishes gpg (verifying it) and renames the ``.part`` file into place;
    :meth:`abort` kills gpg and deletes the ``.part`` file. A worker killed in between leaves
    only a ``.part`` file, which :meth:`wbs.store.Store.sweep` removes.
    """

    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        recipients: Sequence[str],
        *,
        tenant_slug: str,
        source_id: str,
        filename: str | None = None,
        floor_bytes: int = 0,
    ) -> None:
        self.store, self.floor_bytes = store, floor_bytes
        self.path = store.new_name(tenant_slug)
        self._stack = ExitStack()
        try:
            self._out = sink = self._stack.enter_context(store.create(self.path))
            self._writer: EncryptWriter = self._stack.enter_context(
                open_encryptor(
                    keyring, recipients, sink, filename or None, framing=FRAMING_PADME
                )
            )
        except BaseException as exc:
            # gpg could not start: remove the empty .part file and close it now.
            self._stack.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._since_check = 0
        self._check_every = space_check_interval(floor_bytes)

    def write(self, chunk: bytes) -> None:
        self._since_check += len(chunk)
        if self._since_check >= self._check_every:
            self._since_check = 0
            ensure_space(self.store, self.floor_bytes)
            self.store.start_writeback(self._out)
        try:
            self._writer.write(chunk)
        except (CryptoError, OSError) as exc:
            # The .part file still holds what was written: the free space says why gpg stopped.
            self._closed_if_full(exc)
            raise

    def close(self) -> StoredItem:
        try:
            # The padding is written when gpg is finished: it must fit above the floor too.
            ensure_space(self.store, self.floor_bytes, self._writer.tail_bytes)
            # Finish gpg first, while the .part file is still there to measure the disk by.
            self._writer.close()
        except (CryptoError, OSError) as exc:
            self._closed_if_full(exc)
            raise
        try:
            self._stack.close()
        except OSError as exc:
            # The final flush or fsync: the system says ENOSPC itself.
            self._closed_if_full(exc)
            raise
        return StoredItem(self.path, self.store.size(self.path), self._writer.framing)

    def _closed_if_full(self, exc: BaseException) -> None:
        # A full disk is the intake's "closed for now", not an error: the reporter gets the
        # page saying nothing was stored and to come back later.
        if disk_was_full(self.store, self.floor_bytes, exc):
            raise IntakeClosed("the store's disk is full") from exc

    def abort(self) -> None:
        self._stack.__exit__(IntakeClosed, IntakeClosed("aborted"), None)


class Intake:
    """Everything one request of a pelapor stores; all of it is kept, or none of it.

    Construct it before reading the upload: it fails closed (IntakeClosed) when the tenant has
    no current key or the disk is at its floor. Pass :meth:`open_file` to the upload parser,
    then call :meth:`new_case` or :meth:`follow_up`; on any failure call :meth:`abort`.
    """

    def __init__(self, ctx: Context, source_id: str, *, to_kpk: bool) -> None:
        self.ctx, self.source_id, self.to_kpk = ctx, source_id, to_kpk
        ensure_space(ctx.inst.store, ctx.inst.config.disk_floor_bytes)
        try:
            self.recipients = current_recipients(ctx.session, ctx.tenant, to_kpk=to_kpk)
        except NoKpkKey as exc:
            raise KpkUnavailable(str(exc)) from exc
        except TenantError as exc:
            raise IntakeClosed(str(exc)) from exc
        self.stored: list[StoredItem] = []
        self._open: list[_Sink] = []

    def open_file(self, field_name: str, filename: str, fields: object = None) -> _Sink:
        sink = _Sink(self, filename)
        self._open.append(sink)
        return sink

    def _store_bytes(self, data: bytes, filename: str) -> StoredItem:
        store = self.ctx.inst.store
        path = store.new_name(self.ctx.tenant.slug)
        ciphertext = encrypt_bytes(
            self.ctx.inst.keyring, self.recipients, data, filename, framing=FRAMING_PADME
        )
        try:
            with store.create(path) as out:
                out.write(ciphertext)
        except OSError as exc:
            if disk_was_full(store, self.ctx.inst.config.disk_floor_bytes, exc):
                raise IntakeClosed("the store's disk is full") from exc
            raise
        item = StoredItem(path, store.size(path), FRAMING_PADME)
        self.stored.append(item)
        return item

    def _add_submissions(self, case: Case, first: tuple[SubmissionKind, StoredItem] | None) -> None:
        items = ([first] if first else []) + [
            (SubmissionKind.FILE, item) for item in self.stored if first is None or item != first[1]
        ]
        for kind, item in items:
            self.ctx.scope.add(
                Submission(
                    case=case, kind=kind, store_path=item.path, size=item.size,
                    framing=item.framing,
                )
            )

    def new_case(self, answers: ReportAnswers) -> Case:
        """Encrypt the answers and record the case with everything stored. Commits."""
        ctx = self.ctx
        try:
            form = self._store_bytes(answers.document(), FORM_FILENAME)
            case = new_case_row(
                ctx, self.source_id, answers.category, answers.mcp_area, to_kpk=self.to_kpk,
                kpk_hint=answers.kpk_hint,
            )
            with committed_with_files(ctx.session, ctx.inst.store, self._paths()):
                ctx.scope.add(case)
                self._add_submissions(case, (SubmissionKind.FORM, form))
                ctx.session.flush()
                ctx.scope.add(
                    Event(case_id=case.id, kind=EventKind.CASE_CREATED, to_status=CaseStatus.BARU)
                )
                if case.sent_to_kpk:
                    log_share(ctx, case)
        except BaseException:
            self.abort()
            raise
        return case

    def follow_up(self, case: Case, message: str | None) -> None:
        """Add a message and the uploaded files to the pelapor's own case. Commits."""
        ctx = self.ctx
        try:
            if case.source_id != self.source_id or case.tenant_id != ctx.tenant.id:
                raise ReportError("not this source's case")
            first = None
            if message:
                first = (
                    SubmissionKind.MESSAGE,
                    self._store_bytes(message.encode(), MESSAGE_FILENAME),
                )
            if first is None and not self.stored:
                raise ReportError("nothing to send")
            with committed_with_files(ctx.session, ctx.inst.store, self._paths()):
                self._add_submissions(case, first)
                case.unread = True
                case.last_activity_at = dt.datetime.now(dt.UTC)
                ctx.scope.add(Event(case_id=case.id, kind=EventKind.SUBMISSION_ADDED))
        except BaseException:
            self.abort()
            raise

    def _paths(self) -> list[str]:
        return [item.path for item in self.stored]

    def abort(self) -> None:
        """Remove everything this request stored (and any file still being written)."""
        for sink in self._open:
            if not any(item.path == sink.file.path for item in self.stored):
                sink.file.abort()
        for item in self.stored:
            self.ctx.inst.store.discard(item.path)
        self.stored.clear()


class _Sink:
    """What the upload parser writes one file into: an :class:`EncryptedFile` whose item the
    intake keeps once it is complete."""

    def __init__(self, intake: Intake, filename: str) -> None:
        inst = intake.ctx.inst
        self._intake = intake
        self.file = EncryptedFile(
            inst.store,
            inst.keyring,
            intake.recipients,
            tenant_slug=intake.ctx.tenant.slug,
            source_id=intake.source_id,
            filename=filename,
            floor_bytes=inst.config.disk_floor_bytes,
        )

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)

    def close(self) -> None:
        self._intake.stored.append(self.file.close())

    def abort(self) -> None:
        self.file.abort()
