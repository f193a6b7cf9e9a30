"""Logging in: one check of username, password and TOTP code, behind two throttles.

:func:`authenticate` commits: its effect (a counted failure, a cleared count) must persist
whatever the view does next.

**Throttling, and its trade-offs.** Two limits, both in the database so that every worker and
every app host shares them:

* Per account: from the :attr:`ThrottleParams.free_failures`-th consecutive failure on, the
  account refuses attempts for a delay that doubles with each further failure, from
  :attr:`~ThrottleParams.first_delay` up to :attr:`~ThrottleParams.max_delay` (15 min). While
  refused, attempts are not checked and not counted, so an attacker cannot push the delay
  further; after it a real user's correct login goes through and clears the count. The cost:
  someone who knows a username can keep that account delayed by spending one guess every
  15 minutes; in exchange, guessing is held to about a hundred tries a day per account. A
  permanent lock would give attackers a way to shut accounts out; no lock would leave guessing
  limited only by the global rate.
* Global: when :attr:`~ThrottleParams.global_max_failures` attempts failed in the last
  :attr:`~ThrottleParams.global_window` across all accounts (unknown usernames included),
  every login is refused until the window holds fewer. This is what stops *spraying*, one
  password tried against many accounts, which the per-account limit never sees. The cost: a
  flood of failures delays every investigator by up to one window (a minute), for as long as
  the flood lasts. The investigator interface sits behind an onion service with client
  authorisation, so a flood needs a stolen client key first; this limit is the backstop.

Attempts are counted *before* the password is checked and uncounted on success, so parallel
attempts cannot all slip past the limits while the slow hash runs.

**One failure for all.** Unknown user, wrong password, wrong code, replayed code, inactive
account, throttled: the caller gets the same :class:`LoginResult` (``ok`` False, no
investigator) and must show :data:`LOGIN_FAILED_MESSAGE`; the internal :class:`FailureReason` is
for tests and the operator's log, never for the page. Every checked attempt runs exactly one
argon2 verification, against a dummy hash when there is no account or it is throttled, so the
response time does not tell which usernames exist. (Only the global refusal skips it: that
state is the same for every username, and skipping saves the server's memory during a flood.)
Failed logins are not written to the append-only event log: an attacker could fill a log that
can never be cleaned.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crypto.sealing import SealError
from wbs.accounts.passwords import (
    dummy_hash,
    hash_password,
    needs_rehash,
    verify_password,
)
from wbs.accounts.settings import (
    DEFAULT_SETTINGS,
    AuthSettings,
    ThrottleParams,
)
from wbs.accounts.totp import matching_step, open_secret, sealing_key
from wbs.models import (
    Investigator,
    LoginFailure,
    utcnow,
)

LOGIN_FAILED_MESSAGE = (
    "Nama pengguna, kata sandi atau kode autentikator salah, atau terlalu banyak percobaan. "
    "Periksa lalu coba lagi beberapa saat kemudian."
)


class FailureReason(StrEnum):
    """Why a login failed. Internal: the page shows LOGIN_FAILED_MESSAGE whatever it is."""

    UNKNOWN_USER = "unknown_user"
    BAD_PASSWORD = "bad_password"  # noqa: S105 -- names a failure; it is not a password
    BAD_CODE = "bad_code"
    REPLAYED_CODE = "replayed_code"
    NO_TOTP = "no_totp"
    UNREADABLE_TOTP = "unreadable_totp"
    INACTIVE = "inactive"
    THROTTLED = "throttled"
    GLOBAL_THROTTLED = "global_throttled"


@dataclass(frozen=True)
class LoginResult:
    """The outcome of :func:`authenticate`: every failure looks the same but for ``reason``."""

    investigator: Investigator | None
    reason: FailureReason | None = None

    @property
    def ok(self) -> bool:
        return self.investigator is not None

    @property
    def message(self) -> str | None:
        return None if self.ok else LOGIN_FAILED_MESSAGE


def _failed(reason: FailureReason) -> LoginResult:
    return LoginResult(investigator=None, reason=reason)


def normal_username(username: str) -> str:
    return username.strip().lower()


def backoff_delay(failures: int, throttle: ThrottleParams) -> dt.timedelta | None:
    """How long an account refuses attempts after ``failures`` consecutive failures."""
    if failures < throttle.free_failures:
        return None
    doublings = min(failures - throttle.free_failures, 32)
    return min(throttle.first_delay * (1 << doublings), throttle.max_delay)


def recent_failures(
    session: Session, now: dt.datetime, throttle: ThrottleParams = DEFAULT_SETTINGS.throttle
) -> int:
    """Failed logins across all accounts within the global window before ``now``."""
    since = now - throttle.global_window
    count = session.scalar(
        sa.select(sa.func.count()).select_from(LoginFailure).where(LoginFailure.failed_at > since)
    )
    return int(count or 0)


def _claim_attempt(
    session: Session, investigator: Investigator, now: dt.datetime, throttle: ThrottleParams
) -> bool:
    """Count this attempt as a failure unless the account is refusing attempts.

    A conditional UPDATE, so two parallel attempts cannot both see an unlocked account: the
    second waits for the first's row lock and then sees the lock the first set.
    """
    failures = session.execute(
        sa.update(Investigator)
        .where(
            Investigator.id == investigator.id,
            sa.or_(Investigator.locked_until.is_(None), Investigator.locked_until <= now),
        )
        .values(failed_logins=Investigator.failed_logins + 1)
        .returning(Investigator.failed_logins)
        .execution_options(synchronize_session="fetch")
    ).scalar_one_or_none()
    if failures is None:
        return False
    delay = backoff_delay(failures, throttle)
    investigator.locked_until = now + delay if delay is not None else None
    return True


def authenticate(
    session: Session,
    username: str,
    password: str,
    totp_code: str,
    now: dt.datetime | None = None,
    *,
    settings: AuthSettings = DEFAULT_SETTINGS,
) -> LoginResult:
    """Check a login: username, password and a TOTP code. Commits.

    On success the account's failure count is cleared, the code's step is remembered (no
    replay), a pending TOTP enrolment becomes active, and a hash with outdated costs is
    replaced. See the module's docstring for throttling and the uniform failure.
    """
    now = now or utcnow()
    throttle, params = settings.throttle, settings.passwords
    key = sealing_key(settings)

    if recent_failures(session, now, throttle) >= throttle.global_max_failures:
        return _failed(FailureReason.GLOBAL_THROTTLED)

    # Authentication is what establishes the tenant, so this is the one read of investigators
    # not made through a TenantScope; usernames are unique across tenants.
    investigator = session.scalar(
        sa.select(Investigator).where(Investigator.username == normal_username(username))
    )
    # Counted before checking, uncounted on success (see the module's docstring).
    failure = LoginFailure(failed_at=now)
    session.add(failure)
    session.execute(
        sa.delete(LoginFailure).where(LoginFailure.failed_at <= now - throttle.global_window)
    )
    claimed = investigator is not None and _claim_attempt(session, investigator, now, throttle)
    session.commit()

    if investigator is None or not claimed:
        verify_password(dummy_hash(params), password, params)
        return _failed(
            FailureReason.UNKNOWN_USER if investigator is None else FailureReason.THROTTLED
        )

    password_ok = verify_password(investigator.password_hash, password, params)
    if not investigator.active:
        return _failed(FailureReason.INACTIVE)
    if not password_ok:
        return _failed(FailureReason.BAD_PASSWORD)

    sealed, pending = investigator.totp_secret_sealed, False
    if sealed is None and investigator.totp_pending_sealed is not None:
        # First login after enrolment or a 2FA reset: this code confirms the new secret.
        sealed, pending = investigator.totp_pending_sealed, True
    if sealed is None:
        return _failed(FailureReason.NO_TOTP)
    try:
        secret = open_secret(key, investigator.id, sealed)
    except SealError:
        # Another instance's key, a secret moved from another row, or damage: no login.
        return _failed(FailureReason.UNREADABLE_TOTP)
    step = matching_step(secret, totp_code, now)
    if step is None:
        return _failed(FailureReason.BAD_CODE)

    changes: dict[str, object] = {
        "totp_last_step": step,
        "failed_logins": 0,
        "locked_until": None,
        "last_login_at": now,
    }
    if pending:
        changes.update(totp_secret_sealed=sealed, totp_pending_sealed=None)
    if needs_rehash(investigator.password_hash, params):
        changes["password_hash"] = hash_password(password, params)
    # The replay check and the step's recording are one conditional UPDATE, so two requests
    # carrying the same code cannot both get in.
    accepted = session.execute(
        sa.update(Investigator)
        .where(
            Investigator.id == investigator.id,
            sa.or_(Investigator.totp_last_step.is_(None), Investigator.totp_last_step < step),
        )
        .values(**changes)
        .returning(Investigator.id)
        .execution_options(synchronize_session="fetch")
    ).scalar_one_or_none()
    if accepted is None:
        session.commit()  # nothing changed; end the transaction all the same
        return _failed(FailureReason.REPLAYED_CODE)
    session.execute(sa.delete(LoginFailure).where(LoginFailure.id == failure.id))
    session.commit()
    return LoginResult(investigator=investigator)
