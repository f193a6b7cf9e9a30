"""Investigator accounts: passwords, TOTP, login throttling and server-side sessions.

The investigator interface (``journalist_iface``) calls these functions; nothing here knows
HTTP. Which functions commit:

* :func:`authenticate` and the session functions commit: their effect (a counted failure, a
  new or expired session) must persist whatever the view does next.
* Account management (:func:`create_investigator`, :func:`deactivate`, :func:`reset_password`,
  :func:`reset_totp`, :func:`start_enrolment`, :func:`confirm_enrolment`) only flushes, like
  :mod:`wbs.tenants`; the caller commits, so a view can make it one transaction with its own
  changes.

**Passwords.** argon2id (argon2-cffi's PasswordHasher) with costs from :class:`PasswordParams`;
a hash made with other costs is replaced at the next successful login. An account gets a
generated diceware passphrase unless the admin sets one; a chosen password must pass
:func:`check_password_policy`: at least 14 characters, not containing the username, not made
only of common words, digits and symbols, and not a run of the keyboard or alphabet. Length
beats composition rules (NIST SP 800-63B), so there are none of those.

**Second factor.** TOTP (RFC 6238: SHA-1, six digits, 30 s, what every authenticator app reads)
is mandatory: an account without a TOTP secret cannot log in. A new secret is *pending* until a
code made from it is accepted (by :func:`confirm_enrolment`, or by the first login of an
account whose 2FA is not yet active), so a mistyped enrolment never locks anyone out. A code is
accepted for the current step and one step either side (clock drift), and each accepted step
is stored: a code of that step or an earlier one is refused, so a code seen over a shoulder or
captured by a phishing proxy cannot be used again.

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
import functools
import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum

import pyotp
import segno
import sqlalchemy as sa
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from crypto.codenames import load_wordlist
from crypto.kdf import KdfParams
from wbs.domain import EventKind, Role
from wbs.models import (
    Event,
    Investigator,
    InvestigatorSession,
    LoginFailure,
    Tenant,
    utcnow,
)
from wbs.tenancy import TenantScope

# --- Settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PasswordParams:
    """argon2id cost for investigator passwords (the defaults: 64 MiB, three passes)."""

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 1


@dataclass(frozen=True)
class ThrottleParams:
    """Login throttling; see the module's docstring for the trade-offs."""

    free_failures: int = 5
    first_delay: dt.timedelta = dt.timedelta(seconds=30)
    max_delay: dt.timedelta = dt.timedelta(minutes=15)
    global_window: dt.timedelta = dt.timedelta(minutes=1)
    global_max_failures: int = 60


@dataclass(frozen=True)
class SessionParams:
    """Lifetimes of an investigator's session: since the last request, and in all."""

    idle: dt.timedelta = dt.timedelta(minutes=30)
    absolute: dt.timedelta = dt.timedelta(hours=12)


@dataclass(frozen=True)
class AuthSettings:
    passwords: PasswordParams = field(default_factory=PasswordParams)
    throttle: ThrottleParams = field(default_factory=ThrottleParams)
    sessions: SessionParams = field(default_factory=SessionParams)
    # Shown by authenticator apps next to the account name.
    totp_issuer: str = "Peluit"

    @classmethod
    def from_kdf(cls, kdf: KdfParams) -> AuthSettings:
        """Default settings, but with the instance's argon2id cost (``Config.kdf``) for
        passwords; change the rest with :func:`dataclasses.replace`."""
        return cls(passwords=PasswordParams(kdf.time_cost, kdf.memory_kib, kdf.parallelism))


DEFAULT_SETTINGS = AuthSettings()


class AccountError(ValueError):
    """An account operation that cannot be done; the message says why in plain words."""


class AccountPermissionError(AccountError):
    """The acting investigator may not manage this account."""


# --- Passwords --------------------------------------------------------------------------------

MIN_PASSWORD_LENGTH = 14
# Bounds the work of hashing a pasted novel; far above any passphrase.
MAX_PASSWORD_LENGTH = 1024
MIN_DISTINCT_CHARACTERS = 6
PASSPHRASE_WORDS = 7

