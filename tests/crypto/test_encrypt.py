"""Streaming encryption: real gpg on both ends, separate keyrings for encrypting and decrypting."""

from __future__ import annotations

import getpass
import os
import secrets
import signal
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from crypto.encrypt import encrypt_bytes, open_encryptor, sanitize_filename
from crypto.errors import EncryptionError
from crypto.keyring import Keyring
from crypto.padding import (
    FRAMING_PADME,
    MIN_FRAMED_BYTES,
    TRAILER_SIZE,
    Trailer,
    framed_size,
    unframe,
)
from tests.support import pseudo_mounts

CHUNK = 64 * 1024


@pytest.fixture
def keyring(gnupg_home: Path, keys: Any) -> Iterator[Keyring]:
    with Keyring(gnupg_home / "server") as ring:
        for name in ("alice", "bob", "carol"):
            ring.import_public_key(keys.get(name).public)
        yield ring


def _encrypt_file(
    keyring: Keyring,
    recipients: list[str],
    path: Path,
    chunks: list[bytes],
    filename: str | None = None,
) -> int:
    with path.open("wb") as sink:
        writer = open_encryptor(keyring, recipients, sink, filename=filename)
        for chunk in chunks:
            writer.write(chunk)
        written = writer.close()
        assert sink.tell() == written
    return written


def test_every_recipient_decrypts_alone(
    keyring: Keyring, keys: Any, instance_dir: Path, packets: Any
) -> None:
    people = [keys.get(n) for n in ("alice", "bob", "carol")]
    plaintext = [secrets.token_bytes(CHUNK) for _ in range(5)] + [b"tail"]
    out = instance_dir / "report.part"
    written = _encrypt_file(keyring, [p.fingerprint for p in people], out, plaintext)
    ciphertext = out.read_bytes()
    assert written == len(ciphertext) > sum(map(len, plaintext))
    for person in people:
        # Each home holds only its own secret key: success proves it was a recipient.
        assert person.decrypt(ciphertext) == b"".join(plaintext)
    listing = packets(ciphertext)
    assert listing.count(":pubkey enc packet:") == 3


def test_filename_is_in_the_literal_packet_and_nothing_is_compressed(
    keyring: Keyring, keys: Any, instance_dir: Path, packets: Any
) -> None:
    alice = keys.get("alice")
    out = instance_dir / "x.part"
    # Highly compressible data: any compression packet would be obvious.
    _encrypt_file(
        keyring,
        [alice.fingerprint],
        out,
        [b"A" * CHUNK] * 4,
        filename="C:\\Users\\pelapor\\bukti transfer.pdf",
    )
    listing = packets(out.read_bytes(), home=alice.home)
    assert ":literal data packet:" in listing
    assert 'name="bukti transfer.pdf"' in listing
    assert ":compressed packet:" not in listing
    assert "pelapor" not in listing
    # Without compression the ciphertext cannot be much smaller than the plaintext.
    assert out.stat().st_size >= 4 * CHUNK


def test_filename_never_reaches_gpgs_command_line(
    keyring: Keyring, keys: Any, instance_dir: Path, packets: Any
) -> None:
    # /proc/PID/cmdline is world-readable: an identifying filename must not appear there.
    alice = keys.get("alice")
    name = 'memo "kadis" Budi #2 ü.pdf'
    with (instance_dir / "x.part").open("wb") as sink:
        writer = open_encryptor(keyring, [alice.fingerprint], sink, filename=name)
        cmdline = psutil.Process(writer.pid).cmdline()
        writer.write(b"data")
        writer.close()
    assert not any("memo" in arg or "Budi" in arg for arg in cmdline), cmdline
    # Quotes, '#' and non-ASCII survive the options pipe verbatim.
    listing = packets((instance_dir / "x.part").read_bytes(), home=alice.home)
    assert 'name="memo "kadis" Budi #2 \\xc3\\xbc.pdf"' in listing


def test_a_planted_gpg_conf_is_not_read(keyring: Keyring, keys: Any, packets: Any) -> None:
    # Options come only from the pipe gpg is given, never from a gpg.conf in the home.
    (keyring.home / "gpg.conf").write_text("throw-keyids\n")
    alice = keys.get("alice")
    listing = packets(encrypt_bytes(keyring, [alice.fingerprint], b"data"))
    assert ":pubkey enc packet:" in listing
    # throw-keyids (had gpg read the planted file) would zero the recipient's key id.
    assert "keyid 0000000000000000" not in listing


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\temp\\laporan.docx", "laporan.docx"),
        ("evil\u202egpj.exe", "evilgpj.exe"),
        ("line\nbreak\x00.txt", "linebreak.txt"),
        ("..", None),
        ("   ", None),
        (None, None),
    ],
)
def test_sanitize_filename(given: str | None, expected: str | None) -> None:
    assert sanitize_filename(given) == expected


