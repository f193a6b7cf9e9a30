"""Intake: ciphertext into the store and rows into the database, both or neither.

Plaintext arrives as chunks (from the streaming form parser) and goes straight into gpg; gpg
writes ciphertext into the store's ``.part`` file, which is renamed into place only when gpg has
finished and verified. Rows are committed after the files exist; if the commit fails, the files
are removed, so a crash or an error leaves no orphan file and no row without its file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from crypto.encrypt import open_encryptor
from crypto.keyring import Keyring
from wbs.store import Store

CHUNK_SIZE = 64 * 1024


class IntakeClosed(RuntimeError):
    """Intake refuses new data for now (disk floor reached, no recipient key, ...)."""


@dataclass(frozen=True)
class StoredItem:
    path: str
    size: int


def ensure_space(store: Store, floor_bytes: int, incoming_bytes: int = 0) -> None:
    """Refuse intake that would take the store's disk below its floor.

    The floor keeps room for the database, the logs and investigators' replies when a flood of
    uploads (or one huge one) would otherwise fill the disk and stop everything.
    """
    if store.free_bytes() - incoming_bytes < floor_bytes:
        raise IntakeClosed("the store's disk is at its free-space floor")


def encrypt_into_store(
    store: Store,
    keyring: Keyring,
    recipients: Sequence[str],
    *,
    tenant_slug: str,
    source_id: str,
    chunks: Iterable[bytes],
    filename: str | None = None,
    extra_recipient_files: Sequence[Path] = (),
) -> StoredItem:
    """Encrypt ``chunks`` to ``recipients`` into a new store item; return where and how big.

    Fails closed: any error (gpg failing or killed, a bad recipient, the chunks' producer
    raising, a full disk) propagates and leaves nothing in the store.
    """
    name = store.new_name(tenant_slug, source_id)
    with (
        store.create(name) as sink,
        open_encryptor(keyring, recipients, sink, filename, extra_recipient_files) as writer,
    ):
        for chunk in chunks:
            writer.write(chunk)
    return StoredItem(path=name, size=store.size(name))


@contextmanager
def committed_with_files(session: Session, store: Store, paths: list[str]) -> Iterator[None]:
    """Commit the rows added in the block; if anything fails, remove ``paths`` as well.

    ``paths`` is read when the block ends, so items stored inside the block can be appended.
    """
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        for path in paths:
            store.resolve(path).unlink(missing_ok=True)
        raise


def read_chunks(stream: object, size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Chunks of a binary stream (anything with ``read(n)``)."""
    read = stream.read  # type: ignore[attr-defined]
    while block := read(size):
        yield block
