"""The pelapor's side of their cases, below HTTP: register and authenticate a codename, see
their own cases and what happened to them, read and delete replies.

A source is known only by an id derived from the codename (argon2id with a pepper); the
codename itself is never stored. Replies are decrypted only in memory for a logged-in pelapor,
with the reply-key passphrase their session holds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crypto.errors import CryptoError
from crypto.kdf import SourceSecrets, derive_source_secrets
from crypto.replykeys import decrypt_reply, generate_reply_key
from wbs.context import Context
from wbs.domain import EventKind
from wbs.intake import ReportError
from wbs.models import Case, Event, Reply, Source, utc_today_start

# A codename is registered when the pelapor confirms it, before they write the report. One that
# never sent anything is kept this long (days), then forgotten: its row and locked reply key
# would otherwise stay forever, telling that someone came to report and did not.
ABANDONED_AFTER_DAYS = 14
# 80 bits: unguessable, and short enough for a link.
_REPLY_TOKEN_HEX = 20


def _secrets(ctx: Context, codename: str) -> SourceSecrets:
    inst = ctx.inst
    return derive_source_secrets(
        codename,
        source_id_pepper=inst.secrets.source_id_pepper,
        reply_key_pepper=inst.secrets.reply_key_pepper,
        params=inst.config.kdf,
    )


def register_source(ctx: Context, codename: str, *, commit: bool = True) -> SourceSecrets:
    """Create the source for a new codename, with its locked reply key. Commits, unless
    ``commit`` is False (an operator's intake adds the source with its case, in one commit)."""
    secrets = _secrets(ctx, codename)
    if ctx.session.get(Source, secrets.source_id) is not None:
        # Two draws of a 90-bit codename colliding means a broken random source: stop.
        raise ReportError("codename already registered")
    key = generate_reply_key(secrets.reply_passphrase, ctx.inst.config.gpg_binary)
    ctx.scope.add(
        Source(
            id=secrets.source_id,
            reply_fingerprint=key.fingerprint,
            reply_public_key=key.public_armored,
            reply_secret_key=key.secret_armored,
        )
    )
    if commit:
        ctx.session.commit()
    return secrets


def authenticate_source(ctx: Context, codename: str) -> SourceSecrets | None:
    """The secrets of a known codename at this tenant; None otherwise (also another tenant's)."""
    secrets = _secrets(ctx, codename)
    if ctx.scope.get(Source, secrets.source_id) is None:
        return None
    return secrets


def source_cases(ctx: Context, source_id: str) -> list[Case]:
    return list(
        ctx.session.scalars(
            ctx.scope.select(Case).where(Case.source_id == source_id).order_by(Case.id)
        )
    )


def source_case(ctx: Context, source_id: str, registration_number: str) -> Case | None:
    """One of this source's cases by its registration number: the only name a pelapor has for
    a case. (Database ids are never shown to them: sequential across tenants, they would tell
    how many reports the whole system received, and in which order.)"""
    case = ctx.session.scalar(
        ctx.scope.select(Case).where(Case.registration_number == registration_number)
    )
    if case is None or case.source_id != source_id:
        return None
    return case


def case_history(ctx: Context, case: Case) -> list[Event]:
    """The status changes of a case and the pelapor's own follow-ups, oldest first: what the
    pelapor may follow."""
    kinds = [EventKind.CASE_CREATED, EventKind.STATUS_CHANGED, EventKind.SUBMISSION_ADDED]
    return list(
        ctx.session.scalars(
            ctx.scope.select(Event)
            .where(Event.case_id == case.id)
            .where(Event.kind.in_(kinds))
            .order_by(Event.id)
        )
    )


def source_replies(
    ctx: Context, secrets: SourceSecrets, case: Case, thread: Case | None = None
) -> list[tuple[Reply, str]]:
    """Replies of a case, decrypted in memory with the source's reply key; marks them read.

    ``thread`` is the case that handles ``case`` now when it was forwarded
    (:func:`wbs.forwarding.handling_case`): its replies are read instead, with the same key
    (the receiving tenant encrypts to the reply public key its linked source holds).

    A reply that cannot be decrypted (or whose padding frame does not hold) shows as an empty
    text rather than breaking the page; the failure is the server's problem, never the
    pelapor's.
    """
    source = ctx.scope.get(Source, secrets.source_id)
    if source is None or case.source_id != source.id:
        raise ReportError("not this source's case")
    out = []
    for reply in (thread or case).replies:
        with ctx.inst.store.open(reply.store_path) as stream:
            ciphertext = stream.read()
        try:
            text = decrypt_reply(
                source.reply_secret_key,
                secrets.reply_passphrase,
                ciphertext,
                ctx.inst.config.gpg_binary,
                # Stripped and checked by the framing recorded with the reply, never guessed.
                framing=reply.framing,
            ).decode("utf-8", "replace")
        except CryptoError:
            text = ""
        out.append((reply, text))
        reply.read_by_source = True
    ctx.session.commit()
    return out


def reply_token(ctx: Context, reply: Reply) -> str:
    """The name of a reply in the pelapor's links: opaque and stable.

    Not the database id, which counts every reply of every tenant in order; a keyed hash of it
    says nothing of the kind, and cannot be guessed for another source's reply either.
    """
    key = ctx.inst.secrets.session_key
    message = b"peluit/reply-link\0" + str(reply.id).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:_REPLY_TOKEN_HEX]


def own_reply(ctx: Context, source_id: str, token: str) -> Reply | None:
    """The reply of one of this source's cases that ``token`` names, or None (also for
    another source's reply)."""
    replies = ctx.session.scalars(
        ctx.scope.select(Reply).join(Case, Reply.case).where(Case.source_id == source_id)
    )
    for reply in replies:
        if hmac.compare_digest(reply_token(ctx, reply), token):
            return reply
    return None


def delete_reply(ctx: Context, source_id: str, token: str) -> bool:
    """Delete a reply the pelapor has read: its file and row together. False if not allowed."""
    reply = own_reply(ctx, source_id, token)
    if reply is None or not reply.read_by_source:
        return False
    ctx.scope.add(Event(case_id=reply.case_id, kind=EventKind.REPLY_DELETED))
    ctx.inst.store.remove_with_rows(ctx.session, [reply.store_path], [reply])
    return True


def purge_abandoned_sources(session: Session) -> int:
    """Delete the sources of every tenant that never sent a report and were registered more
    than :data:`ABANDONED_AFTER_DAYS` days ago; return how many. Commits.

    A maintenance task across tenants (like the session purge), not a request's: it runs
    without a tenant's context. The pelapor who comes back later finds their codename unknown,
    exactly as a wrong one, and can draw a new one.
    """
    cutoff = utc_today_start() - dt.timedelta(days=ABANDONED_AFTER_DAYS)
    has_case = sa.exists().where(Case.source_id == Source.id)
    result = session.execute(
        sa.delete(Source).where(Source.created_at < cutoff, ~has_case)
    )
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