# Words that make up the passwords people choose when told "at least 14 characters":
# the classics, Indonesian favourites, and this system's own vocabulary. A password made only
# of these (and digits and symbols) is refused: "Password2024!!!", "IndonesiaMerdeka45".
_COMMON_WORDS: frozenset[str] = frozenset(
    """
    password passwd passw pass word admin administrator root user login welcome letmein
    iloveyou love secret master monkey dragon sunshine princess football baseball qwerty
    katasandi sandi rahasia sayang cinta indonesia merdeka jakarta bismillah alhamdulillah
    allah garuda pancasila bangsa negara rakyat bersatu selamat datang masuk pengguna
    peluit wbs kpk korupsi lapor pengaduan inspektorat apip verifikator penyidik pemantau
    instansi kementerian pemerintah pemkot pemkab pemprov whistle whistleblowing blower
    abc xyz asd zxc qwe qaz wsx
    """.split()  # noqa: SIM905 -- a word list reads and diffs better as plain text
)
# Runs that keyboards and alphabets make easy to type: any part of these is refused as a whole.
_SEQUENCES: tuple[str, ...] = (
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
    "qwertyuiopasdfghjklzxcvbnmqwertyuiopasdfghjklzxcvbnm",
    "01234567890123456789",
    "09876543210987654321",
    "zyxwvutsrqponmlkjihgfedcbazyxwvutsrqponmlkjihgfedcba",
)


def normalize_password(password: str) -> str:
    # NFKC: the same password typed on another keyboard or OS (composed vs decomposed
    # accents, full-width digits) must hash the same.
    return unicodedata.normalize("NFKC", password)


@functools.cache
def _hasher(params: PasswordParams) -> PasswordHasher:
    return PasswordHasher(
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        type=Type.ID,
    )


@functools.cache
def _dummy_hash(params: PasswordParams) -> str:
    # Verified against when there is no account to check, so that every checked attempt costs
    # the same time. Its password is random and discarded: nothing ever matches it.
    return _hasher(params).hash(secrets.token_urlsafe(32))


def hash_password(password: str, params: PasswordParams = DEFAULT_SETTINGS.passwords) -> str:
    return _hasher(params).hash(normalize_password(password))


def verify_password(
    password_hash: str, password: str, params: PasswordParams = DEFAULT_SETTINGS.passwords
) -> bool:
    """Whether ``password`` matches; a damaged hash is a mismatch, never an exception."""
    try:
        return _hasher(params).verify(password_hash, normalize_password(password))
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str, params: PasswordParams = DEFAULT_SETTINGS.passwords) -> bool:
    try:
        return _hasher(params).check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def generate_passphrase(words: int = PASSPHRASE_WORDS, language: str = "en") -> str:
    """Diceware: ``words`` words drawn with :mod:`secrets` from a codename word list.

    Seven words of the 7,772-word English list are 90 bits, the codenames' own floor.
    """
    if words < 5:
        raise ValueError("a passphrase needs at least five words")
    wordlist = load_wordlist(language)
    return " ".join(secrets.choice(wordlist) for _ in range(words))


def _made_of_common_words(letters: str) -> bool:
    # Word break over the common words: can ``letters`` be cut entirely into them?
    reachable = [True] + [False] * len(letters)
    for end in range(1, len(letters) + 1):
        reachable[end] = any(
            reachable[start] and letters[start:end] in _COMMON_WORDS
            for start in range(max(0, end - 20), end)
        )
    return reachable[-1]


def check_password_policy(password: str, username: str = "") -> list[str]:
    """What is wrong with a password an investigator or admin chose; empty when it is fine.

    The problems are sentences in Indonesian, to be shown as they are.
    """
    password = normalize_password(password)
    problems: list[str] = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"Kata sandi minimal {MIN_PASSWORD_LENGTH} karakter.")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"Kata sandi maksimal {MAX_PASSWORD_LENGTH} karakter.")
    folded = password.casefold()
    if len(username) >= 3 and username.casefold() in folded:
        problems.append("Kata sandi tidak boleh memuat nama pengguna.")
    if len(set(folded)) < MIN_DISTINCT_CHARACTERS:
        problems.append("Kata sandi memakai terlalu sedikit karakter yang berbeda.")
    letters = re.sub(r"[^a-z]", "", folded)
    alnum = re.sub(r"[^a-z0-9]", "", folded)
    if (
        _made_of_common_words(letters)
        or any(alnum in run for run in _SEQUENCES)
        or any(letters in run for run in _SEQUENCES)
    ):
        problems.append("Kata sandi terlalu umum atau mudah ditebak.")
    return problems


