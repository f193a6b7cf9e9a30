"""Settings of investigator authentication, and the errors account operations raise."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from crypto.kdf import KdfParams
from crypto.sealing import SealingKey


@dataclass(frozen=True)
class PasswordParams:
    """argon2id cost for investigator passwords (the defaults: 64 MiB, three passes)."""

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 1


@dataclass(frozen=True)
class ThrottleParams:
    """Login throttling; see :mod:`wbs.accounts.login` for the trade-offs."""

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
    # Seals TOTP secrets in the database (wbs.accounts.totp.totp_key derives it from the
    # instance's secrets). None refuses every operation that reads or writes a TOTP secret:
    # never a fallback to storing one in plain text.
    totp_key: SealingKey | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_kdf(cls, kdf: KdfParams, totp_key: SealingKey | None = None) -> AuthSettings:
        """Default settings, but with the instance's argon2id cost (``Config.kdf``) for
        passwords and its TOTP sealing key; change the rest with :func:`dataclasses.replace`."""
        return cls(
            passwords=PasswordParams(kdf.time_cost, kdf.memory_kib, kdf.parallelism),
            totp_key=totp_key,
        )


DEFAULT_SETTINGS = AuthSettings()


class AccountError(ValueError):
    """An account operation that cannot be done; the message says why in plain words."""


class AccountPermissionError(AccountError):
    """The acting investigator may not manage this account."""
