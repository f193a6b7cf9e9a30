"""The pelapor's side of a case, below HTTP: register, authenticate, report, follow up, replies.

Everything the pelapor sends is encrypted to the tenant's recipient keys (and KPK's when the
report goes to KPK) before it touches disk; the server keeps ciphertext and metadata only.
Replies are encrypted to the source's reply key and the tenant's keys, and decrypted only in
memory for a logged-in pelapor, with the passphrase their session holds.
"""

from __future__ import annotations

import datetime as dt
import json
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from crypto.encrypt import EncryptWriter, encrypt_bytes, open_encryptor
from crypto.errors import CryptoError
from crypto.kdf import SourceSecrets, derive_source_secrets
from crypto.recipients import NotAnEncryptedMessage, ciphertext_key_ids, key_id
from crypto.replykeys import decrypt_reply, encrypt_reply, generate_reply_key
from wbs.domain import CaseStatus, EventKind, SubmissionKind, can_transition
from wbs.intake import IntakeClosed, StoredItem, committed_with_files, ensure_space
from wbs.models import Case, Event, Reply, Source, Submission, Tenant, new_registration_number
from wbs.tenancy import TenantScope
from wbs.tenants import TenantError, current_recipients, recipient_keys
from wbs.workdays import local_date

if TYPE_CHECKING:
    from wbs.instance import Instance

# PP 43/2018 Pasal 10(2): the answer to the reporter within 30 working days.
ANSWER_DAYS = 30
# How often a long upload re-checks the disk floor.
_SPACE_CHECK_BYTES = 16 * 1024 * 1024
FORM_FILENAME = "laporan.json"
MESSAGE_FILENAME = "pesan.txt"


class ReportError(ValueError):
    """A pelapor action that cannot be done (unknown case, wrong state)."""


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

    def document(self) -> bytes:
        """The encrypted form document: JSON, versioned for the workstation's reader."""
        return json.dumps(
            {"format": "peluit-report/1", **asdict(self)}, ensure_ascii=False, indent=2
        ).encode("utf-8")


# --- sources -------------------------------------------------------------------------------


def _secrets(inst: Instance, codename: str) -> SourceSecrets:
    return derive_source_secrets(
        codename,
        source_id_pepper=inst.secrets.source_id_pepper,
        reply_key_pepper=inst.secrets.reply_key_pepper,
        params=inst.config.kdf,
    )


def register_source(
    inst: Instance, session: Session, tenant: Tenant, codename: str
) -> SourceSecrets:
    """Create the source for a new codename, with its locked reply key. Commits."""
    secrets = _secrets(inst, codename)
    if session.get(Source, secrets.source_id) is not None:
        # Two draws of a 90-bit codename colliding means a broken random source: stop.
        raise ReportError("codename already registered")
    key = generate_reply_key(secrets.reply_passphrase, inst.config.gpg_binary)
    TenantScope(session, tenant).add(
        Source(
            id=secrets.source_id,
            reply_fingerprint=key.fingerprint,
            reply_public_key=key.public_armored,
            reply_secret_key=key.secret_armored,
        )
    )
    session.commit()
    return secrets


def authenticate_source(
    inst: Instance, session: Session, tenant: Tenant, codename: str
) -> SourceSecrets | None:
    """The secrets of a known codename at this tenant; None otherwise (also another tenant's)."""
    secrets = _secrets(inst, codename)
    if TenantScope(session, tenant).get(Source, secrets.source_id) is None:
        return None
    return secrets


# --- intake -------------------------------------------------------------------------------


