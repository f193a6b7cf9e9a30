"""One frozen, typed configuration, built from the environment and an optional TOML file.

Precedence, lowest first: built-in defaults, ``<instance>/peluit.toml``, ``PELUIT_*`` variables.
The instance folder itself comes from ``PELUIT_INSTANCE`` (default ``./instance``).

Secrets (peppers, session keys) never live in the TOML or the environment: ``peluit init``
generates them into ``<instance>/secrets/`` with mode 0600, and :func:`load_secrets` reads them.
Every bad value stops start-up with a :class:`ConfigError` naming the setting.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import secrets
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crypto.kdf import KdfParams
from wbs.numbers import whole_number

ENV_PREFIX = "PELUIT_"
CONFIG_FILE = "peluit.toml"
SECRETS_DIR = "secrets"
# totp_key: the key (via HKDF, see wbs.accounts.totp) that seals investigators' TOTP secrets in
# the database, so that a copy of the database alone gives no working second factor.
SECRET_NAMES = ("source_id_pepper", "reply_key_pepper", "session_key", "totp_key")


# An e-mail address as the alerts accept it (the sender here, investigators' own on their account
# page): one local part and a dotted domain, no spaces, quotes, angle brackets or line breaks, so
# it can never smuggle a second header or recipient into a message.
EMAIL_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}"
)


class ConfigError(ValueError):
    """A setting has a value Peluit cannot start with. The message names the setting."""


@dataclass(frozen=True)
class Config:
    instance_dir: Path
    database_url: str
    store_dir: Path
    gnupg_home: Path
    kdf: KdfParams = field(default_factory=KdfParams)
    # Working days for the first response to the pelapor (KPK's replicated WBS uses 7).
    first_response_days: int = 7
    # Per-submission upload limit.
    max_upload_bytes: int = 500 * 1024 * 1024
    # Cuti bersama dates (collective leave), set each year by joint ministerial decree.
    cuti_bersama: tuple[dt.date, ...] = ()
    codename_language: str = "id"
    # Free space the store must keep; intake stops before the disk is full.
    disk_floor_bytes: int = 1024 * 1024 * 1024
    gpg_binary: str = "gpg"
    # Minutes between two publications of the store (wbs.store.Store.publish), counted from
    # midnight WIB: until the next one, the files written since the last carry their exact
    # times. The production timer (deploy/systemd/peluit-store-publish.timer) must match.
    store_publish_minutes: int = 60
    # The SMTP relay of the content-free e-mail alerts (wbs.alerts, `peluit alerts send`):
    # ``[smtp]`` in the TOML or PELUIT_SMTP_*. No host, no alerts. ``security`` is starttls,
    # tls (implicit, port 465) or none (refused for anything but a loopback relay).
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_security: str = "starttls"
    smtp_user: str | None = None
    # Kept out of repr, so a printed or logged Config never shows it.
    smtp_password: str | None = field(default=None, repr=False)
    smtp_from: str | None = None
    smtp_timeout: int = 30


# Each setting: (TOML key, environment suffix, parser). Parsers raise ValueError with a reason.
def _parse_int(raw: Any, minimum: int = 0) -> int:
    if isinstance(raw, bool):
        raise ValueError("expected a whole number")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str):
        text = raw.strip()
        digits = whole_number(text.removeprefix("-"), 18)
        if digits is None:
            raise ValueError("expected a whole number")
        value = -digits if text.startswith("-") else digits
    else:
        raise ValueError("expected a whole number")
    if value < minimum:
        raise ValueError(f"must be at least {minimum}")
    return value


def _parse_size(raw: Any) -> int:
    """Bytes, with an optional K/M/G suffix (powers of 1024): ``500M``, ``2G``, ``1048576``."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw <= 0:
            raise ValueError("must be positive")
        return raw
    if not isinstance(raw, str):
        raise ValueError("expected a size such as 500M")
    text = raw.strip().upper().removesuffix("B").removesuffix("I")
    factor = 1
    if text and text[-1] in "KMG":
        factor = 1024 ** ("KMG".index(text[-1]) + 1)
        text = text[:-1]
    number = whole_number(text, 18)
    if not number:
        raise ValueError("expected a positive size such as 500M")
    return number * factor


