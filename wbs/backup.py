"""Backup and restore of a whole instance, as ONE archive (see docs/backup.md).

The archive is a tar stream, signed by the instance signing key and encrypted to the operators'
backup key (crypto.backup); its plaintext exists only in the pipe to gpg. Its members:

- ``database/peluit.sqlite3`` (SQLite's online backup API, a consistent copy while the servers
  run) or ``database/peluit.pgdump`` (``pg_dump --format=custom``, one transaction snapshot);
- ``instance/...``: the instance folder (secrets, signing key, onion keys, the backup public
  key, ``peluit.toml``), without what has a section of its own;
- ``store/...``: the ciphertext store as it is (only ``.part`` crash debris is left out);
- ``gnupg/...``: the public keyring;
- ``manifest.json``, last: every file's SHA-256 and size, the database kind and revision, and
  the signing fingerprint.

No exact time is recorded: every member is dated to the WIB day of the file (midnight WIB),
as ``peluit store publish`` dates the store's files, and the store is read with O_NOATIME (see
wbs.store on why the store's times must tell nothing). The hard links in ``store/.fresh/`` are
not carried twice: they only mark inodes for the next publication, and a restore makes every
inode new.

The database is copied first, then the files: an item stored during the backup is at worst a
file without a row (which ``Store.sweep`` removes), never a row without its file.

A restore extracts into a staging folder beside the instance, believes nothing until gpg has
checked the signature against the pinned fingerprint AND every file's hash matches the manifest,
and only then moves the staged folders into place (renames; undone if a later step fails).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import secrets
import shutil
import sqlite3
import stat
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from crypto.backup import inspect_backup_key, opened_archive, sealing_stream
from crypto.keyring import KeyInfo, normalize_fingerprint
from crypto.signing import Signer
from wbs import db
from wbs.config import CONFIG_FILE, Config, load_secrets
from wbs.instance import signer_for
from wbs.store import FRESH, day_label_ns
from wbs.workdays import local_date

FORMAT = 1
MANIFEST = "manifest.json"
BACKUP_KEY_FILE = "backup-key.asc"
CONFIG_FROM_BACKUP = CONFIG_FILE + ".from-backup"
SECTIONS = ("instance", "store", "gnupg", "database")
SQLITE_MEMBER = "database/peluit.sqlite3"
PGDUMP_MEMBER = "database/peluit.pgdump"
ARCHIVE_SUFFIX = ".peluit-backup.gpg"
_CHUNK = 1024 * 1024
# SQLite's companions of a database file: set aside with it, or the old WAL would be replayed
# into the restored database.
_SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


class BackupRefused(RuntimeError):
    """A backup or restore that cannot go ahead; nothing has been changed. One line for the
    operator (a RuntimeError, so ``peluit`` prints it without a traceback)."""


# --- the backup key -----------------------------------------------------------------------------


def backup_key_path(config: Config) -> Path:
    return config.instance_dir / BACKUP_KEY_FILE


def import_backup_key(config: Config, data: bytes) -> KeyInfo:
    """Check ``data`` is one usable PUBLIC key and make it the backup key (replacing any)."""
    info = inspect_backup_key(data, config.gpg_binary)
    path = backup_key_path(config)
    part = path.with_name(path.name + ".part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.rename(part, path)
    return info


def backup_key_info(config: Config) -> KeyInfo:
    """The backup key as it stands today (an expired key is refused here, before any backup)."""
    path = backup_key_path(config)
    if not path.is_file():
        raise BackupRefused(
            f"no backup key in {path}: import the operators' PUBLIC backup key with "
            "'peluit backup-key import FILE'"
        )
    return inspect_backup_key(path.read_bytes(), config.gpg_binary)


# --- the database -------------------------------------------------------------------------------


def database_kind(config: Config) -> str:
    return "sqlite" if sa.make_url(config.database_url).get_backend_name() == "sqlite" else (
        "postgresql"
    )


def sqlite_path(config: Config) -> Path:
    name = sa.make_url(config.database_url).database
    if not name or name == ":memory:":
        raise BackupRefused("an in-memory SQLite database cannot be backed up or restored")
    return Path(name).absolute()


def _libpq(config: Config) -> tuple[str, dict[str, str]]:
    """A libpq connection URI for pg_dump/pg_restore; the password goes in the environment
    (PGPASSWORD), never on the command line, which every local user can read in /proc."""
    url = sa.make_url(config.database_url)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    uri = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, env


def _revision(config: Config) -> str | None:
    engine = db.make_engine(config.database_url)
    try:
        return db.current_revision(engine)
    finally:
        engine.dispose()


def _database_snapshot(config: Config) -> tuple[str, bytes]:
    """A consistent copy of the database, in memory: (member name, bytes)."""
    if database_kind(config) == "sqlite":
        path = sqlite_path(config)
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        copy = sqlite3.connect(":memory:")
        try:
            # The online backup API: a consistent copy even while the servers write.
            source.backup(copy)
            return SQLITE_MEMBER, copy.serialize()
        finally:
            copy.close()
            source.close()
    uri, env = _libpq(config)
    dumped = subprocess.run(
        ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--dbname={uri}"],
        capture_output=True,
        env=env,
        check=False,
    )
    if dumped.returncode != 0:
        raise BackupRefused(f"pg_dump failed: {_last_line(dumped.stderr)}")
    return PGDUMP_MEMBER, dumped.stdout


def _last_line(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else "no message"


# --- writing the archive ------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    sha256: str
    files: int
    revision: str


def _skipped(name: str) -> bool:
    """Crash debris and lock files: never part of a backup."""
    return name.endswith((".part", ".lock")) or name.startswith(".#lk")


def _inside(path: Path, folder: Path) -> Path | None:
    """``path`` relative to ``folder`` when it lies inside it, else None."""
    try:
        return path.absolute().relative_to(folder.absolute())
    except ValueError:
        return None


class _HashingReader:
    """Reads a file for tarfile and hashes exactly what went into the archive."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.digest.update(data)
        return data


