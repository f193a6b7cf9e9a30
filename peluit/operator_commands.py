"""The operator's commands: tenants, recipient keys, the database, investigator accounts and
onion services. The same in production and in a demo; the development run is in
:mod:`peluit.devrun`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

import click
import segno

from peluit.clikit import (
    FEDERATION_PORT,
    INVESTIGATOR_PORT,
    SOURCE_PORT,
    AccountGroup,
    OperatorGroup,
    config_of,
    opened,
)
from wbs import db, retention, tallies
from wbs import onion as onions
from wbs.accounts import (
    Enrolment,
    create_investigator,
    deactivate,
    get_investigator,
    list_investigators,
    reset_password,
    reset_totp,
    start_enrolment,
    totp_key,
)
from wbs.config import Config, load_secrets
from wbs.domain import Role, TenantKind
from wbs.instance import Instance
from wbs.tenants import (
    add_recipient_key,
    create_tenant,
    get_tenant,
    list_tenants,
    recipient_keys,
    revoke_recipient_key,
)

# --- tenants ------------------------------------------------------------------------------------


@click.group()
def tenant() -> None:
    """Institutions (instansi) served by this instance."""


@tenant.command("add")
@click.argument("slug")
@click.option("--name", required=True, help="Full name, e.g. 'Pemerintah Kota Palembang'.")
@click.option(
    "--kind",
    type=click.Choice([kind.value for kind in TenantKind]),
    required=True,
    help="What kind of instansi; 'hub' is KPK.",
)
@click.option("--province", default=None)
@click.option(
    "--first-response-days",
    type=click.IntRange(min=1),
    default=None,
    help="First-response deadline in working days (default: the instance's).",
)
@click.pass_context
def tenant_add(
    ctx: click.Context,
    slug: str,
    name: str,
    kind: str,
    province: str | None,
    first_response_days: int | None,
) -> None:
    """Add a tenant."""
    days = first_response_days or config_of(ctx).first_response_days
    with opened(ctx) as instance, instance.sessions() as session:
        created = create_tenant(
            session,
            slug=slug,
            name=name,
            kind=TenantKind(kind),
            province=province,
            first_response_days=days,
        )
        session.commit()
        # Its store folder now, so that no pelapor's first report makes it (and dates it).
        instance.store.ensure_tenant(created.slug)
        click.echo(f"added tenant {created.slug}: {created.name}")
        _publish_new_tenant(instance, created.slug)


def _publish_new_tenant(instance: Instance, slug: str) -> None:
    """Put a new tenant online at once when tor is configured; otherwise say how."""
    if not os.environ.get(onions.CONTROL_ENV):
        click.echo(f"no {onions.CONTROL_ENV} set: run 'peluit onion publish' to put it online")
        return
    try:
        with onions.connect() as controller:
            published = onions.publish_tenant(controller, instance, slug, SOURCE_PORT)
        click.echo(
            f"onion of {slug}: http://{published.address}/ (added to tor; "
            "'peluit onion status' says once it is published)"
        )
    except onions.OnionError as exc:
        click.echo(f"not published yet ({exc}); run 'peluit onion publish' when tor is up")


@tenant.command("list")
@click.pass_context
def tenant_list(ctx: click.Context) -> None:
    """List tenants with their number of current recipient keys."""
    with opened(ctx) as instance, instance.sessions() as session:
        for item in list_tenants(session):
            keys = [k for k in recipient_keys(session, item) if k.revoked_at is None]
            hub = " [hub]" if item.is_hub else ""
            click.echo(f"{item.slug}\t{item.name}{hub}\t{len(keys)} key(s)")


# --- recipient keys ----------------------------------------------------------------------------


@click.group()
def key() -> None:
    """Recipient public keys of a tenant (their secret halves stay on the workstation)."""


@key.command("import")
@click.argument("tenant_slug")
@click.argument("key_file", type=click.File("rb"))
@click.option("--owner", default=None, help="Whose key this is, e.g. 'Inspektorat, tim 1'.")
@click.pass_context
def key_import(ctx: click.Context, tenant_slug: str, key_file: Any, owner: str | None) -> None:
    """Import a PUBLIC key as a recipient of TENANT_SLUG's reports ('-' reads stdin)."""
    data = key_file.read()
    with opened(ctx) as instance, instance.sessions() as session:
        target = get_tenant(session, tenant_slug)
        # As read: armored or binary, the key checks take either (and refuse a secret key).
        added = add_recipient_key(session, instance.keyring, target, data, owner=owner)
        session.commit()
        click.echo(f"imported {added.fingerprint} for {target.slug}")