def _parse_path(raw: Any) -> Path:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("expected a path")
    return Path(raw).expanduser()


def _parse_dates(raw: Any) -> tuple[dt.date, ...]:
    items: list[Any]
    if isinstance(raw, str):
        items = [part for part in raw.replace(",", " ").split() if part]
    elif isinstance(raw, list):
        items = raw
    else:
        raise ValueError("expected a list of dates YYYY-MM-DD")
    out = []
    for item in items:
        if isinstance(item, dt.date):
            out.append(item)
            continue
        try:
            out.append(dt.date.fromisoformat(str(item)))
        except ValueError:
            raise ValueError(f"{item!r} is not a date YYYY-MM-DD") from None
    return tuple(sorted(set(out)))


def _parse_choice(*choices: str) -> Any:
    def parse(raw: Any) -> str:
        if raw not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return str(raw)

    return parse


def _parse_publish_minutes(raw: Any) -> int:
    """Minutes between store publications: boundaries must fall on the same times every day."""
    minutes = _parse_int(raw, 1)
    if minutes > 1440 or 1440 % minutes:
        raise ValueError("must divide a day (1440 minutes) evenly, e.g. 15, 30, 60 or 120")
    if minutes < 5:
        raise ValueError("must be at least 5")
    return minutes


def _parse_text(raw: Any, what: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"expected {what}")
    return raw.strip()


def _parse_port(raw: Any) -> int:
    port = _parse_int(raw, 1)
    if port > 65535:
        raise ValueError("must be at most 65535")
    return port


def _parse_address(raw: Any) -> str:
    """A sender address: one ``name@domain``, nothing a header could be split on."""
    text = _parse_text(raw, "an e-mail address")
    if not EMAIL_ADDRESS.fullmatch(text):
        raise ValueError("expected an e-mail address such as peluit@example.go.id")
    return text


def _parse_url(raw: Any) -> str:
    if not isinstance(raw, str) or "://" not in raw:
        raise ValueError("expected a database URL such as postgresql+psycopg://user@host/db")
    scheme = raw.split("://", 1)[0]
    if not (scheme.startswith("sqlite") or scheme.startswith("postgresql")):
        raise ValueError("only sqlite and postgresql databases are supported")
    return raw


_SETTINGS: dict[str, Any] = {
    "database_url": _parse_url,
    "store_dir": _parse_path,
    "gnupg_home": _parse_path,
    "first_response_days": lambda raw: _parse_int(raw, 1),
    "max_upload_bytes": _parse_size,
    "cuti_bersama": _parse_dates,
    "codename_language": _parse_choice("id", "en"),
    "disk_floor_bytes": _parse_size,
    "gpg_binary": lambda raw: str(raw) if isinstance(raw, str) and raw else _fail("a program"),
    "store_publish_minutes": _parse_publish_minutes,
    "smtp_host": lambda raw: _parse_text(raw, "a host name"),
    "smtp_port": _parse_port,
    "smtp_security": _parse_choice("starttls", "tls", "none"),
    "smtp_user": lambda raw: _parse_text(raw, "a user name"),
    # Taken as written: a passphrase may begin or end with a space.
    "smtp_password": lambda raw: raw if isinstance(raw, str) and raw else _fail("a password"),
    "smtp_from": _parse_address,
    "smtp_timeout": lambda raw: _parse_int(raw, 1),
    "kdf_time_cost": lambda raw: _parse_int(raw, 1),
    "kdf_memory_kib": lambda raw: _parse_int(raw, 8),
    "kdf_parallelism": lambda raw: _parse_int(raw, 1),
}