class _ArchiveWriter:
    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.files: dict[str, dict[str, Any]] = {}
        # Folders and generated members carry today's label, as a publication gives folders.
        self.today = _label(time.time_ns())

    def add_dir(self, name: str) -> None:
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        info.mode = 0o700
        info.mtime = self.today
        self.tar.addfile(info)

    def add_bytes(self, name: str, data: bytes, listed: bool = True) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o600
        info.mtime = self.today
        reader = _HashingReader(io.BytesIO(data))
        self.tar.addfile(info, reader)
        if listed:
            self.files[name] = {"sha256": reader.digest.hexdigest(), "size": len(data)}

    def add_file(self, name: str, path: Path) -> None:
        with os.fdopen(_open_quietly(path), "rb") as raw:
            st = os.fstat(raw.fileno())
            info = tarfile.TarInfo(name)
            info.size = st.st_size
            info.mode = 0o600
            # The file's WIB day, never its exact time (see wbs.store on the store's times).
            info.mtime = _label(st.st_mtime_ns)
            reader = _HashingReader(raw)
            self.tar.addfile(info, reader)
        self.files[name] = {"sha256": reader.digest.hexdigest(), "size": st.st_size}

    def add_tree(
        self, section: str, root: Path, excluded: list[Path], skip_files_in: Path | None = None
    ) -> None:
        """Every regular file under ``root``; symbolic links, sockets and debris are not."""
        self.add_dir(section)
        if not root.is_dir():
            return
        for folder, dirs, names in os.walk(root):
            here = Path(folder)
            dirs[:] = sorted(
                d for d in dirs
                if not (here / d).is_symlink() and (here / d).absolute() not in excluded
            )
            relative = here.relative_to(root)
            prefix = section if relative == Path(".") else f"{section}/{relative.as_posix()}"
            if prefix != section:
                self.add_dir(prefix)
            for name in sorted(names):
                path = here / name
                if _skipped(name) or path.absolute() in excluded or here == skip_files_in:
                    continue
                try:
                    st = path.lstat()
                except FileNotFoundError:
                    continue  # removed meanwhile (a purge): it is not part of this snapshot
                if not _is_regular(st.st_mode):
                    continue  # gpg-agent's sockets, links
                try:
                    self.add_file(f"{prefix}/{name}", path)
                except FileNotFoundError:
                    continue


def _label(ns: int) -> int:
    """Midnight WIB of the day of ``ns``, in seconds: the only time the archive records."""
    return day_label_ns(local_date(dt.datetime.fromtimestamp(ns / 1e9, dt.UTC))) // 10**9


def _open_quietly(path: Path) -> int:
    """Open for reading without updating the access time (O_NOATIME; only the owner may)."""
    noatime = getattr(os, "O_NOATIME", 0)
    try:
        return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | noatime)
    except PermissionError:
        if not noatime:
            raise
        return os.open(path, os.O_RDONLY | os.O_NOFOLLOW)


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)


def _instance_exclusions(config: Config) -> list[Path]:
    excluded = [config.store_dir.absolute(), config.gnupg_home.absolute()]
    if database_kind(config) == "sqlite":
        path = sqlite_path(config)
        excluded += [path, *(Path(f"{path}{suffix}") for suffix in _SQLITE_COMPANIONS)]
    return excluded


