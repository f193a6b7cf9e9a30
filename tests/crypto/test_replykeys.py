"""Per-source reply keys: locked, throwaway homes, readable by the source and by the tenant."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crypto import gpgrun, replykeys
from crypto.errors import CryptoError, DecryptionError, EncryptionError
from crypto.gpgrun import GpgHome, GpgResult
from crypto.keyring import Keyring
from crypto.padding import FRAMING_NONE, FRAMING_PADME, PaddingError, unframe
from crypto.replykeys import ReplyKey, decrypt_reply, encrypt_reply, generate_reply_key

PASSPHRASE = "9f" * 32  # the shape crypto.kdf produces: 64 hex digits
OTHER_PASSPHRASE = "a0" * 32


@pytest.fixture(scope="module")
def reply_key() -> ReplyKey:
    return generate_reply_key(PASSPHRASE)


@pytest.fixture
def keyring(gnupg_home: Path, keys: Any) -> Iterator[Keyring]:
    with Keyring(gnupg_home / "server") as ring:
        ring.import_public_key(keys.get("alice").public)
        ring.import_public_key(keys.get("carol").public)
        yield ring


def _record_homes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The throwaway homes this test's own calls make (not the parallel workers' in /tmp)."""
    made: list[str] = []
    real = tempfile.mkdtemp

    def spy(*args: Any, **kwargs: Any) -> str:
        path = real(*args, **kwargs)
        made.append(path)
        return path

    monkeypatch.setattr(gpgrun.tempfile, "mkdtemp", spy)
    return made


def test_generated_key_is_generic_ed25519_with_cv25519_subkey(
    reply_key: ReplyKey, gnupg_home: Path
) -> None:
    with Keyring(gnupg_home / "inspect") as ring:
        info = ring.inspect_public_key(reply_key.public_armored)
    assert info.fingerprint == reply_key.fingerprint
    assert info.algorithm == "ed25519"
    assert info.uids == ("Peluit source",)
    assert info.expires is None
    assert len(info.encryption_fingerprints) == 1
    # A fixed creation date: the key does not tell when the source first came.
    assert info.created.year == 2020
    assert "PRIVATE KEY BLOCK" in reply_key.secret_armored


def test_repr_does_not_dump_the_secret(reply_key: ReplyKey) -> None:
    text = repr(reply_key)
    assert reply_key.fingerprint in text
    assert "PGP" not in text
    assert reply_key.secret_armored.splitlines()[2] not in text


def test_secret_export_is_passphrase_protected(reply_key: ReplyKey, packets: Any) -> None:
    listing = packets(reply_key.secret_armored.encode())
    assert listing.count("[v4 protected]") == 2  # primary and subkey alike
    assert "gnu-dummy" not in listing

    # Independent of our code: plain gpg in a fresh home cannot use the key without the
    # passphrase, nor with a wrong one, but can with the right one.
    ciphertext = _encrypt_to_public(reply_key.public_armored, b"check")
    home = Path(tempfile.mkdtemp(prefix="rq-", dir="/tmp"))
    os.chmod(home, 0o700)
    try:
        subprocess.run(
            ["gpg", "--homedir", str(home), "--batch", "--import"],
            input=reply_key.secret_armored.encode(),
            check=True,
            capture_output=True,
        )
        for passphrase, works in (("", False), (OTHER_PASSPHRASE, False), (PASSPHRASE, True)):
            proc = subprocess.run(
                [
                    "gpg",
                    "--homedir",
                    str(home),
                    "--batch",
                    "--pinentry-mode",
                    "loopback",
                    "--passphrase",
                    passphrase,
                    "--decrypt",
                ],
                input=ciphertext,
                capture_output=True,
                check=False,
            )
            assert (proc.returncode == 0 and proc.stdout == b"check") is works, passphrase[:4]
    finally:
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "all"], check=False, capture_output=True
        )
        shutil.rmtree(home, ignore_errors=True)