class _FileSink:
    """One uploaded file on its way into the store: chunks in, ciphertext out."""

    def __init__(self, intake: Intake, filename: str) -> None:
        self._intake = intake
        self.path = intake.inst.store.new_name(intake.tenant.slug, intake.source_id)
        self._stack = ExitStack()
        try:
            self._out = sink = self._stack.enter_context(intake.inst.store.create(self.path))
            self._writer: EncryptWriter = self._stack.enter_context(
                open_encryptor(intake.inst.keyring, intake.recipients, sink, filename or None)
            )
        except BaseException as exc:
            # gpg could not start: remove the empty .part file and close it now.
            self._stack.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._since_check = 0
        self.bytes_in = 0

    def write(self, chunk: bytes) -> None:
        self._since_check += len(chunk)
        if self._since_check >= _SPACE_CHECK_BYTES:
            self._since_check = 0
            ensure_space(self._intake.inst.store, self._intake.inst.config.disk_floor_bytes)
            self._intake.inst.store.start_writeback(self._out)
        self._writer.write(chunk)
        self.bytes_in += len(chunk)

    def close(self) -> None:
        # Leaving the stack normally closes gpg (verifying it) and renames the .part file.
        self._stack.close()
        self._intake.stored.append(StoredItem(self.path, self._intake.inst.store.size(self.path)))

    def abort(self) -> None:
        # Leaving with an exception kills gpg and deletes the .part file.
        self._stack.__exit__(IntakeClosed, IntakeClosed("aborted"), None)


class Intake:
    """Everything one request of a pelapor stores; all of it is kept, or none of it.

    Construct it before reading the upload: it fails closed (IntakeClosed) when the tenant has
    no current key or the disk is at its floor. Pass :meth:`open_file` to the upload parser,
    then call :meth:`new_case` or :meth:`follow_up`; on any failure call :meth:`abort`.
    """

    def __init__(
        self, inst: Instance, session: Session, tenant: Tenant, source_id: str, *, to_kpk: bool
    ) -> None:
        self.inst, self.session, self.tenant, self.source_id = inst, session, tenant, source_id
        self.to_kpk = to_kpk
        ensure_space(inst.store, inst.config.disk_floor_bytes)
        try:
            self.recipients = current_recipients(session, tenant, to_kpk=to_kpk)
        except TenantError as exc:
            raise IntakeClosed(str(exc)) from exc
        self.stored: list[StoredItem] = []
        self._open: list[_FileSink] = []

    def open_file(self, field_name: str, filename: str, fields: object = None) -> _FileSink:
        sink = _FileSink(self, filename)
        self._open.append(sink)
        return sink

    def _store_bytes(self, data: bytes, filename: str) -> StoredItem:
        path = self.inst.store.new_name(self.tenant.slug, self.source_id)
        with self.inst.store.create(path) as out:
            out.write(encrypt_bytes(self.inst.keyring, self.recipients, data, filename))
        item = StoredItem(path, self.inst.store.size(path))
        self.stored.append(item)
        return item

    def _add_submissions(self, case: Case, first: tuple[SubmissionKind, StoredItem] | None) -> None:
        scope = TenantScope(self.session, self.tenant)
        items = ([first] if first else []) + [
            (SubmissionKind.FILE, item) for item in self.stored if first is None or item != first[1]
        ]
        for kind, item in items:
            scope.add(Submission(case=case, kind=kind, store_path=item.path, size=item.size))

    def new_case(self, answers: ReportAnswers) -> Case:
        """Encrypt the answers and record the case with everything stored. Commits."""
        try:
            form = self._store_bytes(answers.document(), FORM_FILENAME)
            now = dt.datetime.now(dt.UTC)
            received = local_date(now)
            scope = TenantScope(self.session, self.tenant)
            case = Case(
                source_id=self.source_id,
                registration_number=new_registration_number(self.session, self.tenant, now.year),
                category=answers.category,
                mcp_area=answers.mcp_area,
                status=CaseStatus.BARU,
                sent_to_kpk=self.to_kpk,
                first_response_due=self.inst.calendar.add_working_days(
                    received, self.tenant.first_response_days
                ),
                closure_due=self.inst.calendar.add_working_days(received, ANSWER_DAYS),
            )
            with committed_with_files(self.session, self.inst.store, self._paths()):
                scope.add(case)
                self._add_submissions(case, (SubmissionKind.FORM, form))
                self.session.flush()
                scope.add(
                    Event(case_id=case.id, kind=EventKind.CASE_CREATED, to_status=CaseStatus.BARU)
                )
        except BaseException:
            self.abort()
            raise
        return case

    def follow_up(self, case: Case, message: str | None) -> None:
        """Add a message and the uploaded files to the pelapor's own case. Commits."""
        try:
            if case.source_id != self.source_id or case.tenant_id != self.tenant.id:
                raise ReportError("not this source's case")
            first = None
            if message:
                first = (
                    SubmissionKind.MESSAGE,
                    self._store_bytes(message.encode(), MESSAGE_FILENAME),
                )
            if first is None and not self.stored:
                raise ReportError("nothing to send")
            with committed_with_files(self.session, self.inst.store, self._paths()):
                self._add_submissions(case, first)
                case.unread = True
                case.last_activity_at = dt.datetime.now(dt.UTC)
                TenantScope(self.session, self.tenant).add(
                    Event(case_id=case.id, kind=EventKind.SUBMISSION_ADDED)
                )
        except BaseException:
            self.abort()
            raise

    def _paths(self) -> list[str]:
        return [item.path for item in self.stored]

    def abort(self) -> None:
        """Remove everything this request stored (and any file still being written)."""
        for sink in self._open:
            if not any(item.path == sink.path for item in self.stored):
                sink.abort()
        for item in self.stored:
            self.inst.store.resolve(item.path).unlink(missing_ok=True)
        self.stored.clear()


