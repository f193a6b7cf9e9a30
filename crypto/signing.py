"""The instance's OpenPGP signing key, and the verification of what it signed.

Export bundles are signed on the server and verified on the air-gapped workstation, so an
investigator can tell that a bundle is the one the server made: that nobody added, removed or
changed a report, a file or a status on the way (a USB stick, a shared folder).

The signing key is ed25519 with the sign (and certify) capability ONLY: it has no encryption
subkey, so nothing can ever be encrypted to it and it decrypts nothing. It lives in its own GnuPG
home (``<instance>/signing``), apart from the keyring of recipients' public keys, and holds no
passphrase, because the server signs unattended. The trade-off, on purpose: whoever takes the
server can forge bundles with this key, but cannot read a single report with it (those are
encrypted to keys whose secret halves never touch the server). A forged bundle still carries only
ciphertext its maker could produce, i.e. encrypted to the investigators' public keys; the pinned
fingerprint on the workstation and the revocation certificate gpg leaves in
``<instance>/signing/openpgp-revocs.d`` are how a stolen key is retired.

gpg 2.2 signs through gpg-agent, whose socket lives in the home (or under ``/run/user/<uid>``
when that exists). A Unix socket path must fit in 107 bytes, so a home with a long path cannot
start an agent at all; such a home is reached through a short symlink in a private temporary
folder instead (:meth:`Signer._gpg_home`).

Verification never trusts gpg's keyring or trust database: it runs in a throwaway home holding
only the signer's public key, and accepts exactly one good, valid, unexpired, unrevoked signature
whose PRIMARY key fingerprint is the expected one. :func:`verify_detached_by_any` does the same
for a signature that may come from any one of several public keys (a forwarding package, signed
by one of the sending institution's current recipient keys): the throwaway home holds exactly
those keys, and the signer it names is one of them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from crypto.errors import CryptoError
from crypto.gpgrun import GpgHome, throwaway_home
from crypto.keyring import normalize_fingerprint

# The user id of every instance signing key. It names no host or institution: the fingerprint
# is what identifies the key, and the bundle is carried by people who know where it came from.
SIGNING_KEY_UID = "Peluit export signing key"

# sockaddr_un.sun_path holds 108 bytes with the terminating NUL; gpg-agent's longest socket
# name is "S.gpg-agent.browser" (19 bytes) plus the separating slash.
_MAX_SOCKET_PATH = 107
_LONGEST_SOCKET_NAME = len("/S.gpg-agent.browser")
_LOCK_FILE = "peluit-signing.lock"
# A signing key is small; a detached signature smaller still. Anything bigger is not ours and is
# refused before gpg parses it.
MAX_PUBLIC_KEY_BYTES = 256 * 1024
MAX_SIGNATURE_BYTES = 64 * 1024
_PUBLIC_BLOCK = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
_PRIVATE_ARMOR = re.compile(rb"-----BEGIN PGP (PRIVATE|SECRET) KEY BLOCK-----")
# OpenPGP hash algorithm ids gpg reports in VALIDSIG: SHA-256, SHA-384, SHA-512, SHA-224.
# MD5, SHA-1 and RIPEMD-160 signatures can be forged or are on their way there: refused.
_ACCEPTED_HASHES = frozenset({"8", "9", "10", "11"})
# Any of these on the status channel means the signature must not be trusted, whatever else
# gpg said. PLAINTEXT means the "signature" carried its own data: not a detached signature,
# so the data we were asked about was never what was verified.
_REFUSED_STATUS = frozenset(
    {
        "BADSIG",
        "ERRSIG",
        "EXPSIG",
        "EXPKEYSIG",
        "REVKEYSIG",
        "KEYREVOKED",
        "KEYEXPIRED",
        "NO_PUBKEY",
        "PLAINTEXT",
        "PLAINTEXT_LENGTH",
        "FAILURE",
    }
)
# Binary-document signature class: what sign_detached makes and all verify_detached accepts
# (a text-mode signature would verify line-ending-altered data as well).
_SIG_CLASS_BINARY = "00"


class SigningError(CryptoError):
    """The instance could not make, find or use its signing key."""


class SignatureError(CryptoError):
    """A signature is bad, from another key than the expected one, or cannot be checked."""


# Unattended: any question for a passphrase is an error, never a hang.
_NO_PINENTRY = ["--pinentry-mode", "error"]


@dataclass(frozen=True)
class _ListedKey:
    fingerprint: str
    capabilities: str  # gpg's field 12 of the primary key, e.g. "scSC"
    subkeys: int


def _listed(keys: Sequence[dict[str, Any]]) -> list[_ListedKey]:
    """python-gnupg's key listing, reduced to what the checks below look at."""
    return [
        _ListedKey(str(key["fingerprint"]).upper(), str(key.get("cap", "")),
                   len(key.get("subkeys", [])))
        for key in keys
        if key.get("fingerprint")
    ]


