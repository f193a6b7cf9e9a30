"""Installations for the federation tests: a hub (the demo instance: KPK and a province) and
members, each a separate instance with its own database, store, keyring and signing key."""

from __future__ import annotations

import datetime as dt
import io
import os
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from crypto.padding import unframe
from federation_iface import create_app
from tests.conftest import DemoInstance, open_demo
from tests.support import CHEAP_KDF, short_tempdir
from wbs.accounts import create_investigator
from wbs.bundle import write_bundle
from wbs.config import Config, load_config
from wbs.context import Context
from wbs.domain import CaseStatus, Role, TenantKind
from wbs.federation.exchange import Post, SyncError
from wbs.federation.peers import add_member, join, join_request, own_fingerprint
from wbs.federation.wire import Message, new_envelope, seal
from wbs.forwarding import accept_forward, signed_key_list
from wbs.instance import Instance, init_instance
from wbs.models import (
    Case,
    FederationPeer,
    Investigator,
    Source,
    Tenant,
    new_registration_number,
)
from wbs.tenants import create_tenant, get_tenant


def installation_config(root: Path, name: str, database_url: str | None = None) -> Config:
    env = {
        "PELUIT_GNUPG_HOME": str(root / name / "gnupg"),
        "PELUIT_KDF_TIME_COST": str(CHEAP_KDF.time_cost),
        "PELUIT_KDF_MEMORY_KIB": str(CHEAP_KDF.memory_kib),
    }
    if database_url is not None:
        env["PELUIT_DATABASE_URL"] = database_url
    folder = root / name / "instance"
    folder.mkdir(parents=True)
    return load_config(env, instance_dir=folder)


@contextmanager
def member_installation(config: Config, slug: str) -> Iterator[Instance]:
    """An initialised installation with one instansi of its own (no hub tenant)."""
    init_instance(config)
    with Instance.open(config) as inst:
        with inst.sessions() as session:
            create_tenant(
                session, slug=slug, name=f"Instansi {slug}", kind=TenantKind.KEMENTERIAN,
                province="Jawa Barat", first_response_days=5,
            )
            session.commit()
        yield inst


def add_cases(inst: Instance, slug: str, count: int, *, category: str = "gratifikasi") -> list[str]:
    """``count`` cases of the instansi, as intake leaves them (metadata only); their numbers."""
    numbers = []
    with inst.sessions() as session:
        tenant = session.scalar(sa.select(Tenant).where(Tenant.slug == slug))
        assert tenant is not None
        for _ in range(count):
            source = Source(
                id=secrets.token_hex(32), tenant_id=tenant.id, reply_fingerprint="A" * 40,
                reply_public_key="-", reply_secret_key="-",
            )
            session.add(source)
            case = Case(
                tenant_id=tenant.id,
                source_id=source.id,
                registration_number=new_registration_number(session, tenant, 2026),
                category=category,
                status=CaseStatus.BARU,
                received_at=dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
                first_response_due=dt.date(2026, 12, 7),
                closure_due=dt.date(2027, 1, 12),
            )
            session.add(case)
            session.flush()
            numbers.append(case.registration_number)
        session.commit()
    return numbers


def federate(hub: Instance, member: Instance, name: str) -> None:
    """The offline exchange, with each side confirming the fingerprint the other read out."""
    added = add_member(hub, join_request(member, name), own_fingerprint(member))
    join(member, added.ticket, own_fingerprint(hub))


def client_post(hub: Instance) -> Post:
    """The hub's endpoint through Flask's test client: the same app and answer as over tor,
    without a network (the tor end-to-end test is tests/federation/test_federation_tor.py)."""
    client = create_app(hub, testing=True).test_client()

    def post(sealed: bytes) -> bytes:
        response = client.post("/federation/v1/exchange", data=sealed)
        if response.status_code != 200:
            raise SyncError(f"the hub refused the request: {response.get_json()['error']}")
        return response.get_data()

    return post


def mirrored_cases(hub: Instance, member_name: str) -> dict[str, Case]:
    with hub.sessions() as session:
        peer = session.scalar(sa.select(FederationPeer).where(FederationPeer.name == member_name))
        assert peer is not None
        rows = session.scalars(
            sa.select(Case)
            .join(Tenant, Tenant.id == Case.tenant_id)
            .where(Tenant.federation_peer_id == peer.id)
        )
        found = {case.registration_number: case for case in rows}
        session.expunge_all()
        return found


class Federation:
    def __init__(self, hub: DemoInstance, a: Instance, b: Instance) -> None:
        self.demo = hub
        self.hub = hub.instance
        self.a = a
        self.b = b


