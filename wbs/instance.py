"""An instance: the configuration and the long-lived services built from it.

Built explicitly (``Instance.open(config)``), never at import time, so tests can make as many
as they like and the interfaces' app factories take one.
"""

from __future__ import annotations

import datetime as dt
import os
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from crypto.keyring import Keyring
from crypto.signing import Signer
from wbs import db
from wbs.accounts import AuthSettings, totp_key
from wbs.config import Config, Secrets, generate_secrets, load_secrets
from wbs.models import Reply, Submission, Tenant
from wbs.store import Published, Store, day_label_ns
from wbs.workdays import WorkingCalendar, local_date


def init_instance(config: Config) -> None:
    """Create what an instance needs; safe to run again (it keeps what exists)."""
    config.instance_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(config.instance_dir, 0o700)
    Store(config.store_dir)
    Keyring(config.gnupg_home, config.gpg_binary).close()
    # The export-bundle signing key, in a home of its own: see crypto.signing for why it has
    # no passphrase and no encryption subkey.
    with signer_for(config) as signer:
        signer.ensure_key()
    secrets = generate_secrets(config.instance_dir)
    engine = db.make_engine(config.database_url)
    try:
        db.upgrade(engine, totp_key=totp_key(secrets))
    finally:
        engine.dispose()


def _row_of(session: Session, path: str) -> Submission | Reply | None:
    """The submission or reply stored at ``path``, if any (every tenant's: the operator's)."""
    found: Submission | Reply | None = session.scalar(
        sa.select(Submission).where(Submission.store_path == path)
    )
    return found or session.scalar(sa.select(Reply).where(Reply.store_path == path))


def signer_for(config: Config) -> Signer:
    """The instance's export-bundle signer; its home is ``<instance>/signing``."""
    return Signer(config.instance_dir / "signing", config.gpg_binary)


@dataclass
class Instance:
    config: Config
    secrets: Secrets
    engine: Engine
    sessions: sessionmaker[Session]
    store: Store
    keyring: Keyring
    calendar: WorkingCalendar = field(init=False)
    # Signs export bundles (wbs.bundle). Cheap to build: it touches gpg only when used.
    signing: Signer = field(init=False)

    def __post_init__(self) -> None:
        self.calendar = WorkingCalendar(self.config.cuti_bersama)
        self.signing = signer_for(self.config)

    @classmethod
    def open(cls, config: Config) -> Instance:
        """Open an initialised instance; refuse one whose database is not migrated."""
        secrets = load_secrets(config.instance_dir)
        engine = db.make_engine(config.database_url)
        current = db.current_revision(engine)
        if current != db.head_revision():
            engine.dispose()
            if current is None:
                raise RuntimeError(
                    f"the database at {config.database_url} is not initialised: "
                    "run 'peluit init'"
                )
            # Running new code on an old schema fails in odd places; say so up front.
            raise RuntimeError(
                f"the database is at revision {current}, this code needs "
                f"{db.head_revision()}: run 'peluit db upgrade'"
            )
        return cls(
            config=config,
            secrets=secrets,
            engine=engine,
            sessions=db.make_session_factory(engine),
            store=Store(config.store_dir),
            keyring=Keyring(config.gnupg_home, config.gpg_binary),
        )

    def auth_settings(self) -> AuthSettings:
        """Investigator authentication with this instance's argon2id cost and TOTP key."""
        return AuthSettings.from_kdf(self.config.kdf, totp_key(self.secrets))

    def sweep_store(self) -> list[str]:
        """Settle the store after a crash: see :meth:`wbs.store.Store.sweep`."""
        with self.sessions() as session:

            def referenced(path: str) -> bool:
                for model in (Submission, Reply):
                    found = session.scalar(
                        sa.select(model.id).where(model.store_path == path)
                    )
                    if found is not None:
                        return True
                return False

            return self.store.sweep(referenced)

    def publish_store(self) -> Published:
        """Publish the store at a boundary: see :meth:`wbs.store.Store.publish`.

        Items still in the old layout (a folder per source, whose birth time is the source's
        first report) are moved first into the tenant's folder and a pool inode, their rows
        with them.
        """
        with self.sessions() as session:
            slugs = list(session.scalars(sa.select(Tenant.slug)))
            published = self.store.publish(slugs, move_old=lambda: self._move_old_layout(session))
        self._relabel_database()
        return published

    def _relabel_database(self) -> None:
        """Give SQLite's files (and their folder) today's label as mtime and atime, as the store's.

        Every write sets the database's and its WAL's mtime: without this, the last write
        before a seizure (often a pelapor's report or login) is on the file to the nanosecond.
        The ctime becomes this publication's moment (the kernel sets it; nothing can clear it).
        A PostgreSQL cluster's files are the database server's, outside Peluit's reach.
        """
        url = self.engine.url
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return
        database = Path(str(url.database))
        label = day_label_ns(local_date(dt.datetime.now(dt.UTC)))
        for path in (*(Path(f"{database}{end}") for end in ("", "-wal", "-shm", "-journal")),
                     database.parent):
            with suppress(FileNotFoundError):
                os.utime(path, ns=(label, label))

    def _move_old_layout(self, session: Session) -> int:
        moved = 0
        for old in list(self.store.old_items()):
            row = _row_of(session, old)
            if row is None:
                continue  # no row has it: not an item of this database, left alone
            tenant, _source, name = old.split("/")
            if _row_of(session, f"{tenant}/{name}") is not None:
                continue  # its new path is taken (never by chance: names are 128 random bits)

            def commit(new: str, row: Submission | Reply = row) -> None:
                row.store_path = new
                try:
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise

            self.store.move_old_item(old, commit)
            moved += 1
        return moved

    def close(self) -> None:
        self.keyring.close()
        self.signing.close()
        self.engine.dispose()

    def __enter__(self) -> Instance:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
