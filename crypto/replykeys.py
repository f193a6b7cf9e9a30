"""Per-source reply keys: ed25519 (certify, sign) with a cv25519 encryption subkey.

Each source gets its own key pair, locked with a passphrase that only the source's codename can
re-derive (``crypto.kdf.SourceSecrets.reply_passphrase``). The caller stores the locked secret
key as an armored blob in the database.

The cost of one reply operation must not grow with the number of sources, so the keys are NOT
kept in one shared keyring (gpg's keybox is searched linearly and its trustdb grows with it).
Every operation that needs the secret key works in a fresh, short-path throwaway GNUPGHOME
holding only that one key, and removes it (and stops its gpg-agent) afterwards. Encryption
needs no keyring at all: the source's public key is given to gpg with ``--recipient-file``.
Decrypted replies only ever travel through pipes into memory, never into a file.

Replies are padded inside the encryption (:mod:`crypto.padding`), whether the server or the
workstation encrypts them; the caller records the framing with the reply and hands it back to
:func:`decrypt_reply`, which strips and checks the frame.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from crypto.encrypt import encrypt_bytes
from crypto.errors import CryptoError, DecryptionError, EncryptionError
from crypto.gpgrun import GpgHome, GpgResult, throwaway_home
from crypto.keyring import Keyring
from crypto.padding import FRAMING_NONE, FRAMING_PADME, unframe

# Nothing identifying: every source key carries the same user id.
REPLY_KEY_UID = "Peluit source"
# A fixed creation time for every reply key (and its self-signatures), so neither the key nor
# the database blob reveals when the source first came; SecureDrop does the same.
_CREATION_DATE = "20200101T000000"
# The passphrase is a 256-bit argon2id output (see crypto.kdf): guessing it is hopeless, and
# argon2id already makes guessing the codename costly. gpg-agent's default S2K calibration
# would add up to ~1 s of SHA-1 iterations to every reply operation for no added security, so
# the throwaway agents protect keys with the minimum OpenPGP S2K count.
# The agent lives for one operation and is killed after it (see _throwaway_home).
_AGENT_CONF = "s2k-count 65536\n"
_HOME_PREFIX = "pr-"
_MAX_PASSPHRASE_BYTES = 1024
_PUBLIC_BLOCK = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
_PRIVATE_BLOCK = "-----BEGIN PGP PRIVATE KEY BLOCK-----"
_FPR_RE = re.compile(r"^[0-9A-F]{40}$")
# Key ids and fingerprints in gpg's messages (16 to 40 hex digits).
_KEY_ID_RE = re.compile(r"\b(?:0x)?[0-9A-Fa-f]{16,40}\b")
# libgpg-error codes (low 16 bits of an ERROR status value) that mean "wrong passphrase".
_GPG_ERR_BAD_PASSPHRASE = 11
_GPG_ERR_NO_PASSPHRASE = 177


@dataclass(frozen=True, repr=False)
class ReplyKey:
    fingerprint: str
    public_armored: str
    secret_armored: str

    def __repr__(self) -> str:
        # The secret blob is locked, but it has no business in logs or tracebacks either.
        return f"ReplyKey(fingerprint={self.fingerprint!r}, secret_armored=<hidden>)"


def _check_passphrase(passphrase: str) -> bytes:
    raw = passphrase.encode("utf-8")
    # gpg reads a passphrase up to a line end, and trims the blanks around one elsewhere (its
    # parameter file): a passphrase gpg could silently alter might lock a key that the same
    # string later fails to open. crypto.kdf's hex passes; anything odd is refused.
    if not passphrase or passphrase != passphrase.strip() or len(raw) > _MAX_PASSPHRASE_BYTES:
        raise ValueError("unusable reply-key passphrase")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in passphrase):
        raise ValueError("unusable reply-key passphrase")
    return raw


@contextmanager
def _throwaway_home(gpg_binary: str) -> Iterator[GpgHome]:
    # Request path: every gpg run here goes through crypto.gpgrun, so it is bounded in time,
    # and no home pays for python-gnupg's start-up run of gpg.
    with throwaway_home(gpg_binary, prefix=_HOME_PREFIX, agent_conf=_AGENT_CONF) as home:
        yield home


def generate_reply_key(passphrase: str, gpg_binary: str = "gpg") -> ReplyKey:
    """Make a new reply key locked with ``passphrase``; nothing of it stays on disk."""
    secret = _check_passphrase(passphrase)
    params = (
        "Key-Type: eddsa\n"
        "Key-Curve: ed25519\n"
        "Key-Usage: sign\n"
        "Subkey-Type: ecdh\n"
        "Subkey-Curve: cv25519\n"
        "Subkey-Usage: encrypt\n"
        f"Name-Real: {REPLY_KEY_UID}\n"
        "Expire-Date: 0\n"
        f"Creation-Date: {_CREATION_DATE}\n"
        "%commit\n"
    ).encode("ascii")
    with _throwaway_home(gpg_binary) as home:
        # The passphrase goes through a pipe of its own, not in the parameters: see
        # crypto.keypairs.generate_key_pair.
        made = home.run(["--gen-key"], params, passphrase=secret)
        created = made.fields("KEY_CREATED")
        if made.returncode != 0 or len(created) != 1 or len(created[0]) < 2:
            raise CryptoError(f"gpg could not generate a reply key ({_why(made)})")
        fingerprint = created[0][1].upper()
        if not _FPR_RE.match(fingerprint):
            raise CryptoError("gpg reported an unexpected reply-key fingerprint")
        public = home.run(["--armor", "--export", fingerprint])
        if not _exported(public, _PUBLIC_BLOCK):
            raise CryptoError(f"gpg could not export the reply key's public half ({_why(public)})")
        locked = _export_locked(home, fingerprint, secret)
    return ReplyKey(
        fingerprint=fingerprint, public_armored=_text(public), secret_armored=_text(locked)
    )


def _export_locked(home: GpgHome, fingerprint: str, secret: bytes) -> GpgResult:
    """The armored secret key, still locked with ``secret``; tried twice at most.

    This is the step that leans on the agent: it unlocks the key and locks it again for the
    export. An agent that cannot serve it (this failed once in a test run under heavy load,
    after a good key generation, with no reason kept) is no fault of the key, whose files are
    in the home: a new agent can do it. So the home's agent is stopped, and waited for, and
    the export tried once more. A second failure is no passing trouble: CryptoError with both
    reasons, and the caller stores nothing (the home, key and all, is removed on the way out).
    """
    args = ["--armor", "--export-secret-keys", fingerprint]
    first = home.run(args, passphrase=secret)
    if _exported(first, _PRIVATE_BLOCK):
        return first
    home.kill_agent(wait=True)
    again = home.run(args, passphrase=secret)
    if _exported(again, _PRIVATE_BLOCK):
        return again
    raise CryptoError(
        "gpg could not export the locked reply key, even with a new gpg-agent "
        f"(first: {_why(first)}; then: {_why(again)})"
    )


def _text(result: GpgResult) -> str:
    return result.stdout.decode("ascii", errors="replace")


def _exported(result: GpgResult, block: str) -> bool:
    return result.returncode == 0 and block in _text(result)


def _why(result: GpgResult) -> str:
    """gpg's reason, without key ids: the error ends up in the server log, which is no place
    for the ids of a source's key, even of one that is then thrown away."""
    return _KEY_ID_RE.sub("<key>", result.reason)


