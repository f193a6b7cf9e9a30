"""The server's OpenPGP keyring: investigators' PUBLIC keys only, checked before import.

The server must never hold a key that can decrypt a report, so every key offered by an admin
is inspected without importing it first (``gpg --show-keys``), and refused when it carries any
secret key material, is expired or revoked, cannot encrypt, or is too weak. Keys are referred to
by full fingerprint everywhere: the admin pins exactly which key receives a tenant's reports.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from crypto.errors import CryptoError, KeyRefused
from crypto.gpgrun import GpgHome, kill_agent

# kill_agent stays importable from here: the server, its tests and the benchmarks stop a
# keyring home's agent through this module.
__all__ = ["MAX_KEY_BYTES", "KeyInfo", "Keyring", "kill_agent", "normalize_fingerprint"]

# An armored key with many third-party signatures can be large, but not this large; anything
# bigger is refused before gpg parses it, so a form upload cannot make gpg chew on megabytes.
MAX_KEY_BYTES = 2 * 1024 * 1024

# RFC 4880/9580 algorithm ids whose strength is their modulus size.
_MODULUS_ALGOS = {1: "rsa", 2: "rsa", 3: "rsa", 16: "elg", 17: "dsa", 20: "elg"}
_CURVE_ALGOS = {18: "ecdh", 19: "ecdsa", 22: "eddsa"}
MIN_MODULUS_BITS = 3072

_FPR_RE = re.compile(r"^[0-9A-F]{40}$")
_PRIVATE_ARMOR = re.compile(rb"-----BEGIN PGP (PRIVATE|SECRET) KEY BLOCK-----")
_COLON_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")


def normalize_fingerprint(fingerprint: str) -> str:
    """Return a v4 fingerprint as 40 upper-case hex digits, or raise ValueError.

    Only full fingerprints are accepted: a short or long key id can collide, and gpg would
    otherwise resolve a user id or e-mail address to whichever key matches.
    """
    fpr = fingerprint.replace(" ", "").upper()
    if not _FPR_RE.match(fpr):
        raise ValueError("a key must be named by its full 40-hex-digit fingerprint")
    return fpr


@dataclass(frozen=True)
class KeyInfo:
    fingerprint: str
    algorithm: str  # gpg's short name: "rsa", "dsa", "elg", or the curve ("ed25519", ...)
    bits: int
    uids: tuple[str, ...]
    created: datetime
    expires: datetime | None
    encryption_fingerprints: tuple[str, ...]


@dataclass
class _Record:
    """One primary key or subkey from gpg's colon listing."""

    kind: str  # pub, sec, sub, ssb
    validity: str
    bits: int
    algo: int
    created: datetime
    expires: datetime | None
    usage: str
    curve: str
    fingerprint: str = ""

    @property
    def algorithm(self) -> str:
        if self.algo in _MODULUS_ALGOS:
            return _MODULUS_ALGOS[self.algo]
        return self.curve or _CURVE_ALGOS.get(self.algo, f"algo{self.algo}")

    def is_expired(self, now: datetime) -> bool:
        return self.validity == "e" or (self.expires is not None and self.expires <= now)

    def is_revoked(self) -> bool:
        return self.validity == "r"

    def is_weak(self) -> bool:
        return self.algo in _MODULUS_ALGOS and self.bits < MIN_MODULUS_BITS


@dataclass
class _Key:
    primary: _Record
    uids: list[str]
    subkeys: list[_Record]


def _timestamp(field: str) -> datetime | None:
    if not field:
        return None
    # gpg prints seconds since the epoch with --with-colons (ISO only with --fixed-list-mode
    # on very old versions, which we do not support).
    return datetime.fromtimestamp(int(field), tz=UTC)


def _unescape_uid(field: str) -> str:
    # gpg escapes ':' and control bytes as \xNN in colon listings and leaves UTF-8 as is.
    raw = _COLON_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), field.encode("utf-8"))
    return raw.decode("utf-8", errors="replace")