def _encrypt_to_public(public: str, data: bytes) -> bytes:
    folder = Path(tempfile.mkdtemp(prefix="rq-", dir="/tmp"))
    try:
        (folder / "k.asc").write_text(public)
        return subprocess.run(
            [
                "gpg",
                "--homedir",
                str(folder),
                "--batch",
                "--trust-model",
                "always",
                "--recipient-file",
                str(folder / "k.asc"),
                "--encrypt",
            ],
            input=data,
            capture_output=True,
            check=True,
        ).stdout
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_reply_round_trip_and_tenant_can_read_it(
    reply_key: ReplyKey, keyring: Keyring, keys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, carol = keys.get("alice"), keys.get("carol")
    made = _record_homes(monkeypatch)
    message = b"Terima kasih, laporan Anda sedang kami verifikasi."
    ciphertext = encrypt_reply(
        keyring, [alice.fingerprint, carol.fingerprint], reply_key.public_armored, message
    )
    assert message not in ciphertext
    assert decrypt_reply(reply_key, PASSPHRASE, ciphertext) == message
    assert decrypt_reply(reply_key.secret_armored, PASSPHRASE, ciphertext) == message
    # The investigators read the same reply on their workstation, with their own keyring
    # (inside a padding frame, which the workstation strips: crypto.padding).
    assert unframe(alice.decrypt(ciphertext))[0] == message
    assert unframe(carol.decrypt(ciphertext))[0] == message
    # Every throwaway home is gone again (and with it the imported key).
    assert made, "no throwaway home was made"
    assert [path for path in made if os.path.exists(path)] == []


KEY_PARAMS = (
    b"Key-Type: eddsa\nKey-Curve: ed25519\nSubkey-Type: ecdh\nSubkey-Curve: cv25519\n"
    b"Name-Real: x\nPassphrase: abc\n%commit\n"
)


@pytest.mark.usefixtures("hurried_clock")
def test_an_agent_that_forgot_the_passphrase_asks_a_pinentry(forgetful_agent: str) -> None:
    # The control for the next test: in this setting, a key generation that leans on the
    # agent's cache fails as the CI run did, so the next test meets a real forgetful agent.
    with gpgrun.throwaway_home(agent_conf=forgetful_agent) as home:
        made = home.run(["--gen-key"], KEY_PARAMS)
    # It fails where the agent first comes back for the passphrase: a self-signature, or the
    # revocation certificate gpg makes after the key (by then KEY_CREATED may be out).
    assert made.returncode != 0
    assert "Inappropriate ioctl for device" in made.reason


def test_a_key_is_made_even_when_the_agent_forgot_the_passphrase(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, forgetful_agent: str,
    keyring: Keyring, keys: Any, packets: Any,
) -> None:
    monkeypatch.setattr(replykeys, "_AGENT_CONF", replykeys._AGENT_CONF + forgetful_agent)
    request.getfixturevalue("hurried_clock")  # for the generation only:
    key = generate_reply_key(PASSPHRASE)
    monkeypatch.delenv("LD_PRELOAD")
    # A whole key, locked with the passphrase, which opens it and nothing else does.
    assert packets(key.secret_armored.encode()).count("[v4 protected]") == 2
    ciphertext = encrypt_reply(keyring, [keys.get("alice").fingerprint], key.public_armored,
                               b"Laporan Anda kami terima.")
    assert decrypt_reply(key, PASSPHRASE, ciphertext) == b"Laporan Anda kami terima."
    with pytest.raises(DecryptionError, match="wrong passphrase"):
        decrypt_reply(key, OTHER_PASSPHRASE, ciphertext)


def test_wrong_passphrase_is_refused_clearly(
    reply_key: ReplyKey, keyring: Keyring, keys: Any
) -> None:
    ciphertext = encrypt_reply(
        keyring, [keys.get("alice").fingerprint], reply_key.public_armored, b"rahasia"
    )
    with pytest.raises(DecryptionError, match="wrong passphrase"):
        decrypt_reply(reply_key, OTHER_PASSPHRASE, ciphertext)
    with pytest.raises(DecryptionError, match="wrong passphrase"):
        decrypt_reply(reply_key, "", ciphertext)


def test_another_sources_key_cannot_read_the_reply(
    reply_key: ReplyKey, keyring: Keyring, keys: Any
) -> None:
    other = generate_reply_key(OTHER_PASSPHRASE)
    assert other.fingerprint != reply_key.fingerprint
    ciphertext = encrypt_reply(
        keyring,
        [keys.get("alice").fingerprint],
        reply_key.public_armored,
        b"only for the first source",
    )
    with pytest.raises(DecryptionError, match="not encrypted to this reply key"):
        decrypt_reply(other, OTHER_PASSPHRASE, ciphertext)


def test_tampered_reply_is_refused(reply_key: ReplyKey, keyring: Keyring, keys: Any) -> None:
    ciphertext = bytearray(
        encrypt_reply(
            keyring, [keys.get("alice").fingerprint], reply_key.public_armored, b"x" * 2000
        )
    )
    ciphertext[-100] ^= 0x01
    with pytest.raises(DecryptionError):
        decrypt_reply(reply_key, PASSPHRASE, bytes(ciphertext))


def test_reply_needs_tenant_keys_and_a_public_reply_key(
    reply_key: ReplyKey, keyring: Keyring, keys: Any
) -> None:
    alice = keys.get("alice")
    with pytest.raises(EncryptionError):
        encrypt_reply(keyring, [], reply_key.public_armored, b"x")
    with pytest.raises(EncryptionError):
        encrypt_reply(keyring, [alice.fingerprint], reply_key.secret_armored, b"x")
    with pytest.raises(EncryptionError):
        encrypt_reply(keyring, [alice.fingerprint], keys.get("sign_only").public, b"x")


def test_unusable_passphrases_are_refused_at_generation() -> None:
    for bad in ("", " padded ", "two\nlines"):
        with pytest.raises(ValueError):
            generate_reply_key(bad)


def test_replies_are_padded_and_old_unpadded_ones_still_read(
    reply_key: ReplyKey, keyring: Keyring, keys: Any
) -> None:
    alice = keys.get("alice")
    public = reply_key.public_armored
    short = encrypt_reply(keyring, [alice.fingerprint], public, b"Ya.")
    longer = encrypt_reply(keyring, [alice.fingerprint], public, b"Mohon kirim bukti. " * 150)
    # A one-word answer and a page look the same on disk.
    assert len(short) == len(longer)
    assert decrypt_reply(reply_key, PASSPHRASE, short, framing=FRAMING_PADME) == b"Ya."
    # A reply stored before padding existed is recorded as unpadded and comes back as it was.
    old = encrypt_reply(keyring, [alice.fingerprint], public, b"Ya.", framing=FRAMING_NONE)
    assert len(old) < len(short)
    assert decrypt_reply(reply_key, PASSPHRASE, old, framing=FRAMING_NONE) == b"Ya."
    # Read as padded, an unpadded reply has no frame: refused, never shown half-guessed.
    with pytest.raises(PaddingError):
        decrypt_reply(reply_key, PASSPHRASE, old, framing=FRAMING_PADME)
    with pytest.raises(DecryptionError, match="framing"):
        decrypt_reply(reply_key, PASSPHRASE, short, framing="padme/2")


# --- an export that fails in gpg itself -------------------------------------------------------


def _before_the_first_export(
    monkeypatch: pytest.MonkeyPatch, damage: Any
) -> list[GpgResult]:
    """Run ``damage(home, run, fingerprint)`` on the real throwaway home between key generation
    and the first secret-key export; return what every export then gave. gpg itself is not
    replaced: this is the real runner (``run``), with a hook before it."""
    exports: list[GpgResult] = []
    real_run = GpgHome.run

    def run(self: GpgHome, args: Any, data: bytes = b"", **kwargs: Any) -> GpgResult:
        exporting = "--export-secret-keys" in args
        if exporting and not exports:
            damage(self, real_run, args[-1])
        result = real_run(self, args, data, **kwargs)
        if exporting:
            exports.append(result)
        return result

    monkeypatch.setattr(GpgHome, "run", run)
    return exports


def _agent_refusing_loopback(home: GpgHome, real_run: Any, fingerprint: str) -> None:
    # A real gpg-agent that will not take a passphrase from gpg (as if started by someone else,
    # or left unfit): the export fails in gpg. Its configuration is put back once it runs, so
    # the next agent this home starts is a sound one.
    conf = home.home / "gpg-agent.conf"
    sound = conf.read_text()
    home.kill_agent(wait=True)
    conf.write_text(sound + "no-allow-loopback-pinentry\n")
    subprocess.run(
        ["gpgconf", "--homedir", str(home.home), "--launch", "gpg-agent"],
        check=True, capture_output=True,
    )
    conf.write_text(sound)


def _key_locked_with_another_passphrase(
    home: GpgHome, real_run: Any, fingerprint: str
) -> None:
    # A broken home, for good: the key there no longer opens with the source's passphrase.
    answers = f"{PASSPHRASE}\n{OTHER_PASSPHRASE}\n".encode()
    changed = real_run(
        home, ["--pinentry-mode", "loopback", "--command-fd", "0", "--passwd", fingerprint],
        answers,
    )
    assert changed.returncode == 0 and "SUCCESS" in changed.keywords, changed.reason


def test_an_export_the_agent_fails_is_done_again_with_a_new_agent(
    monkeypatch: pytest.MonkeyPatch, packets: Any
) -> None:
    made = _record_homes(monkeypatch)
    exports = _before_the_first_export(monkeypatch, _agent_refusing_loopback)
    key = generate_reply_key(PASSPHRASE)
    # The first export really failed, in gpg, for the agent's sake; the second did not.
    assert len(exports) == 2
    assert exports[0].returncode != 0
    assert "ERROR set_pinentry_mode" in exports[0].reason
    assert exports[1].returncode == 0
    # What came back is the whole key, locked, and the source's passphrase opens it.
    assert packets(key.secret_armored.encode()).count("[v4 protected]") == 2
    ciphertext = _encrypt_to_public(key.public_armored, b"check")
    assert decrypt_reply(key, PASSPHRASE, ciphertext, framing=FRAMING_NONE) == b"check"
    assert made and [path for path in made if os.path.exists(path)] == []


def test_an_export_that_fails_twice_says_why_and_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = _record_homes(monkeypatch)
    exports = _before_the_first_export(monkeypatch, _key_locked_with_another_passphrase)
    with pytest.raises(CryptoError, match="could not export the locked reply key") as caught:
        generate_reply_key(PASSPHRASE)
    message = str(caught.value)
    # Tried twice, not more; each failure's reason is in the message, as gpg's status gave it
    # (location and code do not depend on gpg's language).
    assert len(exports) == 2
    assert all(result.returncode != 0 for result in exports)
    first, then = message.split("; then: ")
    assert "ERROR export_keys.secret" in first and "ERROR export_keys.secret" in then
    # gpg named the keys in its prose; the message names none (it ends up in the server log).
    assert "<key>" in message
    assert re.search(r"[0-9A-Fa-f]{16}", message) is None
    # Nothing of the key is left: its home (with the agent's sockets) is gone.
    assert made and [path for path in made if os.path.exists(path)] == []


def test_key_ids_are_kept_out_of_the_reasons_in_every_spelling() -> None:
    from crypto.gpgrun import GpgResult
    from crypto.replykeys import _why

    tail = ("gpg: key 0x1A2B3C4D5E6F7A8B: secret key not available; "
            "grip 0123456789ABCDEF0123456789ABCDEF01234567")
    reason = _why(GpgResult(2, b"", (), stderr_tail=tail))
    assert "1A2B3C4D5E6F7A8B" not in reason and "0123456789ABCDEF" not in reason, reason
    assert reason.count("<key>") == 2, reason
