"""Recipient key pairs as the investigators make them: ed25519 to sign, cv25519 to encrypt.

They are made on the air-gapped workstation (``peluit-workstation keys new``) and, for
``make run``, on the demo workstation; never in the server's keyring, which holds public keys
only. Generation runs gpg directly (:mod:`crypto.gpgrun`), so that the passphrase can go by a
pipe; the rest of key management goes through python-gnupg.
"""

from __future__ import annotations

import re

from crypto.errors import CryptoError
from crypto.gpgrun import GpgHome

_FPR_RE = re.compile(r"^[0-9A-F]{40}$")
# The longest passphrase gpg-agent takes from gpg (its MAX_PASSPHRASE_LEN). A longer one made a
# key that the same passphrase then never opened.
MAX_PASSPHRASE_BYTES = 255
_PUBLIC_BLOCK = "-----BEGIN PGP PUBLIC KEY BLOCK-----"


def generate_key_pair(
    gpg: GpgHome, user_id: str, passphrase: bytes | None = None, expire: str = "0"
) -> str:
    """Make the key pair in ``gpg``'s home; return its primary fingerprint.

    ``passphrase`` is the exact bytes that will unlock the key, blanks around it included (one
    line: gpg reads the pipe up to a line end); None leaves the key unprotected, for the demo
    only.
    """
    if not user_id or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in user_id):
        raise ValueError("unusable user id")
    if passphrase is not None and (not passphrase or b"\n" in passphrase or b"\r" in passphrase
                                   or b"\0" in passphrase):
        raise ValueError("a passphrase must be one non-empty line")
    if passphrase is not None and len(passphrase) > MAX_PASSPHRASE_BYTES:
        raise ValueError(f"a passphrase must be at most {MAX_PASSPHRASE_BYTES} bytes")
    params = (
        "Key-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign\n"
        "Subkey-Type: ecdh\nSubkey-Curve: cv25519\nSubkey-Usage: encrypt\n"
        f"Name-Real: {user_id}\nExpire-Date: {expire}\n"
    ).encode()
    if passphrase is None:
        params += b"%no-protection\n"
    # The passphrase goes to gpg through a pipe of its own, with loopback: never in the
    # parameters, where gpg trims the blanks around a value (" x " would lock the key with
    # "x", and the passphrase as typed would never open it). From the pipe, gpg hands the
    # agent the exact bytes whenever it asks: to protect the new key, and again to sign its
    # self-signatures should the agent's cache no longer hold it. (That was seen in a CI run:
    # the agent then asked a pinentry, which has no terminal on a server, "signing failed:
    # Inappropriate ioctl for device", and would pop up mid-generation on the workstation.)
    made = gpg.run(["--gen-key"], params + b"%commit\n", passphrase=passphrase)
    created = made.fields("KEY_CREATED")
    fingerprint = created[0][1].upper() if len(created) == 1 and len(created[0]) >= 2 else ""
    if made.returncode != 0 or not _FPR_RE.match(fingerprint):
        raise CryptoError("gpg could not generate the key")
    return fingerprint


def export_public_key(gpg: GpgHome, fingerprint: str) -> str:
    """The armored public key, without third-party signatures; CryptoError if it is not there."""
    exported = gpg.library().export_keys(fingerprint, armor=True, minimal=True)
    if not isinstance(exported, str) or _PUBLIC_BLOCK not in exported:
        raise CryptoError(f"key {fingerprint} is not in the keyring")
    return exported