def test_sanitize_filename_keeps_extension_within_255_bytes() -> None:
    name = sanitize_filename("é" * 300 + ".pdf")
    assert name is not None
    assert name.endswith(".pdf")
    assert len(name.encode("utf-8")) <= 255


def test_encrypt_bytes_round_trip_with_filename(keyring: Keyring, keys: Any, packets: Any) -> None:
    bob = keys.get("bob")
    ciphertext = encrypt_bytes(keyring, [bob.fingerprint], b"jawaban formulir", filename="f.json")
    assert bob.decrypt(ciphertext) == b"jawaban formulir"
    assert 'name="f.json"' in packets(ciphertext, home=bob.home)
    # Alice was not a recipient: her key must not open it.
    code, out, status = keys.get("alice").decrypt_status(ciphertext)
    assert code != 0 and out == b""
    assert "NO_SECKEY" in status


@pytest.mark.parametrize(
    "recipients",
    [[], ["0" * 40], ["alice@example.test"], "ABCDEF"],
    ids=["empty", "unknown_fingerprint", "user_id", "bare_string"],
)
def test_bad_recipients_fail_closed(
    keyring: Keyring, instance_dir: Path, recipients: list[str]
) -> None:
    out = instance_dir / "r.part"
    with out.open("wb") as sink, pytest.raises(EncryptionError):
        open_encryptor(keyring, recipients, sink)
    assert out.read_bytes() == b""
    with pytest.raises(EncryptionError):
        encrypt_bytes(keyring, recipients, b"data")


def test_key_known_to_gpg_but_not_in_server_keyring_is_refused(
    keyring: Keyring, keys: Any, instance_dir: Path
) -> None:
    stranger = keys.get("sign_only")  # never imported into the server keyring
    with (instance_dir / "s.part").open("wb") as sink, pytest.raises(EncryptionError):
        open_encryptor(keyring, [keys.get("alice").fingerprint, stranger.fingerprint], sink)


def test_recipient_file_key_is_used_without_joining_the_keyring(
    keyring: Keyring, keys: Any, instance_dir: Path
) -> None:
    alice, dave = keys.get("alice"), keys.get("dave")
    key_file = instance_dir / "dave.asc"
    key_file.write_text(dave.public)
    out = instance_dir / "two.part"
    with out.open("wb") as sink:
        writer = open_encryptor(
            keyring, [alice.fingerprint], sink, extra_recipient_files=[key_file]
        )
        writer.write(b"for both")
        writer.close()
    assert alice.decrypt(out.read_bytes()) == b"for both"
    assert dave.decrypt(out.read_bytes()) == b"for both"
    assert dave.fingerprint not in keyring.fingerprints()


def test_unusable_recipient_file_fails_closed(
    keyring: Keyring, keys: Any, instance_dir: Path
) -> None:
    sign_only = instance_dir / "sign_only.asc"
    sign_only.write_text(keys.get("sign_only").public)
    with pytest.raises(EncryptionError, match="INV_RECP"):
        encrypt_bytes(
            keyring, [keys.get("alice").fingerprint], b"x", extra_recipient_files=[sign_only]
        )


def test_gpg_killed_mid_stream_makes_write_raise(
    keyring: Keyring, keys: Any, instance_dir: Path
) -> None:
    with (instance_dir / "k.part").open("wb") as sink:
        writer = open_encryptor(keyring, [keys.get("alice").fingerprint], sink)
        writer.write(b"x" * CHUNK)
        os.kill(writer.pid, signal.SIGKILL)
        with pytest.raises(EncryptionError):
            for _ in range(1000):  # a full pipe or a reaped process: either must surface
                writer.write(b"x" * CHUNK)
                time.sleep(0.001)
        with pytest.raises(EncryptionError):
            writer.close()


def test_gpg_killed_mid_stream_makes_close_raise(
    keyring: Keyring, keys: Any, instance_dir: Path
) -> None:
    with (instance_dir / "k.part").open("wb") as sink:
        writer = open_encryptor(keyring, [keys.get("alice").fingerprint], sink)
        writer.write(b"x" * CHUNK)
        os.kill(writer.pid, signal.SIGKILL)
        # Let the kill land before closing (without reaping: that is Popen's job).
        deadline = time.monotonic() + 10
        while (
            psutil.Process(writer.pid).status() != psutil.STATUS_ZOMBIE
            and time.monotonic() < deadline
        ):
            time.sleep(0.01)
        with pytest.raises(EncryptionError):
            writer.close()