class Signer:
    """The instance's signing key in its own GnuPG home. Use as a context manager or close()."""

    def __init__(self, home: Path, gpg_binary: str = "gpg") -> None:
        # Nothing touches the disk here: an instance opened before it had a signing key still
        # opens, and says what to do only when something needs to be signed.
        self.home = Path(home).absolute()
        self.gpg_binary = gpg_binary
        self._fingerprint: str | None = None
        self._link_dir: Path | None = None
        self._gpg: GpgHome | None = None
        # Whether this Signer ran gpg, which may have started the home's agent.
        self._used = False

    # -- the home and its agent ---------------------------------------------------------------

    def _gpg_path(self) -> Path:
        """The path to give gpg: the home itself, or a short symlink to it if that is too long."""
        if len(os.fsencode(self.home)) + _LONGEST_SOCKET_NAME <= _MAX_SOCKET_PATH:
            return self.home
        if self._link_dir is None or not (self._link_dir / "h").is_symlink():
            # mkdtemp makes a fresh folder only we can enter, so nobody can swap the link.
            self._link_dir = Path(tempfile.mkdtemp(prefix="psg-", dir="/tmp"))
            (self._link_dir / "h").symlink_to(self.home, target_is_directory=True)
        return self._link_dir / "h"

    def _gpg_home(self) -> GpgHome:
        path = self._gpg_path()
        # Kept while the path holds: python-gnupg runs gpg once whenever it is set up.
        if self._gpg is None or self._gpg.home != path:
            self._gpg = GpgHome(path, self.gpg_binary)
        return self._gpg

    @contextlib.contextmanager
    def _locked(self) -> Iterator[GpgHome]:
        """Hold the home's lock: one gpg operation at a time across worker processes.

        Workers share the home's gpg-agent; without the lock one worker's close() could stop the
        agent while another is signing, and two first-time ensure_key() calls could both
        generate a key.
        """
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.home, 0o700)
        fd = os.open(self.home / _LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._used = True
            yield self._gpg_home()
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def locked_home(self) -> Iterator[GpgHome]:
        """The signing home, with its lock held, for a caller that streams through gpg itself
        (crypto.backup signs a whole archive while it is written). The key is checked first."""
        self.fingerprint  # noqa: B018 - raises SigningError when there is no usable key
        with self._locked() as home:
            yield home

    def close(self) -> None:
        """Stop this home's gpg-agent and remove the short symlink, if any."""
        if self._used and self.home.is_dir():
            with self._locked() as home:
                # Waited for, under the lock: the next worker to take it starts a new agent
                # instead of reaching this one while it stops.
                home.kill_agent(wait=True)
            self._used = False
        if self._link_dir is not None:
            shutil.rmtree(self._link_dir, ignore_errors=True)
            self._link_dir = None
        self._gpg = None

    def __enter__(self) -> Signer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the key -------------------------------------------------------------------------------

    @staticmethod
    def _secret_keys(home: GpgHome) -> list[_ListedKey]:
        # A fresh home with no keyring yet lists nothing; that simply means no key.
        return _listed(home.library().list_keys(secret=True))

    @staticmethod
    def _check(keys: list[_ListedKey]) -> str:
        if len(keys) != 1:
            raise SigningError(f"the signing home must hold exactly one key, it holds {len(keys)}")
        key = keys[0]
        # Lower-case letters are the primary key's own capabilities, upper-case ones the whole
        # key's. An "e" anywhere would mean something on the server could decrypt.
        if "s" not in key.capabilities or "e" in key.capabilities.lower() or key.subkeys:
            raise SigningError(
                f"the signing key {key.fingerprint} is not a sign-only key "
                f"(capabilities {key.capabilities!r}, {key.subkeys} subkeys)"
            )
        return normalize_fingerprint(key.fingerprint)

    def ensure_key(self, uid: str = SIGNING_KEY_UID) -> str:
        """Make the signing key unless the home has it already; return its fingerprint."""
        if not uid or any(ord(ch) < 0x20 for ch in uid):
            raise ValueError("unusable user id for the signing key")
        with self._locked() as home:
            keys = self._secret_keys(home)
            if not keys:
                params = (
                    # No passphrase: the server signs unattended (see the module docstring).
                    "%no-protection\n"
                    "Key-Type: eddsa\n"
                    "Key-Curve: ed25519\n"
                    "Key-Usage: sign\n"
                    # No Subkey-* lines: no encryption subkey, ever.
                    f"Name-Real: {uid}\n"
                    "Expire-Date: 0\n"
                    "%commit\n"
                ).encode()
                made = home.library().gen_key(params)
                if made.returncode != 0 or not made.fingerprint:
                    raise SigningError("gpg could not generate the signing key")
                keys = self._secret_keys(home)
            self._fingerprint = self._check(keys)
        return self._fingerprint

    @property
    def fingerprint(self) -> str:
        """The signing key's fingerprint; SigningError if the home has no (usable) key."""
        if self._fingerprint is None:
            if not self.home.is_dir():
                raise SigningError(
                    f"no signing key in {self.home}: run 'peluit init' to create one"
                )
            with self._locked() as home:
                keys = self._secret_keys(home)
            if not keys:
                raise SigningError(
                    f"no signing key in {self.home}: run 'peluit init' to create one"
                )
            self._fingerprint = self._check(keys)
        return self._fingerprint

    def public_key(self) -> str:
        """The armored public signing key, as the workstation should pin it."""
        fpr = self.fingerprint
        with self._locked() as home:
            exported = home.library().export_keys(fpr, armor=True, minimal=True)
        if not isinstance(exported, str) or _PUBLIC_BLOCK not in exported:
            raise SigningError("gpg could not export the public signing key")
        return exported

    def sign_detached(self, data: bytes) -> bytes:
        """An armored detached signature of ``data`` (binary mode, SHA-512)."""
        fpr = self.fingerprint
        with self._locked() as home:
            # Not python-gnupg: the signature is accepted on SIG_CREATED's fields below.
            signed = home.run(
                [
                    *_NO_PINENTRY,
                    # "!" pins this exact key: gpg may not pick a subkey or another key.
                    "--local-user", f"{fpr}!",
                    "--digest-algo", "SHA512",
                    "--armor", "--detach-sign",
                ],
                data,
            )
        created = signed.fields("SIG_CREATED")
        # SIG_CREATED <type> <pk_algo> <hash_algo> <class> <timestamp> <fingerprint>
        if (
            signed.returncode != 0
            or len(created) != 1
            or len(created[0]) < 6
            or created[0][0] != "D"
            or created[0][3] != _SIG_CLASS_BINARY
            or created[0][5].upper() != fpr
            or b"-----BEGIN PGP SIGNATURE-----" not in signed.stdout
        ):
            raise SigningError("gpg could not make the detached signature")
        return signed.stdout


# -- verification (the workstation side) -------------------------------------------------------


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _import_signers(home: GpgHome, signer_public_keys: Sequence[str | bytes]) -> set[str]:
    """Import the public keys, one by one; return their primary fingerprints."""
    if not signer_public_keys:
        raise SignatureError("no signer key to check the signature against")
    library = home.library()
    for signer_public_key in signer_public_keys:
        key = _as_bytes(signer_public_key)
        if len(key) > MAX_PUBLIC_KEY_BYTES:
            raise SignatureError("the signer's key is too large to be a signing key")
        if _PRIVATE_ARMOR.search(key):
            raise SignatureError(
                "the signer's key is a PRIVATE key; only a public key is accepted"
            )
        loaded = library.import_keys(
            key, extra_args=["--no-autostart", "--import-options", "import-minimal"]
        )
        # IMPORT_OK's first field is a bit set; 16 means "contains a secret key".
        imported = [str(entry["ok"]) for entry in loaded.results if "ok" in entry]
        if loaded.returncode != 0 or not imported or any(
            # isascii: isdigit() alone admits "²", which int() refuses.
            not (flags.isascii() and flags.isdigit()) or int(flags) & 16 for flags in imported
        ):
            raise SignatureError("the signer's public key could not be loaded")
    keys = _listed(library.list_keys())
    # Each armored block must be exactly one key, none of them twice.
    if len(keys) != len(signer_public_keys):
        raise SignatureError(
            f"expected exactly {len(signer_public_keys)} signer key(s), found {len(keys)}"
        )
    return {key.fingerprint for key in keys}


def verify_detached(
    data: bytes,
    signature: bytes,
    signer_public_key: str | bytes,
    expected_fingerprint: str | None,
    gpg_binary: str = "gpg",
) -> str:
    """Check a detached signature over ``data``; return the signing key's primary fingerprint.

    The signature must be exactly one good binary-mode signature, made with SHA-2, by the given
    public key, which must be neither expired nor revoked; and, when ``expected_fingerprint`` is
    given, that key must be the expected one (pinned on the workstation). Raises SignatureError
    otherwise; there is no partial answer.
    """
    expected = normalize_fingerprint(expected_fingerprint) if expected_fingerprint else None
    return _verify(data, signature, [signer_public_key], expected, gpg_binary)


def verify_detached_by_any(
    data: bytes,
    signature: bytes,
    signer_public_keys: Sequence[str | bytes],
    gpg_binary: str = "gpg",
) -> str:
    """Check a detached signature over ``data`` made by ANY ONE of ``signer_public_keys`` (a
    tenant's current recipient keys, for a forwarding package); return that key's primary
    fingerprint. The same rules as :func:`verify_detached`, in a throwaway home holding only
    these public keys: a signature by any other key finds no key there and is refused."""
    return _verify(data, signature, signer_public_keys, None, gpg_binary)


def _verify(
    data: bytes,
    signature: bytes,
    signer_public_keys: Sequence[str | bytes],
    expected: str | None,
    gpg_binary: str,
) -> str:
    if len(signature) > MAX_SIGNATURE_BYTES:
        raise SignatureError("the signature is too large to be a detached signature")
    with throwaway_home(gpg_binary, prefix="pv-") as home:
        signers = _import_signers(home, signer_public_keys)
        if expected is not None and signers != {expected}:
            raise SignatureError(
                f"signed by key {', '.join(sorted(signers))}, but the trusted signing key is "
                f"{expected}"
            )
        sig_file = home.home / "detached.sig"
        sig_file.write_bytes(signature)
        # Not python-gnupg's verify: the verdict rests on VALIDSIG's fields and on counting
        # NEWSIG and GOODSIG lines, which its Verify result folds away.
        checked = home.run(
            # "-": the signed data comes on stdin, never from a file name gpg might guess.
            [*_NO_PINENTRY, "--no-autostart", "--trust-model", "always",
             "--verify", str(sig_file), "-"],
            data,
        )
    keywords = checked.keywords
    refused = sorted(set(keywords) & _REFUSED_STATUS)
    if refused:
        raise SignatureError(f"the signature is not valid ({', '.join(refused)})")
    valid = checked.fields("VALIDSIG")
    # GOODSIG alone only says the maths worked out; VALIDSIG carries the primary key's
    # fingerprint and the signature's class and hash, which is what is checked below.
    if (
        checked.returncode != 0
        or keywords.count("NEWSIG") != 1
        or keywords.count("GOODSIG") != 1
        or len(valid) != 1
        or len(valid[0]) < 10
    ):
        raise SignatureError("the data does not carry exactly one good signature")
    fields = valid[0]
    primary, hash_algo, sig_class = fields[9].upper(), fields[7], fields[8]
    if sig_class != _SIG_CLASS_BINARY:
        raise SignatureError(f"not a binary detached signature (class {sig_class})")
    if hash_algo not in _ACCEPTED_HASHES:
        raise SignatureError(f"the signature uses a weak hash (OpenPGP algorithm {hash_algo})")
    if primary not in signers:
        raise SignatureError(
            f"signed by key {primary}, not by the given key {', '.join(sorted(signers))}"
        )
    return primary
