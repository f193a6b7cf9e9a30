"""Small secrets sealed at rest: AES-256-GCM under a key derived with HKDF from a server secret.

For values the server must read back itself (TOTP secrets), so a public-key encryption to the
workstation does not fit. The point is that a copy of the database alone (a backup, a dump, a
seized disk without the instance's ``secrets/`` folder) yields nothing usable. Each value is
bound to where it belongs by its associated data (e.g. the row's id): a sealed value copied
into another row does not open there.

A sealed value is ``v1.`` followed by base64url of a random 96-bit nonce, the ciphertext and
the 128-bit tag. Every failure raises :class:`SealError`: callers fail closed.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crypto.errors import CryptoError

_VERSION = "v1."
_NONCE_BYTES = 12


class SealError(CryptoError):
    """A sealed value that does not open: damaged, moved, or sealed under another key."""


class SealingKey:
    """An AES-256-GCM key for one purpose; ``repr`` shows nothing of it."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a sealing key is 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def derive(cls, secret: bytes, label: str) -> SealingKey:
        """The key for ``label`` (a purpose, e.g. ``"peluit/totp/v1"``) from a server secret.

        One secret can serve several purposes: HKDF with distinct labels gives independent
        keys, so a value sealed for one purpose never opens as another.
        """
        if len(secret) < 32:
            raise ValueError("the secret must have at least 32 bytes")
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label.encode())
        return cls(hkdf.derive(secret))

    def __repr__(self) -> str:
        return "SealingKey(<hidden>)"

    def seal(self, plaintext: str, associated_data: bytes) -> str:
        # A random nonce: 2^32 values under one key keep the collision risk negligible, far
        # more than the few secrets per account this seals.
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), associated_data)
        return _VERSION + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, sealed: str, associated_data: bytes) -> str:
        if not sealed.startswith(_VERSION):
            raise SealError("not a sealed value")
        try:
            raw = base64.urlsafe_b64decode(sealed.removeprefix(_VERSION).encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise SealError("not a sealed value") from None
        if len(raw) < _NONCE_BYTES + 16:
            raise SealError("not a sealed value")
        try:
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], associated_data)
        except InvalidTag:
            raise SealError(
                "the sealed value does not open here (another key, another row, or damaged)"
            ) from None
        return plain.decode("utf-8")