@key.command("list")
@click.argument("tenant_slug")
@click.pass_context
def key_list(ctx: click.Context, tenant_slug: str) -> None:
    """List a tenant's recipient keys."""
    with opened(ctx) as instance, instance.sessions() as session:
        for item in recipient_keys(session, get_tenant(session, tenant_slug)):
            state = "revoked" if item.revoked_at else "current"
            click.echo(f"{item.fingerprint}\t{state}\t{item.owner or ''}")


@key.command("revoke")
@click.argument("tenant_slug")
@click.argument("fingerprint")
@click.pass_context
def key_revoke(ctx: click.Context, tenant_slug: str, fingerprint: str) -> None:
    """Stop encrypting new reports of TENANT_SLUG to FINGERPRINT."""
    with opened(ctx) as instance, instance.sessions() as session:
        revoked = revoke_recipient_key(session, get_tenant(session, tenant_slug), fingerprint)
        session.commit()
        click.echo(f"revoked {revoked.fingerprint} for {tenant_slug}")


# --- database -----------------------------------------------------------------------------------


@click.command("purge")
@click.pass_context
def purge(ctx: click.Context) -> None:
    """Forget what is kept only for a while: ended sessions, codenames that never reported.

    Run daily (deploy/systemd/peluit-purge.timer); safe while the servers run.
    """
    with opened(ctx) as instance, instance.sessions() as session:
        purged = retention.purge(session)
    click.echo(
        f"purged {purged.source_sessions} pelapor session(s), "
        f"{purged.investigator_sessions} investigator session(s), "
        f"{purged.abandoned_sources} codename(s) that never reported"
    )


@click.group("store")
def store() -> None:
    """The ciphertext store."""


@store.command("publish")
@click.pass_context
def store_publish(ctx: click.Context) -> None:
    """Give every file in the store its day as its time, and fill the pool of empty files.

    Run at fixed boundaries (deploy/systemd/peluit-store-publish.timer, hourly) and at each
    start of the servers; idempotent, and safe while the servers run. Prints counts only.
    """
    with opened(ctx) as instance:
        done = instance.publish_store()
    click.echo(
        f"store published: {done.files} file(s) dated to their day, {done.replaced} fresh "
        f"file(s) moved into pool files, {done.pool} empty file(s) in the pool "
        f"({done.made} new), {done.moved} item(s) moved out of per-source folders"
    )


@click.group("db")
def db_group() -> None:
    """Database migrations (Alembic)."""


def _migrate(ctx: click.Context, step: Callable[..., None], revision: str) -> None:
    config = config_of(ctx)
    # The secrets' TOTP key: migrations seal (or, going down, open) investigators' secrets.
    step(config.database_url, revision, totp_key=totp_key(load_secrets(config.instance_dir)))
    click.echo(f"database at revision {_revision(config)}")


@db_group.command("upgrade")
@click.argument("revision", default="head")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    _migrate(ctx, db.upgrade, revision)


@db_group.command("downgrade")
@click.argument("revision")
@click.pass_context
def db_downgrade(ctx: click.Context, revision: str) -> None:
    """Revert migrations down to REVISION ('base' empties the database)."""
    _migrate(ctx, db.downgrade, revision)


@db_group.command("current")
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """Print the database's revision."""
    click.echo(_revision(config_of(ctx)))


