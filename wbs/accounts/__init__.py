"""Investigator accounts: passwords, TOTP, login throttling and server-side sessions.

The investigator interface (``journalist_iface``) and the operator's command line call these
functions; nothing here knows HTTP. One module per job:

* :mod:`~wbs.accounts.settings`: costs, throttle limits and session lifetimes; the errors.
* :mod:`~wbs.accounts.passwords`: argon2id hashes, generated passphrases, the password policy.
* :mod:`~wbs.accounts.totp`: the mandatory second factor, its enrolment and code checks.
* :mod:`~wbs.accounts.login`: :func:`authenticate`, its two throttles and its uniform failure.
* :mod:`~wbs.accounts.sessions`: server-side sessions behind an opaque cookie token.
* :mod:`~wbs.accounts.management`: create, deactivate, reset an account.

Which functions commit:

* :func:`authenticate` and the session functions commit: their effect (a counted failure, a
  new or expired session) must persist whatever the view does next.
* Account management (:func:`create_investigator`, :func:`deactivate`, :func:`reset_password`,
  :func:`reset_totp`, :func:`start_enrolment`, :func:`confirm_enrolment`) only flushes, like
  :mod:`wbs.tenants`; the caller commits, so a view can make it one transaction with its own
  changes.

Callers import from ``wbs.accounts``; the modules are the package's own layout.
"""

from __future__ import annotations

from wbs.accounts.login import (
    LOGIN_FAILED_MESSAGE,
    FailureReason,
    LoginResult,
    authenticate,
    backoff_delay,
    recent_failures,
)
from wbs.accounts.management import (
    create_investigator,
    deactivate,
    get_investigator,
    list_investigators,
    reset_password,
    reset_totp,
)
from wbs.accounts.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_DISTINCT_CHARACTERS,
    MIN_PASSWORD_LENGTH,
    PASSPHRASE_WORDS,
    check_password_policy,
    generate_passphrase,
    hash_password,
    needs_rehash,
    normalize_password,
    verify_password,
)
from wbs.accounts.sessions import (
    ActiveSession,
    close_session,
    end_all_sessions,
    open_session,
    purge_expired_sessions,
    resume_session,
)
from wbs.accounts.settings import (
    DEFAULT_SETTINGS,
    AccountError,
    AccountPermissionError,
    AuthSettings,
    PasswordParams,
    SessionParams,
    ThrottleParams,
)
from wbs.accounts.totp import (
    TOTP_VALID_WINDOW,
    Enrolment,
    confirm_enrolment,
    open_secret,
    start_enrolment,
    totp_key,
)

__all__ = [
    "DEFAULT_SETTINGS",
    "LOGIN_FAILED_MESSAGE",
    "MAX_PASSWORD_LENGTH",
    "MIN_DISTINCT_CHARACTERS",
    "MIN_PASSWORD_LENGTH",
    "PASSPHRASE_WORDS",
    "TOTP_VALID_WINDOW",
    "AccountError",
    "AccountPermissionError",
    "ActiveSession",
    "AuthSettings",
    "Enrolment",
    "FailureReason",
    "LoginResult",
    "PasswordParams",
    "SessionParams",
    "ThrottleParams",
    "authenticate",
    "backoff_delay",
    "check_password_policy",
    "close_session",
    "confirm_enrolment",
    "create_investigator",
    "deactivate",
    "end_all_sessions",
    "generate_passphrase",
    "get_investigator",
    "hash_password",
    "list_investigators",
    "needs_rehash",
    "normalize_password",
    "open_secret",
    "open_session",
    "purge_expired_sessions",
    "recent_failures",
    "reset_password",
    "reset_totp",
    "resume_session",
    "start_enrolment",
    "totp_key",
    "verify_password",
]
