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
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes

from crypto.errors import CryptoError, DecryptionError

# libgpg-error codes (low 16 bits of an ERROR status value).
_ERR_BAD_PASSPHRASE = 11
_ERR_NO_PINENTRY = 85
_ERR_NO_PASSPHRASE = 177
_ERR_CANCELED = 99
_FPR_RE = re.compile(r"^[0-9A-F]{40}$")
_MAX_PASSPHRASE_BYTES = 4096
_KEYGEN_TIMEOUT_S = 120.0
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


@dataclass(frozen=True)
class SecretKey:
    fingerprint: str
    uids: tuple[str, ...]
    has_secret: bool


class WorkstationGpg:
    """gpg calls on one GnuPG home (which must have a short path: gpg-agent's socket)."""

    def __init__(self, home: Path, gpg_binary: str = "gpg") -> None:
        self.home = Path(home)
        self.gpg_binary = gpg_binary
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.home, 0o700)

    def _base(self) -> list[str]:
        return [self.gpg_binary, "--homedir", str(self.home), "--batch", "--no-tty"]

    def close(self) -> None:
        subprocess.run(
            ["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"],
            check=False,
            capture_output=True,
        )

    # -- keys ----------------------------------------------------------------------------------

    def generate_key(self, name: str, passphrase: str, expire: str = "3y") -> str:
        """Make an ed25519 primary key with a cv25519 encryption subkey; return its fingerprint."""
        if not name or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name) or ":" in name:
            raise ValueError("unusable key name")
        if not re.match(r"^(0|[1-9][0-9]{0,3}[dwmy]?)$", expire):
            raise ValueError("expiry must look like 0, 365, 52w, 24m or 3y")
        secret = check_passphrase(passphrase)
        params = (
            "Key-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign\n"
            "Subkey-Type: ecdh\nSubkey-Curve: cv25519\nSubkey-Usage: encrypt\n"
            f"Name-Real: {name}\nExpire-Date: {expire}\n"
        ).encode() + b"Passphrase: " + secret + b"\n%commit\n"
        proc = subprocess.run(
            [*self._base(), "--status-fd", "2", "--pinentry-mode", "loopback", "--gen-key"],
            input=params,
            capture_output=True,
            check=False,
            timeout=_KEYGEN_TIMEOUT_S,
        )
        created = [
            line.split()[3]
            for line in proc.stderr.decode("utf-8", "replace").splitlines()
            if line.startswith("[GNUPG:] KEY_CREATED ") and len(line.split()) >= 4
        ]
        if proc.returncode != 0 or len(created) != 1 or not _FPR_RE.match(created[0].upper()):
            raise WorkstationGpgError("gpg could not generate the key")
        return created[0].upper()

    def list_keys(self) -> list[SecretKey]:
        """Every key of the home, primary fingerprint first, and whether its secret is here."""
        secrets = set(self._fingerprints(secret=True))
        listing = self._colons(["--list-keys"])
        keys: list[SecretKey] = []
        fpr: str | None = None
        uids: list[str] = []
        want_fpr = False

        def flush() -> None:
            if fpr is not None:
                keys.append(SecretKey(fpr, tuple(uids), fpr in secrets))

        for line in listing.splitlines():
            fields = [*line.split(":"), *[""] * 12]
            if fields[0] == "pub":
                flush()
                fpr, uids, want_fpr = None, [], True
            elif fields[0] == "fpr" and want_fpr:
                fpr, want_fpr = fields[9].upper(), False
            elif fields[0] == "sub":
                want_fpr = False
            elif fields[0] == "uid" and fields[1] not in ("r", "e"):
                uids.append(fields[9])
        flush()
        return keys

    def _fingerprints(self, secret: bool) -> list[str]:
        listing = self._colons(["--list-secret-keys" if secret else "--list-keys"])
        out: list[str] = []
        want = False
        for line in listing.splitlines():
            fields = [*line.split(":"), *[""] * 12]
            if fields[0] in ("pub", "sec"):
                want = True
            elif fields[0] == "fpr" and want:
                out.append(fields[9].upper())
                want = False
            elif fields[0] in ("sub", "ssb"):
                want = False
        return out

    def secret_fingerprints(self) -> list[str]:
        return self._fingerprints(secret=True)

    def _colons(self, args: Sequence[str]) -> str:
        proc = subprocess.run(
            [*self._base(), "--with-colons", "--fixed-list-mode", "--with-fingerprint", *args],
            capture_output=True,
            check=False,
        )
        # A fresh home without a keyring makes gpg exit 2: that simply means no key.
        return proc.stdout.decode("utf-8", "replace")

    def export_public(self, fingerprint: str) -> str:
        fpr = fingerprint.replace(" ", "").upper()
        if not _FPR_RE.match(fpr):
            raise ValueError("name the key by its full 40-hex-digit fingerprint")
        proc = subprocess.run(
            [*self._base(), "--armor", "--export-options", "export-minimal", "--export", fpr],
            capture_output=True,
            check=False,
        )
        text = proc.stdout.decode("ascii", "replace")
        if proc.returncode != 0 or "BEGIN PGP PUBLIC KEY BLOCK" not in text:
            raise WorkstationGpgError(f"key {fpr} is not in the workstation's keyring")
        return text

    def import_keys(self, data: bytes) -> list[str]:
        """Import keys (public or secret) from a file the investigator chose."""
        proc = subprocess.run(
            [*self._base(), "--status-fd", "2", "--pinentry-mode", "error", "--import"],
            input=data,
            capture_output=True,
            check=False,
        )
        imported = sorted(
            {
                line.split()[3].upper()
                for line in proc.stderr.decode("utf-8", "replace").splitlines()
                if line.startswith("[GNUPG:] IMPORT_OK ") and len(line.split()) >= 4
            }
        )
        if proc.returncode != 0 or not imported:
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
        return folder / f"{private.name}.done", _embedded_name(status)

    def _run_decrypt(
        self,
        ciphertext: Path,
        output: Path,
        passphrase: str | None,
        progress: ProgressCallback | None,
    ) -> list[tuple[str, str]]:
        status_r, status_w = os.pipe()
        pass_fds = [status_w]
        args = [*self._base(), "--status-fd", str(status_w)]
        pass_r: int | None = None
        if passphrase is None:
            # Cached or unprotected keys only: a protected key fails at once, no pinentry.
            args += ["--pinentry-mode", "error"]
        else:
            secret = check_passphrase(passphrase)
            pass_r, pass_w = os.pipe()
            try:
                os.write(pass_w, secret)  # far below the pipe's capacity: cannot block
            finally:
                os.close(pass_w)
            pass_fds.append(pass_r)
            args += ["--pinentry-mode", "loopback", "--passphrase-fd", str(pass_r)]
        args += ["--output", str(output), "--decrypt", str(ciphertext)]
        status: list[tuple[str, str]] = []
        try:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=pass_fds,
            )
        finally:
            os.close(status_w)
            if pass_r is not None:
                os.close(pass_r)
        stderr_lines: list[bytes] = []
        reader = threading.Thread(
            target=lambda: stderr_lines.extend(_bounded_lines(proc.stderr)), daemon=True
        )
        reader.start()
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
            with os.fdopen(status_r, "rb") as stream:
                for raw in stream:
                    line = raw.decode("utf-8", "replace").rstrip("\n")
                    if line.startswith("[GNUPG:] ") and len(status) < 10_000:
                        keyword, _, rest = line[len("[GNUPG:] ") :].partition(" ")
                        status.append((keyword, rest))
            returncode = proc.wait()
        finally:
            finished.set()
            if watcher is not None:
                watcher.join()
        reader.join()
        _check_decryption(returncode, status)
        return status