@contextmanager
def _database(request: pytest.FixtureRequest, kind: str) -> Iterator[str | None]:
    """None (the instance's SQLite file) or a fresh database on the test PostgreSQL server."""
    if kind == "sqlite":
        yield None
        return
    server = request.getfixturevalue("postgres_server")
    name = f"fed{os.getpid()}_{secrets.token_hex(4)}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def federation(request: pytest.FixtureRequest) -> Iterator[Federation]:
    """A hub with two members, A (``kemendes``, SQLite) and B (``kemenkes``), joined; the hub
    and B on SQLite, then both on PostgreSQL."""
    root = short_tempdir("fed-")
    try:
        with ExitStack() as stack:
            hub_db = stack.enter_context(_database(request, request.param))
            b_db = stack.enter_context(_database(request, request.param))
            hub = stack.enter_context(open_demo(installation_config(root, "hub", hub_db)))
            a = stack.enter_context(
                member_installation(installation_config(root, "a"), "kemendes")
            )
            b = stack.enter_context(
                member_installation(installation_config(root, "b", b_db), "kemenkes")
            )
            federate(hub.instance, a, "member-a")
            federate(hub.instance, b, "member-b")
            yield Federation(hub, a, b)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- handling across installations (tests/federation/test_handling.py, the tor scenario) -----


def decrypt_with(home: Path, ciphertext: bytes) -> bytes | None:
    """What a workstation whose GnuPG home is ``home`` reads of a stored item (its padding
    stripped), or None if its keys cannot decrypt it."""
    done = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--no-tty", "--decrypt"],
        input=ciphertext, capture_output=True, check=False,
    )
    return unframe(done.stdout)[0] if done.returncode == 0 else None


def acting_as(inst: Instance, session: Session, slug: str) -> Context:
    """The instansi ``slug``, acting through a verifikator's account (made on first use)."""
    tenant = get_tenant(session, slug)
    account = session.scalar(sa.select(Investigator).where(Investigator.tenant_id == tenant.id))
    if account is None:
        account, _password = create_investigator(
            session, tenant, f"verif.{slug}", f"Verifikator {slug}", Role.VERIFIKATOR,
            settings=inst.auth_settings(),
        )
        session.commit()
    return Context(inst, session, tenant, account)


def kpk_context(inst: Instance, session: Session) -> Context:
    """The hub's KPK, acting through an account of its own."""
    return acting_as(inst, session, "kpk")


def case_by_number(session: Session, number: str) -> Case:
    case = session.scalar(sa.select(Case).where(Case.registration_number == number))
    assert case is not None, number
    return case


def forward_with_workstation(
    inst: Instance, acting: Callable[[Session], Context], number: str, to: str,
    workstation: Path, folder: Path,
) -> str:
    """An institution forwards its case ``number`` to ``to`` as its investigators do: an
    export bundle and the signed key list into its workstation (the data folder
    ``workstation``, holding its secret key), the package out of it, uploaded by an account
    (``acting``); the number of the linked case."""
    from tests.workstation.helpers import run

    with inst.sessions() as session:
        ctx = acting(session)
        bundle = folder / f"bundle-{number}.zip"
        with bundle.open("wb") as out:
            write_bundle(inst, session, ctx.tenant, [case_by_number(session, number)], out)
        keys = folder / f"keys-{to}.json"
        keys.write_bytes(signed_key_list(ctx, to))
    done = run(workstation, "import", str(bundle))
    assert done.exit_code == 0, done.output
    package = folder / f"paket-{number}.zip"
    done = run(workstation, "forward", number, "--to", to, "--keys", str(keys),
               "-o", str(package))
    assert done.exit_code == 0, done.output
    with inst.sessions() as session:
        ctx = acting(session)
        case = case_by_number(session, number)
        return accept_forward(ctx, case, io.BytesIO(package.read_bytes())).registration_number


def forward_to_member(
    federation: Federation, kpk_number: str, folder: Path, to: str = "kemenkes"
) -> str:
    """KPK's workstation makes the package for a member's instansi (its keys from the signed
    key list, which the hub learnt from the member's tenant message), and KPK uploads it."""
    hub = federation.hub
    return forward_with_workstation(
        hub, lambda session: kpk_context(hub, session), kpk_number, to,
        federation.demo.workstation.parent, folder,
    )


def sealed_request(member: Instance, hub: Instance, messages: tuple[Message, ...]) -> bytes:
    """A request signed by ``member`` carrying ``messages`` past its queue (what a member, or
    its stolen key, could send), with the member's true cursors: only the messages are odd."""
    with member.sessions() as session:
        peer = session.scalar(sa.select(FederationPeer).where(FederationPeer.role == "hub"))
        assert peer is not None
        envelope = new_envelope(
            own_fingerprint(member), own_fingerprint(hub), ack=peer.received_seq,
            acked=peer.acked_seq, epoch=peer.epoch, messages=messages,
        )
    return seal(member.signing, envelope)


@pytest.fixture
def a_workstation(federation: Federation) -> Iterator[Path]:
    """Member A's instansi gets a recipient key, its secret half on A's workstation (the
    GnuPG home yielded)."""
    from crypto.keyring import kill_agent
    from peluit.demo import make_workstation_key
    from wbs.tenants import add_recipient_key

    home = short_tempdir("fed-ws-")
    armored = make_workstation_key(home, "Kemendes <kemendes@demo.peluit.invalid>")
    with federation.a.sessions() as session:
        add_recipient_key(session, federation.a.keyring, get_tenant(session, "kemendes"), armored)
        session.commit()
    yield home
    kill_agent(home)
    shutil.rmtree(home, ignore_errors=True)
