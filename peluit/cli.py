"""``peluit``: the operator's command line. The root group and ``init`` live here; the
operator's commands in :mod:`peluit.operator_commands`, the development run in
:mod:`peluit.devrun`.

Errors the operator can fix (a bad setting, a refused key, an unknown tenant) are printed as one
clear line and exit with status 1; never a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from peluit import alerts, backup, devrun, doctor, federation, operator_commands
from peluit.clikit import OperatorGroup, config_of
from peluit.devrun import set_up_demo
from wbs.config import ConfigError, load_config
from wbs.instance import init_instance, signer_for


@click.group(cls=OperatorGroup)
@click.option(
    "--instance",
    "instance_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="PELUIT_INSTANCE",
    default="instance",
    show_default=True,
    help="The instance folder (database, store, keyring, secrets).",
)
@click.pass_context
def main(ctx: click.Context, instance_dir: Path) -> None:
    """Peluit: an anonymous, Tor-only drop box for corruption reports."""
    # Everything an operator command creates (database, keyring, store) is for this user only.
    os.umask(0o077)
    try:
        config = load_config(instance_dir=instance_dir)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    ctx.obj = {"config": config}


@main.command()
@click.option("--demo", is_flag=True, help="Also create the demo tenants and their keys.")
@click.option(
    "--demo-workstation",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the demo keys' secret halves go (default: demo-workstation beside the instance).",
)
@click.pass_context
def init(ctx: click.Context, demo: bool, demo_workstation: Path | None) -> None:
    """Create the instance: database, secrets, keyring, store. Keeps whatever exists."""
    config = config_of(ctx)
    init_instance(config)
    click.echo(f"instance ready in {config.instance_dir}")
    with signer_for(config) as signer:
        fingerprint = signer.fingerprint
    # The workstation pins this key with its first bundle and asks investigators to compare
    # the fingerprint with the admin page (Administrasi > Kunci penerima), which shows it too.
    click.echo(f"instance signing key fingerprint: {fingerprint}")
    if demo:
        set_up_demo(config, demo_workstation)


for command in (
    operator_commands.tenant,
    operator_commands.key,
    operator_commands.db_group,
    operator_commands.investigator,
    operator_commands.onion,
    operator_commands.purge,
    operator_commands.store,
    doctor.doctor,
    devrun.run,
    backup.backup_key,
    backup.backup,
    backup.restore,
    backup.upgrade,
    alerts.alerts,
    federation.federation,
):
    main.add_command(command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