def _bounded_lines(stream: Iterator[bytes] | None, limit: int = 200) -> list[bytes]:
    lines: list[bytes] = []
    if stream is None:
        return lines
    for line in stream:
        if len(lines) < limit:
            lines.append(line)
    return lines


def _watch_size(
    output: Path, total: int, progress: ProgressCallback, finished: threading.Event
) -> None:
    while not finished.wait(_PROGRESS_INTERVAL_S):
        with contextlib.suppress(OSError):
            progress(min(output.stat().st_size, total), total)
    with contextlib.suppress(OSError):
        progress(total, total)


def _error_code(rest: str) -> int | None:
    parts = rest.split()
    if len(parts) >= 2 and parts[1].isdigit():
        return int(parts[1]) & 0xFFFF
    return None


def _check_decryption(returncode: int, status: list[tuple[str, str]]) -> None:
    """Fail closed: success needs exit 0, DECRYPTION_OKAY (integrity checked) and END."""
    keywords = {keyword for keyword, _ in status}
    codes = {
        _error_code(rest) for keyword, rest in status
        if keyword == "ERROR" and rest.startswith("pkdecrypt_failed")
    }
    if "BAD_PASSPHRASE" in keywords or _ERR_BAD_PASSPHRASE in codes:
        raise WrongPassphrase("wrong passphrase for the workstation's secret key")
    if codes & {_ERR_NO_PINENTRY, _ERR_NO_PASSPHRASE, _ERR_CANCELED}:
        raise PassphraseNeeded("the secret key is protected: a passphrase is needed")
    if "DECRYPTION_KEY" not in keywords and "DECRYPTION_OKAY" not in keywords:
        missing = [rest.split()[0] for keyword, rest in status if keyword == "NO_SECKEY" and rest]
        if missing or "ENC_TO" in keywords:
            enc_to = [rest.split()[0] for keyword, rest in status if keyword == "ENC_TO" and rest]
            raise MissingSecretKey(list(dict.fromkeys(missing or enc_to)))
    if (
        returncode != 0
        or "DECRYPTION_OKAY" not in keywords
        or "DECRYPTION_FAILED" in keywords
        or "END_DECRYPTION" not in keywords
        or "BADMDC" in keywords
    ):
        raise DecryptionError("the item could not be decrypted (damaged or tampered)")


def _embedded_name(status: list[tuple[str, str]]) -> str | None:
    """The literal packet's filename from "PLAINTEXT <format> <time> <name>" (%-escaped)."""
    for keyword, rest in status:
        if keyword == "PLAINTEXT":
            parts = rest.split(" ", 2)
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
    """The key ids an item is encrypted to (ENC_TO), without decrypting anything."""
    proc = subprocess.run(
        [*gpg._base(), "--status-fd", "1", "--pinentry-mode", "error", "--list-only",
         "--decrypt", str(ciphertext)],
        capture_output=True,
        check=False,
    )
    ids = []
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[:2] == ["[GNUPG:]", "ENC_TO"]:
            ids.append(parts[2].upper())
    return list(dict.fromkeys(ids))


def primaries_for_key_ids(gpg: WorkstationGpg, key_ids: Sequence[str]) -> list[str]:
    """Primary fingerprints of the keyring's keys that own any of these (sub)key ids."""
    wanted = {key_id.upper() for key_id in key_ids}
    found: list[str] = []
    primary: str | None = None
    expect_primary = False
    for line in gpg._colons(["--list-keys"]).splitlines():
        fields = [*line.split(":"), *[""] * 12]
        if fields[0] == "pub":
            primary, expect_primary = None, True
        elif fields[0] == "fpr":
            fpr = fields[9].upper()
            if expect_primary:
                primary, expect_primary = fpr, False
            if primary is not None and fpr[-16:] in wanted and primary not in found:
                found.append(primary)
    return found
