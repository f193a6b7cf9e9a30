"""The ciphertext store: files under the instance folder, one folder per tenant and source.

Only ciphertext lives here. Names are random, so a directory listing tells nothing about a file's
content or original name (that travels inside the OpenPGP literal packet). A file is written as
``<name>.part``, fsynced and renamed into place, so a reader never sees half a file: a crash or a
killed worker leaves at most a ``.part`` file, which is never listed and which :meth:`Store.sweep`
removes.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session

PART = ".part"
DELETING = ".deleting"
# Folder names are tenant slugs and derived source ids: nothing else may appear in a path.
_SEGMENT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,127}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,127}\.(gpg|asc)$")


class StoreError(Exception):
    pass


class PathRefused(StoreError):
    """A path that would lead outside the store, or that the store never makes."""


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._real_root = self.root.resolve()

    def resolve(self, relative: str) -> Path:
        """The absolute path of a stored item; refuse anything that is not one of ours.

        Checked twice: by shape (``tenant/source/name.gpg``, no dots or slashes elsewhere) and by
        where the resolved path lands, so neither ``..`` nor a planted symlink can lead out.
        """
        parts = relative.split("/")
        if (
            len(parts) != 3
            or not all(_SEGMENT.match(p) for p in parts[:2])
            or not _NAME.match(parts[2])
        ):
            raise PathRefused(f"not a path in the store: {relative!r}")
        path = self.root.joinpath(*parts)
        real = path.resolve()
        if not real.is_relative_to(self._real_root) or real != self._real_root.joinpath(*parts):
            raise PathRefused(f"path leads outside the store: {relative!r}")
        return path

    def new_name(self, tenant: str, source: str, suffix: str = ".gpg") -> str:
        """A fresh relative path for an item of ``source`` in ``tenant``."""
        relative = f"{tenant}/{source}/{secrets.token_hex(16)}{suffix}"
        self.resolve(relative)
        return relative

    @contextmanager
    def create(self, relative: str) -> Iterator[BinaryIO]:
        """Open ``relative`` for writing; it appears under its name only if the block succeeds."""
        final = self.resolve(relative)
        final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        part = final.with_name(final.name + PART)
        # O_EXCL: a name collision (or a planted file) is an error, never an overwrite.
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        out = os.fdopen(fd, "wb")
        try:
            yield out
            out.flush()
            os.fsync(out.fileno())
            out.close()
            if final.exists():
                raise StoreError(f"{relative} exists already")
            os.rename(part, final)
            _fsync_dir(final.parent)
        except BaseException:
            out.close()
            part.unlink(missing_ok=True)
            raise

    @staticmethod
    def start_writeback(out: BinaryIO) -> None:
        """Ask the kernel to start writing ``out``'s data to disk now, without waiting.

        For a long write, call it every few MiB: the final fsync in :meth:`create` then finds
        little left to flush, instead of the whole file. (On Linux, DONTNEED starts writeback
        of dirty pages and drops the clean ones; nothing here reads the ciphertext back soon.)
        """
        with suppress(OSError):
            os.posix_fadvise(out.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)

    def open(self, relative: str) -> BinaryIO:
        return self.resolve(relative).open("rb")

    def size(self, relative: str) -> int:
        return self.resolve(relative).stat().st_size

    def exists(self, relative: str) -> bool:
        return self.resolve(relative).is_file()

    def items(self) -> Iterator[str]:
        """Every complete item, as a relative path; ``.part`` and ``.deleting`` files are not."""
        for path in sorted(self.root.glob("*/*/*")):
            relative = path.relative_to(self.root).as_posix()
            if _NAME.match(path.name) and path.is_file():
                yield relative

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    def sweep(self, is_referenced: Callable[[str], bool]) -> list[str]:
        """Clean up after crashes; return what was removed.

        ``.part`` files are unfinished writes: removed. ``.deleting`` files are deletions that
        were interrupted: if the database still references the item, the deletion's
        transaction never committed and the file is put back; otherwise it is removed.
        Run it at start-up, before the store takes writes.
        """
        removed = []
        for path in sorted(self.root.glob("*/*/*")):
            relative = path.relative_to(self.root).as_posix()
            if path.name.endswith(PART):
                path.unlink()
                removed.append(relative)
            elif path.name.endswith(DELETING):
                original = relative.removesuffix(DELETING)
                if is_referenced(original):
                    os.rename(path, self.resolve(original))
                else:
                    path.unlink()
                    removed.append(original)
        return removed

    def remove_with_rows(
        self, session: Session, paths: Sequence[str], rows: Sequence[object]
    ) -> None:
        """Delete stored files and their database rows together: both go, or neither.

        Files are first renamed aside, then the rows are deleted and committed, then the files
        are unlinked. A failed commit renames the files back; a crash in between leaves
        ``.deleting`` files that :meth:`sweep` settles against the database.
        """
        moved: list[tuple[Path, Path]] = []
        try:
            for relative in paths:
                path = self.resolve(relative)
                aside = path.with_name(path.name + DELETING)
                os.rename(path, aside)
                moved.append((path, aside))
            for row in rows:
                session.delete(row)
            session.commit()
        except BaseException:
            session.rollback()
            for path, aside in reversed(moved):
                os.rename(aside, path)
            raise
        for _, aside in moved:
            aside.unlink()
        for folder in {path.parent for path, _ in moved}:
            _remove_if_empty(folder)


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_if_empty(folder: Path) -> None:
    # A folder that still holds items (or another deletion's leftovers) stays.
    with suppress(OSError):
        folder.rmdir()