def _write_archive(stream: IO[bytes], config: Config, fingerprint: str, revision: str) -> int:
    with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        writer = _ArchiveWriter(tar)
        writer.add_dir("database")
        # The database first: see the module docstring for why.
        member, snapshot = _database_snapshot(config)
        writer.add_bytes(member, snapshot)
        del snapshot
        writer.add_tree("instance", config.instance_dir, _instance_exclusions(config))
        # The store as it is, but for the hard links in .fresh/ to items already in the
        # archive: they only tell the next publication which inodes to replace, and after a
        # restore every inode is new.
        writer.add_tree("store", config.store_dir, [], skip_files_in=config.store_dir / FRESH)
        writer.add_tree("gnupg", config.gnupg_home, [])
        manifest = {
            "format": FORMAT,
            "created": dt.datetime.now(tz=dt.UTC).isoformat(timespec="seconds"),
            "signing_fingerprint": fingerprint,
            "database": {"kind": database_kind(config), "revision": revision},
            "files": writer.files,
        }
        writer.add_bytes(MANIFEST, json.dumps(manifest, indent=1).encode(), listed=False)
        return len(writer.files)


def default_archive_name(revision: str) -> str:
    stamp = dt.datetime.now(tz=dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"peluit-{stamp}-r{revision}{ARCHIVE_SUFFIX}"


def write_backup(config: Config, target: Path) -> BackupResult:
    """Write the archive to ``target`` (a folder: a new file named by the time is made in it).

    Written as ``<name>.part`` and renamed when gpg has vouched for it, so a file with the
    final name is always a whole archive.
    """
    backup_key_info(config)
    revision = _revision(config)
    if revision is None:
        raise BackupRefused("the database is not initialised: nothing to back up")
    target = target.absolute()
    path = target / default_archive_name(revision) if target.is_dir() else target
    if _inside(path, config.instance_dir) is not None:
        raise BackupRefused("write the archive outside the instance folder")
    if path.exists():
        raise BackupRefused(f"{path} exists already")
    part = path.with_name(path.name + ".part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as out, signer_for(config) as signer:
            with sealing_stream(signer, backup_key_path(config), out) as plain:
                files = _write_archive(plain, config, signer.fingerprint, revision)
            out.flush()
            os.fsync(out.fileno())
        os.rename(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return BackupResult(path, path.stat().st_size, _sha256(path), files, revision)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# --- restoring ----------------------------------------------------------------------------------


@dataclass
class RestoreResult:
    files: int
    revision: str
    signing_fingerprint: str
    set_aside: list[Path] = field(default_factory=list)


def is_initialised(config: Config) -> bool:
    """Whether the target already holds an instance a restore would replace."""
    secrets_dir = config.instance_dir / "secrets"
    if secrets_dir.is_dir() and any(secrets_dir.iterdir()):
        return True
    if database_kind(config) == "sqlite" and not sqlite_path(config).exists():
        return False
    return _revision(config) is not None


def _staging(config: Config) -> Path:
    """A private folder beside the instance (same file system: the final moves are renames)."""
    parent = config.instance_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    path = parent / f".{config.instance_dir.name}.restore-{secrets.token_hex(4)}"
    path.mkdir(mode=0o700)
    return path


def _extract(stream: IO[bytes], staging: Path) -> None:
    """The archive's folders and regular files, each written inside ``staging`` by this code,
    with the files' times (the store's coarse day labels); nothing else the archive says
    (owners, modes, links) is taken. Not tarfile's "data" filter: Debian 12's Python (3.11.2)
    predates it, and the production virtualenv is made with that Python."""
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            top = member.name.split("/", 1)[0]
            if not (member.isfile() or member.isdir()) or (
                member.name != MANIFEST and top not in SECTIONS
            ):
                raise BackupRefused(f"the archive holds an unexpected entry {member.name!r}")
            parts = PurePosixPath(member.name).parts
            if member.name.startswith("/") or ".." in parts:
                raise BackupRefused(f"the archive holds an entry outside it: {member.name!r}")
            target = staging.joinpath(*parts)
            try:
                if member.isdir():
                    target.mkdir(mode=0o700, parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                # Only folders and files are ever made here, so no link can lead elsewhere;
                # O_EXCL: an entry named twice is refused, not overwritten.
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            except (FileExistsError, NotADirectoryError):
                raise BackupRefused(f"the archive holds {member.name!r} twice") from None
            content = tar.extractfile(member)
            with os.fdopen(fd, "wb") as out:
                if content is not None:
                    shutil.copyfileobj(content, out)
                out.flush()
                os.utime(out.fileno(), (member.mtime, member.mtime))


def _staged_files(staging: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(staging.rglob("*")):
        if path.is_dir():
            os.chmod(path, 0o700)
            continue
        os.chmod(path, 0o600)
        name = path.relative_to(staging).as_posix()
        if name != MANIFEST:
            yield name, path


def _verify_staged(staging: Path, config: Config, expected: str) -> dict[str, Any]:
    """Check the staged archive against its manifest; BackupRefused on any difference."""
    try:
        manifest: dict[str, Any] = json.loads((staging / MANIFEST).read_text(encoding="utf-8"))
        files = dict(manifest["files"])
        kind = manifest["database"]["kind"]
    except (OSError, ValueError, KeyError, TypeError):
        raise BackupRefused("the archive has no readable manifest") from None
    if manifest.get("format") != FORMAT:
        raise BackupRefused(f"archive format {manifest.get('format')!r} is not {FORMAT}")
    staged = dict(_staged_files(staging))
    missing = sorted(set(files) - set(staged))
    extra = sorted(set(staged) - set(files))
    if missing or extra:
        raise BackupRefused(
            f"the archive does not match its manifest (missing {missing[:3]}, extra {extra[:3]})"
        )
    for name, entry in files.items():
        if _sha256(staged[name]) != entry.get("sha256"):
            raise BackupRefused(f"the archive's {name} does not match its SHA-256 in the manifest")
    if (SQLITE_MEMBER if kind == "sqlite" else PGDUMP_MEMBER) not in files:
        raise BackupRefused("the archive holds no database")
    if kind != database_kind(config):
        raise BackupRefused(
            f"the archive holds a {kind} database; this instance is configured for "
            f"{database_kind(config)}"
        )
    revision = manifest["database"].get("revision")
    try:
        known = ScriptDirectory.from_config(db.alembic_config()).get_revision(revision)
    except Exception:  # alembic raises several kinds for an unknown or malformed id
        known = None
    if known is None:
        raise BackupRefused(
            f"the archive's database is at revision {revision!r}, which this version of Peluit "
            "does not know: restore with the version that made it"
        )
    if manifest.get("signing_fingerprint") != expected:
        raise BackupRefused("the manifest names another signing key")
    instance = staging / "instance"
    load_secrets(instance)
    with Signer(instance / "signing", config.gpg_binary) as signer:
        if signer.fingerprint != expected:
            raise BackupRefused("the archive's signing key is not the expected one")
    return manifest


def _trivial(path: Path) -> bool:
    """A folder with nothing that matters in it (a fresh machine's empty folders, a toml)."""
    if not path.is_dir() or path.is_symlink():
        return False
    return all(p.is_dir() or p.name == CONFIG_FILE for p in path.rglob("*"))


class _Mover:
    """Renames that can be undone, in reverse order, if a later step fails."""

    def __init__(self, stamp: str) -> None:
        self.stamp = stamp
        self.done: list[tuple[Path, Path]] = []
        self.set_aside: list[Path] = []

    def move(self, source: Path, target: Path) -> None:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.rename(source, target)
        self.done.append((source, target))

    def aside(self, path: Path) -> None:
        if path.exists() or path.is_symlink():
            kept = path.with_name(f"{path.name}.before-restore-{self.stamp}")
            self.move(path, kept)
            self.set_aside.append(kept)

    def undo(self) -> None:
        for source, target in reversed(self.done):
            try:
                os.rename(target, source)
            except OSError:
                continue
        self.done.clear()
        self.set_aside.clear()


def _pg_restore(config: Config, dump: Path, clean: bool) -> None:
    """Load the dump in ONE transaction: a failure leaves the database as it was.

    ``clean`` (a forced restore over an instance) empties the schema first, in the same
    transaction: ``pg_restore --clean`` would drop only what the dump holds, and fails on a
    newer schema's constraints that depend on it (a rollback after an upgrade).
    """
    uri, env = _libpq(config)
    script = subprocess.run(
        ["pg_restore", "--no-owner", "--no-privileges", "--file=-", str(dump)],
        capture_output=True,
        env=env,
        check=False,
    )
    if script.returncode != 0:
        raise BackupRefused(f"pg_restore cannot read the dump: {_last_line(script.stderr)}")
    prologue = b"DROP SCHEMA public CASCADE;\nCREATE SCHEMA public;\n" if clean else b""
    loaded = subprocess.run(
        ["psql", "--no-psqlrc", "--quiet", "--single-transaction", "--set=ON_ERROR_STOP=1",
         f"--dbname={uri}", "--file=-"],
        input=prologue + script.stdout,
        capture_output=True,
        env=env,
        check=False,
    )
    if loaded.returncode != 0:
        raise BackupRefused(
            f"the database refused the dump and is unchanged: {_last_line(loaded.stderr)}"
        )


def _put_in_place(config: Config, staging: Path, force: bool) -> list[Path]:
    """Move the verified staging into place; on any failure undo every move, and re-raise."""
    stamp = dt.datetime.now(tz=dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    new_instance = staging / "instance"
    # This machine's settings (its database URL) win; the backup's are kept to compare.
    archived = new_instance / CONFIG_FILE
    if archived.exists():
        os.rename(archived, new_instance / CONFIG_FROM_BACKUP)
    own = config.instance_dir / CONFIG_FILE
    if own.is_file():
        shutil.copy2(own, new_instance / CONFIG_FILE)
    placements = [(staging / "store", config.store_dir), (staging / "gnupg", config.gnupg_home)]
    sqlite = database_kind(config) == "sqlite"
    if sqlite:
        placements.append((staging / SQLITE_MEMBER, sqlite_path(config)))
    outside: list[tuple[Path, Path]] = []
    for source, target in placements:
        if not source.exists():
            source.mkdir(mode=0o700)
        relative = _inside(target, config.instance_dir)
        if relative is not None:
            destination = new_instance / relative
            destination.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.rename(source, destination)
        else:
            outside.append((source, target.absolute()))
    mover = _Mover(stamp)
    try:
        for source, target in outside:
            mover.aside(target)
            if sqlite and target == sqlite_path(config):
                for suffix in _SQLITE_COMPANIONS:
                    mover.aside(Path(f"{target}{suffix}"))
            mover.move(source, target)
        mover.aside(config.instance_dir)
        mover.move(new_instance, config.instance_dir)
        if not sqlite:
            _pg_restore(config, staging / PGDUMP_MEMBER, clean=force)
    except BaseException:
        mover.undo()
        raise
    kept = []
    for path in mover.set_aside:
        if _trivial(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            kept.append(path)
    return kept


def _mark_restored(config: Config) -> None:
    """The federation links' sequence numbers went back with the database: the next exchange
    starts every link over (wbs.federation.exchange.RESTORED_MARKER, read there)."""
    folder = config.instance_dir / "federation"
    folder.mkdir(mode=0o700, exist_ok=True)
    (folder / "restored").touch(mode=0o600)


def restore_backup(
    config: Config,
    archive: Path,
    signing_fingerprint: str,
    backup_key_home: Path | None = None,
    force: bool = False,
) -> RestoreResult:
    """Restore ``archive`` into the instance ``config`` describes; see the module docstring.

    Refuses (BackupRefused, SignatureError, DecryptionError) with nothing changed: an
    initialised target without ``force``, a signature that is not the pinned key's, an
    archive that does not decrypt, is truncated, or whose files do not match the manifest.
    """
    try:
        expected = normalize_fingerprint(signing_fingerprint)
    except ValueError as exc:
        raise BackupRefused(f"--signing-fingerprint: {exc}") from None
    if not archive.is_file():
        raise FileNotFoundError(f"no archive at {archive}")
    if is_initialised(config) and not force:
        raise BackupRefused(
            f"{config.instance_dir} holds an initialised instance; restore replaces it only "
            "with --force (the current one is then kept beside it)"
        )
    staging = _staging(config)
    try:
        with opened_archive(
            archive.absolute(), expected, backup_key_home, config.gpg_binary
        ) as stream:
            try:
                _extract(stream, staging)
            except tarfile.TarError as exc:
                raise BackupRefused(f"the archive is not a complete backup: {exc}") from None
        manifest = _verify_staged(staging, config, expected)
        kept = _put_in_place(config, staging, force)
        _mark_restored(config)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return RestoreResult(
        files=len(manifest["files"]),
        revision=str(manifest["database"]["revision"]),
        signing_fingerprint=expected,
        set_aside=kept,
    )


# --- upgrades -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Migration:
    revision: str
    title: str


def pending_migrations(config: Config) -> list[Migration]:
    """The migrations between the database's revision and this code's, oldest first."""
    current = _revision(config)
    if current is None:
        raise BackupRefused(
            f"the database at {config.database_url} is not initialised: run 'peluit init'"
        )
    script = ScriptDirectory.from_config(db.alembic_config())
    found = [
        Migration(item.revision, (item.doc or "").strip().splitlines()[0] if item.doc else "")
        for item in script.iterate_revisions(db.head_revision(), current)
        if item.revision != current
    ]
    return list(reversed(found))