def _new_password(username: str) -> str:
    # A generated passphrase could, once in a long while, contain a short username.
    while True:
        passphrase = generate_passphrase()
        if not check_password_policy(passphrase, username):
            return passphrase


# --- TOTP -------------------------------------------------------------------------------------

_CODE = re.compile(r"\d{6}")
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


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret)


def _matching_step(secret: str, code: str, now: dt.datetime) -> int | None:
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
    secret = pyotp.random_base32(32)  # 160 bits, RFC 4226's recommended length
    uri = _totp(secret).provisioning_uri(
        name=investigator.username, issuer_name=settings.totp_issuer
    )
    investigator.totp_pending_secret = secret
    session.flush()
    return Enrolment(secret=secret, uri=uri, qr_svg=_qr_svg(uri))


def confirm_enrolment(
    session: Session, investigator: Investigator, code: str, now: dt.datetime | None = None
) -> bool:
    """Activate the pending secret if ``code`` was made from it; False otherwise. Flushes."""
    pending = investigator.totp_pending_secret
    if pending is None:
        return False
    step = _matching_step(pending, code, now or utcnow())
    if step is None:
        return False
    investigator.totp_secret = pending
    investigator.totp_pending_secret = None
    # Replays are judged per secret; this code is now the newest one seen.
    investigator.totp_last_step = step
    session.flush()
    return True


# --- Login ------------------------------------------------------------------------------------

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


