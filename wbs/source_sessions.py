"""Server-side sessions of pelapor.

The cookie value is ``<session id>.<key>``, both random. The database row is keyed by a hash of
the session id and holds, sealed with AES-GCM under the key, the source id, the reply-key
passphrase, the exact expiry and the rate-limit window. The key exists only in the cookie (and,
for the moment of a request, in memory):

* a stolen database (or disk) holds sealed blobs whose keys it never saw, and a day per row:
  not who, not what, and not when to more than the day (SQLite's WAL and free pages keep old
  row versions, so an exact time in any column would outlive the row);
* a stolen cookie is useless after logout or expiry, because the row is gone.

Every write seals afresh (a new nonce), so two versions of a row show nothing of what changed.

The codename itself is never kept anywhere: it is used once, to derive the secrets, at login.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.orm import Session

from crypto.kdf import SourceSecrets
from wbs.models import SourceSession, Tenant, utc_today_start, utcnow

_ID_BYTES = 16
_KEY_BYTES = 32
_NONCE_BYTES = 12
RATE_WINDOW = dt.timedelta(hours=1)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _row_id(session_id: bytes) -> str:
    return hashlib.sha256(b"peluit/source-session/v1\0" + session_id).hexdigest()


def _parse(token: str) -> tuple[bytes, bytes] | None:
    try:
        id_part, key_part = token.split(".")
        session_id, key = _unb64(id_part), _unb64(key_part)
    except ValueError:
        return None
    if len(session_id) != _ID_BYTES or len(key) != _KEY_BYTES:
        return None
    return session_id, key


def _seal(key: bytes, row_id: str, payload: dict[str, Any]) -> bytes:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    # The row id is bound as associated data: a sealed blob moved to another row won't open.
    return nonce + AESGCM(key).encrypt(nonce, json.dumps(payload).encode(), row_id.encode())


def _unseal(key: bytes, row: SourceSession) -> dict[str, Any] | None:
    nonce, body = row.sealed[:_NONCE_BYTES], row.sealed[_NONCE_BYTES:]
    try:
        payload = json.loads(AESGCM(key).decrypt(nonce, body, row.id.encode()))
    except (InvalidTag, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def _store(row: SourceSession, key: bytes, payload: dict[str, Any]) -> None:
    row.sealed = _seal(key, row.id, payload)
    row.purge_after = dt.datetime.fromtimestamp(payload["x"], dt.UTC)


def open_session(db: Session, tenant: Tenant, source: SourceSecrets, *, idle_minutes: int) -> str:
    """Create a session for ``source`` at ``tenant``; return the cookie value. Commits."""
    session_id, key = secrets.token_bytes(_ID_BYTES), secrets.token_bytes(_KEY_BYTES)
    now = utcnow()
    row = SourceSession(id=_row_id(session_id), tenant_id=tenant.id)
    _store(row, key, {
        "t": tenant.id,
        "s": source.source_id,
        "p": source.reply_passphrase,
        "x": (now + dt.timedelta(minutes=idle_minutes)).timestamp(),
        "w": now.timestamp(),
        "n": 0,
    })  # fmt: skip
    db.add(row)
    db.commit()
    return f"{_b64(session_id)}.{_b64(key)}"


def _find(
    db: Session, tenant: Tenant, token: str
) -> tuple[SourceSession, bytes, dict[str, Any]] | None:
    """The live session of ``token`` at ``tenant``, its key and its unsealed payload.

    An expired row found here is deleted (committed). None for anything unknown or broken.
    """
    parsed = _parse(token)
    if parsed is None:
        return None
    session_id, key = parsed
    row = db.get(SourceSession, _row_id(session_id))
    if row is None or row.tenant_id != tenant.id:
        return None
    payload = _unseal(key, row)
    if payload is None or payload.get("t") != tenant.id:
        return None
    if payload["x"] <= utcnow().timestamp():
        db.delete(row)
        db.commit()
        return None
    return row, key, payload


def resume_session(
    db: Session, tenant: Tenant, token: str, *, idle_minutes: int
) -> SourceSecrets | None:
    """The secrets of a live session, sliding its expiry; None if unknown, expired or broken.

    Commits (the new expiry, or the removal of an expired row).
    """
    found = _find(db, tenant, token)
    if found is None:
        return None
    row, key, payload = found
    payload["x"] = (utcnow() + dt.timedelta(minutes=idle_minutes)).timestamp()
    _store(row, key, payload)
    db.commit()
    return SourceSecrets(source_id=payload["s"], reply_passphrase=payload["p"])


def close_session(db: Session, tenant: Tenant, token: str) -> None:
    """End a session (logout). Unknown tokens are ignored. Commits."""
    found = _find(db, tenant, token)
    if found is not None:
        db.delete(found[0])
        db.commit()


def count_action(db: Session, tenant: Tenant, token: str) -> int:
    """Count one rate-limited action (a submission) in this session's current window; return
    how many there have been in the window, this one included. Commits."""
    found = _find(db, tenant, token)
    if found is None:
        return 0
    row, key, payload = found
    now = utcnow().timestamp()
    if now - payload["w"] >= RATE_WINDOW.total_seconds():
        payload["w"], payload["n"] = now, 0
    payload["n"] += 1
    _store(row, key, payload)
    db.commit()
    return int(payload["n"])


def purge_expired(db: Session) -> int:
    """Delete the sessions whose day is over, of every tenant; return how many. Commits.

    Only the day is in the clear, so a session that ended earlier today waits for tomorrow's
    purge (unless its cookie comes back and finds it expired). It opens nothing meanwhile.
    """
    result = db.execute(
        sa.delete(SourceSession).where(SourceSession.purge_after < utc_today_start())
    )
    db.commit()
    return int(getattr(result, "rowcount", 0) or 0)