def test_context_manager_aborts_on_exception(
    keyring: Keyring, keys: Any, instance_dir: Path
) -> None:
    with (instance_dir / "c.part").open("wb") as sink:
        with (
            pytest.raises(RuntimeError),
            open_encryptor(keyring, [keys.get("alice").fingerprint], sink) as writer,
        ):
            writer.write(b"half an upload")
            pid = writer.pid
            raise RuntimeError("client went away")
        assert not psutil.pid_exists(pid)  # killed and reaped
        with pytest.raises(EncryptionError):
            writer.write(b"more")


def test_context_manager_finishes_on_normal_exit(
    keyring: Keyring, keys: Any, instance_dir: Path
) -> None:
    alice = keys.get("alice")
    out = instance_dir / "ok.part"
    with out.open("wb") as sink, open_encryptor(keyring, [alice.fingerprint], sink) as writer:
        writer.write(b"complete")
    assert alice.decrypt(out.read_bytes()) == b"complete"


# --- no plaintext on disk, bounded memory ---------------------------------------------------------


class _Scanner:
    """Finds files that contain a marker, under some roots, changed since a given time.

    Other test sessions (other engineers, xdist workers) write their own large files into
    their own pytest folders in the temp folder at the same time; nothing of ours can be there,
    so those folders are skipped rather than read, which keeps the scan fast and stable.
    """

    def __init__(self, roots: list[Path], own_basetemp: Path, since: float) -> None:
        self.roots = roots
        self.since = since
        self.own = own_basetemp.resolve()
        self.pytest_root = Path(tempfile.gettempdir()).resolve() / f"pytest-of-{getpass.getuser()}"
        self.pseudo = pseudo_mounts()

    def _foreign(self, folder: Path) -> bool:
        if not folder.is_relative_to(self.pytest_root) or folder == self.pytest_root:
            return False
        return not (self.own.is_relative_to(folder) or folder.is_relative_to(self.own))

    def find(self, marker: bytes) -> set[Path]:
        hits: set[Path] = set()
        for root in self.roots:
            for folder, dirs, files in os.walk(root, onerror=lambda _e: None):
                here = Path(folder).resolve()
                dirs[:] = [d for d in dirs
                           if not self._foreign(here / d) and here / d not in self.pseudo]
                for name in files:
                    path = here / name
                    try:
                        info = path.lstat()
                        if not stat.S_ISREG(info.st_mode) or info.st_mtime < self.since:
                            continue
                        if _file_contains(path, marker):
                            hits.add(path)
                    except OSError:
                        continue  # vanished or unreadable: another process's temp file
        return hits


def _file_contains(path: Path, marker: bytes) -> bool:
    overlap = len(marker) - 1
    tail = b""
    with path.open("rb") as handle:
        while block := handle.read(1024 * 1024):
            if marker in tail + block:
                return True
            tail = block[-overlap:]
    return False


