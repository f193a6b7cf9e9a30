"""OpenPGP for instance backups: one stream encrypted to the operators' backup key and signed by
the instance signing key, and the way back, which believes nothing until gpg has said both the
decryption and the signature are good.

Why these choices:

- The server holds only the PUBLIC half of the backup key (checked like a recipient key, see
  :func:`inspect_backup_key`), so a stolen server cannot open its own backups. gpg reads it with
  ``--recipient-file``: it never enters a keyring, so it can never become a report recipient.
- The signature is made inside the encryption (sign, then encrypt, one pass) with the signing
  key's public half embedded (``--include-key-block``). A restore on a fresh machine has no
  keyring to look the key up in; the embedded key is accepted only if its fingerprint is the one
  the operator pinned (``--signing-fingerprint``), so embedding gives an attacker nothing.
- The backup key's secret half never has to touch the server. Restoring is two gpg steps:
  ``--unwrap`` (remove the encryption with the backup key, wherever its home is) and a
  verification in a throwaway home. Either the operator gives :func:`opened_archive` the backup
  key's home (a USB stick mounted for the restore), or unwraps on the offline machine
  (``gpg --unwrap``) and hands over the signed-but-no-longer-encrypted stream.
- Data comes out of gpg before its signature is checked (it is at the end of the stream), so the
  caller must treat what it reads as untrusted until the context manager exits cleanly.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from crypto.errors import CryptoError, DecryptionError, EncryptionError
from crypto.gpgrun import GpgHome, GpgProcess, Status, kill_agent, throwaway_home
from crypto.keyring import KeyInfo, Keyring, normalize_fingerprint
from crypto.signing import SignatureError, Signer

# OpenPGP hash algorithm ids gpg reports in VALIDSIG: SHA-256, SHA-384, SHA-512, SHA-224.
_ACCEPTED_HASHES = frozenset({"8", "9", "10", "11"})
_SIG_CLASS_BINARY = "00"
# Any of these means the signature must not be trusted, whatever else gpg said. (PLAINTEXT is
# expected here, unlike for a detached signature: the signed data is inside the message.)
_REFUSED_STATUS = frozenset(
    {
        "BADSIG",
        "ERRSIG",
        "EXPSIG",
        "EXPKEYSIG",
        "REVKEYSIG",
        "KEYREVOKED",
        "KEYEXPIRED",
        "NO_PUBKEY",
        "FAILURE",
        "BADMDC",
        "DECRYPTION_FAILED",
    }
)
_CHUNK = 1024 * 1024
_NO_PINENTRY = ["--pinentry-mode", "error"]


class BackupError(CryptoError):
    """A backup archive could not be written, or is not one this instance may trust."""


def inspect_backup_key(armored: bytes, gpg_binary: str = "gpg") -> KeyInfo:
    """Describe the one PUBLIC key in ``armored``; KeyRefused as for a recipient key.

    The same rules as report recipients (crypto.keyring): a secret key is refused outright, so
    is an expired, revoked, weak key or one that cannot encrypt.
    """
    with throwaway_home(gpg_binary, prefix="pbk-", agent=False) as home:
        return Keyring(home.home, gpg_binary).inspect_public_key(armored)


# --- writing ------------------------------------------------------------------------------------


@contextlib.contextmanager
def sealing_stream(signer: Signer, backup_key: Path, out: IO[bytes]) -> Iterator[IO[bytes]]:
    """A stream to write the archive's plaintext into; ``out`` receives it signed and encrypted.

    The plaintext exists only in the pipe to gpg. When the block ends, gpg must report the
    signature by the instance key and the end of the encryption, or BackupError is raised and
    what was written to ``out`` must be thrown away.
    """
    with signer.locked_home() as home:
        fingerprint = signer.fingerprint
        proc = home.popen(
            [
                *_NO_PINENTRY,
                "--trust-model", "always",
                "--no-encrypt-to",
                # "!": exactly the instance key; SHA-512 as for the export bundles.
                "--local-user", f"{fingerprint}!",
                "--digest-algo", "SHA512",
                # The bulk is the ciphertext store, which does not compress.
                "--compress-algo", "none",
                "--include-key-block",
                "--recipient-file", str(backup_key),
                "--sign", "--encrypt",
            ],
            stdout_fd=out.fileno(),
            # Empty options: no gpg.conf planted in the home is read.
            options=b"",
        )
        try:
            yield proc.stdin
            proc.stdin.close()
            returncode = proc.wait(timeout=None)
        except BaseException:
            proc.kill()
            raise
    _check_sealed(returncode, proc.status, fingerprint, proc.stderr_tail)


def _check_sealed(returncode: int, status: list[Status], fingerprint: str, tail: str) -> None:
    created = [line.fields for line in status if line.keyword == "SIG_CREATED"]
    keywords = [line.keyword for line in status]
    if (
        returncode != 0
        or "END_ENCRYPTION" not in keywords
        or len(created) != 1
        or len(created[0]) < 6
        or created[0][3] != _SIG_CLASS_BINARY
        or created[0][5].upper() != fingerprint
    ):
        detail = tail.strip().splitlines()[-1:] or ["no detail"]
        raise EncryptionError(f"gpg could not sign and encrypt the backup: {detail[0]}")


# --- reading ------------------------------------------------------------------------------------


def _pump(source: IO[bytes], sink: IO[bytes]) -> None:
    """Copy the unwrapped stream into the verifying gpg; if that gpg stops reading, drain the
    rest, so the unwrapping gpg never blocks on a full pipe and always comes to its verdict."""
    with contextlib.suppress(OSError, ValueError):
        shutil.copyfileobj(source, sink, _CHUNK)
    with contextlib.suppress(OSError):
        sink.close()
    with contextlib.suppress(OSError, ValueError):
        while source.read(_CHUNK):
            pass


def _check_unwrapped(returncode: int, status: list[Status]) -> None:
    keywords = {line.keyword for line in status}
    if "NO_SECKEY" in keywords and "DECRYPTION_OKAY" not in keywords:
        raise DecryptionError(
            "the archive is not encrypted to a backup key in the given GnuPG home"
        )
    if (
        returncode != 0
        or "DECRYPTION_OKAY" not in keywords
        or "GOODMDC" not in keywords
        or keywords & {"DECRYPTION_FAILED", "BADMDC"}
    ):
        raise DecryptionError("the archive could not be decrypted: it is damaged or truncated")


def _check_verified(returncode: int, status: list[Status], expected: str) -> None:
    keywords = [line.keyword for line in status]
    if "ENC_TO" in keywords or "NO_SECKEY" in keywords:
        raise DecryptionError(
            "the archive is still encrypted: give --backup-key-home, or unwrap it first "
            "(gpg --unwrap) on the machine that holds the backup key"
        )
    refused = sorted(set(keywords) & _REFUSED_STATUS)
    if refused:
        raise SignatureError(f"the archive's signature is not valid ({', '.join(refused)})")
    valid = [line.fields for line in status if line.keyword == "VALIDSIG"]
    if (
        returncode != 0
        or keywords.count("NEWSIG") != 1
        or keywords.count("GOODSIG") != 1
        or len(valid) != 1
        or len(valid[0]) < 10
    ):
        raise SignatureError("the archive does not carry exactly one good signature")
    fields = valid[0]
    primary, hash_algo, sig_class = fields[9].upper(), fields[7], fields[8]
    if primary != expected:
        raise SignatureError(
            f"the archive is signed by key {primary}, not by the expected {expected}"
        )
    if sig_class != _SIG_CLASS_BINARY or hash_algo not in _ACCEPTED_HASHES:
        raise SignatureError("the archive's signature is not a binary SHA-2 signature")


@contextlib.contextmanager
def opened_archive(
    archive: Path,
    signing_fingerprint: str,
    backup_key_home: Path | None = None,
    gpg_binary: str = "gpg",
) -> Iterator[IO[bytes]]:
    """Read the archive's plaintext; on a clean exit, its signature has been checked.

    ``backup_key_home``: a GnuPG home holding the backup key's secret half; without it,
    ``archive`` must already be unwrapped (``gpg --unwrap`` on the offline machine).
    What the caller reads is UNTRUSTED until this block exits without an error: gpg checks
    the signature (and the encryption's integrity) only at the end of the stream.
    Raises DecryptionError or SignatureError (the data must then be thrown away).
    """
    expected = normalize_fingerprint(signing_fingerprint)
    with contextlib.ExitStack() as stack:
        unwrap: GpgProcess | None = None
        if backup_key_home is not None:
            if not backup_key_home.is_dir():
                raise DecryptionError(f"no GnuPG home at {backup_key_home}")
            unwrap = GpgHome(backup_key_home, gpg_binary).popen(
                # The operator's home may well ask for the key's passphrase: let its pinentry.
                ["--unwrap", "--output", "-", str(archive)],
                stdin_pipe=False,
                options=b"",
            )
            # The backup key must not stay unlocked in an agent on the server afterwards.
            stack.callback(kill_agent, backup_key_home, gpg_binary)
        verify_home = stack.enter_context(throwaway_home(gpg_binary, prefix="pbv-"))
        verify = verify_home.popen(
            [
                *_NO_PINENTRY,
                "--trust-model", "always",
                # Takes the signing key embedded in the signature into this throwaway home; it
                # is trusted only if it is the pinned one (checked on VALIDSIG below).
                "--auto-key-import",
                "--decrypt",
                *(["--output", "-"] if unwrap is not None else ["--output", "-", str(archive)]),
            ],
            stdin_pipe=unwrap is not None,
            options=b"",
        )
        pump: threading.Thread | None = None
        if unwrap is not None:
            pump = threading.Thread(target=_pump, args=(unwrap.stdout, verify.stdin), daemon=True)
            pump.start()
        processes = [p for p in (unwrap, verify) if p is not None]
        try:
            try:
                yield verify.stdout
            finally:
                # Read to the end whatever the caller left (or refused): gpg only says whether
                # the signature is good once it has seen the whole stream.
                with contextlib.suppress(OSError, ValueError):
                    while verify.stdout.read(_CHUNK):
                        pass
                codes = [p.wait(timeout=None) for p in processes]
                if pump is not None:
                    pump.join()
        except KeyboardInterrupt:
            for p in processes:
                p.kill()
            raise
        except BaseException as exc:
            # The caller's error (say, not a tar file) is less telling than gpg's verdict.
            _raise_verdict(unwrap, verify, expected)
            raise exc from None
        _raise_verdict(unwrap, verify, expected, codes)


def _raise_verdict(
    unwrap: GpgProcess | None,
    verify: GpgProcess,
    expected: str,
    codes: list[int] | None = None,
) -> None:
    if codes is None:
        codes = [p.wait(timeout=None) for p in (unwrap, verify) if p is not None]
    if unwrap is not None:
        _check_unwrapped(codes[0], unwrap.status)
    _check_verified(codes[-1], verify.status, expected)