def _normal_username(username: str) -> str:
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

    if recent_failures(session, now, throttle) >= throttle.global_max_failures:
        return _failed(FailureReason.GLOBAL_THROTTLED)

    # Authentication is what establishes the tenant, so this is the one read of investigators
    # not made through a TenantScope; usernames are unique across tenants.
    investigator = session.scalar(
        sa.select(Investigator).where(Investigator.username == _normal_username(username))
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
        verify_password(_dummy_hash(params), password, params)
        return _failed(
            FailureReason.UNKNOWN_USER if investigator is None else FailureReason.THROTTLED
        )

    password_ok = verify_password(investigator.password_hash, password, params)
    if not investigator.active:
        return _failed(FailureReason.INACTIVE)
    if not password_ok:
        return _failed(FailureReason.BAD_PASSWORD)

    secret, pending = investigator.totp_secret, False
    if secret is None and investigator.totp_pending_secret is not None:
        # First login after enrolment or a 2FA reset: this code confirms the new secret.
        secret, pending = investigator.totp_pending_secret, True
    if secret is None:
        return _failed(FailureReason.NO_TOTP)
    step = _matching_step(secret, totp_code, now)
    if step is None:
        return _failed(FailureReason.BAD_CODE)

    changes: dict[str, object] = {
        "totp_last_step": step,
        "failed_logins": 0,
        "locked_until": None,
        "last_login_at": now,
    }
    if pending:
        changes.update(totp_secret=secret, totp_pending_secret=None)
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


# --- Sessions ---------------------------------------------------------------------------------

_TOKEN_BYTES = 32
# last_seen_at is written at most this often, to spare a write per request; idle expiry may
# so come up to this much early, never late.
_SEEN_GRANULARITY = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class ActiveSession:
    """What a resumed session gives the view: who is logged in, and their tenant."""

    investigator: Investigator
    tenant: Tenant


def _session_row_id(token: str) -> str:
    return hashlib.sha256(b"peluit/investigator-session/v1\0" + token.encode()).hexdigest()


def open_session(
    session: Session, investigator: Investigator, now: dt.datetime | None = None
) -> str:
    """Open a session for a freshly authenticated investigator; return the cookie value.

    Commits. Only the token's hash is stored.
    """
    now = now or utcnow()
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    session.add(
        InvestigatorSession(
            id=_session_row_id(token),
            investigator_id=investigator.id,
            tenant_id=investigator.tenant_id,
            created_at=now,
            last_seen_at=now,
        )
    )
    session.commit()
    return token


def _expired(row: InvestigatorSession, now: dt.datetime, lifetimes: SessionParams) -> bool:
    return now - row.last_seen_at >= lifetimes.idle or now - row.created_at >= lifetimes.absolute


def resume_session(
    session: Session,
    token: str,
    now: dt.datetime | None = None,
    *,
    settings: AuthSettings = DEFAULT_SETTINGS,
) -> ActiveSession | None:
    """The investigator of a live session, or None (unknown, expired, account deactivated).

    Commits: the sliding idle time, or the removal of a dead session.
    """
    now = now or utcnow()
    if not token or len(token) > 128:
        return None
    row = session.get(InvestigatorSession, _session_row_id(token))
    if row is None:
        return None
    tenant = session.get(Tenant, row.tenant_id)
    investigator = None
    if tenant is not None:
        investigator = TenantScope(session, tenant).get(Investigator, row.investigator_id)
    if (
        tenant is None
        or investigator is None
        or not investigator.active
        or _expired(row, now, settings.sessions)
    ):
        session.delete(row)
        session.commit()
        return None
    if now - row.last_seen_at >= _SEEN_GRANULARITY:
        row.last_seen_at = now
        session.commit()
    return ActiveSession(investigator=investigator, tenant=tenant)


def close_session(session: Session, token: str) -> None:
    """End one session (logout). An unknown token is ignored. Commits."""
    if token and len(token) <= 128:
        session.execute(
            sa.delete(InvestigatorSession).where(
                InvestigatorSession.id == _session_row_id(token)
            )
        )
    session.commit()


def end_all_sessions(session: Session, investigator: Investigator) -> int:
    """End every session of ``investigator``; return how many. Flushes, the caller commits."""
    result = session.execute(
        sa.delete(InvestigatorSession)
        .where(
            InvestigatorSession.investigator_id == investigator.id,
            InvestigatorSession.tenant_id == investigator.tenant_id,
        )
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def purge_expired_sessions(
    session: Session,
    now: dt.datetime | None = None,
    *,
    settings: AuthSettings = DEFAULT_SETTINGS,
) -> int:
    """Delete the expired sessions of every tenant; return how many. Commits."""
    now = now or utcnow()
    lifetimes = settings.sessions
    result = session.execute(
        sa.delete(InvestigatorSession).where(
            sa.or_(
                InvestigatorSession.last_seen_at <= now - lifetimes.idle,
                InvestigatorSession.created_at <= now - lifetimes.absolute,
            )
        )
    )
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


# --- Account management -----------------------------------------------------------------------

# Lower-case, starting with a letter: one spelling per person, nothing that needs escaping in
# a URL, a log line or the CLI's tab-separated output.
_USERNAME = re.compile(r"[a-z][a-z0-9._-]{2,63}")


def _check_actor(actor: Investigator | None, tenant_id: int) -> None:
    # None is the operator at the command line, who runs the whole instance.
    if actor is None:
        return
    if not actor.active or actor.role != Role.ADMIN_INSTANSI or actor.tenant_id != tenant_id:
        raise AccountPermissionError(
            "only an active admin instansi of the same instansi may manage its accounts"
        )


def _log(
    session: Session, tenant_id: int, kind: EventKind, subject: Investigator,
    actor: Investigator | None,
) -> None:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise AccountError("the account's instansi does not exist")
    TenantScope(session, tenant).add(
        Event(
            kind=kind,
            actor_investigator_id=actor.id if actor is not None else None,
            note=subject.username,
        )
    )


def create_investigator(
    session: Session,
    tenant: Tenant,
    username: str,
    display_name: str,
    role: Role | str,
    password: str | None = None,
    *,
    actor: Investigator | None = None,
    settings: AuthSettings = DEFAULT_SETTINGS,
) -> tuple[Investigator, str | None]:
    """Create an account; return it and its generated passphrase (None if one was given).

    Flushes. 2FA is set up separately, with :func:`start_enrolment`: until then the account
    cannot log in.
    """
    _check_actor(actor, tenant.id)
    try:
        role = Role(role)
    except ValueError:
        raise AccountError(f"unknown role {role!r}") from None
    username = _normal_username(username)
    if not _USERNAME.fullmatch(username):
        raise AccountError(
            f"username {username!r}: 3-64 characters, lower-case letters, digits, '.', '_' "
            "or '-', starting with a letter"
        )
    display_name = display_name.strip()
    if not 1 <= len(display_name) <= 200:
        raise AccountError("the display name must have 1-200 characters")
    if role == Role.PEMANTAU_KPK and not tenant.is_hub:
        # A monitor reads across every tenant; only KPK's own staff may hold that role.
        raise AccountError("pemantau_kpk accounts exist only in the hub tenant (KPK)")
    if session.scalar(sa.select(Investigator.id).where(Investigator.username == username)):
        raise AccountError(f"the username {username!r} is taken")
    generated: str | None = None
    if password is None:
        password = generated = _new_password(username)
    else:
        problems = check_password_policy(password, username)
        if problems:
            raise AccountError(" ".join(problems))
    investigator = Investigator(
        username=username,
        display_name=display_name,
        role=role,
        password_hash=hash_password(password, settings.passwords),
    )
    TenantScope(session, tenant).add(investigator)
    session.flush()
    _log(session, tenant.id, EventKind.INVESTIGATOR_ADDED, investigator, actor)
    session.flush()
    return investigator, generated


def get_investigator(session: Session, username: str) -> Investigator:
    """The account named ``username``, in any tenant: for the operator's command line."""
    found = session.scalar(
        sa.select(Investigator).where(Investigator.username == _normal_username(username))
    )
    if found is None:
        raise AccountError(f"no investigator account {username!r}")
    return found


def list_investigators(session: Session, tenant: Tenant) -> list[Investigator]:
    scope = TenantScope(session, tenant)
    return list(session.scalars(scope.select(Investigator).order_by(Investigator.username)))


def deactivate(
    session: Session, investigator: Investigator, *, actor: Investigator | None = None
) -> None:
    """Deactivate an account (never deleted: cases and the log point at it). Flushes."""
    _check_actor(actor, investigator.tenant_id)
    if actor is not None and actor.id == investigator.id:
        raise AccountError("an admin cannot deactivate their own account")
    if not investigator.active:
        raise AccountError(f"{investigator.username} is inactive already")
    investigator.active = False
    end_all_sessions(session, investigator)
    _log(session, investigator.tenant_id, EventKind.INVESTIGATOR_DEACTIVATED, investigator, actor)
    session.flush()


def reset_password(
    session: Session,
    investigator: Investigator,
    new_password: str | None = None,
    *,
    actor: Investigator | None = None,
    settings: AuthSettings = DEFAULT_SETTINGS,
) -> str | None:
    """Set a new password (generated unless given); return the generated one. Flushes.

    Ends every session of the account, since whoever knew the old password may hold one, and
    clears the throttle, since the person has been identified by whoever reset it.
    """
    _check_actor(actor, investigator.tenant_id)
    generated: str | None = None
    if new_password is None:
        new_password = generated = _new_password(investigator.username)
    else:
        problems = check_password_policy(new_password, investigator.username)
        if problems:
            raise AccountError(" ".join(problems))
    investigator.password_hash = hash_password(new_password, settings.passwords)
    investigator.failed_logins = 0
    investigator.locked_until = None
    end_all_sessions(session, investigator)
    _log(session, investigator.tenant_id, EventKind.PASSWORD_RESET, investigator, actor)
    session.flush()
    return generated


def reset_totp(
    session: Session,
    investigator: Investigator,
    *,
    actor: Investigator | None = None,
    settings: AuthSettings = DEFAULT_SETTINGS,
) -> Enrolment:
    """Replace a lost or exposed second factor: the old secret stops working at once, and the
    returned one is pending until its first code is accepted. Ends every session. Flushes."""
    _check_actor(actor, investigator.tenant_id)
    investigator.totp_secret = None
    investigator.totp_last_step = None
    enrolment = start_enrolment(session, investigator, settings=settings)
    end_all_sessions(session, investigator)
    _log(session, investigator.tenant_id, EventKind.TOTP_RESET, investigator, actor)
    session.flush()
    return enrolment