def test_50_mb_stream_leaves_no_plaintext_anywhere(
    keyring: Keyring, keys: Any, instance_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    alice = keys.get("alice")
    marker = b"PELUIT-PLAINTEXT-" + secrets.token_hex(16).encode()
    chunk = (marker + b"|") * (CHUNK // (len(marker) + 1))
    total_chunks = (50 * 1024 * 1024) // len(chunk)
    roots = [instance_dir, keyring.home, Path(tempfile.gettempdir()), Path("/dev/shm")]
    scanner = _Scanner(roots, tmp_path_factory.getbasetemp(), since=time.time() - 2)
    scans = 0
    out = instance_dir / "big.part"
    with out.open("wb") as sink:
        writer = open_encryptor(keyring, [alice.fingerprint], sink, filename="big.bin")
        gpg = psutil.Process(writer.pid)
        for i in range(total_chunks):
            writer.write(chunk)
            if i % 200 == 100:
                assert scanner.find(marker) == set()
                # gpg itself has no file open but its keyring and our sink.
                opened = {Path(f.path).resolve() for f in gpg.open_files()}
                assert opened <= {out.resolve(), (keyring.home / "pubring.kbx").resolve()}
                scans += 1
        written = writer.close()
    assert scans >= 3
    assert written == out.stat().st_size > total_chunks * len(chunk)
    assert scanner.find(marker) == set()
    # The scans above only mean something if they find the marker when it is there.
    planted = instance_dir / "control.bin"
    planted.write_bytes(b"x" * 3_000_000 + chunk[5:5000])
    assert scanner.find(marker) == {planted.resolve()}
    planted.unlink()
    assert alice.decrypt(out.read_bytes())[: len(chunk)] == chunk


def test_memory_stays_flat_while_streaming(keyring: Keyring, keys: Any, instance_dir: Path) -> None:
    me = psutil.Process()
    chunk = secrets.token_bytes(CHUNK)
    total = 160 * 1024 * 1024
    out = instance_dir / "mem.part"
    baseline = me.memory_info().rss
    peak_ours = peak_gpg = 0
    with out.open("wb") as sink:
        writer = open_encryptor(keyring, [keys.get("bob").fingerprint], sink)
        gpg = psutil.Process(writer.pid)
        for i in range(total // CHUNK):
            writer.write(chunk)
            if i % 32 == 0:
                peak_ours = max(peak_ours, me.memory_info().rss)
                peak_gpg = max(peak_gpg, gpg.memory_info().rss)
        written = writer.close()
    assert written > total
    growth_mib = (peak_ours - baseline) / 2**20
    print(f"RSS growth {growth_mib:.1f} MiB, gpg peak {peak_gpg / 2**20:.1f} MiB")
    assert growth_mib < 30, f"Python RSS grew by {growth_mib:.1f} MiB while streaming 160 MiB"
    assert peak_gpg / 2**20 < 64, f"gpg RSS reached {peak_gpg / 2**20:.1f} MiB"
    out.unlink()


# --- padding inside the encryption (crypto.padding) --------------------------------------------


def _padded_file(
    keyring: Keyring, recipients: list[str], path: Path, data: bytes, filename: str | None
) -> int:
    with path.open("wb") as sink:
        writer = open_encryptor(keyring, recipients, sink, filename=filename, framing=FRAMING_PADME)
        for start in range(0, len(data), CHUNK):
            writer.write(data[start : start + CHUNK])
        assert writer.tail_bytes == framed_size(len(data)) - len(data)
        written = writer.close()
    assert writer.bytes_in == len(data)
    return written


def test_padded_stream_size_depends_on_the_bucket_only(
    keyring: Keyring, keys: Any, instance_dir: Path, packets: Any
) -> None:
    alice, bob = keys.get("alice"), keys.get("bob")
    recipients = [alice.fingerprint, bob.fingerprint]
    # Two sizes of one bucket, with names of very different lengths.
    small, large = 1_000_001, framed_size(1_000_001) - TRAILER_SIZE
    assert small < large and framed_size(small) == framed_size(large)
    names = {small: "a.pdf", large: "laporan keuangan dinas kesehatan tahun 2025 final.pdf"}
    sizes, plain = {}, {}
    for n in (small, large):
        plain[n] = secrets.token_bytes(n)
        out = instance_dir / f"{n}.part"
        sizes[n] = _padded_file(keyring, recipients, out, plain[n], names[n])
        assert sizes[n] == out.stat().st_size
    assert sizes[small] == sizes[large]
    # One more byte is the next bucket, and a bigger ciphertext.
    out = instance_dir / "next.part"
    assert _padded_file(keyring, recipients, out, secrets.token_bytes(large + 1), None) > sizes[
        large
    ]
    for n in (small, large):
        ciphertext = (instance_dir / f"{n}.part").read_bytes()
        # The name is in the frame: the literal packet carries none.
        listing = packets(ciphertext, home=alice.home)
        assert 'name=""' in listing and ":compressed packet:" not in listing
        for person in (alice, bob):
            data, found = unframe(person.decrypt(ciphertext))
            assert data == plain[n] and found.name == names[n]


def test_padded_bytes_are_the_same_size_as_the_padded_stream(
    keyring: Keyring, keys: Any, instance_dir: Path
) -> None:
    alice = keys.get("alice")
    for n in (0, 17, 3000, MIN_FRAMED_BYTES - TRAILER_SIZE):
        data = secrets.token_bytes(n)
        in_memory = encrypt_bytes(
            keyring, [alice.fingerprint], data, filename="pesan.txt", framing=FRAMING_PADME
        )
        streamed = _padded_file(
            keyring, [alice.fingerprint], instance_dir / "s.part", data, "x" * 200
        )
        # Every short document is one 4 KiB frame: one ciphertext size for all of them.
        assert len(in_memory) == streamed == len(
            encrypt_bytes(keyring, [alice.fingerprint], b"", framing=FRAMING_PADME)
        )
        assert unframe(alice.decrypt(in_memory)) == (data, Trailer(n, "pesan.txt"))


def test_a_padded_name_is_sanitized_like_the_literal_packets(
    keyring: Keyring, keys: Any
) -> None:
    alice = keys.get("alice")
    ciphertext = encrypt_bytes(
        keyring, [alice.fingerprint], b"x", filename="../../evil\u202egpj.exe",
        framing=FRAMING_PADME,
    )
    assert unframe(alice.decrypt(ciphertext))[1].name == "evilgpj.exe"


def test_an_unknown_framing_fails_closed(keyring: Keyring, keys: Any, instance_dir: Path) -> None:
    out = instance_dir / "u.part"
    with out.open("wb") as sink, pytest.raises(EncryptionError, match="framing"):
        open_encryptor(keyring, [keys.get("alice").fingerprint], sink, framing="padme/9")
    with pytest.raises(EncryptionError, match="framing"):
        encrypt_bytes(keyring, [keys.get("alice").fingerprint], b"x", framing="")
    assert out.read_bytes() == b""
