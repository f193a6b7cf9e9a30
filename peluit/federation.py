"""``peluit federation``: join a hub, add and revoke members, sync, and see the link.

The offline exchange (docs/federation.md): on the member, ``request``; on the hub,
``add-member`` with the fingerprint the member's operator read out; on the member, ``join``
with the fingerprint the hub's operator read out. Then the member syncs on a timer
(``sync``), and both sides read ``status``.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import click

from peluit.clikit import FEDERATION_PORT, OperatorGroup, opened
from peluit.devserver import loopback_server
from wbs import onion as onions
from wbs.federation import status as link_status
from wbs.federation.exchange import SyncError, resync, sync
from wbs.federation.peers import (
    FederationError,
    add_member,
    allow_instansi,
    join,
    join_request,
    leave,
    own_fingerprint,
    revoke_member,
)
from wbs.federation.transport import onion_poster, poster


class FederationGroup(OperatorGroup):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (FederationError, SyncError, onions.OnionError) as exc:
            raise click.ClickException(str(exc)) from None


def _write_secret(path: Path, data: bytes) -> None:
    """Mode 0600 from the first byte; refuses to overwrite (a ticket holds a client key)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _read(path: Path) -> bytes:
    return path.read_bytes()


@click.group(cls=FederationGroup)
def federation() -> None:
    """Federation: this installation as a hub's member, or as the hub of members."""


@federation.command("fingerprint")
@click.pass_context
def fingerprint(ctx: click.Context) -> None:
    """This installation's instance key fingerprint, to read out to the other operator."""
    with opened(ctx) as instance:
        click.echo(own_fingerprint(instance))


@federation.command("request")
@click.argument("name")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.pass_context
def request(ctx: click.Context, name: str, out: Path) -> None:
    """A member: write a join request for the hub (carry it offline)."""
    with opened(ctx) as instance:
        data = join_request(instance, name)
        out.write_bytes(data)
        click.echo(f"join request for {name} written to {out}")
        click.echo(f"read this fingerprint to the hub's operator: {own_fingerprint(instance)}")


@federation.command("add-member")
@click.argument("request_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--fingerprint", "member_fingerprint", required=True,
              help="The member's fingerprint, as its operator read it out to you.")
@click.option("--ticket", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where the join ticket goes (mode 0600: it holds the member's client key).")
@click.pass_context
def add_member_command(
    ctx: click.Context, request_file: Path, member_fingerprint: str, ticket: Path
) -> None:
    """A hub: add the member whose request this is; write its join ticket."""
    if ticket.exists():
        # Checked before the member is added: its ticket (its only client key) must not be
        # lost to a refused write after the member exists.
        raise click.ClickException(f"{ticket} exists already: name a new file for the ticket")
    with opened(ctx) as instance:
        added = add_member(instance, _read(request_file), member_fingerprint)
        _write_secret(ticket, added.ticket)
        click.echo(f"member {added.peer.name} added; its join ticket is in {ticket}")
        click.echo(f"its instansi: {', '.join(added.peer.instansi) or '(none yet)'}")
        click.echo(f"read this fingerprint to the member's operator: {own_fingerprint(instance)}")
        click.echo("publish the federation onion again: peluit onion publish")


@federation.command("allow")
@click.argument("name")
@click.argument("slug")
@click.pass_context
def allow(ctx: click.Context, name: str, slug: str) -> None:
    """A hub: let member NAME run one more instansi, SLUG (a new tenant there)."""
    with opened(ctx) as instance:
        allow_instansi(instance, name, slug)
        click.echo(f"{name} may now send the handling of {slug}")


@federation.command("join")
@click.argument("ticket_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--hub-fingerprint", required=True,
              help="The hub's fingerprint, as its operator read it out to you.")
@click.pass_context
def join_command(ctx: click.Context, ticket_file: Path, hub_fingerprint: str) -> None:
    """A member: join the hub whose ticket this is."""
    with opened(ctx) as instance:
        peer = join(instance, _read(ticket_file), hub_fingerprint)
        click.echo(f"joined hub {peer.name} at {peer.onion_address}")
        click.echo(f"the ticket holds a secret: delete {ticket_file} now")


@federation.command("revoke")
@click.argument("name")
@click.pass_context
def revoke(ctx: click.Context, name: str) -> None:
    """A hub: revoke a member; refused from now on."""
    with opened(ctx) as instance:
        result = revoke_member(instance, name, os.environ.get(onions.CONTROL_ENV))
        click.echo(f"{name} revoked: its requests are refused; {result.note}")


@federation.command("leave")
@click.pass_context
def leave_command(ctx: click.Context) -> None:
    """A member: leave the hub (its key is no longer trusted here)."""
    with opened(ctx) as instance:
        peer = leave(instance)
        click.echo(f"left hub {peer.name}; ask its operator to revoke this member")


@federation.command("sync")
@click.option("--url", default=None,
              help="Reach the hub at this URL directly (tests on loopback only); "
                   "otherwise its onion through tor.")
@click.option("--socks", default=None, help="tor's SOCKS port (default: $TOR_SOCKS or "
              "127.0.0.1:9050).")
@click.pass_context
def sync_command(ctx: click.Context, url: str | None, socks: str | None) -> None:
    """A member: send what changed to the hub and apply what it sent."""
    with opened(ctx) as instance:
        if url is not None:
            post = poster(url)
        else:
            with onions.connect(os.environ.get(onions.CONTROL_ENV)) as controller:
                hub_onion = onions.load_hub_client_auth(controller, instance)
            post = onion_poster(hub_onion, socks)
        result = sync(instance, post)
        click.echo(
            f"synced: {result.sent} sent, {result.received} received, {result.pending} pending"
        )


@federation.command("resync")
@click.argument("name", required=False)
@click.pass_context
def resync_command(ctx: click.Context, name: str | None) -> None:
    """Start the link with NAME (or every link) over: both sides number from one again and
    send everything again by difference; nothing is stored twice. A restore from a backup
    does this by itself at the next exchange; this is for a database restored otherwise."""
    with opened(ctx) as instance:
        names = resync(instance, name)
        click.echo("starting over: " + (", ".join(names) or "no active link"))


def _when(value: dt.datetime | None) -> str:
    return "never" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


@federation.command("status")
@click.pass_context
def status(ctx: click.Context) -> None:
    """The link: last sync, lag, pending and refused messages, per peer."""
    with opened(ctx) as instance:
        lines = link_status.links(instance)
        if not lines:
            click.echo("not federated: no hub joined, no member added")
        for line in lines:
            click.echo(
                f"{line.role} {line.name}\t{line.status}\tlast sync {_when(line.last_contact)}"
                f"\tlag {line.lag_text}\tpending {line.pending}\treceived {line.received}"
                f"\trefused {line.refused}"
                + (f"\terror: {line.last_error}" if line.last_error else "")
            )


@federation.command("serve")
@click.option("--port", type=click.IntRange(1, 65535), default=FEDERATION_PORT, show_default=True)
@click.pass_context
def serve(ctx: click.Context, port: int) -> None:
    """A hub: serve the federation endpoint on loopback (for the federation onion)."""
    from federation_iface import create_app

    with opened(ctx) as instance:
        server = loopback_server(create_app(instance), port)
        click.echo(f"federation endpoint on 127.0.0.1:{port}")
        try:
            server.serve_forever()
        finally:
            server.server_close()