def _parse_colons(listing: str) -> tuple[list[_Key], bool]:
    """Parse ``--with-colons`` output into keys; also report whether any secret part was seen."""
    keys: list[_Key] = []
    secret = False
    last: _Record | None = None
    for line in listing.splitlines():
        fields = line.split(":")
        kind = fields[0]
        if kind in ("pub", "sec", "sub", "ssb"):
            fields += [""] * (20 - len(fields))
            created = _timestamp(fields[5])
            if created is None:
                raise CryptoError("gpg listed a key without a creation date")
            record = _Record(
                kind=kind,
                validity=fields[1],
                bits=int(fields[2] or 0),
                algo=int(fields[3] or 0),
                created=created,
                expires=_timestamp(fields[6]),
                usage=fields[11],
                curve=fields[16],
            )
            if kind in ("sec", "ssb"):
                secret = True
            if kind in ("pub", "sec"):
                keys.append(_Key(primary=record, uids=[], subkeys=[]))
            elif keys:
                keys[-1].subkeys.append(record)
            last = record
        elif kind == "fpr" and last is not None:
            # A key's fingerprint record comes right after the key record; no other.
            fields += [""] * (10 - len(fields))
            last.fingerprint = fields[9].upper()
            last = None
        elif kind == "uid" and keys:
            fields += [""] * (10 - len(fields))
            # A revoked or expired user id is not how the key should be shown to admins.
            if fields[1] not in ("r", "e"):
                keys[-1].uids.append(_unescape_uid(fields[9]))
        # Other records (grp, rvk, tru, rvs, sig, ...) say nothing the checks need.
    return keys, secret


def _check(keys: list[_Key], secret: bool, now: datetime) -> KeyInfo:
    """Apply the refusal rules in order of importance; return the key's description."""
    if secret:
        raise KeyRefused("secret_key")
    if not keys:
        raise KeyRefused("not_a_key")
    if len(keys) > 1:
        raise KeyRefused("multiple_keys", f"{len(keys)} keys found")
    key = keys[0]
    primary = key.primary
    if not primary.fingerprint or not _FPR_RE.match(primary.fingerprint):
        raise KeyRefused("not_a_key", "no v4 fingerprint")
    if primary.is_revoked():
        raise KeyRefused("revoked")
    if primary.is_expired(now):
        raise KeyRefused("expired")
    if primary.is_weak():
        raise KeyRefused("weak_rsa", f"{primary.algorithm}{primary.bits}")

    # Lower-case letters are the key's own capabilities; upper-case ones on the primary are
    # those of the whole key, so "E" there only says that some subkey can encrypt.
    candidates = [r for r in [primary, *key.subkeys] if "e" in r.usage]
    usable = [r for r in candidates if not r.is_revoked() and not r.is_expired(now)]
    weak = [r for r in usable if r.is_weak()]
    if weak:
        # gpg would pick one of these subkeys to encrypt to, so one weak subkey is enough.
        raise KeyRefused("weak_rsa", f"encryption subkey {weak[0].algorithm}{weak[0].bits}")
    if not usable:
        if any(r.is_expired(now) for r in candidates):
            raise KeyRefused("expired", "its only encryption subkeys have expired")
        if any(r.is_revoked() for r in candidates):
            raise KeyRefused("revoked", "its only encryption subkeys are revoked")
        raise KeyRefused("no_encryption_subkey")

    return KeyInfo(
        fingerprint=primary.fingerprint,
        algorithm=primary.algorithm,
        bits=primary.bits,
        uids=tuple(key.uids),
        created=primary.created,
        expires=primary.expires,
        encryption_fingerprints=tuple(r.fingerprint for r in usable),
    )


def _as_bytes(armored: str | bytes) -> bytes:
    data = armored.encode("utf-8") if isinstance(armored, str) else bytes(armored)
    if len(data) > MAX_KEY_BYTES:
        raise KeyRefused("not_a_key", f"larger than {MAX_KEY_BYTES // 1024} KiB")
    return data