@db_group.command("tallies")
@click.pass_context
def db_tallies(ctx: click.Context) -> None:
    """Count the dashboards' tallies again from the cases, and (re)install their triggers.

    For when ``peluit doctor`` reports them wrong (a database repaired or migrated by hand).
    One transaction; the dashboards read the old counts until it commits.
    """
    engine = db.make_engine(config_of(ctx).database_url)
    try:
        with engine.begin() as connection:
            tallies.install(connection)
            tallies.refill(connection)
        with engine.connect() as connection:
            found = tallies.problems(connection)
    finally:
        engine.dispose()
    if found:
        raise click.ClickException("; ".join(found))
    click.echo("tallies counted again from the cases")


def _revision(config: Config) -> str:
    engine = db.make_engine(config.database_url)
    try:
        return db.current_revision(engine) or "base (empty)"
    finally:
        engine.dispose()


# --- investigator accounts ----------------------------------------------------------------------




def _echo_enrolment(enrolment: Enrolment, qr: bool) -> None:
    # Printed, never logged: the operator hands these over in person, once.
    click.echo(f"TOTP secret: {enrolment.secret}")
    click.echo(f"otpauth URI: {enrolment.uri}")
    if qr:
        out = io.StringIO()
        segno.make(enrolment.uri, error="m").terminal(out=out, compact=True)
        click.echo(out.getvalue(), nl=False)


@click.group(cls=AccountGroup)
def investigator() -> None:
    """Investigator accounts: verifikator, admin instansi, pemantau KPK."""


@investigator.command("add")
@click.argument("tenant_slug")
@click.argument("username")
@click.option("--name", required=True, help="Display name, e.g. 'Siti Aminah (Inspektorat)'.")
@click.option(
    "--role",
    type=click.Choice([role.value for role in Role]),
    required=True,
    help="pemantau_kpk only in the hub tenant (KPK).",
)
@click.option("--qr", is_flag=True, help="Also draw the TOTP QR code in the terminal.")
@click.pass_context
def investigator_add(
    ctx: click.Context, tenant_slug: str, username: str, name: str, role: str, qr: bool
) -> None:
    """Add an account; print its passphrase and TOTP secret ONCE, to hand over."""
    with opened(ctx) as instance, instance.sessions() as session:
        # The instance's argon2id cost (tests and small machines make it cheap) and TOTP key.
        settings = instance.auth_settings()
        target = get_tenant(session, tenant_slug)
        account, passphrase = create_investigator(
            session, target, username, name, Role(role), settings=settings
        )
        enrolment = start_enrolment(session, account, settings=settings)
        session.commit()
    click.echo(f"added {account.username} ({account.role.value}) to {target.slug}")
    click.echo("Shown once; hand these over in person. The first login activates the TOTP.")
    click.echo(f"passphrase: {passphrase}")
    _echo_enrolment(enrolment, qr)


@investigator.command("list")
@click.argument("tenant_slug")
@click.pass_context
def investigator_list(ctx: click.Context, tenant_slug: str) -> None:
    """List a tenant's accounts: username, role, state, 2FA, last login."""
    with opened(ctx) as instance, instance.sessions() as session:
        for item in list_investigators(session, get_tenant(session, tenant_slug)):
            state = "active" if item.active else "inactive"
            if item.totp_secret_sealed is not None:
                totp = "2fa"
            elif item.totp_pending_sealed is not None:
                totp = "2fa-pending"
            else:
                totp = "no-2fa"
            last = item.last_login_at.strftime("%Y-%m-%d %H:%M UTC") if item.last_login_at else "-"
            click.echo(
                f"{item.username}\t{item.role.value}\t{state}\t{totp}\t{last}\t{item.display_name}"
            )