# --- what the pelapor sees -------------------------------------------------------------------


def source_cases(session: Session, tenant: Tenant, source_id: str) -> list[Case]:
    scope = TenantScope(session, tenant)
    return list(
        session.scalars(scope.select(Case).where(Case.source_id == source_id).order_by(Case.id))
    )


def source_case(session: Session, tenant: Tenant, source_id: str, case_id: int) -> Case | None:
    case = TenantScope(session, tenant).get(Case, case_id)
    if case is None or case.source_id != source_id:
        return None
    return case


def case_history(session: Session, tenant: Tenant, case: Case) -> list[Event]:
    """The status changes of a case, oldest first: what the pelapor may follow."""
    scope = TenantScope(session, tenant)
    return list(
        session.scalars(
            scope.select(Event)
            .where(Event.case_id == case.id)
            .where(Event.kind.in_([EventKind.CASE_CREATED, EventKind.STATUS_CHANGED]))
            .order_by(Event.id)
        )
    )


def source_replies(
    inst: Instance, session: Session, tenant: Tenant, secrets: SourceSecrets, case: Case
) -> list[tuple[Reply, str]]:
    """Replies of a case, decrypted in memory with the source's reply key; marks them read.

    A reply that cannot be decrypted shows as an empty text rather than breaking the page; the
    failure is the server's problem, never the pelapor's.
    """
    source = TenantScope(session, tenant).get(Source, secrets.source_id)
    if source is None or case.source_id != source.id:
        raise ReportError("not this source's case")
    out = []
    for reply in case.replies:
        with inst.store.open(reply.store_path) as stream:
            ciphertext = stream.read()
        try:
            text = decrypt_reply(
                source.reply_secret_key,
                secrets.reply_passphrase,
                ciphertext,
                inst.config.gpg_binary,
            ).decode("utf-8", "replace")
        except CryptoError:
            text = ""
        out.append((reply, text))
        reply.read_by_source = True
    session.commit()
    return out


def delete_reply(
    inst: Instance, session: Session, tenant: Tenant, source_id: str, reply_id: int
) -> bool:
    """Delete a reply the pelapor has read: its file and row together. False if not allowed."""
    reply = TenantScope(session, tenant).get(Reply, reply_id)
    if reply is None or reply.case.source_id != source_id or not reply.read_by_source:
        return False
    TenantScope(session, tenant).add(Event(case_id=reply.case_id, kind=EventKind.REPLY_DELETED))
    inst.store.remove_with_rows(session, [reply.store_path], [reply])
    return True


# --- investigators' side, as far as the pelapor sees it --------------------------------------


def _case_source(session: Session, tenant: Tenant, case: Case) -> Source:
    source = TenantScope(session, tenant).get(Source, case.source_id)
    if source is None:
        raise ReportError("the case has no source")
    return source


def _store_reply(
    inst: Instance,
    session: Session,
    tenant: Tenant,
    case: Case,
    ciphertext: bytes,
    investigator_id: int | None,
) -> Reply:
    scope = TenantScope(session, tenant)
    path = inst.store.new_name(tenant.slug, case.source_id)
    with inst.store.create(path) as out:
        out.write(ciphertext)
    reply = Reply(case=case, investigator_id=investigator_id, store_path=path, size=len(ciphertext))
    now = dt.datetime.now(dt.UTC)
    with committed_with_files(session, inst.store, [path]):
        scope.add(reply)
        scope.add(
            Event(
                case_id=case.id,
                kind=EventKind.REPLY_ADDED,
                actor_investigator_id=investigator_id,
                created_at=now,
            )
        )
        if case.first_response_at is None:
            case.first_response_at = now
    return reply