class Keyring:
    """A GnuPG home holding public keys only. Use as a context manager or call ``close()``."""

    def __init__(self, home: Path, gpg_binary: str = "gpg") -> None:
        self.home = Path(home)
        self.gpg_binary = gpg_binary
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        # gpg refuses (or warns about) a home that others can read; mkdir's mode is subject to
        # the umask and does not apply to an existing folder.
        os.chmod(self.home, 0o700)
        self.gpg_home = GpgHome(self.home, gpg_binary)
        self._gpg = self.gpg_home.library()

    # -- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the gpg-agent of this home, if one was started."""
        self.gpg_home.kill_agent()

    def __enter__(self) -> Keyring:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- checks and import ---------------------------------------------------------------------

    def inspect_public_key(self, armored: str | bytes, at: datetime | None = None) -> KeyInfo:
        """Describe the one public key in ``armored`` (armored or binary) without importing it.

        Raises KeyRefused when the server must not use this key; ``at`` judges it as of that
        moment instead of now (``peluit doctor``: will it still encrypt in 30 days?).
        """
        data = _as_bytes(armored)
        # Checked before gpg sees it: the clearest possible answer to the most dangerous mistake.
        if _PRIVATE_ARMOR.search(data):
            raise KeyRefused("secret_key")
        # Not python-gnupg's scan_keys_mem: that is "--dry-run --import", which hands any secret
        # key material to a gpg-agent; --show-keys with --no-autostart never starts one.
        shown = self.gpg_home.run(
            ["--no-autostart", "--with-colons", "--fixed-list-mode", "--with-fingerprint",
             "--show-keys"],
            data,
        )
        if shown.returncode != 0:
            raise KeyRefused("not_a_key")
        try:
            keys, secret = _parse_colons(shown.stdout.decode("utf-8", errors="replace"))
        except ValueError as exc:  # a number field gpg should never leave malformed
            raise KeyRefused("not_a_key", "unreadable key listing") from exc
        return _check(keys, secret, at or datetime.now(tz=UTC))

    def import_public_key(self, armored: str | bytes) -> KeyInfo:
        """Check the key as :meth:`inspect_public_key` does, then import it. Returns its info."""
        info = self.inspect_public_key(armored)
        data = _as_bytes(armored)
        # import-minimal drops third-party signatures: they are of no use to the server and a
        # flooded key would slow every later gpg call on this keyring.
        result = self._gpg.import_keys(data, extra_args=["--import-options", "import-minimal"])
        sec_read = int(getattr(result, "sec_read", 0) or 0)
        if sec_read:
            # Unreachable after the inspection above, but if gpg ever disagrees with it the
            # secret must not stay in the server keyring.
            self._gpg.delete_keys(info.fingerprint, secret=True, expect_passphrase=False)
            self._gpg.delete_keys(info.fingerprint)
            raise KeyRefused("secret_key")
        imported = {fp.upper() for fp in result.fingerprints if fp}
        if imported != {info.fingerprint}:
            for fpr in imported - {info.fingerprint}:
                self._gpg.delete_keys(fpr)
            raise CryptoError(
                "gpg imported something other than the inspected key; nothing kept"
            )
        return info

    # -- queries -------------------------------------------------------------------------------

    def fingerprints(self) -> list[str]:
        """Fingerprints of the primary keys in this keyring."""
        return [str(key["fingerprint"]).upper() for key in self._gpg.list_keys()]

    def __contains__(self, fingerprint: object) -> bool:
        if not isinstance(fingerprint, str):
            return False
        try:
            fpr = normalize_fingerprint(fingerprint)
        except ValueError:
            return False
        return fpr in self.fingerprints()

    def __iter__(self) -> Iterator[str]:
        return iter(self.fingerprints())

    def export_public_key(self, fingerprint: str) -> str:
        """The armored public key; CryptoError if it is not in the keyring."""
        fpr = normalize_fingerprint(fingerprint)
        if fpr not in self.fingerprints():
            raise CryptoError(f"key {fpr} is not in the keyring")
        exported = self._gpg.export_keys(fpr, armor=True)
        text = str(exported)
        if "BEGIN PGP PUBLIC KEY BLOCK" not in text:
            raise CryptoError(f"gpg could not export key {fpr}")
        return text

    def remove(self, fingerprint: str) -> None:
        """Delete a public key; CryptoError if it is not there or gpg fails."""
        fpr = normalize_fingerprint(fingerprint)
        if fpr not in self.fingerprints():
            raise CryptoError(f"key {fpr} is not in the keyring")
        result = self._gpg.delete_keys(fpr)
        if str(result) != "ok" or fpr in self.fingerprints():
            raise CryptoError(f"gpg could not delete key {fpr}")
