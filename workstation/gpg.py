"""The workstation's own GnuPG home: its investigators' keys, and decryption into files.

Decryption runs ``gpg --decrypt --output <temp file>`` in the folder the plaintext is meant
for, then gives the file its name with a link that never replaces an existing file. The name
comes from the literal packet (gpg's PLAINTEXT status line), never from
``--use-embedded-filename``: the pelapor chose it, so it is made safe here
(:func:`workstation.names.safe_filename`) before it touches the file system.

Passphrases reach gpg through a pipe of their own (``--passphrase-fd`` with loopback pinentry):
never argv, never a file of ours. Without one, gpg runs with ``--pinentry-mode error`` so a
key that needs a passphrase fails fast with :class:`PassphraseNeeded` instead of hanging on a
pinentry the air-gapped terminal may not have.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes

from crypto.errors import CryptoError, DecryptionError
from crypto.gpgrun import DISCARD, GpgHome, Status
from crypto.keypairs import MAX_PASSPHRASE_BYTES, export_public_key, generate_key_pair
from crypto.recipients import NotAnEncryptedMessage, ciphertext_key_ids, key_id

# libgpg-error codes (low 16 bits of an ERROR status value).
_ERR_BAD_PASSPHRASE = 11
_ERR_NO_PINENTRY = 85
_ERR_NO_PASSPHRASE = 177
_ERR_CANCELED = 99
_FPR_RE = re.compile(r"^[0-9A-F]{40}$")
_MAX_PASSPHRASE_BYTES = 4096
_PROGRESS_INTERVAL_S = 0.2

ProgressCallback = Callable[[int, int], None]  # (bytes done, bytes total)


class WorkstationGpgError(CryptoError):
    """gpg failed on the workstation; the message says what to do."""


class MissingSecretKey(DecryptionError):
    """The item is encrypted to keys whose secret halves are not on this workstation."""

    def __init__(self, key_ids: Sequence[str]) -> None:
        self.key_ids = tuple(key_ids)
        listed = ", ".join(self.key_ids) or "(no key id given)"
        super().__init__(
            f"no secret key on this workstation can decrypt this item; it is encrypted to "
            f"key id(s) {listed}. Import the secret key of one of them "
            "(peluit-workstation keys import) or decrypt on the workstation that holds it."
        )


class PassphraseNeeded(DecryptionError):
    """The secret key is protected and no passphrase was given."""


class WrongPassphrase(DecryptionError):
    """The passphrase given does not unlock the secret key."""


def check_passphrase(passphrase: str) -> bytes:
    """Passphrases go to gpg line by line: refuse what gpg would silently alter."""
    raw = passphrase.encode("utf-8")
    if not passphrase or "\n" in passphrase or "\r" in passphrase or "\x00" in passphrase:
        raise ValueError("a passphrase must be one non-empty line")
    if len(raw) > _MAX_PASSPHRASE_BYTES:
        raise ValueError("the passphrase is too long")
    return raw


# The passphrase is all that guards the investigators' secret keys once a workstation, its
# disk or a backup of its GnuPG home is stolen: the guessing is then offline, as fast as the
# thief's hardware runs gpg's key derivation, and no rate limit applies. Twenty characters is
# what five ordinary words make, and five words drawn at random from a large list (diceware)
# are about 64 bits, beyond such guessing; a short word with digits is not. Length rather than
# composition rules (NIST SP 800-63B), plus a floor on distinct characters so that a key held
# down or a pattern repeated does not pass for length.
MIN_NEW_PASSPHRASE_CHARACTERS = 20
MIN_NEW_PASSPHRASE_DISTINCT = 8
WEAK_PASSPHRASE_MESSAGE = (
    f"the passphrase is too weak: use at least {MIN_NEW_PASSPHRASE_CHARACTERS} characters, "
    "for example five or more words of your own choosing, not a repeated pattern"
)


def check_new_passphrase(passphrase: str) -> bytes:
    """A passphrase strong enough to protect a new secret key; raise ValueError if not."""
    raw = check_passphrase(passphrase)
    if len(raw) > MAX_PASSPHRASE_BYTES:
        raise ValueError(
            f"the passphrase is too long: at most {MAX_PASSPHRASE_BYTES} bytes (gpg takes no more)"
        )
    if (
        len(passphrase) < MIN_NEW_PASSPHRASE_CHARACTERS
        or len(set(passphrase.casefold())) < MIN_NEW_PASSPHRASE_DISTINCT
    ):
        raise ValueError(WEAK_PASSPHRASE_MESSAGE)
    return raw


@dataclass(frozen=True)
class SecretKey:
    fingerprint: str
    uids: tuple[str, ...]
    has_secret: bool


class WorkstationGpg:
    """gpg calls on one GnuPG home (which must have a short path: gpg-agent's socket).

    Keys are managed through python-gnupg; decryption goes through :mod:`crypto.gpgrun`,
    because gpg must read the item file itself, take the passphrase as exact UTF-8 bytes on a
    pipe of its own, and report on status lines python-gnupg does not keep apart.
    """

    def __init__(self, home: Path, gpg_binary: str = "gpg") -> None:
        self.home = Path(home)
        self.gpg_binary = gpg_binary
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.home, 0o700)
        self.gpg_home = GpgHome(self.home, gpg_binary)

    def close(self) -> None:
        self.gpg_home.kill_agent()

    # -- keys ----------------------------------------------------------------------------------

    def generate_key(self, name: str, passphrase: str, expire: str = "3y") -> str:
        """Make an ed25519 primary key with a cv25519 encryption subkey; return its fingerprint."""
        if not name or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name) or ":" in name:
            raise ValueError("unusable key name")
        if not re.match(r"^(0|[1-9][0-9]{0,3}[dwmy]?)$", expire):
            raise ValueError("expiry must look like 0, 365, 52w, 24m or 3y")
        secret = check_new_passphrase(passphrase)
        try:
            return generate_key_pair(self.gpg_home, name, secret, expire)
        except CryptoError as exc:
            raise WorkstationGpgError("gpg could not generate the key") from exc

    def list_keys(self) -> list[SecretKey]:
        """Every key of the home, primary fingerprint first, and whether its secret is here."""
        secrets = set(self.secret_fingerprints())
        listing = self.gpg_home.library().list_keys()
        keys: list[SecretKey] = []
        for key in listing:
            fpr = str(key.get("fingerprint") or "").upper()
            if not fpr:
                continue
            uids = [
                uid for uid in key.get("uids", [])
                # A revoked or expired user id is not how the key should be shown.
                if listing.uid_map.get(uid, {}).get("trust") not in ("r", "e")
            ]
            keys.append(SecretKey(fpr, tuple(uids), fpr in secrets))
        return keys

    def secret_fingerprints(self) -> list[str]:
        # A fresh home without a keyring lists nothing: that simply means no key.
        return [
            str(key["fingerprint"]).upper()
            for key in self.gpg_home.library().list_keys(secret=True)
            if key.get("fingerprint")
        ]

    def export_public(self, fingerprint: str) -> str:
        fpr = fingerprint.replace(" ", "").upper()
        if not _FPR_RE.match(fpr):
            raise ValueError("name the key by its full 40-hex-digit fingerprint")
        try:
            return export_public_key(self.gpg_home, fpr)
        except CryptoError as exc:
            raise WorkstationGpgError(
                f"key {fpr} is not in the workstation's keyring"
            ) from exc

    def import_keys(self, data: bytes) -> list[str]:
        """Import keys (public or secret) from a file the investigator chose."""
        result = self.gpg_home.library().import_keys(
            data, extra_args=["--pinentry-mode", "error"]
        )
        imported = sorted({str(fpr).upper() for fpr in result.fingerprints if fpr})
        if result.returncode != 0 or not imported:
            raise WorkstationGpgError("gpg imported no key from this file")
        return imported

    # -- decryption ----------------------------------------------------------------------------

    def decrypt_to_temp(
        self,
        ciphertext: Path,
        folder: Path,
        passphrase: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> tuple[Path, str | None]:
        """Decrypt ``ciphertext`` into a new hidden temp file in ``folder``.

        Returns the temp file and the filename the literal packet carries (raw and unsafe;
        None when it has none). The temp file is removed on any failure.
        """
        temp, embedded, _key = self.decrypt_item(ciphertext, folder, passphrase, progress)
        return temp, embedded

    def decrypt_item(
        self,
        ciphertext: Path,
        folder: Path,
        passphrase: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> tuple[Path, str | None, str | None]:
        """:meth:`decrypt_to_temp`, also naming the PRIMARY fingerprint of the key that
        decrypted the item (gpg's DECRYPTION_KEY; None if gpg did not say)."""
        # gpg writes a file that does not exist yet (overwriting an existing one is measurably
        # slower) in a private folder made race-free by mkdtemp, on the target's file system.
        private = Path(tempfile.mkdtemp(prefix=".part-", dir=folder))
        temp = private / "part"
        try:
            status = self._run_decrypt(ciphertext, temp, passphrase, progress)
            os.link(temp, folder / f"{private.name}.done")
        except BaseException:
            shutil.rmtree(private, ignore_errors=True)
            raise
        shutil.rmtree(private, ignore_errors=True)
        return folder / f"{private.name}.done", _embedded_name(status), _decryption_key(status)

    # -- signing -------------------------------------------------------------------------------

    def sign_detached(self, data: bytes, fingerprint: str, passphrase: str | None = None) -> bytes:
        """An armored detached signature over ``data`` (binary mode, SHA-512) by the secret key
        ``fingerprint`` of this home (its primary key, or a signing subkey of it).

        Without a passphrase only a cached or unprotected key signs; a protected one raises
        :class:`PassphraseNeeded` at once. A key that cannot sign raises
        :class:`WorkstationGpgError`. Fail closed: anything but one binary signature is an error.
        """
        fpr = fingerprint.replace(" ", "").upper()
        if not _FPR_RE.match(fpr):
            raise ValueError("name the key by its full 40-hex-digit fingerprint")
        args = [] if passphrase is not None else ["--pinentry-mode", "error"]
        secret = None if passphrase is None else check_passphrase(passphrase)
        signed = self.gpg_home.run(
            # No "!" after the fingerprint: a key whose primary only certifies signs with its
            # signing subkey; the signature still names the primary (VALIDSIG), which is what
            # the server checks.
            [*args, "--local-user", fpr, "--digest-algo", "SHA512", "--armor", "--detach-sign"],
            data,
            passphrase=secret,
        )
        status = list(signed.status)
        keywords = {line.keyword for line in status}
        codes = {line.error_code for line in status} - {None}
        if "BAD_PASSPHRASE" in keywords or _ERR_BAD_PASSPHRASE in codes:
            raise WrongPassphrase("wrong passphrase for the workstation's secret key")
        if codes & {_ERR_NO_PINENTRY, _ERR_NO_PASSPHRASE, _ERR_CANCELED}:
            raise PassphraseNeeded("the secret key is protected: a passphrase is needed")
        created = signed.fields("SIG_CREATED")
        # SIG_CREATED <type> <pk_algo> <hash_algo> <class> <timestamp> <fingerprint>
        if (
            signed.returncode != 0
            or len(created) != 1
            or len(created[0]) < 6
            or created[0][0] != "D"
            or created[0][3] != "00"
            or b"-----BEGIN PGP SIGNATURE-----" not in signed.stdout
        ):
            raise WorkstationGpgError(
                f"key {fpr} could not sign (is its secret half here, and can it sign?)"
            )
        return signed.stdout

    def _run_decrypt(
        self,
        ciphertext: Path,
        output: Path,
        passphrase: str | None,
        progress: ProgressCallback | None,
    ) -> list[Status]:
        # Without a passphrase: cached or unprotected keys only; a protected key fails at once,
        # no pinentry.
        args = [] if passphrase is not None else ["--pinentry-mode", "error"]
        secret = None if passphrase is None else check_passphrase(passphrase)
        args += ["--output", str(output), "--decrypt", str(ciphertext)]
        # gpg reads the item and writes the plaintext file itself: no byte passes through us.
        gpg = self.gpg_home.popen(args, stdout_fd=DISCARD, stdin_pipe=False, passphrase=secret)
        finished = threading.Event()
        watcher = None
        if progress is not None:
            # Progress is read from the size of the output file, not from gpg's progress
            # filter: polling costs gpg nothing, and gpg's own reports slow it measurably.
            total = ciphertext.stat().st_size
            watcher = threading.Thread(
                target=_watch_size, args=(output, total, progress, finished), daemon=True
            )
            watcher.start()
        try:
            returncode = gpg.wait()
        finally:
            finished.set()
            if watcher is not None:
                watcher.join()
        status = gpg.status
        _check_decryption(returncode, status)
        return status


def _watch_size(
    output: Path, total: int, progress: ProgressCallback, finished: threading.Event
) -> None:
    while not finished.wait(_PROGRESS_INTERVAL_S):
        with contextlib.suppress(OSError):
            progress(min(output.stat().st_size, total), total)
    with contextlib.suppress(OSError):
        progress(total, total)


def _check_decryption(returncode: int, status: Sequence[Status]) -> None:
    """Fail closed: success needs exit 0, DECRYPTION_OKAY (integrity checked) and END."""
    keywords = {line.keyword for line in status}
    codes = {
        line.error_code for line in status
        if line.keyword == "ERROR" and line.rest.startswith("pkdecrypt_failed")
    }
    if "BAD_PASSPHRASE" in keywords or _ERR_BAD_PASSPHRASE in codes:
        raise WrongPassphrase("wrong passphrase for the workstation's secret key")
    if codes & {_ERR_NO_PINENTRY, _ERR_NO_PASSPHRASE, _ERR_CANCELED}:
        raise PassphraseNeeded("the secret key is protected: a passphrase is needed")
    if "DECRYPTION_KEY" not in keywords and "DECRYPTION_OKAY" not in keywords:
        missing = [line.fields[0] for line in status if line.keyword == "NO_SECKEY" and line.rest]
        if missing or "ENC_TO" in keywords:
            enc_to = [line.fields[0] for line in status if line.keyword == "ENC_TO" and line.rest]
            raise MissingSecretKey(list(dict.fromkeys(missing or enc_to)))
    if (
        returncode != 0
        or "DECRYPTION_OKAY" not in keywords
        or "DECRYPTION_FAILED" in keywords
        or "END_DECRYPTION" not in keywords
        or "BADMDC" in keywords
    ):
        raise DecryptionError("the item could not be decrypted (damaged or tampered)")


def _decryption_key(status: Sequence[Status]) -> str | None:
    """The primary fingerprint from "DECRYPTION_KEY <fpr> <primary fpr> <otrust>"."""
    for line in status:
        if line.keyword == "DECRYPTION_KEY" and len(line.fields) >= 2:
            primary = line.fields[1].upper()
            return primary if _FPR_RE.match(primary) else None
    return None


def _embedded_name(status: Sequence[Status]) -> str | None:
    """The literal packet's filename from "PLAINTEXT <format> <time> <name>" (%-escaped)."""
    for line in status:
        if line.keyword == "PLAINTEXT":
            parts = line.rest.split(" ", 2)
            if len(parts) == 3 and parts[2]:
                return unquote_to_bytes(parts[2]).decode("utf-8", "replace")
            return None
    return None


@contextlib.contextmanager
def opened(home: Path, gpg_binary: str = "gpg") -> Iterator[WorkstationGpg]:
    gpg = WorkstationGpg(home, gpg_binary)
    try:
        yield gpg
    finally:
        gpg.close()


def recipients_of(gpg: WorkstationGpg, ciphertext: Path) -> list[str]:
    """The key ids an item is encrypted to, without decrypting anything."""
    try:
        return sorted(ciphertext_key_ids(ciphertext, gpg.gpg_binary))
    except NotAnEncryptedMessage:
        # Not readable as a message to public keys: it names no key of ours either.
        return []


def primaries_for_key_ids(gpg: WorkstationGpg, key_ids: Sequence[str]) -> list[str]:
    """Primary fingerprints of the keyring's keys that own any of these (sub)key ids."""
    wanted = {key.upper() for key in key_ids}
    found: list[str] = []
    for key in gpg.gpg_home.library().list_keys():
        primary = str(key.get("fingerprint") or "").upper()
        subkeys = [str(sub[2] or "") for sub in key.get("subkeys", [])]
        owned = {key_id(fpr) for fpr in [primary, *subkeys] if fpr}
        if primary and owned & wanted and primary not in found:
            found.append(primary)
    return found