def post_reply(
    inst: Instance,
    session: Session,
    tenant: Tenant,
    case: Case,
    text: str,
    *,
    investigator_id: int | None = None,
) -> Reply:
    """Encrypt a reply to the source's reply key and the tenant's keys, and store it. Commits.

    The tenant's keys are recipients too, so the case history stays readable on the workstation.
    """
    source = _case_source(session, tenant, case)
    ciphertext = encrypt_reply(
        inst.keyring,
        current_recipients(session, tenant),
        source.reply_public_key,
        text.encode("utf-8"),
    )
    return _store_reply(inst, session, tenant, case, ciphertext, investigator_id)


# A typed reply is a few KiB; this leaves room for a long one without letting an upload of
# anything at all through.
MAX_ENCRYPTED_REPLY_BYTES = 1024 * 1024


def accept_encrypted_reply(
    inst: Instance,
    session: Session,
    tenant: Tenant,
    case: Case,
    ciphertext: bytes,
    *,
    investigator_id: int | None = None,
) -> Reply:
    """Store a reply encrypted on the air-gapped workstation, as it is. Commits.

    The plaintext never reaches the server. What is checked, without decrypting: it is an
    OpenPGP message encrypted to public keys, one of them the source's reply key (or the
    pelapor could not read it) and every current recipient key of the tenant (or the case
    history would not stay readable on the workstation). Raises :class:`ReportError` saying
    which is missing.
    """
    if not ciphertext or len(ciphertext) > MAX_ENCRYPTED_REPLY_BYTES:
        raise ReportError("an encrypted reply must be between 1 byte and 1 MiB")
    source = _case_source(session, tenant, case)
    try:
        key_ids = ciphertext_key_ids(ciphertext, inst.config.gpg_binary)
    except NotAnEncryptedMessage as exc:
        raise ReportError(f"not an encrypted reply: {exc}") from exc

    def readable_by(armored: str) -> bool:
        info = inst.keyring.inspect_public_key(armored)
        return any(key_id(fpr) in key_ids for fpr in info.encryption_fingerprints)

    if not readable_by(source.reply_public_key):
        raise ReportError("the reply is not encrypted to the pelapor's reply key")
    current = [key for key in recipient_keys(session, tenant) if key.revoked_at is None]
    unreadable = [key.fingerprint for key in current if not readable_by(key.public_key)]
    if not current or unreadable:
        raise ReportError(
            "the reply is not encrypted to every current key of the instansi: "
            + ", ".join(unreadable or ["(no current key)"])
        )
    return _store_reply(inst, session, tenant, case, ciphertext, investigator_id)


def change_status(
    session: Session,
    tenant: Tenant,
    case: Case,
    status: CaseStatus,
    *,
    actor_id: int | None = None,
    note: str | None = None,
) -> Event:
    """Move a case along the workflow (:data:`wbs.domain.ALLOWED_TRANSITIONS`). Commits.

    ``note`` is plaintext in the log: a short reason, never report content. A question for the
    pelapor (Klarifikasi) goes to them as an encrypted reply (:func:`post_reply`).
    """
    if not can_transition(case.status, status):
        raise ReportError(f"a case cannot go from {case.status.label} to {status.label}")
    now = dt.datetime.now(dt.UTC)
    event = Event(
        case_id=case.id,
        kind=EventKind.STATUS_CHANGED,
        from_status=case.status,
        to_status=status,
        actor_investigator_id=actor_id,
        note=note,
        created_at=now,
    )
    case.status = status
    if case.first_response_at is None:
        # The same instant as the event, so the column and the log agree (migration 0005).
        case.first_response_at = now
    TenantScope(session, tenant).add(event)
    session.commit()
    return event


__all__ = [
    "Intake",
    "IntakeClosed",
    "ReportAnswers",
    "ReportError",
    "accept_encrypted_reply",
    "authenticate_source",
    "case_history",
    "change_status",
    "delete_reply",
    "post_reply",
    "register_source",
    "source_case",
    "source_cases",
    "source_replies",
]