def encrypt_reply(
    keyring: Keyring,
    tenant_fingerprints: Sequence[str],
    reply_key_public: str,
    plaintext: bytes,
    framing: str = FRAMING_PADME,
) -> bytes:
    """Encrypt a reply to the source's key AND the tenant's keys (the case history stays
    readable on the investigators' workstation). Raises EncryptionError on any failure.

    Padded unless ``framing`` says otherwise; whoever stores the reply records its framing.
    """
    if isinstance(tenant_fingerprints, str) or not tenant_fingerprints:
        raise EncryptionError("a reply must also be encrypted to the tenant's keys")
    if _PUBLIC_BLOCK not in reply_key_public or "PRIVATE KEY BLOCK" in reply_key_public:
        raise EncryptionError("the source's reply key is not an armored public key")
    # Public data only: a short-lived file is the simplest way to hand gpg --recipient-file.
    folder = Path(tempfile.mkdtemp(prefix="rk-"))
    try:
        key_file = folder / "reply-key.asc"
        key_file.write_text(reply_key_public, encoding="ascii")
        return encrypt_bytes(keyring, tenant_fingerprints, plaintext,
                             extra_recipient_files=[key_file], framing=framing)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def decrypt_reply(
    reply_key: ReplyKey | str,
    passphrase: str,
    ciphertext: bytes,
    gpg_binary: str = "gpg",
    framing: str = FRAMING_PADME,
) -> bytes:
    """Decrypt a reply with the source's locked key; the plaintext only exists in memory.

    ``framing`` is the one recorded with the reply: a padded reply's frame is checked and
    stripped (PaddingError, a DecryptionError, if it is malformed); an unpadded one (stored
    before padding existed) is returned as gpg gave it.
    """
    secret_armored = reply_key.secret_armored if isinstance(reply_key, ReplyKey) else reply_key
    if _PRIVATE_BLOCK not in secret_armored:
        raise DecryptionError("the reply key is not an armored secret key")
    try:
        secret = _check_passphrase(passphrase)
    except ValueError as exc:
        raise DecryptionError("wrong passphrase for the reply key") from exc
    with _throwaway_home(gpg_binary) as home:
        loaded = home.run(["--import"], secret_armored.encode("ascii"))
        # IMPORT_OK's first field is a bit set; 16 means "contains a secret key".
        secret_ok = [
            fields for fields in loaded.fields("IMPORT_OK")
            # isascii: isdigit() alone admits "²", which int() refuses.
            if fields and fields[0].isascii() and fields[0].isdigit() and int(fields[0]) & 16
        ]
        if loaded.returncode != 0 or not secret_ok:
            raise DecryptionError("the reply key could not be loaded")
        result = home.run(["--decrypt"], ciphertext, passphrase=secret)
    keywords = set(result.keywords)
    for line in result.status:
        if (
            line.keyword == "ERROR"
            and line.rest.startswith("pkdecrypt_failed")
            and line.error_code in (_GPG_ERR_BAD_PASSPHRASE, _GPG_ERR_NO_PASSPHRASE)
        ):
            raise DecryptionError("wrong passphrase for the reply key")
    if "DECRYPTION_KEY" not in keywords and "NO_SECKEY" in keywords:
        raise DecryptionError("this reply was not encrypted to this reply key")
    # DECRYPTION_OKAY is only reported when the integrity check (MDC) passed as well.
    if (
        result.returncode != 0
        or "DECRYPTION_OKAY" not in keywords
        or "DECRYPTION_FAILED" in keywords
        or "END_DECRYPTION" not in keywords
    ):
        raise DecryptionError("the reply could not be decrypted (damaged or tampered)")
    if framing == FRAMING_PADME:
        return unframe(result.stdout)[0]
    if framing != FRAMING_NONE:
        raise DecryptionError(f"unknown framing {framing!r}")
    return result.stdout
