"""Intake end to end below HTTP: real gpg, real store, real database rows."""

import multiprocessing
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from crypto.errors import EncryptionError
from crypto.keyring import Keyring, kill_agent
from crypto.padding import FRAMING_PADME, Trailer, framed_size, unframe
from peluit.demo import make_workstation_key
from tests.support import short_tempdir
from wbs import db
from wbs.intake import (
    SPACE_CHECK_BYTES,
    EncryptedFile,
    IntakeClosed,
    StoredItem,
    committed_with_files,
    ensure_space,
    space_check_interval,
)
from wbs.models import Submission
from wbs.store import Store

SOURCE = "ab" * 32


def encrypt_into_store(
    store: Store, keyring: Keyring, recipients: list[str], *, tenant_slug: str,
    source_id: str, chunks: Iterable[bytes], filename: str | None = None,
) -> StoredItem:
    """Drive the intake's sink as the upload parser does: chunks in, then close; on any
    failure (of the chunks' producer or of gpg), abort."""
    sink = EncryptedFile(store, keyring, recipients, tenant_slug=tenant_slug,
                         source_id=source_id, filename=filename)
    try:
        for chunk in chunks:
            sink.write(chunk)
    except BaseException:
        sink.abort()
        raise
    return sink.close()


@pytest.fixture(scope="module")
def workstation() -> Iterator[tuple[Path, str]]:
    """A separate GnuPG home holding the secret key, as the air-gapped workstation would."""
    home = short_tempdir("ws-")
    yield home, make_workstation_key(home, "Inspektorat")
    kill_agent(home)


@pytest.fixture
def keyring(gnupg_home: Path, workstation: tuple[Path, str]) -> Iterator[tuple[Keyring, str]]:
    with Keyring(gnupg_home) as ring:
        info = ring.import_public_key(workstation[1])
        yield ring, info.fingerprint


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "instance" / "store")


def _decrypt(home: Path, ciphertext: bytes) -> bytes:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--decrypt"],
        input=ciphertext, capture_output=True, check=True,
    ).stdout


def test_stored_item_decrypts_on_the_workstation(
    store: Store, keyring: tuple[Keyring, str], workstation: tuple[Path, str]
) -> None:
    ring, fpr = keyring
    data = os.urandom(300_000) + b"MARKER-bukti-transfer"
    item = encrypt_into_store(
        store, ring, [fpr], tenant_slug="kpk", source_id=SOURCE,
        chunks=(data[i : i + 7000] for i in range(0, len(data), 7000)), filename="bukti.pdf",
    )
    assert list(store.items()) == [item.path]
    assert item.size == store.size(item.path)
    ciphertext = store.open(item.path).read()
    assert b"MARKER" not in ciphertext and b"bukti.pdf" not in item.path.encode()
    # Padded inside the encryption: the workstation strips the frame the item says it has.
    assert item.framing == FRAMING_PADME
    assert unframe(_decrypt(workstation[0], ciphertext)) == (data, Trailer(len(data), "bukti.pdf"))


def test_failing_producer_leaves_nothing(store: Store, keyring: tuple[Keyring, str]) -> None:
    ring, fpr = keyring

    def chunks() -> Iterator[bytes]:
        yield b"x" * 100_000
        raise ConnectionResetError("the reporter's connection dropped")

    with pytest.raises(ConnectionResetError):
        encrypt_into_store(store, ring, [fpr], tenant_slug="kpk", source_id=SOURCE,
                           chunks=chunks())
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


def test_killed_gpg_fails_closed(store: Store, keyring: tuple[Keyring, str]) -> None:
    ring, fpr = keyring

    def chunks() -> Iterator[bytes]:
        yield b"y" * 65536
        # Kill the gpg encrypting under this keyring, mid-stream.
        gpgs = [
            proc for proc in psutil.Process().children(recursive=True)
            if str(ring.home) in proc.cmdline()
        ]
        assert gpgs, "no gpg process found to kill"
        for proc in gpgs:
            proc.kill()
            proc.wait(timeout=10)
        # Bounded, so a gpg that survived makes the test fail instead of running forever.
        for _ in range(100):
            yield b"y" * 65536

    with pytest.raises(EncryptionError):
        encrypt_into_store(store, ring, [fpr], tenant_slug="kpk", source_id=SOURCE,
                           chunks=chunks())
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


