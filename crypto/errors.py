"""Errors of the OpenPGP layer.

Every failure on the crypto path raises one of these, so callers can fail closed with one
``except CryptoError``. Messages never contain plaintext, passphrases or codenames.
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base class of every error raised by the OpenPGP layer."""


# One English message per refusal reason. The code is the stable part: the interfaces translate
# by code, and tests assert on codes, never on this prose.
_KEY_REFUSED_MESSAGES: dict[str, str] = {
    "secret_key": (
        "This is a PRIVATE key; never upload it. Export and upload only the PUBLIC key "
        "(gpg --armor --export FINGERPRINT), and treat this private key as compromised if it "
        "left the air-gapped workstation."
    ),
    "expired": (
        "This key (or its encryption subkey) has expired; extend its expiry and export it again."
    ),
    "revoked": "This key (or its encryption subkey) has been revoked and must not be used.",
    "no_encryption_subkey": (
        "This key has no usable encryption (sub)key, so nothing can be encrypted to it."
    ),
    "weak_rsa": (
        "This key uses RSA, DSA or ElGamal under 3072 bits, which is too weak; use an ed25519/"
        "cv25519 key or RSA of at least 3072 bits."
    ),
    "not_a_key": "This data holds no OpenPGP public key.",
    "multiple_keys": "This data holds more than one key; upload exactly one public key at a time.",
}

KEY_REFUSED_REASONS: frozenset[str] = frozenset(_KEY_REFUSED_MESSAGES)


class KeyRefused(CryptoError):
    """A key offered to the server keyring was refused; ``reason`` is a stable code."""

    reason: str

    def __init__(self, reason: str, detail: str | None = None) -> None:
        if reason not in _KEY_REFUSED_MESSAGES:
            raise ValueError(f"unknown key refusal reason: {reason!r}")
        self.reason = reason
        message = _KEY_REFUSED_MESSAGES[reason]
        if detail:
            message = f"{message} ({detail})"
        super().__init__(message)


class EncryptionError(CryptoError):
    """Encryption did not complete; whatever was written to the sink must be discarded."""


class DecryptionError(CryptoError):
    """Decryption failed (wrong passphrase, wrong key, damaged or tampered ciphertext)."""
