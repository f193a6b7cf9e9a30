"""``peluit upgrade`` on an instance made by the first release (schema 0001) with data in it;
and the documented rollback: restoring the backup the upgrade took first."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from crypto.keyring import Keyring, kill_agent
from tests.peluit.test_backup import BackupKey, _config, _make_backup_key, peluit
from tests.support import short_tempdir
from wbs import db
from wbs.accounts import open_secret, totp_key
from wbs.config import Config, generate_secrets
from wbs.instance import Instance, signer_for
from wbs.store import Store

TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture
def backup_key() -> Iterator[BackupKey]:
    home = short_tempdir("bku-")
    fingerprint, public = _make_backup_key(home)
    (home / "public.asc").write_bytes(public)
    yield BackupKey(home, home / "public.asc", fingerprint)
    kill_agent(home)
    shutil.rmtree(home, ignore_errors=True)


def _first_release_instance(config: Config) -> None:
    """What `peluit init` of the first release made: files, and the database at 0001."""
    config.instance_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    Store(config.store_dir)
    Keyring(config.gnupg_home, config.gpg_binary).close()
    with signer_for(config) as signer:
        signer.ensure_key()
    generate_secrets(config.instance_dir)
    db.upgrade(config.database_url, "0001")
    now = dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC)
    engine = db.make_engine(config.database_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO tenants (id, slug, name, kind, is_hub, first_response_days, "
                "categories, kpk_sharing, created_at) VALUES (1, 'kpk', 'KPK', 'hub', true, 7, "
                "'[]', 'never', :now)"
            ),
            {"now": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO investigators (id, username, display_name, role, password_hash, "
                "totp_secret, active, created_at, tenant_id) VALUES (1, 'siti.kpk', 'Siti', "
                "'pemantau_kpk', 'x', :secret, true, :now, 1)"
            ),
            {"secret": TOTP_SECRET, "now": now},
        )
    engine.dispose()


@pytest.mark.postgres
def test_upgrade_from_the_first_release_backs_up_first_and_can_be_rolled_back(
    database_url: str, tmp_path: Path, backup_key: BackupKey
) -> None:
    gnupg = short_tempdir("bkug-")
    config = _config(tmp_path / "instance", gnupg, database_url)
    try:
        _first_release_instance(config)
        with pytest.raises(RuntimeError, match="peluit db upgrade"):
            Instance.open(config)
        peluit(config, "backup-key", "import", str(backup_key.public))

        # No silent upgrade without a backup.
        refused = peluit(config, "upgrade", ok=False)
        assert refused.exit_code == 2 and "--backup-to" in refused.output
        assert _revision(config) == "0001"

        upgraded = peluit(config, "upgrade", "--backup-to", str(tmp_path)).output
        backup_line, *applied = upgraded.strip().splitlines()
        archive = Path(backup_line.split("\t")[0])
        assert archive.is_file() and "-r0001" in archive.name
        revisions = [re.match(r"applied (\d{4}): \S", line) for line in applied[:-1]]
        assert [m.group(1) for m in revisions if m] == [
            f"{n:04d}" for n in range(2, int(db.head_revision()) + 1)
        ]
        assert f"database at revision {db.head_revision()}" in applied[-1]

        # The data came along: the tenant, and the TOTP secret, now sealed.
        with Instance.open(config) as inst, inst.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT slug FROM tenants")).scalar_one() == "kpk"
            sealed = conn.execute(
                sa.text("SELECT totp_secret_sealed FROM investigators WHERE id = 1")
            ).scalar_one()
            assert TOTP_SECRET not in sealed
            assert open_secret(totp_key(inst.secrets), 1, sealed) == TOTP_SECRET
        assert "nothing to do" in peluit(config, "upgrade").output

        # Rollback: the backup taken before the upgrade, restored over the upgraded instance.
        with signer_for(config) as signer:
            fingerprint = signer.fingerprint
        rolled_back = peluit(
            config, "restore", str(archive), "--signing-fingerprint", fingerprint,
            "--backup-key-home", str(backup_key.home), "--force",
        ).output
        assert "revision 0001" in rolled_back and "peluit upgrade" in rolled_back
        assert _revision(config) == "0001"
    finally:
        kill_agent(gnupg)
        kill_agent(config.instance_dir / "signing")
        shutil.rmtree(gnupg, ignore_errors=True)


def _revision(config: Config) -> str | None:
    engine = db.make_engine(config.database_url)
    try:
        return db.current_revision(engine)
    finally:
        engine.dispose()
