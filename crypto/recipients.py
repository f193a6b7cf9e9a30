"""Who a ciphertext is for, read from its packets without decrypting anything.

The investigators' workstation encrypts replies offline and the server stores them as they are.
Before it does, it checks that what it got is an OpenPGP message of the expected shape (one or
more public-key encrypted session keys, then one integrity-protected encrypted packet) and
reads the key ids it is encrypted to, so a reply the pelapor could not read, or that the
instansi's keys could not read back, is refused at upload rather than discovered later.
"""

from __future__ import annotations

import re
from pathlib import Path

from crypto.errors import CryptoError
from crypto.gpgrun import throwaway_home

# Packet tags (RFC 4880/9580): 1 public-key encrypted session key, 18 symmetrically encrypted
# integrity-protected data, 20 AEAD encrypted data (gpg's pre-standard OCB mode).
_PKESK, _SEIPD, _AEAD = 1, 18, 20
_TAG = re.compile(r"^# off=\d+ ctb=[0-9a-f]+ tag=(\d+) ")
_KEYID = re.compile(r"^:pubkey enc packet: version \d+, algo \d+, keyid ([0-9A-F]{16})$")
_NO_KEYID = "0" * 16


class NotAnEncryptedMessage(CryptoError):
    """The data is not an OpenPGP message encrypted to public keys."""


def ciphertext_key_ids(data: bytes | Path, gpg_binary: str = "gpg") -> frozenset[str]:
    """The 16-hex key ids an encrypted OpenPGP message names as its recipients.

    ``data`` is the message, or the path of a file holding it (gpg reads the file itself, so
    a large item never passes through Python). Raises :class:`NotAnEncryptedMessage` for
    anything else: plaintext, a signed-only or symmetrically encrypted message, hidden
    recipients (key id 0), packets in odd places.
    """
    # An empty throwaway home: gpg lists the packets and fails to decrypt, as it should.
    with throwaway_home(gpg_binary, prefix="pc-", agent=False) as home:
        if isinstance(data, Path):
            listed = home.run(["--no-autostart", "--list-packets", "--", str(data)])
        else:
            listed = home.run(["--no-autostart", "--list-packets"], data)
    tags: list[int] = []
    key_ids: list[str] = []
    for line in listed.stdout.decode("utf-8", "replace").splitlines():
        if tag := _TAG.match(line):
            tags.append(int(tag.group(1)))
        elif line.startswith(":pubkey enc packet:"):
            found = _KEYID.match(line.strip())
            if found is None:
                raise NotAnEncryptedMessage("unreadable recipient packet")
            key_ids.append(found.group(1))
    recipients = len(key_ids)
    if recipients == 0 or tags != [_PKESK] * recipients + tags[recipients:]:
        raise NotAnEncryptedMessage("not a message encrypted to public keys")
    if tags[recipients:] not in ([_SEIPD], [_AEAD]):
        raise NotAnEncryptedMessage("not one integrity-protected encrypted packet")
    if _NO_KEYID in key_ids:
        raise NotAnEncryptedMessage("hidden recipients (key id 0) cannot be checked")
    return frozenset(key_ids)


def key_id(fingerprint: str) -> str:
    """The key id of a v4 fingerprint: its last 16 hex digits."""
    return fingerprint.replace(" ", "").upper()[-16:]
