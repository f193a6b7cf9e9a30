"""The second factor: TOTP enrolment and code checks.

TOTP (RFC 6238: SHA-1, six digits, 30 s, what every authenticator app reads) is mandatory: an
account without a TOTP secret cannot log in. A new secret is *pending* until a code made from it
is accepted (by :func:`confirm_enrolment`, or by the first login of an account whose 2FA is not
yet active), so a mistyped enrolment never locks anyone out. A code is accepted for the current
step and one step either side (clock drift), and each accepted step is stored: a code of that
step or an earlier one is refused, so a code seen over a shoulder or captured by a phishing
proxy cannot be used again.

**At rest** the secrets are sealed (AES-256-GCM, :mod:`crypto.sealing`) under a key derived
from the instance's ``totp_key`` secret file, with the account's id as associated data: a copy
of the database alone (a backup, a dump) gives no working second factor, and a sealed secret
copied into another account's row does not open there. The server must read the secret back
to check codes, so it cannot be a hash or a public-key encryption to the workstation.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from dataclasses import dataclass

import pyotp
import segno
from sqlalchemy.orm import Session

from crypto.sealing import SealError, SealingKey
from wbs.accounts.settings import (
    DEFAULT_SETTINGS,
    AuthSettings,
)
from wbs.config import Secrets
from wbs.models import (
    Investigator,
    utcnow,
)

_CODE = re.compile(r"\d{6}")
# The HKDF label of the sealing key and the prefix of the associated data. Frozen: migration
# 0007 sealed the existing secrets with them, and every stored secret opens only with them.
TOTP_KEY_LABEL = "peluit/investigators.totp/v1"
_ASSOCIATED_PREFIX = "investigators.totp:"
# Accept the step before and after the current one: phone clocks drift, people type slowly.
TOTP_VALID_WINDOW = 1


@dataclass(frozen=True, repr=False)
class Enrolment:
    """What an investigator needs to set up their authenticator app. Shown once.

    ``qr_svg`` is an inline ``<svg>`` drawn on the server: no script, no external resource.
    """

    secret: str
    uri: str
    qr_svg: str

    def __repr__(self) -> str:
        return "Enrolment(secret=<hidden>)"


def totp_key(secrets: Secrets) -> SealingKey:
    """The key that seals TOTP secrets, derived from the instance's ``totp_key`` file."""
    return SealingKey.derive(secrets.totp_key, TOTP_KEY_LABEL)


def seal_secret(key: SealingKey, investigator_id: int, secret: str) -> str:
    return key.seal(secret, f"{_ASSOCIATED_PREFIX}{investigator_id}".encode())


def open_secret(key: SealingKey, investigator_id: int, sealed: str) -> str:
    """The secret sealed in ``investigator_id``'s row; :class:`SealError` if it does not open."""
    return key.open(sealed, f"{_ASSOCIATED_PREFIX}{investigator_id}".encode())


def sealing_key(settings: AuthSettings) -> SealingKey:
    # Fail closed: without the instance's key there is no TOTP at all, never one in plain text.
    if settings.totp_key is None:
        raise RuntimeError("AuthSettings.totp_key is not set: TOTP secrets cannot be used")
    return settings.totp_key


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret)


def matching_step(secret: str, code: str, now: dt.datetime) -> int | None:
    """The time step whose code ``code`` is, within the accepted window; None if none."""
    code = re.sub(r"\s", "", code)
    if not _CODE.fullmatch(code):
        return None
    totp = _totp(secret)
    current = totp.timecode(now)
    matched: int | None = None
    # Compare every candidate in constant time, and all of them, whatever matched first.
    for step in range(current - TOTP_VALID_WINDOW, current + TOTP_VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            matched = step
    return matched


def _qr_svg(uri: str) -> str:
    return segno.make(uri, error="m").svg_inline(
        scale=5, dark="#000", light="#fff", title="Kode QR untuk aplikasi autentikator"
    )


def start_enrolment(
    session: Session, investigator: Investigator, *, settings: AuthSettings = DEFAULT_SETTINGS
) -> Enrolment:
    """Give ``investigator`` a new pending TOTP secret. Flushes.

    The current secret (if any) keeps working until :func:`confirm_enrolment` accepts a code
    of the new one.
    """
    key = sealing_key(settings)
    secret = pyotp.random_base32(32)  # 160 bits, RFC 4226's recommended length
    uri = _totp(secret).provisioning_uri(
        name=investigator.username, issuer_name=settings.totp_issuer
    )
    if investigator.id is None:
        session.flush()  # the id is the sealed secret's associated data
    investigator.totp_pending_sealed = seal_secret(key, investigator.id, secret)
    session.flush()
    return Enrolment(secret=secret, uri=uri, qr_svg=_qr_svg(uri))


def confirm_enrolment(
    session: Session,
    investigator: Investigator,
    code: str,
    now: dt.datetime | None = None,
    *,
    settings: AuthSettings = DEFAULT_SETTINGS,
) -> bool:
    """Activate the pending secret if ``code`` was made from it; False otherwise. Flushes."""
    key = sealing_key(settings)
    sealed = investigator.totp_pending_sealed
    if sealed is None:
        return False
    try:
        pending = open_secret(key, investigator.id, sealed)
    except SealError:
        return False
    step = matching_step(pending, code, now or utcnow())
    if step is None:
        return False
    investigator.totp_secret_sealed = sealed
    investigator.totp_pending_sealed = None
    # Replays are judged per secret; this code is now the newest one seen.
    investigator.totp_last_step = step
    session.flush()
    return True
