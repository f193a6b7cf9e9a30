"""Key derivation from a codename: argon2id with two separate server peppers.

Two independent secrets come out of one codename:

* the **source id**, which the database stores to recognise a returning pelapor, and
* the **reply-key passphrase**, which unlocks the source's reply key.

Each uses its own pepper, so the id in the database says nothing about the passphrase: a copy of
the database and one pepper still cannot unlock reply keys. Peppers are random server secrets
(``peluit init``); argon2id makes every guess at a codename cost memory and time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from argon2.low_level import Type, hash_secret_raw

# Domain labels keep the two derivations apart even if an operator reused one pepper for both.
_ID_LABEL = b"peluit/source-id/v1"
_REPLY_LABEL = b"peluit/reply-key/v1"


@dataclass(frozen=True)
class KdfParams:
    """argon2id cost. Production default: 64 MiB, three passes (OWASP's second profile)."""

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 1


@dataclass(frozen=True, repr=False)
class SourceSecrets:
    source_id: str
    reply_passphrase: str

    def __repr__(self) -> str:
        # Never let the passphrase reach a log or a traceback.
        return f"SourceSecrets(source_id={self.source_id[:8]}..., reply_passphrase=<hidden>)"


def _derive(secret: bytes, pepper: bytes, label: bytes, params: KdfParams) -> bytes:
    # argon2 wants a salt; a per-deployment pepper is it (a per-source salt is impossible: the
    # id must be recomputable from the codename alone). The label separates the two uses.
    salt = hashlib.sha256(label + b"\0" + pepper).digest()
    return hash_secret_raw(
        secret=secret,
        salt=salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=32,
        type=Type.ID,
    )


def derive_source_secrets(
    codename: str, *, source_id_pepper: bytes, reply_key_pepper: bytes, params: KdfParams
) -> SourceSecrets:
    """Derive the source id and the reply-key passphrase from a normalised codename."""
    if not codename:
        raise ValueError("empty codename")
    if source_id_pepper == reply_key_pepper:
        raise ValueError("the two peppers must differ")
    secret = codename.encode("utf-8")
    source_id = _derive(secret, source_id_pepper, _ID_LABEL, params).hex()
    passphrase = _derive(secret, reply_key_pepper, _REPLY_LABEL, params).hex()
    return SourceSecrets(source_id=source_id, reply_passphrase=passphrase)
