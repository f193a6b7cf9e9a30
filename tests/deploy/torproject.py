"""A stand-in for deb.torproject.org, for deploy/install.sh's ``--tor-from torproject`` (and
``auto`` when Debian offers no tor with proof-of-work defences).

The Tor Project's archive is out of the test machine's reach, and nobody but the Tor Project can
sign as it. So :class:`TorArchive` serves an archive laid out as theirs, over HTTPS on
127.0.0.1:443, under the name deb.torproject.org:

- ``torproject.org/<FPR>.asc``: the archive's signing key, armored, where install.sh fetches it;
- ``torproject.org/dists/bookworm/{InRelease,Release,Release.gpg}`` (Origin and Label
  ``TorProject``, as theirs) and ``main/binary-amd64/Packages``, made by apt-ftparchive and
  signed by the real gpg with a key made for the run;
- ``torproject.org/pool/``: Debian's newest tor for bookworm, fetched from the mirror and
  checked against its Packages index, rebuilt under a version numbered as the Tor Project
  numbers theirs (higher than Debian's, as theirs usually is), and a
  ``deb.torproject.org-keyring`` built here with dpkg-deb, holding the stand-in's key where the
  Tor Project's holds theirs.

:func:`TorArchive.stand_in` readies a root for it: ``/etc/hosts`` names 127.0.0.1
deb.torproject.org, the stand-in's CA is in the root's local trust store (which the installer's
ca-certificates takes in, as it takes in the egress proxy's CA), and in the root's copy of
install.sh the pinned fingerprint is the stand-in key's: the only line of the installer changed.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import http.server
import lzma
import re
import shutil
import ssl
import subprocess
import threading
import urllib.request
from pathlib import Path
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.deploy.debian import MIRROR
from tests.support import short_tempdir

HOST = "deb.torproject.org"
PIN = re.compile(r"^TOR_KEY_FPR=[0-9A-F]{40}$", re.M)
KEYRING = "/usr/share/keyrings/deb.torproject.org-keyring.gpg"


def _gpg(home: Path, *args: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["gpg", "--homedir", str(home), "--batch", "--no-tty", *args],
                          check=True, capture_output=True, **kwargs)  # type: ignore[call-overload]


def new_key(home: Path, uid: str) -> str:
    """A signing key in ``home``; its fingerprint."""
    _gpg(home, "--pinentry-mode", "loopback", "--passphrase", "",
         "--quick-gen-key", uid, "ed25519", "sign", "never")
    listing = _gpg(home, "--with-colons", "--list-keys", uid).stdout.decode()
    return re.findall(r"^fpr:+([0-9A-F]{40}):", listing, re.M)[0]


def _debian_tor(pool: Path) -> Path:
    """Debian's newest tor for bookworm (main or security, as the mirror lists them), its
    SHA256 checked against the index, rebuilt under a version the way the Tor Project numbers
    theirs (``UPSTREAM-1~d12.bookworm+1``), which is what apt prefers when both are listed."""
    found: list[dict[str, str]] = []
    for base, suite in ((MIRROR, "bookworm"), (f"{MIRROR}-security", "bookworm-security")):
        index = f"{base}/dists/{suite}/main/binary-amd64/Packages.xz"
        with urllib.request.urlopen(index, timeout=120) as response:  # noqa: S310 (the mirror)
            stanzas = lzma.decompress(response.read()).decode().split("\n\n")
        for stanza in stanzas:
            if stanza.startswith("Package: tor\n"):
                fields = dict(re.findall(r"^([A-Za-z0-9-]+): (.*)$", stanza, re.M))
                found.append({**fields, "base": base})
    newest = functools.reduce(lambda a, b: b if _newer(b["Version"], a["Version"]) else a,
                              found)
    deb = pool / Path(newest["Filename"]).name
    url = f"{newest['base']}/{newest['Filename']}"
    with urllib.request.urlopen(url, timeout=300) as response:  # noqa: S310 (the mirror)
        deb.write_bytes(response.read())
    assert hashlib.sha256(deb.read_bytes()).hexdigest() == newest["SHA256"], deb
    version = f"{newest['Version'].split('-')[0]}-1~d12.bookworm+1"
    assert _newer(version, newest["Version"]), (version, newest["Version"])
    ours = reversion(deb, version)
    deb.unlink()
    return ours


def _newer(a: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, "gt", b]).returncode == 0


def _keyring_deb(pool: Path, key: bytes, version: str) -> Path:
    """deb.torproject.org-keyring: the archive key in the file the Tor Project's package
    installs (the installer writes the same file first, and dpkg takes it over)."""
    tree = pool / "keyring-tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / KEYRING.lstrip("/")).parent.mkdir(parents=True)
    (tree / KEYRING.lstrip("/")).write_bytes(key)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: deb.torproject.org-keyring\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: Peluit tests <tests@peluit.invalid>\n"
        "Description: stand-in for the Tor Project's archive key (tests only)\n")
    target = pool / f"deb.torproject.org-keyring_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(target)],
                   check=True, capture_output=True)
    shutil.rmtree(tree)
    return target


def reversion(deb: Path, version: str, into: Path | None = None) -> Path:
    """The same package rebuilt under ``version``, in ``into`` (beside it by default: in the
    pool, published by the next :meth:`TorArchive.publish`)."""
    into = into or deb.parent
    tree = into / f"{deb.stem}-tree"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    control = tree / "DEBIAN" / "control"
    text = control.read_text()
    old = re.search(r"^Version: (\S+)$", text, re.M)
    assert old, text
    control.write_text(text.replace(old.group(0), f"Version: {version}"))
    target = into / deb.name.replace(f"_{old.group(1)}_", f"_{version}_")
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(target)],
                   check=True, capture_output=True)
    shutil.rmtree(tree)
    return target


def _tls(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for deb.torproject.org it signed: (ca.crt, server.crt, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Peluit test stand-in CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
              .issuer_name(ca_name).public_key(key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(days=1))
              .not_valid_after(now + datetime.timedelta(days=30))
              .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                             critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                  ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.crt", directory / "server.crt", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


class _Quiet(http.server.SimpleHTTPRequestHandler):
    """Records each request as "GET /path status" in its server's ``asked``; prints nothing."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.server.asked.append(f"{self.command} {unquote(self.path)} {int(code)}")  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: object) -> None:
        pass


