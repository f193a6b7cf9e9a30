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
_PUBLIC_BLOCK = "-----BEGIN PGP PUBLIC KEY BLOCK-----"


def generate_key_pair(
    gpg: GpgHome, user_id: str, passphrase: bytes | None = None, expire: str = "0"
) -> str:
    """Make the key pair in ``gpg``'s home; return its primary fingerprint.

    ``passphrase`` is the exact bytes that will unlock the key (callers check it is one line:
    gpg's parameter file is line based); None leaves the key unprotected, for the demo only.
    """
    if not user_id or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in user_id):
        raise ValueError("unusable user id")
    params = (
        "Key-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign\n"
        "Subkey-Type: ecdh\nSubkey-Curve: cv25519\nSubkey-Usage: encrypt\n"
        f"Name-Real: {user_id}\nExpire-Date: {expire}\n"
    ).encode()
    # Handed over as bytes, so python-gnupg does not re-encode the passphrase with its codec.
    if passphrase is None:
        params += b"%no-protection\n"
    else:
        params += b"Passphrase: " + passphrase + b"\n"
    # gpg then asks the agent to sign the new key's self-signatures, and the agent unlocks it
    # with the passphrase it was handed for it, which it keeps in its cache. When the cache no
    # longer holds it (seen once in a CI run, on a fresh agent), the agent asks for it again:
    # with a pinentry, which has no terminal on a server ("signing failed: Inappropriate ioctl
    # for device") and would pop up mid-generation on the workstation. Handed over through a
    # pipe with loopback as well, the passphrase reaches the agent from gpg instead.
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
