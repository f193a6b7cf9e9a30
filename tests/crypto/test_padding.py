"""The padding inside the encryption: the bucket function and the frame, without gpg.

Hypothesis is not a dependency of this project (yet), so the properties are checked
exhaustively over small lengths and on seeded random lengths up to 2**40.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from crypto.padding import (
    MAGIC,
    MIN_FRAMED_BYTES,
    NAME_BYTES,
    TRAILER_SIZE,
    PaddingError,
    frame,
    frame_tail,
    framed_size,
    padme,
    read_trailer,
    trailer,
    unframe,
    unframe_file,
)

RNG_SEED = 20261202
SMALL = range(0, 70_000)


def _random_lengths(count: int, top_bits: int = 40) -> list[int]:
    rng = random.Random(RNG_SEED)
    return [rng.randrange(1, 1 << rng.randrange(2, top_bits)) for _ in range(count)]


# --- the bucket function --------------------------------------------------------------------


def test_padme_matches_the_papers_examples() -> None:
    # E = floor(log2 L), S = floor(log2 E) + 1, the low E - S bits rounded up.
    assert [padme(n) for n in (0, 1, 2, 3, 7, 8, 9, 10)] == [0, 1, 2, 3, 7, 8, 10, 10]
    assert padme(129) == 144  # E=7, S=3: multiples of 16
    assert padme(1_000_000) == 1_015_808  # E=19, S=5: multiples of 16384
    assert padme(20_971_520 + TRAILER_SIZE) == 21_495_808  # a 20 MiB file: +2.5 %


def test_padme_is_monotonic_at_least_n_and_idempotent() -> None:
    previous = 0
    for n in SMALL:
        bucket = padme(n)
        assert bucket >= n and bucket >= previous
        assert padme(bucket) == bucket
        previous = bucket
    for n in _random_lengths(5_000):
        bucket = padme(n)
        assert n <= bucket == padme(bucket) <= padme(n + 1)


def test_padme_overhead_is_at_most_twelve_percent() -> None:
    worst = max((padme(n) - n) / n for n in range(1, 1 << 17))
    assert 0.11 < worst <= 0.12  # 129 -> 144 is the worst case: 11.6 %
    for n in _random_lengths(5_000):
        assert padme(n) - n <= 0.12 * n


def test_few_distinct_buckets() -> None:
    # Between 1 MiB and 1 GiB, 10,000 different sizes fall into a few hundred buckets;
    # exact sizes would give 10,000 values.
    rng = random.Random(RNG_SEED)
    sizes = [rng.randrange(1 << 20, 1 << 30) for _ in range(10_000)]
    assert len({padme(n) for n in sizes}) < 400
    # One octave (from 2**24 to 2**25) holds 2**S = 32 buckets, and its top rounds to 2**25.
    assert len({padme(n) for n in range(1 << 24, 1 << 25, 997)}) <= 33


def test_padme_refuses_a_negative_length() -> None:
    with pytest.raises(ValueError, match="negative"):
        padme(-1)


def test_framed_size_is_a_bucket_with_a_floor_and_bounded_overhead() -> None:
    for n in list(SMALL) + _random_lengths(5_000):
        size = framed_size(n)
        assert size >= max(n + TRAILER_SIZE, MIN_FRAMED_BYTES)
        assert padme(size) == size
        if n >= 8192:
            # Trailer and bucket together; the small-document floor aside.
            assert size - n <= 0.12 * n
    # Every short document (a form, a message, a reply) takes the same 4 KiB.
    assert {framed_size(n) for n in range(0, MIN_FRAMED_BYTES - TRAILER_SIZE + 1)} == {4096}


# --- the frame ------------------------------------------------------------------------------


def _lengths_to_frame() -> list[int]:
    edges = {0, 1, MIN_FRAMED_BYTES - TRAILER_SIZE, MIN_FRAMED_BYTES - TRAILER_SIZE + 1}
    # Around every bucket boundary below 300 KiB, where one byte moves to the next bucket.
    for n in range(0, 300_000, 997):
        bucket = framed_size(n)
        edges |= {bucket - TRAILER_SIZE, bucket - TRAILER_SIZE + 1}
    return sorted(edges | set(_random_lengths(300, top_bits=21)))


@pytest.mark.parametrize("name", [None, "laporan.pdf", "ä" * 127, "x" * NAME_BYTES])
def test_frame_round_trip(name: str | None) -> None:
    rng = random.Random(RNG_SEED)
    for n in _lengths_to_frame():
        data = rng.randbytes(n)
        framed = frame(data, name)
        assert len(framed) == framed_size(n)
        assert framed.endswith(MAGIC)
        out, found = unframe(framed)
        assert out == data and found.length == n and found.name == name


def test_frame_tail_streams_in_bounded_pieces() -> None:
    n = 10 * 1024 * 1024 + 3
    pieces = list(frame_tail(n, "bukti.mp4"))
    assert max(len(piece) for piece in pieces) <= 256 * 1024
    assert sum(len(piece) for piece in pieces) == framed_size(n) - n
    assert bytes(pieces[-1]) == trailer(n, "bukti.mp4")


def test_data_that_looks_like_a_trailer_is_still_data() -> None:
    # The frame is read from its end, by a reader told that the item is framed: a document
    # holding a trailer of its own (here, a whole frame) comes back unchanged.
    inner = frame(b"isi", "a.txt")
    out, found = unframe(frame(inner, "b.txt"))
    assert out == inner and found.name == "b.txt"


def test_a_name_over_255_bytes_is_refused_when_framing() -> None:
    with pytest.raises(ValueError, match="255"):
        frame(b"x", "é" * 128)


def _corruptions(framed: bytes) -> dict[str, bytes]:
    total = len(framed)
    end = total - TRAILER_SIZE
    name_len = int.from_bytes(framed[end : end + 2], "big")
    length_at = end + 2 + NAME_BYTES

    def at(offset: int, value: bytes) -> bytes:
        return framed[:offset] + value + framed[offset + len(value) :]

    def length(value: int) -> bytes:
        return at(length_at, value.to_bytes(8, "big"))

    true_length = int.from_bytes(framed[length_at : length_at + 8], "big")
    return {
        "truncated by one byte": framed[:-1],
        "truncated to the data": framed[:true_length],
        "cut inside the trailer": framed[: end + 10],
        "one byte added": framed + b"\x00",
        "magic altered": at(total - 1, b"\x01"),
        "no frame at all": b"plain old unpadded reply",
        "empty": b"",
        "nonzero padding": at(true_length + 5, b"\x01"),
        "last padding byte nonzero": at(end - 1, b"\x80"),
        "length beyond the data": length(total),
        "length of another bucket": length(true_length + 10_000),
        # (One more would take a zero byte of padding for data: OpenPGP's integrity check,
        # not the frame, is what keeps the length from being altered.)
        "length one less, a data byte taken for padding": length(true_length - 1),
        "name length over 255": at(end, (NAME_BYTES + 1).to_bytes(2, "big")),
        "name filler nonzero": at(end + 2 + name_len + 3, b"z"),
        "name not utf-8": at(end + 2, b"\xff"),
    }


@pytest.mark.parametrize(
    "what", list(_corruptions(frame(b"data" * 3000, "nama.txt")))
)
def test_a_malformed_frame_is_refused(what: str, tmp_path: Path) -> None:
    framed = frame(b"data" * 3000, "nama.txt")
    bad = _corruptions(framed)[what]
    with pytest.raises(PaddingError):
        unframe(bad)
    path = tmp_path / "item"
    path.write_bytes(bad)
    with pytest.raises(PaddingError):
        unframe_file(path)
    # Refused files are left as they were, for the caller to remove.
    assert path.read_bytes() == bad


def test_read_trailer_needs_the_whole_trailer() -> None:
    with pytest.raises(PaddingError, match="too short"):
        read_trailer(b"\x00" * (TRAILER_SIZE - 1), 4096)


@pytest.mark.parametrize("n", [0, 1, 3815, 3816, 70_001, 1_300_000])
def test_unframe_file_cuts_the_file_to_its_data_in_place(n: int, tmp_path: Path) -> None:
    data = random.Random(n).randbytes(n)
    path = tmp_path / "decrypted"
    path.write_bytes(frame(data, "bukti.bin"))
    found = unframe_file(path)
    assert path.read_bytes() == data
    assert (found.length, found.name) == (n, "bukti.bin")