@investigator.command("deactivate")
@click.argument("username")
@click.pass_context
def investigator_deactivate(ctx: click.Context, username: str) -> None:
    """Deactivate an account and end its sessions (accounts are never deleted)."""
    with opened(ctx) as instance, instance.sessions() as session:
        account = get_investigator(session, username)
        deactivate(session, account)
        session.commit()
        # TOR_CONTROL or Debian's socket, like `peluit onion` without --tor-control.
        revocation = onions.revoke_client_access(instance, account.username)
    click.echo(f"deactivated {account.username}; its sessions are ended")
    click.echo(f"its client key for the investigator onion is removed: {revocation.note}")
    if not revocation.in_effect:
        click.echo("run 'peluit onion publish' once tor is reachable", err=True)


@investigator.command("reset-2fa")
@click.argument("username")
@click.option("--qr", is_flag=True, help="Also draw the TOTP QR code in the terminal.")
@click.pass_context
def investigator_reset_2fa(ctx: click.Context, username: str, qr: bool) -> None:
    """Replace an account's TOTP secret (the old one stops working) and end its sessions."""
    with opened(ctx) as instance, instance.sessions() as session:
        # The instance's argon2id cost (tests and small machines make it cheap) and TOTP key.
        settings = instance.auth_settings()
        account = get_investigator(session, username)
        enrolment = reset_totp(session, account, settings=settings)
        session.commit()
    click.echo(f"new TOTP secret for {account.username}; its sessions are ended")
    click.echo("Shown once; hand it over in person. The next login activates it.")
    _echo_enrolment(enrolment, qr)


@investigator.command("reset-password")
@click.argument("username")
@click.pass_context
def investigator_reset_password(ctx: click.Context, username: str) -> None:
    """Give an account a new generated passphrase and end its sessions."""
    with opened(ctx) as instance, instance.sessions() as session:
        # The instance's argon2id cost (tests and small machines make it cheap) and TOTP key.
        settings = instance.auth_settings()
        account = get_investigator(session, username)
        passphrase = reset_password(session, account, settings=settings)
        session.commit()
    click.echo(f"new passphrase for {account.username}; its sessions are ended")
    click.echo(f"passphrase: {passphrase}")


# --- onion services -----------------------------------------------------------------------------
# tor's control port: --tor-control or TOR_CONTROL (unix:/path, host:port or port; default
# Debian's /run/tor/control). A config key `tor_control` is proposed to replace both.

_PORT = click.IntRange(1, 65535)


@click.group(cls=OperatorGroup)
@click.option(
    "--tor-control",
    envvar="TOR_CONTROL",
    default="unix:/run/tor/control",
    show_default=True,
    help="tor's control socket (unix:/path) or port (host:port); cookie authentication.",
)
@click.pass_context
def onion(ctx: click.Context, tor_control: str) -> None:
    """Onion services: one per tenant, one for investigators (client authorization)."""
    ctx.obj["tor_control"] = tor_control


def _tor(ctx: click.Context) -> Any:
    return onions.connect(ctx.obj["tor_control"])


@onion.command("status")
@click.option(
    "--wait",
    type=click.FloatRange(1, 600),
    default=30,
    show_default=True,
    help="Seconds to wait for tor to fetch each descriptor back from the directories.",
)
@click.pass_context
def onion_status(ctx: click.Context, wait: float) -> None:
    """Which onions are published (their descriptor is on the directories), by tenant; and the
    investigator onion's clients. An onion tor merely accepted is not published."""
    with opened(ctx) as instance, _tor(ctx) as controller:
        progress = onions.bootstrap_progress(controller)
        for item in onions.status(controller, instance, confirm_seconds=wait):
            state = onions.publication_state(item.published, item.accepted, progress)
            clients = "" if item.clients is None else f"\t{item.clients} client key(s)"
            click.echo(f"{item.name}\t{item.address or '(no key yet)'}\t{state}{clients}")