def test_no_recipients_fails_closed(store: Store, keyring: tuple[Keyring, str]) -> None:
    with pytest.raises(EncryptionError):
        encrypt_into_store(store, keyring[0], [], tenant_slug="kpk", source_id=SOURCE,
                           chunks=[b"data"])
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


def _slow_upload(store_root: str, home: str, fpr: str) -> None:
    ring = Keyring(Path(home))

    def chunks() -> Iterator[bytes]:
        while True:
            yield b"z" * 4096
            time.sleep(0.01)

    encrypt_into_store(Store(Path(store_root)), ring, [fpr], tenant_slug="kpk",
                       source_id=SOURCE, chunks=chunks())


def test_killed_worker_leaves_no_visible_item(
    store: Store, keyring: tuple[Keyring, str]
) -> None:
    ring, fpr = keyring
    worker = multiprocessing.get_context("fork").Process(
        target=_slow_upload, args=(str(store.root), str(ring.home), fpr)
    )
    worker.start()
    deadline = time.monotonic() + 30
    while not list(store.root.rglob("*.part")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()

    parts = list(store.root.rglob("*.part"))
    assert len(parts) == 1, "the worker was killed mid-upload, leaving its .part file"
    assert list(store.items()) == []
    leftover = parts[0].relative_to(store.root).as_posix()
    assert store.sweep(is_referenced=lambda _: False) == [leftover]
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


def test_failed_commit_removes_the_files(
    database_url: str, store: Store, keyring: tuple[Keyring, str]
) -> None:
    from wbs.domain import TenantKind
    from wbs.tenants import create_tenant

    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    session = Session(engine)
    tenant = create_tenant(session, slug="kpk", name="KPK", kind=TenantKind.HUB)
    session.commit()
    ring, fpr = keyring
    paths: list[str] = []
    with pytest.raises(sa.exc.IntegrityError), committed_with_files(session, store, paths):
        item = encrypt_into_store(store, ring, [fpr], tenant_slug="kpk", source_id=SOURCE,
                                  chunks=[b"evidence"])
        paths.append(item.path)
        # A submission of a case that does not exist: the database refuses it at commit.
        session.add(Submission(tenant_id=tenant.id, case_id=999, kind="file",
                               store_path=item.path, size=item.size))
    assert list(store.items()) == []
    assert session.scalar(sa.select(sa.func.count()).select_from(Submission)) == 0
    session.close()
    engine.dispose()


def test_the_floor_is_checked_at_least_twice_per_floor_of_data() -> None:
    # The disk must not be able to fill between two checks, whatever the floor.
    assert space_check_interval(1024**3) == SPACE_CHECK_BYTES
    assert space_check_interval(10 * 1024**2) == 5 * 1024**2
    assert space_check_interval(1) == 1  # a check before every write


def test_disk_floor(store: Store) -> None:
    ensure_space(store, floor_bytes=0)
    with pytest.raises(IntakeClosed):
        ensure_space(store, floor_bytes=store.free_bytes() + 1)
    with pytest.raises(IntakeClosed):
        ensure_space(store, floor_bytes=0, incoming_bytes=store.free_bytes() + 1)


def test_the_padding_must_fit_above_the_floor_too(
    store: Store, keyring: tuple[Keyring, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The padding is written when the upload ends, after the last check of the data: the
    # close checks that it fits. The disk's free space is faked (a real disk shared with other
    # processes cannot be held at an exact level); gpg and the store are real.
    ring, fpr = keyring
    floor = 2 * 1024 * 1024  # data checks every 1 MiB: none during this 1,000,001-byte file
    size = 1_000_001
    tail = framed_size(size) - size
    data = os.urandom(size)

    def upload(free: int) -> StoredItem:
        monkeypatch.setattr(store, "free_bytes", lambda: free)
        sink = EncryptedFile(store, ring, [fpr], tenant_slug="kpk", source_id=SOURCE,
                             floor_bytes=floor)
        try:
            for start in range(0, size, 65536):
                sink.write(data[start : start + 65536])
            return sink.close()
        except BaseException:
            sink.abort()
            raise

    with pytest.raises(IntakeClosed):
        upload(floor + tail - 1)
    assert [p for p in store.root.rglob("*") if p.is_file()] == []
    item = upload(floor + tail)
    # The item, and the store's own mark for a fresh inode (no pool in this test: wbs.store).
    stored = [p for p in store.root.rglob("*") if p.is_file() and ".fresh" not in p.parts]
    assert stored == [store.resolve(item.path)]
    assert list(store.items()) == [item.path]
