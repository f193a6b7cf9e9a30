"""The server keyring accepts exactly one good public key at a time and refuses the rest."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crypto.errors import CryptoError, KeyRefused
from crypto.keyring import Keyring


@pytest.fixture
def keyring(gnupg_home: Path) -> Iterator[Keyring]:
    with Keyring(gnupg_home / "server") as ring:
        yield ring


def test_home_is_created_private(gnupg_home: Path) -> None:
    home = gnupg_home / "fresh" / "keyring"
    with Keyring(home):
        pass
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_inspect_ed25519_key_describes_it_without_importing(keyring: Keyring, keys: Any) -> None:
    alice = keys.get("alice")
    info = keyring.inspect_public_key(alice.public)
    assert info.fingerprint == alice.fingerprint
    assert info.algorithm == "ed25519"
    assert info.uids == ("Test alice <alice@example.test>",)
    assert info.expires is None
    assert info.created <= datetime.now(tz=UTC)
    assert len(info.encryption_fingerprints) == 1
    assert info.encryption_fingerprints[0] != alice.fingerprint
    assert keyring.fingerprints() == []


def test_inspect_accepts_rsa3072_and_binary_input(keyring: Keyring, keys: Any) -> None:
    carol = keys.get("carol")
    info = keyring.inspect_public_key(carol.public_binary())
    assert (info.fingerprint, info.algorithm, info.bits) == (carol.fingerprint, "rsa", 3072)


def _secret_armored(keys: Any) -> bytes:
    return bytes(keys.get("alice").secret_export(armor=True))


def _secret_binary(keys: Any) -> bytes:
    # No armor header: the refusal must come from gpg's own parse, not a text search.
    return bytes(keys.get("alice").secret_export(armor=False))


def _secret_subkeys(keys: Any) -> bytes:
    return bytes(keys.get("alice").secret_export(armor=False, subkeys_only=True))


BAD_KEYS: list[tuple[str, Callable[..., bytes | str], str]] = [
    ("secret_armored", _secret_armored, "secret_key"),
    ("secret_binary", _secret_binary, "secret_key"),
    ("secret_subkeys", _secret_subkeys, "secret_key"),
    ("expired", lambda k: k.get("expired").public, "expired"),
    ("expired_subkey", lambda k: k.get("expired_subkey").public, "expired"),
    ("revoked", lambda k: k.get("revoked").public, "revoked"),
    ("sign_only", lambda k: k.get("sign_only").public, "no_encryption_subkey"),
    ("rsa2048", lambda k: k.get("rsa2048").public, "weak_rsa"),
    ("weak_subkey", lambda k: k.get("weak_subkey").public, "weak_rsa"),
    ("garbage", lambda k: b"this is not a key at all\n", "not_a_key"),
    ("empty", lambda k: "", "not_a_key"),
    ("revocation_only", lambda k: k.revocation_certificate(), "not_a_key"),
    ("two_keys", lambda k: k.get("alice").public + k.get("bob").public, "multiple_keys"),
]


@pytest.mark.parametrize(("case", "make", "reason"), BAD_KEYS, ids=[c[0] for c in BAD_KEYS])
def test_bad_key_is_refused_with_its_reason_and_not_imported(
    keyring: Keyring, keys: Any, case: str, make: Callable[..., bytes | str], reason: str
) -> None:
    data = make(keys)
    with pytest.raises(KeyRefused) as inspected:
        keyring.inspect_public_key(data)
    assert inspected.value.reason == reason
    with pytest.raises(KeyRefused) as imported:
        keyring.import_public_key(data)
    assert imported.value.reason == reason
    assert keyring.fingerprints() == []
    # Above all, no secret key material may have reached the server's GnuPG home.
    private = keyring.home / "private-keys-v1.d"
    assert not private.exists() or list(private.iterdir()) == []


def test_secret_key_message_says_never_upload_it(keyring: Keyring, keys: Any) -> None:
    with pytest.raises(KeyRefused) as refused:
        keyring.import_public_key(keys.get("alice").secret_export(armor=False))
    assert "PRIVATE key; never upload it" in str(refused.value)


def test_each_reason_has_its_own_message() -> None:
    reasons = [
        "secret_key",
        "expired",
        "revoked",
        "no_encryption_subkey",
        "weak_rsa",
        "not_a_key",
        "multiple_keys",
    ]
    messages = {str(KeyRefused(reason)) for reason in reasons}
    assert len(messages) == len(reasons)
    with pytest.raises(ValueError):
        KeyRefused("made_up")


def test_import_export_list_and_remove(keyring: Keyring, keys: Any) -> None:
    alice, carol = keys.get("alice"), keys.get("carol")
    assert keyring.import_public_key(alice.public).fingerprint == alice.fingerprint
    keyring.import_public_key(carol.public_binary())
    assert sorted(keyring.fingerprints()) == sorted([alice.fingerprint, carol.fingerprint])
    assert alice.fingerprint.lower() in keyring

    exported = keyring.export_public_key(alice.fingerprint)
    assert "BEGIN PGP PUBLIC KEY BLOCK" in exported
    assert keyring.inspect_public_key(exported).fingerprint == alice.fingerprint

    keyring.remove(alice.fingerprint)
    assert keyring.fingerprints() == [carol.fingerprint]
    with pytest.raises(CryptoError):
        keyring.remove(alice.fingerprint)
    with pytest.raises(CryptoError):
        keyring.export_public_key(alice.fingerprint)


def test_importing_the_same_key_twice_keeps_one(keyring: Keyring, keys: Any) -> None:
    bob = keys.get("bob")
    keyring.import_public_key(bob.public)
    keyring.import_public_key(bob.public)
    assert keyring.fingerprints() == [bob.fingerprint]


def test_short_key_ids_are_not_accepted_as_names(keyring: Keyring, keys: Any) -> None:
    bob = keys.get("bob")
    keyring.import_public_key(bob.public)
    with pytest.raises(ValueError):
        keyring.export_public_key(bob.fingerprint[-16:])
