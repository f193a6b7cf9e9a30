"""``peluit backup``, ``peluit restore``, ``peluit backup-key`` and ``peluit upgrade``.

The archive's design (what is in it, how it is sealed and checked) is in :mod:`wbs.backup` and
:mod:`crypto.backup`; the operator's procedure in docs/backup.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from peluit.clikit import OperatorGroup, config_of
from wbs import backup as backups
from wbs import db
from wbs.accounts import totp_key
from wbs.config import load_secrets
from wbs.instance import signer_for


@click.group("backup-key", cls=OperatorGroup)
def backup_key() -> None:
    """The operators' backup key: the server holds only its PUBLIC half."""


@backup_key.command("import")
@click.argument("key_file", type=click.File("rb"))
@click.pass_context
def backup_key_import(ctx: click.Context, key_file: Any) -> None:
    """Make the PUBLIC key in KEY_FILE the backup key ('-' reads stdin); a secret key is refused."""
    info = backups.import_backup_key(config_of(ctx), key_file.read())
    expires = info.expires.date().isoformat() if info.expires else "never"
    click.echo(f"backup key {info.fingerprint} ({info.algorithm}, expires {expires})")


@backup_key.command("show")
@click.pass_context
def backup_key_show(ctx: click.Context) -> None:
    """The backup key's fingerprint (refused here if it has expired or been revoked), and the
    signing fingerprint a restore will ask for: keep both with the backup key."""
    config = config_of(ctx)
    info = backups.backup_key_info(config)
    expires = info.expires.date().isoformat() if info.expires else "never"
    click.echo(f"backup key {info.fingerprint} ({info.algorithm}, expires {expires})")
    with signer_for(config) as signer:
        click.echo(f"signing key {signer.fingerprint} (restore --signing-fingerprint)")


def _write(ctx: click.Context, target: Path) -> backups.BackupResult:
    result = backups.write_backup(config_of(ctx), target)
    click.echo(f"{result.path}\t{result.size} bytes\tsha256 {result.sha256}")
    return result


@click.command("backup")
@click.argument(
    "target", type=click.Path(path_type=Path), default=".", required=False
)
@click.pass_context
def backup(ctx: click.Context, target: Path) -> None:
    """Write one encrypted, signed archive of the instance to TARGET (a folder or a file name).

    Prints one line: the archive, its size, its SHA-256. Safe while the servers run.
    """
    _write(ctx, target)


@click.command("restore", cls=click.Command)
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--signing-fingerprint",
    required=True,
    help="The instance signing key's fingerprint, as 'peluit init' and the admin page show it.",
)
@click.option(
    "--backup-key-home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A GnuPG home holding the backup key's SECRET half (e.g. on a USB stick). Without it, "
    "ARCHIVE must already be unwrapped (gpg --unwrap) on the offline machine.",
)
@click.option("--force", is_flag=True, help="Replace an initialised instance (kept beside it).")
@click.pass_context
def restore(
    ctx: click.Context,
    archive: Path,
    signing_fingerprint: str,
    backup_key_home: Path | None,
    force: bool,
) -> None:
    """Restore ARCHIVE; its signature and every file's hash are checked before anything changes."""
    config = config_of(ctx)
    result = backups.restore_backup(
        config, archive, signing_fingerprint, backup_key_home=backup_key_home, force=force
    )
    click.echo(
        f"restored {result.files} files into {config.instance_dir}; "
        f"database at revision {result.revision}"
    )
    for path in result.set_aside:
        click.echo(f"the replaced data is kept in {path}; remove it when satisfied")
    if result.revision != db.head_revision():
        click.echo("this code needs a newer schema: run 'peluit upgrade'")
    click.echo("then run 'peluit store publish' and 'peluit onion publish'")


@click.command("upgrade")
@click.option(
    "--backup-to",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the backup taken first goes (a folder or a file name).",
)
@click.option(
    "--without-backup", is_flag=True, help="Migrate without taking a backup first (not advised)."
)
@click.pass_context
def upgrade(ctx: click.Context, backup_to: Path | None, without_backup: bool) -> None:
    """Take a backup, then apply pending database migrations; print what changed."""
    config = config_of(ctx)
    pending = backups.pending_migrations(config)
    if not pending:
        click.echo(f"nothing to do: the database is at revision {db.head_revision()}")
        return
    if not without_backup:
        if backup_to is None:
            raise click.UsageError("give --backup-to DIR (or --without-backup)")
        _write(ctx, backup_to)
    db.upgrade(config.database_url, "head", totp_key=totp_key(load_secrets(config.instance_dir)))
    for migration in pending:
        click.echo(f"applied {migration.revision}: {migration.title}")
    click.echo(f"database at revision {db.head_revision()}; now restart the Peluit services")
