"""Real OpenPGP test keys, made once per session with the system gpg.

Each key lives in its own short-path GnuPG home, which also holds its (unprotected) secret half,
so tests can decrypt what the code under test encrypted with a keyring entirely separate from
the server's. Keys are cheap curves except where RSA is the point of the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# gpg's --faked-system-time takes this form; the trailing "!" freezes the clock.
_PAST = "20200101T000000!"


def _gpg(home: Path, *args: str, data: bytes = b"", faked_time: str | None = None) -> bytes:
    cmd = ["gpg", "--homedir", str(home), "--batch", "--no-tty"]
    if faked_time:
        cmd += ["--faked-system-time", faked_time]
    proc = subprocess.run([*cmd, *args], input=data, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"gpg {args!r} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


@dataclass(frozen=True)
class GpgKey:
    """A key made for tests: its public export, and a home that can decrypt with it."""

    name: str
    fingerprint: str
    public: str
    home: Path

    def decrypt(self, ciphertext: bytes) -> bytes:
        """Decrypt with this key's own home, the way a workstation would."""
        return _gpg(self.home, "--decrypt", data=ciphertext)

    def decrypt_status(self, ciphertext: bytes) -> tuple[int, bytes, str]:
        proc = subprocess.run(
            [
                "gpg",
                "--homedir",
                str(self.home),
                "--batch",
                "--no-tty",
                "--status-fd",
                "2",
                "--decrypt",
            ],
            input=ciphertext,
            capture_output=True,
            check=False,
        )
        return proc.returncode, proc.stdout, proc.stderr.decode(errors="replace")

    def secret_export(self, armor: bool = True, subkeys_only: bool = False) -> bytes:
        what = "--export-secret-subkeys" if subkeys_only else "--export-secret-keys"
        args = ["--pinentry-mode", "loopback", "--passphrase", ""]
        if armor:
            args.append("--armor")
        return _gpg(self.home, *args, what, self.fingerprint)

    def public_binary(self) -> bytes:
        return _gpg(self.home, "--export", self.fingerprint)


def list_packets(data: bytes, home: Path | None = None) -> str:
    """``gpg --list-packets`` of ``data``; with ``home`` it can also look inside ciphertext."""
    cleanup = home is None
    where = home or Path(tempfile.mkdtemp(prefix="lp-", dir="/tmp"))
    try:
        proc = subprocess.run(
            ["gpg", "--homedir", str(where), "--batch", "--no-tty", "--list-packets"],
            input=data,
            capture_output=True,
            check=False,
        )
        return proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    finally:
        if cleanup:
            subprocess.run(
                ["gpgconf", "--homedir", str(where), "--kill", "all"],
                check=False,
                capture_output=True,
            )
            shutil.rmtree(where, ignore_errors=True)