class TorArchive:
    """The stand-in, serving while in its ``with`` block. ``asked`` lists every request
    ("GET /path status"), ``fingerprint`` is the key the archive is signed with."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.site = work / "site"
        self.archive = self.site / "torproject.org"
        self.pool = self.archive / "pool" / "main"
        self.pool.mkdir(parents=True)
        self.home = short_tempdir("tor-archive-")
        self.fingerprint = new_key(self.home, "Peluit test stand-in for the Tor Project archive")
        self.ca, cert, key = _tls(work)
        self.asked: list[str] = []
        self.serve_key(self.public_key())
        self.tor = _debian_tor(self.pool)
        _keyring_deb(self.pool, _gpg(self.home, "--export", self.fingerprint).stdout,
                     "2025.04.01")
        self.publish()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        handler = functools.partial(_Quiet, directory=str(self.site))
        try:
            self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 443), handler)
        except OSError as error:
            raise AssertionError(f"the stand-in for {HOST} needs 127.0.0.1:443: {error}") from error
        self._server.asked = self.asked  # type: ignore[attr-defined]
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> TorArchive:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", "all"], check=False)
        shutil.rmtree(self.home, ignore_errors=True)

    def primary_keys(self, keys: Path) -> list[str]:
        """The fingerprints of the primary keys, public or secret, in a key file."""
        listing = _gpg(self.home, "--with-colons", "--show-keys", str(keys)).stdout.decode()
        return re.findall(r"^(?:pub|sec):.*\n(?:.*\n)*?fpr:+([0-9A-F]{40}):", listing, re.M)

    def public_key(self) -> bytes:
        return _gpg(self.home, "--armor", "--export", self.fingerprint).stdout

    def serve_key(self, armored: bytes) -> None:
        """What install.sh fetches at https://deb.torproject.org/torproject.org/<FPR>.asc."""
        (self.archive / f"{self.fingerprint}.asc").write_bytes(armored)

    def publish(self) -> None:
        """The indexes of what is in the pool, signed: Packages, Release, InRelease."""
        dist = self.archive / "dists" / "bookworm"
        binary = dist / "main" / "binary-amd64"
        binary.mkdir(parents=True, exist_ok=True)
        (binary / "Packages").write_bytes(subprocess.run(
            ["apt-ftparchive", "packages", "pool"], cwd=self.archive, check=True,
            capture_output=True).stdout)
        fields = {"Origin": "TorProject", "Label": "TorProject", "Suite": "bookworm",
                  "Codename": "bookworm", "Architectures": "amd64", "Components": "main"}
        options = [f"-oAPT::FTPArchive::Release::{k}={v}" for k, v in fields.items()]
        release = subprocess.run(["apt-ftparchive", *options, "release", str(dist)],
                                 check=True, capture_output=True).stdout
        for name in ("Release", "InRelease", "Release.gpg"):
            (dist / name).unlink(missing_ok=True)
        (dist / "Release").write_bytes(release)
        _gpg(self.home, "--local-user", self.fingerprint, "--digest-algo", "SHA512",
             "--clearsign", "--output", str(dist / "InRelease"), str(dist / "Release"))
        _gpg(self.home, "--local-user", self.fingerprint, "--digest-algo", "SHA512",
             "--armor", "--detach-sign", "--output", str(dist / "Release.gpg"),
             str(dist / "Release"))

    def stand_in(self, root: Path) -> None:
        """``root`` reaches this archive as deb.torproject.org and its install.sh pins its key."""
        hosts = root / "etc" / "hosts"
        # A minbase root has no /etc/hosts; an installed server's names localhost in it.
        known = hosts.read_text() if hosts.exists() else "127.0.0.1\tlocalhost\n::1\tlocalhost\n"
        hosts.write_text(f"{known}127.0.0.1\t{HOST}\n")
        cas = root / "usr" / "local" / "share" / "ca-certificates"
        cas.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.ca, cas / "peluit-test-torproject.crt")
        installer = root / "root" / "peluit" / "deploy" / "install.sh"
        text = installer.read_text()
        assert len(PIN.findall(text)) == 1, "install.sh pins the Tor Project's key in one line"
        installer.write_text(PIN.sub(f"TOR_KEY_FPR={self.fingerprint}", text))
