"""Padding inside the encryption, so that a stored ciphertext's size says little of its content.

gpg runs without compression (see :mod:`crypto.encrypt`), so a ciphertext is its plaintext's
size plus a fixed overhead for the recipients: a seized server would know every document's
exact size, and a known document (a leaked contract, a photo that circulated) is recognisable
by it. So the plaintext is framed before it is encrypted, and the framed length is a PADMÉ
bucket (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and Communication with
PURBs", PETS 2019): at most ~12 % bigger (about 3 % for files over a megabyte), and a size then
leaks O(log log n) bits instead of O(log n).

The frame (``padme/1``)::

    data (n bytes) | zero bytes | trailer (TRAILER_SIZE bytes)

    trailer = name length (2 bytes, big-endian) | name (255 bytes, UTF-8, zero-filled)
              | n (8 bytes, big-endian) | MAGIC (16 bytes)

The trailer comes last because an upload is streamed: its length is only known when it ends.
The original file name travels in the trailer, not in OpenPGP's literal packet (which is left
without a name): a name of 1 to 255 bytes in the packet would change the ciphertext's size by
as much. The frame is never guessed from the data: every stored item records its framing
(``none`` for items stored before padding existed), and the reader checks every byte of the
frame before it believes it.

Everything here is pure except :func:`unframe_file`, the workstation's in-place strip.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from crypto.errors import DecryptionError

FRAMING_NONE = "none"
FRAMING_PADME = "padme/1"
FRAMINGS = frozenset({FRAMING_NONE, FRAMING_PADME})

MAGIC = b"peluit-padme/1\n\x00"
NAME_BYTES = 255  # as OpenPGP's literal packet, whose one-octet length it replaces
_TRAILER = struct.Struct(f">H{NAME_BYTES}sQ{len(MAGIC)}s")
TRAILER_SIZE = _TRAILER.size
# Below this every item looks the same: form answers, short messages and replies all become
# one 4 KiB bucket instead of sizes that tell a one-line answer from a page.
MIN_FRAMED_BYTES = 4096
# Zero padding is written in pieces of this size: memory stays flat whatever the bucket.
_ZERO_CHUNK = bytes(256 * 1024)


class PaddingError(DecryptionError):
    """A decrypted item's padding frame is malformed: the item is refused, not guessed at."""


def padme(length: int) -> int:
    """The PADMÉ bucket of ``length``: the smallest allowed size >= ``length``.

    A length whose highest set bit is 2**E keeps its top ⌊log2 E⌋ + 1 bits and rounds the
    rest up: the leak is the exponent's exponent, and the overhead at most about 2**-(⌊log2 E⌋+1).
    """
    if length < 0:
        raise ValueError("a length is not negative")
    if length < 2:
        return length
    exponent = length.bit_length() - 1  # ⌊log2 L⌋
    kept = exponent.bit_length()  # ⌊log2 E⌋ + 1
    mask = (1 << (exponent - kept)) - 1
    return (length + mask) & ~mask


def framed_size(length: int) -> int:
    """How many bytes the frame of ``length`` bytes of data takes: what gpg encrypts."""
    return padme(max(length + TRAILER_SIZE, MIN_FRAMED_BYTES))


def padding_size(length: int) -> int:
    """The zero bytes between the data and the trailer."""
    return framed_size(length) - length - TRAILER_SIZE


def _name_bytes(name: str | None) -> bytes:
    raw = b"" if name is None else name.encode("utf-8")
    if len(raw) > NAME_BYTES:
        raise ValueError(f"a framed name has at most {NAME_BYTES} bytes")
    return raw


def trailer(length: int, name: str | None = None) -> bytes:
    """The trailer that ends the frame of ``length`` bytes of data named ``name``."""
    if length < 0:
        raise ValueError("a length is not negative")
    raw = _name_bytes(name)
    return _TRAILER.pack(len(raw), raw, length, MAGIC)


def frame_tail(length: int, name: str | None = None) -> Iterator[bytes | memoryview]:
    """What follows ``length`` bytes of data in its frame: the zeros, then the trailer.

    Pieces of at most 256 KiB, so a streaming writer can feed them to gpg as it goes.
    """
    end = trailer(length, name)  # checks the name before anything is yielded
    remaining = padding_size(length)
    zeros = memoryview(_ZERO_CHUNK)
    while remaining > 0:
        piece = min(remaining, len(zeros))
        yield zeros[:piece]
        remaining -= piece
    yield end


def frame(data: bytes, name: str | None = None) -> bytes:
    """The whole frame of a small document (a form, a message, a reply)."""
    return b"".join([data, *frame_tail(len(data), name)])


@dataclass(frozen=True)
class Trailer:
    length: int  # the data's true length
    name: str | None  # the original file name, None when it had none


def read_trailer(end: bytes, total: int) -> Trailer:
    """Check the last TRAILER_SIZE bytes ``end`` of a frame of ``total`` bytes.

    Everything but the zero padding is checked here: the magic, the name and its filler, and
    that ``total`` is exactly the bucket the true length gives (so nothing was cut off or
    added). Raises PaddingError.
    """
    if total < TRAILER_SIZE or len(end) != TRAILER_SIZE:
        raise PaddingError("the padded item is too short to hold its trailer")
    name_len, name_field, length, magic = _TRAILER.unpack(end)
    if magic != MAGIC:
        raise PaddingError("the padded item does not end with a padding trailer")
    if name_len > NAME_BYTES or any(name_field[name_len:]):
        raise PaddingError("the padding trailer's name field is malformed")
    if length > total - TRAILER_SIZE or framed_size(length) != total:
        raise PaddingError(
            f"the padding trailer gives a length of {length} bytes, which does not fit the "
            f"{total} bytes decrypted (truncated or altered)"
        )
    try:
        name = name_field[:name_len].decode("utf-8") if name_len else None
    except UnicodeDecodeError as exc:
        raise PaddingError("the padding trailer's name is not UTF-8") from exc
    return Trailer(length, name)


def unframe(framed: bytes) -> tuple[bytes, Trailer]:
    """The data and the trailer of a whole frame held in memory; raises PaddingError."""
    total = len(framed)
    found = read_trailer(framed[total - TRAILER_SIZE :] if total >= TRAILER_SIZE else b"", total)
    padding = total - TRAILER_SIZE - found.length
    if framed.count(0, found.length, total - TRAILER_SIZE) != padding:
        raise PaddingError("the padding of the item is not all zero bytes")
    return framed[: found.length], found


def unframe_file(path: Path) -> Trailer:
    """Check the frame of a decrypted file and cut it down to its data, in place.

    Reads the trailer and the padding (never the data) in bounded pieces, and truncates the
    file only when every check has passed: a refused file is left as it was, for the caller
    to remove. Raises PaddingError.
    """
    with Path(path).open("r+b") as handle:
        total = os.fstat(handle.fileno()).st_size
        end = b""
        if total >= TRAILER_SIZE:
            handle.seek(total - TRAILER_SIZE)
            end = handle.read(TRAILER_SIZE)
        found = read_trailer(end, total)
        handle.seek(found.length)
        remaining = total - TRAILER_SIZE - found.length
        while remaining > 0:
            piece = handle.read(min(remaining, len(_ZERO_CHUNK)))
            if not piece:
                raise PaddingError("the padded item ended early")
            if piece.count(0) != len(piece):
                raise PaddingError("the padding of the item is not all zero bytes")
            remaining -= len(piece)
        handle.truncate(found.length)
    return found