class KeyFactory:
    """Makes keys on first use and keeps them for the whole session."""

    def __init__(self) -> None:
        self._keys: dict[str, GpgKey] = {}
        self._homes: list[Path] = []

    def _home(self) -> Path:
        home = Path(tempfile.mkdtemp(prefix="tk-", dir="/tmp"))
        os.chmod(home, 0o700)
        self._homes.append(home)
        return home

    def _generate(self, name: str, params: str, faked_time: str | None = None) -> tuple[Path, str]:
        home = self._home()
        script = f"{params}Name-Real: Test {name}\nName-Email: {name}@example.test\n"
        script += "%no-protection\n%commit\n"
        _gpg(home, "--gen-key", data=script.encode(), faked_time=faked_time)
        listing = _gpg(home, "--with-colons", "--list-keys").decode()
        fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr"))
        return home, fpr

    def _finish(self, name: str, home: Path, fpr: str) -> GpgKey:
        public = _gpg(home, "--armor", "--export", fpr).decode()
        key = GpgKey(name=name, fingerprint=fpr, public=public, home=home)
        self._keys[name] = key
        return key

    def get(self, name: str) -> GpgKey:
        if name in self._keys:
            return self._keys[name]
        ed = "Key-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign\n"
        cv = "Subkey-Type: ecdh\nSubkey-Curve: cv25519\nSubkey-Usage: encrypt\n"
        if name in ("alice", "bob", "dave"):
            home, fpr = self._generate(name, ed + cv)
        elif name == "carol":  # RSA 3072, the smallest RSA the server accepts
            rsa = "Key-Type: rsa\nKey-Length: 3072\nKey-Usage: sign\n"
            home, fpr = self._generate(
                name, rsa + "Subkey-Type: rsa\nSubkey-Length: 3072\nSubkey-Usage: encrypt\n"
            )
        elif name == "rsa2048":
            rsa = "Key-Type: rsa\nKey-Length: 2048\nKey-Usage: sign\n"
            home, fpr = self._generate(
                name, rsa + "Subkey-Type: rsa\nSubkey-Length: 2048\nSubkey-Usage: encrypt\n"
            )
        elif name == "weak_subkey":  # strong primary, weak encryption subkey
            home, fpr = self._generate(
                name, ed + "Subkey-Type: rsa\nSubkey-Length: 2048\nSubkey-Usage: encrypt\n"
            )
        elif name == "expired":  # made in 2020, valid for one year
            home, fpr = self._generate(name, ed + cv + "Expire-Date: 1y\n", faked_time=_PAST)
        elif name == "expired_subkey":  # primary valid forever, its only encryption subkey not
            home, fpr = self._generate(name, ed, faked_time=_PAST)
            _gpg(
                home,
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
                "--quick-add-key",
                fpr,
                "cv25519",
                "encr",
                "1y",
                faked_time=_PAST,
            )
        elif name == "revoked":
            home, fpr = self._generate(name, ed + cv)
            rev = (home / "openpgp-revocs.d" / f"{fpr}.rev").read_text()
            # gpg stores the certificate with a ':' in front so it cannot be imported by mistake.
            _gpg(home, "--import", data=rev.replace(":-----BEGIN", "-----BEGIN").encode())
        elif name == "sign_only":
            home, fpr = self._generate(name, ed)
        else:
            raise KeyError(name)
        return self._finish(name, home, fpr)

    def revocation_certificate(self) -> bytes:
        key = self.get("revoked")
        rev = (key.home / "openpgp-revocs.d" / f"{key.fingerprint}.rev").read_text()
        return rev.replace(":-----BEGIN", "-----BEGIN").encode()

    def close(self) -> None:
        for home in self._homes:
            subprocess.run(
                ["gpgconf", "--homedir", str(home), "--kill", "all"],
                check=False,
                capture_output=True,
            )
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def keys() -> Iterator[KeyFactory]:
    factory = KeyFactory()
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def packets():  # type: ignore[no-untyped-def]
    """The list_packets helper, as a fixture (test modules cannot import conftest)."""
    return list_packets


# Debian's libfaketime, the variant for threaded programs (gpg-agent is one).
_FAKETIME_LIBS = "/usr/lib/*/faketime/libfaketimeMT.so.1"
# Forgetful: the agent drops a passphrase as soon as its clock has moved on by a second.
FORGETFUL_AGENT = "max-cache-ttl 0\n"


@pytest.fixture
def hurried_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every gpg (and gpg-agent) started in the test sees a clock that runs a thousand times
    too fast, with libfaketime. With :data:`FORGETFUL_AGENT`, the agent has lost a passphrase
    before gpg comes back for it within the same command: what the agent's clock does when the
    machine's clock jumps, and what one CI run met during a key generation."""
    found = sorted(Path("/").glob(_FAKETIME_LIBS.lstrip("/")))
    assert found, "libfaketime is missing: scripts/system-deps.sh installs it"
    monkeypatch.setenv("LD_PRELOAD", str(found[0]))
    monkeypatch.setenv("FAKETIME", "+0 x1000")


@pytest.fixture(scope="session")
def forgetful_agent() -> str:
    """:data:`FORGETFUL_AGENT`, as a fixture (test modules cannot import conftest)."""
    return FORGETFUL_AGENT