@onion.command("addresses")
@click.pass_context
def onion_addresses(ctx: click.Context) -> None:
    """Every onion's address, without tor: each tenant's and the investigator onion's key is
    made on first use (mode 0600) and the tenant's address recorded, as publishing would."""
    with opened(ctx) as instance:
        with instance.sessions() as session:
            slugs = [item.slug for item in list_tenants(session)]
        for slug in slugs:
            key = onions.assign_tenant_address(instance, slug)
            click.echo(f"tenant:{slug}\t{key.hostname}")
        click.echo(f"{onions.INVESTIGATOR_SERVICE}\t{onions.investigator_key(instance).hostname}")


@onion.command("publish")
@click.option("--source-port", type=_PORT, default=SOURCE_PORT, show_default=True)
@click.option("--journalist-port", type=_PORT, default=INVESTIGATOR_PORT, show_default=True)
@click.option("--federation-port", type=_PORT, default=FEDERATION_PORT, show_default=True)
@click.option("--replace", is_flag=True, help="Re-add onions tor already serves.")
@click.pass_context
def onion_publish(
    ctx: click.Context, source_port: int, journalist_port: int, federation_port: int,
    replace: bool,
) -> None:
    """Publish every tenant's onion and the investigator onion (same addresses every time);
    on a hub with federation members, the federation onion for them."""
    with opened(ctx) as instance, _tor(ctx) as controller:
        for item in onions.publish_all(
            controller, instance, source_port, journalist_port, replace=replace,
            federation_port=federation_port,
        ):
            pow_note = "" if item.pow_defenses is not False else " (tor without PoW defences)"
            click.echo(f"{item.name}\t{item.address}\t{item.action}{pow_note}")


@onion.group("client-key", cls=AccountGroup)
def client_key() -> None:
    """Investigators' client authorization keys for the investigator onion (one each)."""


def _republish_investigator(ctx: click.Context, instance: Instance, journalist_port: int) -> None:
    with _tor(ctx) as controller:
        result = onions.publish_investigator(controller, instance, journalist_port, replace=True)
    click.echo(f"investigator onion {result.address}: {result.action}, {result.clients} client(s)")


@client_key.command("add")
@click.argument("username")
@click.option("--journalist-port", type=_PORT, default=INVESTIGATOR_PORT, show_default=True)
@click.pass_context
def client_key_add(ctx: click.Context, username: str, journalist_port: int) -> None:
    """Make USERNAME a new client key (replacing its old one); print the private key ONCE."""
    with opened(ctx) as instance:
        with instance.sessions() as session:
            account = get_investigator(session, username)
        made = onions.generate_client_key(instance, account)
        click.echo(f"client key for {made.username}; shown once, hand it over in person.")
        click.echo(f"Save as {made.username}.auth_private and import it in Tor Browser")
        click.echo("(Settings > Privacy & Security > Onion Services Authentication):")
        click.echo(made.auth_private)
        try:
            _republish_investigator(ctx, instance, journalist_port)
        except onions.OnionError as exc:
            click.echo(f"not yet in effect: {exc}; run 'peluit onion publish --replace'", err=True)


@client_key.command("revoke")
@click.argument("username")
@click.option("--journalist-port", type=_PORT, default=INVESTIGATOR_PORT, show_default=True)
@click.pass_context
def client_key_revoke(ctx: click.Context, username: str, journalist_port: int) -> None:
    """Remove USERNAME's client key and re-publish the investigator onion without it."""
    with opened(ctx) as instance:
        if not onions.revoke_client_key(instance, username):
            raise click.ClickException(f"{username} has no client key")
        click.echo(f"removed the client key of {username}")
        try:
            _republish_investigator(ctx, instance, journalist_port)
        except onions.OnionError as exc:
            raise click.ClickException(
                f"the key is removed from disk but tor still accepts it until the "
                f"investigator onion is published again ({exc}): run "
                "'peluit onion publish --replace'"
            ) from None


@client_key.command("list")
@click.pass_context
def client_key_list(ctx: click.Context) -> None:
    """Investigators holding a client key."""
    with opened(ctx) as instance:
        for username in onions.client_public_keys(instance):
            click.echo(username)
