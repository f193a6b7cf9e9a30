"""The instance signing key and detached-signature verification, with the real gpg."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from crypto.signing import (
    SIGNING_KEY_UID,
    SignatureError,
    Signer,
    SigningError,
    verify_detached,
    verify_detached_by_any,
)

DATA = b'{"format": "peluit-bundle/1"}\n'


def gpg(
    home: Path, *args: str, data: bytes = b"", check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--no-tty", *args],
        input=data, capture_output=True, check=check,
    )


@pytest.fixture
def short_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="ts-", dir="/tmp"))
    yield home
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def signer(short_home: Path) -> Iterator[Signer]:
    with Signer(short_home / "signing") as made:
        made.ensure_key()
        yield made


@pytest.fixture(scope="module")
def other_signer() -> Iterator[Signer]:
    root = Path(tempfile.mkdtemp(prefix="to-", dir="/tmp"))
    with Signer(root / "signing") as made:
        made.ensure_key("Someone else")
        yield made
    shutil.rmtree(root, ignore_errors=True)


def test_signing_key_can_sign_and_nothing_else(signer: Signer, short_home: Path) -> None:
    listing = gpg(signer.home, "--list-keys").stdout.decode()
    assert "ed25519" in listing and "[SC]" in listing
    assert "sub " not in listing and "[E]" not in listing
    colons = gpg(signer.home, "--with-colons", "--list-secret-keys").stdout.decode()
    caps = [line.split(":")[11] for line in colons.splitlines() if line.startswith("sec")]
    assert caps == ["scSC"]
    assert "ssb" not in colons
    assert SIGNING_KEY_UID in listing

    # Nothing can be encrypted to it: a workstation given its public key cannot use it.
    home = short_home / "encrypt-to-it"
    home.mkdir(mode=0o700)
    gpg(home, "--import", data=signer.public_key().encode())
    attempt = gpg(
        home, "--trust-model", "always", "--encrypt", "-r", signer.fingerprint,
        data=b"secret", check=False,
    )
    assert attempt.returncode != 0 and attempt.stdout == b""


def test_ensure_key_is_idempotent(signer: Signer) -> None:
    first = signer.fingerprint
    assert signer.ensure_key() == first
    with Signer(signer.home) as again:
        assert again.fingerprint == first
        assert again.ensure_key() == first
    listing = gpg(signer.home, "--with-colons", "--list-keys").stdout.decode()
    assert listing.count("\npub:") + listing.startswith("pub:") == 1


def test_home_without_key_says_how_to_make_one(short_home: Path) -> None:
    with Signer(short_home / "nothing-here") as empty, pytest.raises(SigningError, match="init"):
        _ = empty.fingerprint


def test_a_home_whose_key_can_decrypt_is_refused(signer: Signer) -> None:
    # Someone "fixed" the key by adding an encryption subkey: the server must not sign with it.
    gpg(signer.home, "--pinentry-mode", "loopback", "--passphrase", "",
        "--quick-add-key", signer.fingerprint, "cv25519", "encr", "never")
    with Signer(signer.home) as reopened:
        with pytest.raises(SigningError, match="not a sign-only key"):
            reopened.ensure_key()
        with pytest.raises(SigningError):
            reopened.sign_detached(DATA)


def test_signature_verifies_here_and_with_plain_gpg(signer: Signer, short_home: Path) -> None:
    signature = signer.sign_detached(DATA)
    assert signature.startswith(b"-----BEGIN PGP SIGNATURE-----")
    public = signer.public_key()
    assert verify_detached(DATA, signature, public, signer.fingerprint) == signer.fingerprint
    # Trust on first use: no fingerprint pinned yet, the key's own is returned.
    assert verify_detached(DATA, signature, public, None) == signer.fingerprint

    # Cross-check with gpg alone, the way an investigator could by hand.
    home = short_home / "by-hand"
    home.mkdir(mode=0o700)
    (home / "data").write_bytes(DATA)
    (home / "data.sig").write_bytes(signature)
    gpg(home, "--import", data=public.encode())
    checked = gpg(home, "--status-fd", "1", "--verify", str(home / "data.sig"), str(home / "data"))
    assert f"VALIDSIG {signer.fingerprint}".encode() in checked.stdout


def test_long_home_path_is_reached_through_a_short_link(tmp_path: Path) -> None:
    home = tmp_path.joinpath("a" * 60, "b" * 60, "signing")
    assert len(str(home)) > 120  # gpg-agent could not put its socket here
    with Signer(home) as long_signer:
        fingerprint = long_signer.ensure_key()
        signature = long_signer.sign_detached(DATA)
        public = long_signer.public_key()
        link_dir = long_signer._link_dir
        assert link_dir is not None and (link_dir / "h").resolve() == home.resolve()
    assert verify_detached(DATA, signature, public, fingerprint) == fingerprint
    # close() stopped the agent (its sockets are gone) and removed the link.
    assert not link_dir.exists()
    assert not list(home.glob("S.gpg-agent*"))


def test_changed_data_is_refused(signer: Signer) -> None:
    signature = signer.sign_detached(DATA)
    with pytest.raises(SignatureError):
        verify_detached(DATA + b" ", signature, signer.public_key(), signer.fingerprint)


def test_changed_signature_is_refused(signer: Signer) -> None:
    signature = bytearray(gpg_dearmor(signer.sign_detached(DATA)))
    signature[-5] ^= 0x01
    with pytest.raises(SignatureError):
        verify_detached(DATA, bytes(signature), signer.public_key(), signer.fingerprint)


def gpg_dearmor(armored: bytes) -> bytes:
    home = Path(tempfile.mkdtemp(prefix="td-", dir="/tmp"))
    try:
        return gpg(home, "--dearmor", data=armored).stdout
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_wrong_pinned_fingerprint_is_refused(signer: Signer, other_signer: Signer) -> None:
    # A good signature by a key the workstation does not trust: the attacker shipped their own
    # key along with their own signature.
    signature = other_signer.sign_detached(DATA)
    with pytest.raises(SignatureError, match="trusted"):
        verify_detached(DATA, signature, other_signer.public_key(), signer.fingerprint)


def test_signature_by_an_unknown_key_is_refused(signer: Signer, other_signer: Signer) -> None:
    signature = other_signer.sign_detached(DATA)
    with pytest.raises(SignatureError):
        verify_detached(DATA, signature, signer.public_key(), signer.fingerprint)
    with pytest.raises(SignatureError):
        verify_detached(DATA, signature, signer.public_key(), None)


def test_more_than_one_signature_is_refused(signer: Signer, other_signer: Signer) -> None:
    # Two good signatures by the trusted key: still not "exactly one".
    twice = gpg_dearmor(signer.sign_detached(DATA)) * 2
    with pytest.raises(SignatureError, match="exactly one"):
        verify_detached(DATA, twice, signer.public_key(), signer.fingerprint)
    # A good one followed by one from an unknown key.
    mixed = gpg_dearmor(signer.sign_detached(DATA)) + gpg_dearmor(other_signer.sign_detached(DATA))
    with pytest.raises(SignatureError):
        verify_detached(DATA, mixed, signer.public_key(), signer.fingerprint)


def test_signed_message_in_place_of_a_detached_signature_is_refused(signer: Signer) -> None:
    # A complete signed message verifies on its own, whatever data it is "about".
    home = signer.home
    inline = gpg(home, "--local-user", signer.fingerprint, "--sign", data=b"other data").stdout
    with pytest.raises(SignatureError):
        verify_detached(DATA, inline, signer.public_key(), signer.fingerprint)


def test_sha1_signature_is_refused(signer: Signer) -> None:
    weak = gpg(signer.home, "--local-user", signer.fingerprint, "--digest-algo", "SHA1",
               "--detach-sign", data=DATA).stdout
    with pytest.raises(SignatureError, match="weak hash"):
        verify_detached(DATA, weak, signer.public_key(), signer.fingerprint)


def test_text_mode_signature_is_refused(signer: Signer) -> None:
    text = gpg(signer.home, "--local-user", signer.fingerprint, "--textmode",
               "--detach-sign", data=DATA).stdout
    with pytest.raises(SignatureError, match="binary"):
        verify_detached(DATA, text, signer.public_key(), signer.fingerprint)


def test_signature_by_a_revoked_key_is_refused(signer: Signer) -> None:
    signature = signer.sign_detached(DATA)
    revocation = (signer.home / "openpgp-revocs.d" / f"{signer.fingerprint}.rev").read_text()
    # gpg keeps the certificate with a ':' in front so it is not imported by accident.
    gpg(signer.home, "--import", data=revocation.replace(":-----BEGIN", "-----BEGIN").encode())
    revoked_public = gpg(signer.home, "--armor", "--export", signer.fingerprint).stdout
    with pytest.raises(SignatureError, match="REVKEYSIG"):
        verify_detached(DATA, signature, revoked_public, signer.fingerprint)


def test_signature_by_an_expired_key_is_refused(keys) -> None:  # type: ignore[no-untyped-def]
    expired = keys.get("expired")  # made in 2020, valid for a year
    signature = gpg(
        expired.home, "--faked-system-time", "20200601T000000!",
        "--local-user", expired.fingerprint, "--detach-sign", data=DATA,
    ).stdout
    with pytest.raises(SignatureError, match="EXPKEYSIG"):
        verify_detached(DATA, signature, expired.public, expired.fingerprint)


def test_private_key_is_never_taken_as_the_signer_key(signer: Signer) -> None:
    secret = gpg(signer.home, "--armor", "--export-secret-keys", signer.fingerprint).stdout
    signature = signer.sign_detached(DATA)
    with pytest.raises(SignatureError, match="PRIVATE"):
        verify_detached(DATA, signature, secret, signer.fingerprint)


def test_garbage_is_refused(signer: Signer) -> None:
    with pytest.raises(SignatureError):
        verify_detached(DATA, b"not a signature", signer.public_key(), None)
    with pytest.raises(SignatureError):
        verify_detached(DATA, signer.sign_detached(DATA), "not a key", None)


# -- any one of several keys (a forwarding package, signed by one of a tenant's keys) --------------


def test_a_signature_by_any_one_of_the_keys_verifies_and_names_it(
    signer: Signer, other_signer: Signer
) -> None:
    keys = [signer.public_key(), other_signer.public_key()]
    for made in (signer, other_signer):
        assert verify_detached_by_any(DATA, made.sign_detached(DATA), keys) == made.fingerprint
    # Over other bytes: refused, whichever key made it.
    with pytest.raises(SignatureError, match="BADSIG"):
        verify_detached_by_any(DATA + b" ", signer.sign_detached(DATA), keys)


def test_a_signature_by_a_key_not_among_them_is_refused(
    signer: Signer, other_signer: Signer
) -> None:
    with pytest.raises(SignatureError, match="NO_PUBKEY"):
        verify_detached_by_any(DATA, other_signer.sign_detached(DATA), [signer.public_key()])
    with pytest.raises(SignatureError, match="no signer key"):
        verify_detached_by_any(DATA, signer.sign_detached(DATA), [])


def test_two_signatures_by_two_allowed_keys_are_not_one(
    signer: Signer, other_signer: Signer
) -> None:
    both = gpg_dearmor(signer.sign_detached(DATA)) + gpg_dearmor(other_signer.sign_detached(DATA))
    with pytest.raises(SignatureError, match="exactly one"):
        verify_detached_by_any(DATA, both, [signer.public_key(), other_signer.public_key()])


def test_each_block_must_be_one_public_key(signer: Signer, other_signer: Signer) -> None:
    # Two keys in one block: the home would hold a key nobody listed.
    smuggled = signer.public_key() + other_signer.public_key()
    with pytest.raises(SignatureError, match="exactly 1 signer key"):
        verify_detached_by_any(DATA, other_signer.sign_detached(DATA), [smuggled])
    secret = gpg(signer.home, "--armor", "--export-secret-keys", signer.fingerprint).stdout
    with pytest.raises(SignatureError, match="PRIVATE"):
        verify_detached_by_any(
            DATA, signer.sign_detached(DATA), [other_signer.public_key(), secret]
        )
