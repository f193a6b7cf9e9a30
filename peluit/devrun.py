"""The development run: ``peluit run`` serves both interfaces on loopback and, when tor is
installed, publishes their onions through a private tor; ``peluit init --demo`` adds the demo
tenants, accounts and keys. Production runs the interfaces under gunicorn and the system tor
(``deploy/``), with the operator's commands of :mod:`peluit.operator_commands`.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import threading
from contextlib import ExitStack
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from peluit.clikit import INVESTIGATOR_PORT, SOURCE_PORT, opened
from peluit.demo import DEMO_ACCOUNTS, ensure_demo
from peluit.devserver import LOOPBACK, loopback_server
from peluit.devtor import DevTorError, start_private_tor, stop
from wbs import onion as onions
from wbs import retention
from wbs.accounts import AccountError, get_investigator
from wbs.config import Config
from wbs.instance import Instance
from wbs.onion import UploadWatch
from wbs.tenants import list_tenants
from wbs.workdays import DEFAULT_TIMEZONE, local_date


def set_up_demo(config: Config, workstation: Path | None) -> None:
    """Create the demo tenants, accounts and keys; the keys' secret halves go to
    ``workstation`` (default: demo-workstation beside the instance), never to the server."""
    workstation = workstation or config.instance_dir.parent / "demo-workstation"
    workstation = workstation.absolute()
    with Instance.open(config) as instance, instance.sessions() as session:
        settings = instance.auth_settings()
        for line in ensure_demo(session, instance.keyring, workstation, settings=settings):
            click.echo(line)
    click.echo(
        f"demo workstation: {workstation} holds the demo keys' secret halves (never the "
        f"server); read a stored item with: gpg --homedir {workstation / 'gnupg'} "
        "--decrypt FILE"
    )


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), default=SOURCE_PORT, show_default=True)
@click.option(
    "--investigator-port",
    type=click.IntRange(1, 65535),
    default=INVESTIGATOR_PORT,
    show_default=True,
    help="Port of the investigator interface (also on 127.0.0.1).",
)
@click.option(
    "--tor/--no-tor",
    "use_tor",
    default=True,
    show_default=True,
    help="Publish onion services: through TOR_CONTROL if set, else a private tor if installed.",
)
@click.pass_context
def run(ctx: click.Context, port: int, investigator_port: int, use_tor: bool) -> None:
    """Serve the source and investigator interfaces on 127.0.0.1 (onion services come with
    tor)."""
    # Imported here, not at the top: the operator's other commands need not load Flask and
    # both interfaces.
    from journalist_iface import create_app as create_investigator_app
    from source_iface import create_app

    # systemd and `timeout` stop with SIGTERM: leave as on Ctrl-C, through the cleanup below.
    # Installed before anything starts, so that no child (the private tor) outlives a SIGTERM.
    signal.signal(signal.SIGTERM, _interrupt)
    with opened(ctx) as instance, ExitStack() as cleanup:
        removed = instance.sweep_store()
        with instance.sessions() as session:
            retention.purge(session)
            tenants = list_tenants(session)
        if removed:
            click.echo(f"removed {len(removed)} unfinished upload(s) from the store")
        instance.publish_store()
        stop_publishing = threading.Event()
        threading.Thread(
            target=publish_at_boundaries,
            args=(instance, stop_publishing),
            name="peluit-store-publish",
            daemon=True,
        ).start()
        cleanup.callback(stop_publishing.set)
        # Development: /t/<slug>/ paths stay on even once tenants have onion addresses.
        app = create_app(instance, dev_tenant_paths=True)
        server = loopback_server(app, port)
        cleanup.callback(server.server_close)
        investigator_server = loopback_server(create_investigator_app(instance), investigator_port)
        cleanup.callback(investigator_server.server_close)
        base = f"http://{LOOPBACK}:{port}"
        click.echo(f"Peluit source interface on {base}/ (loopback only; Ctrl-C stops it)")
        for item in tenants:
            click.echo(f"  {item.name}: {base}/t/{item.slug}/")
        click.echo(
            f"Peluit investigator interface on http://{LOOPBACK}:{investigator_port}/ "
            "(loopback only)"
        )
        try:
            if use_tor:
                # Every exit path from here (an error, SIGTERM, Ctrl-C) stops the private tor:
                # _publish_onions registers its stop on ``cleanup`` as soon as tor runs.
                _publish_onions(instance, port, investigator_port, cleanup)
            # The investigator interface runs in a second thread; both stop with Ctrl-C.
            investigator_thread = threading.Thread(
                target=investigator_server.serve_forever, name="peluit-investigator", daemon=True
            )
            investigator_thread.start()
            cleanup.callback(investigator_server.shutdown)
            # Werkzeug's serve_forever ends quietly on KeyboardInterrupt (Ctrl-C, SIGTERM).
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        click.echo("stopped")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _publish_onions(
    instance: Instance, port: int, investigator_port: int, cleanup: ExitStack
) -> None:
    """Publish the onions for ``run``; a private tor started here is stopped by ``cleanup``.

    Never stops ``run``: without tor the interfaces still serve loopback, and it says why.
    """
    spec = os.environ.get(onions.CONTROL_ENV)
    try:
        if spec is None:
            if shutil.which("tor") is None:
                click.echo(
                    "No onion services: tor is not installed (apt-get install tor); "
                    "serving loopback only."
                )
                return
            process, spec = start_private_tor(instance.config.instance_dir / "tor")
            cleanup.callback(stop, process)
            # The admin page withdraws a deactivated account's client key from tor at once
            # (wbs.onion.revoke_client_access); it finds this private tor here.
            os.environ[onions.CONTROL_ENV] = spec
        _demo_client_keys(instance)
        # This connection stays open while run serves: it hears tor's HS_DESC events, and an
        # onion is announced as published only once its descriptor upload succeeded.
        controller = cleanup.enter_context(onions.connect(spec))
        names: dict[str, str] = {}

        def announce(address: str) -> None:
            if address in names:
                click.echo(f"  onion {names[address]}: published (descriptor uploaded)")

        watch = UploadWatch(controller, announce)
        cleanup.callback(watch.close)
        onions.publish_all(controller, instance, port, investigator_port)
        progress = onions.bootstrap_progress(controller)
        confirmed = watch.confirmed()
        for item in onions.status(controller, instance):
            if item.address and item.name != "other":
                address = item.address.removesuffix(".onion")
                names[address] = item.name
                state = onions.publication_state(address in confirmed, item.accepted, progress)
                click.echo(f"  onion {item.name}: http://{item.address}/ ({state})")
        for address in watch.confirmed() - confirmed:
            announce(address)  # confirmed while the lines above were printed
        click.echo(
            "Onion services are added to tor; each is announced here once its descriptor is "
            "uploaded."
        )
    except (onions.OnionError, DevTorError) as exc:
        click.echo(f"No onion services ({exc}); serving loopback only.")


def _demo_client_keys(instance: Instance) -> None:
    """Give each demo account a client key for the investigator onion, printed once.

    An instance made without ``--demo`` has no demo accounts: nothing to do for it.
    """
    with instance.sessions() as session:
        for demo in DEMO_ACCOUNTS:
            try:
                account = get_investigator(session, demo.username)
            except AccountError:
                continue
            known = onions.client_public_keys(instance)
            if account.active and demo.username not in known:
                key = onions.generate_client_key(instance, account)
                click.echo(
                    f"  client key of {demo.username} (Tor Browser .auth_private, "
                    f"shown once): {key.auth_private}"
                )


def next_boundary(now: dt.datetime, minutes: int) -> dt.datetime:
    """The first publication boundary after ``now``: a multiple of ``minutes`` after midnight
    WIB (the configuration makes ``minutes`` divide the day)."""
    day = local_date(now)
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(DEFAULT_TIMEZONE))
    step = dt.timedelta(minutes=minutes)
    passed = (now - midnight) // step
    return midnight + (passed + 1) * step


def publish_at_boundaries(instance: Instance, stop: threading.Event) -> None:
    """Publish the store at each boundary until ``stop`` is set: the development run's stand-in
    for production's systemd timer (deploy/systemd/peluit-store-publish.timer)."""
    minutes = instance.config.store_publish_minutes
    while True:
        now = dt.datetime.now(dt.UTC)
        if stop.wait((next_boundary(now, minutes) - now).total_seconds()):
            return
        try:
            instance.publish_store()
        except Exception as exc:  # a failed run is retried at the next boundary
            click.echo(f"store not published ({type(exc).__name__}); retried at the next boundary")
