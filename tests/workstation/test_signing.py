"""The workstation signs with an investigator's own key (a forwarding package's manifest),
with the real gpg: the passphrase rules of decryption apply, and the signature verifies as the
server checks it (any one of the tenant's current public keys)."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from crypto.signing import SignatureError, verify_detached_by_any
from tests.support import short_tempdir
from workstation.gpg import (
    PassphraseNeeded,
    WorkstationGpg,
    WorkstationGpgError,
    WrongPassphrase,
)

PASSPHRASE = "kunci lemari arsip inspektorat lantai dua"
MANIFEST = b'{\n  "format": "peluit-forward/2"\n}'


# A fresh home each: gpg-agent caches a passphrase once used, which would hide PassphraseNeeded.
@pytest.fixture
def gpg() -> Iterator[tuple[WorkstationGpg, str]]:
    root = short_tempdir("wsg-")
    made = WorkstationGpg(root / "g")
    try:
        yield made, made.generate_key("Inspektorat <ins@test.invalid>", PASSPHRASE)
    finally:
        made.close()
        shutil.rmtree(root, ignore_errors=True)


def test_a_protected_key_signs_only_with_its_passphrase(
    gpg: tuple[WorkstationGpg, str],
) -> None:
    ws, fpr = gpg
    with pytest.raises(PassphraseNeeded):
        ws.sign_detached(MANIFEST, fpr)
    with pytest.raises(WrongPassphrase):
        ws.sign_detached(MANIFEST, fpr, "bukan kata sandi yang benar sama sekali")
    signature = ws.sign_detached(MANIFEST, fpr, PASSPHRASE)
    assert signature.startswith(b"-----BEGIN PGP SIGNATURE-----")
    public = ws.export_public(fpr)
    assert verify_detached_by_any(MANIFEST, signature, [public]) == fpr
    with pytest.raises(SignatureError):
        verify_detached_by_any(MANIFEST + b"\n", signature, [public])


def test_a_key_whose_secret_is_not_here_does_not_sign(gpg: tuple[WorkstationGpg, str]) -> None:
    ws, _fpr = gpg
    with pytest.raises(WorkstationGpgError, match="could not sign"):
        ws.sign_detached(MANIFEST, "A" * 40, PASSPHRASE)
    with pytest.raises(ValueError):
        ws.sign_detached(MANIFEST, "not a fingerprint", PASSPHRASE)


def test_decrypting_names_the_primary_key_that_did_it(
    gpg: tuple[WorkstationGpg, str], tmp_path: Path
) -> None:
    ws, fpr = gpg
    # Encrypted to the key's encryption SUBKEY (as every item is); named by its primary.
    ciphertext = tmp_path / "item.gpg"
    done = subprocess.run(
        ["gpg", "--homedir", str(ws.home), "--batch", "--trust-model", "always",
         "--encrypt", "-r", fpr, "--output", str(ciphertext)],
        input=b"isi laporan", capture_output=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    plain = tmp_path / "plain"
    plain.mkdir(mode=0o700)
    temp, _name, key = ws.decrypt_item(ciphertext, plain, PASSPHRASE)
    assert key == fpr
    assert temp.read_bytes() == b"isi laporan"


def test_no_package_is_left_when_the_signature_cannot_be_made(tmp_path: Path) -> None:
    from workstation.intake import MANIFEST_SIGNATURE, save_package

    item = tmp_path / "0001-form.gpg"
    item.write_bytes(b"ciphertext")
    output = tmp_path / "paket.zip"

    def refuse_to_sign(document: bytes) -> bytes:
        assert b'"items"' in document  # called with the finished manifest
        raise WorkstationGpgError("key could not sign")

    with pytest.raises(WorkstationGpgError):
        save_package(output, [("items/0001-form.gpg", item)], {"format": "t/1"}, refuse_to_sign)
    assert not output.exists()
    # And a signer that works puts its signature of exactly the manifest's bytes in the ZIP.
    seen: list[bytes] = []

    def record(document: bytes) -> bytes:
        seen.append(document)
        return b"signature"

    save_package(output, [("items/0001-form.gpg", item)], {"format": "t/1"}, record)
    with zipfile.ZipFile(output) as archive:
        assert archive.read("manifest.json") == seen[0]
        assert archive.read(MANIFEST_SIGNATURE) == b"signature"