def _fail(what: str) -> Any:
    raise ValueError(f"expected {what}")


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``[kdf] time_cost = 3`` in TOML is the setting ``kdf_time_cost``."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}_"))
        else:
            flat[name] = value
    return flat


def load_config(
    environ: Mapping[str, str] | None = None, *, instance_dir: Path | None = None
) -> Config:
    """Build the configuration; raise :class:`ConfigError` naming the first bad setting."""
    env = os.environ if environ is None else environ
    if instance_dir is None:
        instance_dir = Path(env.get(f"{ENV_PREFIX}INSTANCE", "instance"))
    instance_dir = instance_dir.expanduser().absolute()

    raw: dict[str, tuple[str, Any]] = {}
    toml_path = instance_dir / CONFIG_FILE
    if toml_path.exists():
        try:
            table = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{toml_path}: not valid TOML: {exc}") from None
        for key, value in _flatten(table).items():
            raw[key] = (f"{key} in {toml_path}", value)
    for name, value in env.items():
        if name.startswith(ENV_PREFIX) and name != f"{ENV_PREFIX}INSTANCE":
            key = name.removeprefix(ENV_PREFIX).lower()
            raw[key] = (name, value)

    values: dict[str, Any] = {}
    for key, (origin, value) in raw.items():
        parser = _SETTINGS.get(key)
        if parser is None:
            raise ConfigError(f"{origin}: unknown setting")
        try:
            values[key] = parser(value)
        except ValueError as exc:
            raise ConfigError(f"{origin}: {exc} (got {value!r})") from None

    kdf = KdfParams(
        time_cost=values.pop("kdf_time_cost", KdfParams.time_cost),
        memory_kib=values.pop("kdf_memory_kib", KdfParams.memory_kib),
        parallelism=values.pop("kdf_parallelism", KdfParams.parallelism),
    )
    if kdf.memory_kib < 8 * kdf.parallelism:
        raise ConfigError("kdf_memory_kib: argon2 needs at least 8 KiB per lane")
    for key in ("store_dir", "gnupg_home"):
        if key in values and not values[key].is_absolute():
            values[key] = instance_dir / values[key]
    return Config(
        instance_dir=instance_dir,
        database_url=values.pop("database_url", f"sqlite:///{instance_dir / 'peluit.db'}"),
        store_dir=values.pop("store_dir", instance_dir / "store"),
        gnupg_home=values.pop("gnupg_home", instance_dir / "gnupg"),
        kdf=kdf,
        **values,
    )


def replace(config: Config, **changes: Any) -> Config:
    """A copy with some settings changed (tests build configs this way, not by patching)."""
    return dataclasses.replace(config, **changes)


@dataclass(frozen=True, repr=False)
class Secrets:
    """Server secrets; ``repr`` shows no value so they never land in a log or a traceback."""

    source_id_pepper: bytes
    reply_key_pepper: bytes
    session_key: bytes
    totp_key: bytes

    def __repr__(self) -> str:
        return "Secrets(<hidden>)"


def generate_secrets(instance_dir: Path) -> Secrets:
    """Create any missing secret files (32 random bytes, mode 0600); keep existing ones."""
    folder = instance_dir / SECRETS_DIR
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    for name in SECRET_NAMES:
        path = folder / name
        if path.exists():
            continue
        # O_EXCL: never overwrite a pepper, which would orphan every source.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))
            out.flush()
            os.fsync(out.fileno())
    return load_secrets(instance_dir)


def load_secrets(instance_dir: Path) -> Secrets:
    """Read the secrets; refuse missing, short or group/world-readable files."""
    folder = instance_dir / SECRETS_DIR
    values = {}
    for name in SECRET_NAMES:
        path = folder / name
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise ConfigError(f"secret {name}: {path} is missing; run 'peluit init'") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"secret {name}: {path} must have mode 0600")
        data = path.read_bytes()
        if len(data) < 32:
            raise ConfigError(f"secret {name}: {path} holds fewer than 32 bytes")
        values[name] = data
    return Secrets(**values)
