"""The ciphertext store: files under the instance folder, one folder per tenant.

Only ciphertext lives here. Names are random, so a directory listing tells nothing about a file's
content or original name (that travels inside the OpenPGP literal packet). A file is written as
``<name>.part``, fsynced and renamed into place, so a reader never sees half a file: a crash or a
killed worker leaves at most a ``.part`` file, which is never listed and which :meth:`Store.sweep`
removes.

**Times.** A file system records when each file was made and changed (birth time, mtime, ctime)
to the nanosecond: kept as they fall, they would give the exact time of every submission, which
the database deliberately rounds to the WIB day. So nothing in the store's layout or times comes
from a pelapor's action:

* Items lie in ``<tenant>/<random>.gpg``; the database row links an item to its source. There is
  no folder per source (whose birth time would be the source's first submission). Folders are
  made when the tenant is added or by the publisher, never by a write. Paths of the old layout
  (``<tenant>/<source>/<random>.gpg``) are still read and removed, and the publication moves
  them (:meth:`Store.move_old_item`).
* A write takes its inode from a pool of empty files that :meth:`Store.publish` makes at a day
  boundary (``.pool/``): renamed into place, so the item's birth time is the pool's, not the
  pelapor's. With the pool empty, a write makes a fresh inode and marks it (a hard link in
  ``.fresh/``); the next publication copies it into a pool inode.
* :meth:`Store.publish`, run at fixed boundaries (hourly), sets every file's mtime and atime to
  its WIB day label (midnight WIB) and every folder's to the current day's; a metadata change
  sets ctime to the moment of the change, so every ctime in the store becomes the latest
  publication. Until the next boundary, files written since the last one keep their exact
  times: that window is what docs/threat-model.md states.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import re
import secrets
import shutil
import stat
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from wbs.workdays import DEFAULT_TIMEZONE, local_date

PART = ".part"
DELETING = ".deleting"
# Empty files waiting to become items, made at publication (see Store.publish).
POOL = ".pool"
# Hard links to items a write had to make a fresh inode for: the next publication replaces them.
FRESH = ".fresh"
MARK = ".fresh"
# Folder names are tenant slugs (and, in the old layout, derived source ids): nothing else may
# appear in a path. A name starting with a dot is the store's own (POOL, FRESH), never a tenant.
_SEGMENT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,127}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,127}\.(gpg|asc)$")
# A pool file: the WIB day it was made, then a random part. Claims take the oldest first.
_POOL_NAME = re.compile(r"^[0-9]{8}-[0-9a-f]{32}$")
# The pool holds at least this many files, and twice the busiest day of the last week.
POOL_MINIMUM = 32
POOL_MAXIMUM = 4096
POOL_HEADROOM = 2
DEMAND_DAYS = 7


class StoreError(Exception):
    pass


class PathRefused(StoreError):
    """A path that would lead outside the store, or that the store never makes."""


@dataclass(frozen=True)
class Published:
    """What one publication did (counts only: never a name or a path)."""

    files: int
    replaced: int
    pool: int
    made: int
    moved: int = 0


def day_label_ns(day: dt.date) -> int:
    """Midnight WIB of ``day``, in nanoseconds since the epoch: the only time a file keeps."""
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(DEFAULT_TIMEZONE))
    return int(midnight.timestamp()) * 1_000_000_000


def _day_of_ns(ns: int) -> dt.date:
    return local_date(dt.datetime.fromtimestamp(ns / 1e9, dt.UTC))


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._real_root = self.root.resolve()

    def resolve(self, relative: str) -> Path:
        """The absolute path of a stored item; refuse anything that is not one of ours.

        Checked twice: by shape (``tenant/name.gpg``, or the old ``tenant/source/name.gpg``; no
        dots or slashes elsewhere) and by where the resolved path lands, so neither ``..`` nor a
        planted symlink can lead out.
        """
        parts = relative.split("/")
        if (
            len(parts) not in (2, 3)
            or not all(_SEGMENT.match(p) for p in parts[:-1])
            or not _NAME.match(parts[-1])
        ):
            raise PathRefused(f"not a path in the store: {relative!r}")
        path = self.root.joinpath(*parts)
        real = path.resolve()
        if not real.is_relative_to(self._real_root) or real != self._real_root.joinpath(*parts):
            raise PathRefused(f"path leads outside the store: {relative!r}")
        return path

    def new_name(self, tenant: str, *, suffix: str = ".gpg") -> str:
        """A fresh relative path for an item of ``tenant``: no folder names its source."""
        relative = f"{tenant}/{secrets.token_hex(16)}{suffix}"
        self.resolve(relative)
        return relative

    def ensure_tenant(self, tenant: str) -> None:
        """Make the tenant's folder now (when the tenant is added), not at its first item."""
        if not _SEGMENT.match(tenant):
            raise PathRefused(f"not a tenant folder: {tenant!r}")
        (self.root / tenant).mkdir(mode=0o700, exist_ok=True)

    @contextmanager
    def create(self, relative: str) -> Iterator[BinaryIO]:
        """Open ``relative`` for writing; it appears under its name only if the block succeeds.

        The inode comes from the pool when it has one, so the item's birth time is a boundary.
        """
        final = self.resolve(relative)
        # Normally there already (ensure_tenant, publish); made here only as a last resort.
        final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        part = final.with_name(final.name + PART)
        if os.path.lexists(part) or os.path.lexists(final):
            raise StoreError(f"{relative} exists already")
        marker = None
        fd = self._claim(part)
        if fd is None:
            marker = self._marker(relative)
            fd = _fresh_inode(marker, part)
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
            if marker is not None:
                marker.unlink(missing_ok=True)
            raise

    def _claim(self, part: Path) -> int | None:
        """Take an empty file from the pool as ``part``, open for writing; None if none left.

        The rename is the claim: of two writers renaming the same pool file, one gets
        FileNotFoundError and takes the next.
        """
        pool = self.root / POOL
        names = sorted(n for n in _names(pool) if _POOL_NAME.match(n))
        for name in names:
            try:
                os.rename(pool / name, part)
            except FileNotFoundError:
                continue
            fd = os.open(part, os.O_WRONLY | os.O_NOFOLLOW)
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size or info.st_nlink != 1:
                os.close(fd)
                part.unlink()
                raise StoreError("a pool file was not an empty regular file")
            return fd
        return None

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
        # O_NOATIME: reading an item (a pelapor reading a reply) leaves no time on it.
        return os.fdopen(_open_noatime(self.resolve(relative), os.O_RDONLY), "rb")

    def size(self, relative: str) -> int:
        return self.resolve(relative).stat().st_size

    def exists(self, relative: str) -> bool:
        return self.resolve(relative).is_file()

    def discard(self, relative: str) -> None:
        """Remove a complete item that no row references (a request that failed after writing
        it), with its fresh-inode marker if it has one: no copy of the ciphertext stays."""
        # Shared lock: a publication replacing this fresh inode must not put the item back.
        with self._locked(fcntl.LOCK_SH):
            self.resolve(relative).unlink(missing_ok=True)
            self._marker(relative).unlink(missing_ok=True)

    def _marker(self, relative: str) -> Path:
        # Not named *.gpg: a hard link to the item, it must not pass for a second copy.
        return self.root / FRESH / (relative.replace("/", "+") + MARK)

    def _entries(self) -> Iterator[Path]:
        """Every file in the tenants' folders (both layouts); never the pool's or markers."""
        for folder in self._folders()[3:]:
            for name in sorted(_names(folder)):
                path = folder / name
                if not (folder.parent == self.root and _SEGMENT.match(name) and _is_dir(path)):
                    yield path

    def _folders(self) -> list[Path]:
        """The store's folders: root, pool, markers, then the tenants' (and old sources')."""
        found = [self.root, self.root / POOL, self.root / FRESH]
        for tenant in sorted(_names(self.root)):
            if _SEGMENT.match(tenant) and _is_dir(self.root / tenant):
                found.append(self.root / tenant)
                found += [
                    self.root / tenant / name
                    for name in sorted(_names(self.root / tenant))
                    if _SEGMENT.match(name) and _is_dir(self.root / tenant / name)
                ]
        return found

    def items(self) -> Iterator[str]:
        """Every complete item, as a relative path; ``.part``, ``.deleting`` and pool files are
        not."""
        for path in self._entries():
            if _NAME.match(path.name) and path.is_file():
                yield path.relative_to(self.root).as_posix()

    def old_items(self) -> Iterator[str]:
        """Complete items still in the old layout, ``<tenant>/<source>/<name>``."""
        for relative in self.items():
            if relative.count("/") == 2:
                yield relative

    def move_old_item(self, old: str, commit: Callable[[str], None]) -> str:
        """Move an item of the old layout to ``<tenant>/<name>``, in a pool inode; return the
        new path. ``commit(new)`` must point the item's row at the new path and commit.

        The copy is made first; the old file is renamed aside while the row changes, and goes
        once the change is committed. A failed commit puts the old file back and removes the
        copy; after a crash, :meth:`sweep` settles the old file against the database (a
        ``.deleting`` file), and a copy left behind is replaced by the next attempt, whose new
        path is the same (the old name, without its source folder).
        """
        source_path = self.resolve(old)
        tenant, _source, name = old.split("/")
        new = f"{tenant}/{name}"
        final = self.resolve(new)
        # A copy (or half of one) an interrupted move left behind: no row has it.
        final.unlink(missing_ok=True)
        final.with_name(final.name + PART).unlink(missing_ok=True)
        with self.create(new) as out, self.open(old) as src:
            shutil.copyfileobj(src, out, 1024 * 1024)
            original = os.fstat(src.fileno())
        os.utime(final, ns=(original.st_mtime_ns, original.st_mtime_ns))
        aside = source_path.with_name(source_path.name + DELETING)
        with self._locked(fcntl.LOCK_SH):
            os.rename(source_path, aside)
        try:
            commit(new)
        except BaseException:
            os.rename(aside, source_path)
            self.discard(new)
            raise
        aside.unlink()
        _remove_if_empty(source_path.parent)
        return new

    def pool_size(self) -> int:
        return sum(1 for n in _names(self.root / POOL) if _POOL_NAME.match(n))

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    def sweep(self, is_referenced: Callable[[str], bool]) -> list[str]:
        """Clean up after crashes; return what was removed.

        ``.part`` files are unfinished writes: removed. ``.deleting`` files are deletions that
        were interrupted: if the database still references the item, the deletion's
        transaction never committed and the file is put back; otherwise it is removed. Markers
        of fresh inodes whose write never finished go too. Pool files are not touched.
        Run it at start-up, before the store takes writes.
        """
        removed = []
        for path in list(self._entries()):
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
        self._settle_markers(replace=None)
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
            # Shared with other deletions; exclusive for a publication replacing a fresh inode,
            # which must not put back a file this renames aside.
            with self._locked(fcntl.LOCK_SH):
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
        for relative in paths:
            self._marker(relative).unlink(missing_ok=True)
        for folder in {path.parent for path, _ in moved}:
            # Only a source's folder of the old layout goes when empty; a tenant's stays, so
            # that no pelapor's write ever makes it again.
            if folder.parent != self.root:
                _remove_if_empty(folder)

    @contextmanager
    def _locked(self, how: int) -> Iterator[None]:
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, how)
            yield
        finally:
            os.close(fd)

    # --- publication -------------------------------------------------------------------------

    def publish(
        self,
        tenants: Iterable[str],
        now: dt.datetime | None = None,
        move_old: Callable[[], int] | None = None,
    ) -> Published:
        """Erase the pelapor's times from the store; run at fixed boundaries (hourly).

        In order: the folders (tenants, pool, markers) exist; the pool is filled for the day
        (or refilled if nearly empty); ``move_old`` moves the old layout's items (see
        :meth:`move_old_item`); files written into fresh inodes are copied into pool inodes;
        then every file gets its WIB day label as mtime and atime, every folder today's label,
        and with that every ctime becomes this moment. Safe to run at any time
        and as often as wanted, also while the servers write.
        """
        now = now or dt.datetime.now(dt.UTC)
        today = local_date(now)
        for name in (POOL, FRESH):
            (self.root / name).mkdir(mode=0o700, exist_ok=True)
        # One publication at a time (the timer's and a starting server's may meet); writers
        # never take this lock.
        fd = os.open(self.root / POOL, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            for slug in tenants:
                self.ensure_tenant(slug)
            made = self._fill_pool(today)
            # The old layout's items move once the pool is filled, before the relabelling;
            # if moving fails, the times are still relabelled, then the failure is raised.
            moved, failure = 0, None
            if move_old is not None:
                try:
                    moved = move_old()
                except Exception as exc:
                    failure = exc
            replaced = self._settle_markers(replace=today)
            files = self._relabel(today)
        finally:
            os.close(fd)
        if failure is not None:
            raise failure
        return Published(files, replaced, self.pool_size(), made, moved)

    def pool_target(self, today: dt.date) -> int:
        """How many empty files the pool should hold: twice the busiest recent day's items."""
        days: Counter[dt.date] = Counter()
        oldest = today - dt.timedelta(days=DEMAND_DAYS)
        for path in self._entries():
            with suppress(FileNotFoundError):
                day = _day_of_ns(path.lstat().st_mtime_ns)
                if day >= oldest:
                    days[day] += 1
        peak = max(days.values(), default=0)
        return min(POOL_MAXIMUM, max(POOL_MINIMUM, POOL_HEADROOM * peak))

    def _fill_pool(self, today: dt.date) -> int:
        """Top the pool up to its target once a day, or whenever it runs low; return how many
        files were made."""
        pool = self.root / POOL
        names = [n for n in _names(pool) if _POOL_NAME.match(n)]
        target = self.pool_target(today)
        prefix = today.strftime("%Y%m%d")
        filled_today = any(n.startswith(prefix) for n in names)
        if len(names) >= target or (filled_today and len(names) >= target // 4):
            return 0
        for _ in range(target - len(names)):
            fd = os.open(
                pool / f"{prefix}-{secrets.token_hex(16)}",
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                0o600,
            )
            os.close(fd)
        _fsync_dir(pool)
        return target - len(names)

    def _settle_markers(self, replace: dt.date | None) -> int:
        """Handle the markers of fresh inodes; return how many items were moved into pool inodes.

        A marker whose item is complete is replaced by a copy into a pool inode (when
        ``replace`` is given); one whose item is still being written stays; any other (the
        write failed, or the item was deleted) goes.
        """
        folder = self.root / FRESH
        markers = [folder / name for name in sorted(_names(folder))]
        replaced = 0
        for marker in markers:
            if not marker.name.endswith(MARK):
                continue
            try:
                final = self.resolve(marker.name.removesuffix(MARK).replace("+", "/"))
            except PathRefused:
                continue
            # Checked in the order of an item's life (part, item, deletion), so that a writer's
            # or a deletion's rename between two checks is seen by the next one.
            if _same_inode(marker, final.with_name(final.name + PART)):
                continue  # still being written: the next run decides
            if _same_inode(marker, final):
                if replace is not None and self._replace_fresh(marker, final):
                    replaced += 1
                continue
            if replace is not None and _same_inode(
                marker, final.with_name(final.name + DELETING)
            ):
                continue  # a deletion in flight: the next run decides
            marker.unlink(missing_ok=True)
        return replaced

    def _replace_fresh(self, marker: Path, final: Path) -> bool:
        """Copy ``final`` (a fresh inode) into a pool inode and put the copy in its place."""
        part = final.with_name(final.name + PART)
        fd = self._claim(part)
        if fd is None:
            return False  # no pool file left: the next publication, after a refill, does it
        try:
            with os.fdopen(fd, "wb") as out:
                with os.fdopen(_open_noatime(final, os.O_RDONLY), "rb") as src:
                    shutil.copyfileobj(src, out, 1024 * 1024)
                    original = os.fstat(src.fileno())
                out.flush()
                os.fsync(out.fileno())
            os.utime(part, ns=(original.st_atime_ns, original.st_mtime_ns))
            with self._locked(fcntl.LOCK_EX):
                if not _same_inode(marker, final):
                    part.unlink()
                    return False
                os.rename(part, final)
                marker.unlink(missing_ok=True)
            _fsync_dir(final.parent)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return True

    def _relabel(self, today: dt.date) -> int:
        """Set every file's mtime and atime to its day label and every folder's to today's."""
        files = 0
        pool = [self.root / POOL / name for name in _names(self.root / POOL)]
        for path in [*self._entries(), *pool]:
            if path.name.endswith(PART):
                continue  # being written: labelled by the run after it is complete
            with suppress(FileNotFoundError):
                label = day_label_ns(_day_of_ns(path.lstat().st_mtime_ns))
                os.utime(path, ns=(label, label), follow_symlinks=False)
                files += 1
        label = day_label_ns(today)
        # Deepest first: the root last, after every change inside it.
        for folder in reversed(self._folders()):
            with suppress(FileNotFoundError):
                os.utime(folder, ns=(label, label), follow_symlinks=False)
        return files


def _fresh_inode(marker: Path, part: Path) -> int:
    """A new inode (the pool is empty) at ``part``, marked in FRESH for the next publication.

    The part first, then its marker: a publication that sees the marker then always finds the
    part (or, once renamed, the item) it belongs to.
    """
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        marker.parent.mkdir(mode=0o700, exist_ok=True)
        os.link(part, marker)
    except BaseException:
        os.close(fd)
        part.unlink()
        raise
    return fd


def _open_noatime(path: Path, flags: int) -> int:
    """Open without updating the access time (O_NOATIME): a read is no time to record.

    O_NOATIME is refused (EPERM) to anyone but the file's owner; then the mount's own
    setting (deploy/README.md: noatime) is what protects.
    """
    noatime = getattr(os, "O_NOATIME", 0)
    try:
        return os.open(path, flags | noatime | os.O_NOFOLLOW)
    except PermissionError:
        if not noatime:
            raise
        return os.open(path, flags | os.O_NOFOLLOW)


def _names(folder: Path) -> list[str]:
    """A folder's entries, listed without updating its access time; none if it is gone (a
    concurrent deletion removed an old source folder, or the pool was never made)."""
    try:
        fd = _open_noatime(folder, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return []
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)


def _is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except FileNotFoundError:
        return False


def _same_inode(a: Path, b: Path) -> bool:
    try:
        first, second = a.lstat(), b.lstat()
    except FileNotFoundError:
        return False
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


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
