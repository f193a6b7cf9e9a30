"""Onion services over tor's control port: one v3 onion per tenant, one for the investigators.

Every tenant's source interface gets its own v3 onion address (port 80 forwarded to the source
interface on 127.0.0.1); the source interface tells tenants apart by the Host header, which is
the onion address (:func:`source_iface.context.find_tenant`). The investigator interface gets
one more onion, published with v3 CLIENT AUTHORIZATION: its descriptor is encrypted to the
x25519 public keys of the authorized investigators, one key pair per investigator, so a client
without a key cannot even learn where the service's introduction points are.

Keys are persistent and live in the instance, never in tor's state::

    <instance>/onion/                       0700
        tenants/<slug>.key                  0600  the tenant onion's private key
        investigator.key                    0600  the investigator onion's private key
        clients/<username>.pub              0600  an authorized investigator's x25519 public key
        investigator.published              0600  what tor was last given: port, client keys

The service keys are generated here (ed25519, the same construction tor uses), so every
address is known before tor runs, and re-adding a key after a restart gives the same address.
Services are added with ``ADD_ONION ... Flags=Detach``: they outlive the control connection
that added them (``peluit onion publish`` is a one-shot command) and go away when tor stops;
publishing again after tor restarts brings them back under the same addresses.

Only active accounts are authorized: a deactivated account's key is removed
(:func:`revoke_client_access`) and, should a file survive (a restored backup, a deactivation
made while tor was unreachable), it is never published. Tor cannot be asked which clients an
onion authorizes, so ``investigator.published`` remembers what it was given; publishing again
replaces the onion whenever the authorized keys differ from that, so the periodic
``peluit onion publish`` applies a revocation the web application could not apply at once.

Client authorization keys would fit the ``investigators`` table; they are files here because
the schema belongs to the migrations. A later migration can move the public keys into the
database (the private halves are never stored by the server: they are printed once).

The ADD_ONION command is built here rather than with stem's
``create_ephemeral_hidden_service``: stem 1.8 passes at most one ``ClientAuthV3`` key and knows
neither tor's ``PoWDefensesEnabled`` keyword (tor 0.4.8+) nor ``MaxStreams`` with the close
flag together with client auth. stem still parses the reply.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
import stem
import stem.connection
import stem.control
import stem.response
import stem.response.events
import stem.version
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from wbs.instance import Instance
from wbs.models import Investigator, Tenant

ONION_DIR = "onion"
TENANTS_DIR = "tenants"
CLIENTS_DIR = "clients"
INVESTIGATOR_KEY = "investigator.key"
FEDERATION_KEY = "federation.key"
FEDERATION_STATE = "federation.published"
FEDERATION_CLIENT = "federation-hub.auth_private"
FEDERATION_SERVICE = "federation"
PUBLISHED_STATE = "investigator.published"
INVESTIGATOR_SERVICE = "investigator"

# Where ``peluit onion`` finds tor's control port when TOR_CONTROL is not set: Debian's
# tor@default control socket (tor-service-defaults-torrc). Not a PELUIT_* variable: those are
# wbs.config's, which refuses names it does not know. A config key ``tor_control`` (then also
# PELUIT_TOR_CONTROL) is proposed to take over from this variable.
CONTROL_ENV = "TOR_CONTROL"
DEFAULT_CONTROL = "unix:/run/tor/control"

VIRTUAL_PORT = 80
LOOPBACK = "127.0.0.1"
# HiddenServiceMaxStreams with HiddenServiceMaxStreamsCloseCircuit: streams a single rendezvous
# circuit may open before tor closes that circuit. A page with its style sheet needs two; a
# client opening hundreds is flooding.
MAX_STREAMS = 20
# The first tor with proof-of-work defences for onion services (PoWDefensesEnabled).
POW_TOR_VERSION = stem.version.Version("0.4.8")

_KEY_TYPE = "ED25519-V3"
_ADDRESS = re.compile(r"[a-z2-7]{56}")
_USERNAME = re.compile(r"[a-z][a-z0-9._-]{2,63}")
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_BASE32_KEY = re.compile(r"[A-Z2-7]{52}")
_AUTH_PRIVATE = re.compile(r"([a-z2-7]{56}):descriptor:x25519:([A-Z2-7]{52})")


class OnionError(RuntimeError):
    """Something an operator can fix: tor unreachable, a key file with loose permissions."""


# --- keys ---------------------------------------------------------------------------------------


def _b32(data: bytes) -> str:
    """Base32 as tor writes keys: upper case, no padding (32 bytes give 52 characters)."""
    return base64.b32encode(data).decode("ascii").rstrip("=")


def onion_address(public_key: bytes) -> str:
    """The v3 onion address (56 characters, no ``.onion``) of an ed25519 public key.

    rend-spec-v3: ``base32(PUBKEY | CHECKSUM | VERSION)`` with
    ``CHECKSUM = SHA3-256(".onion checksum" | PUBKEY | VERSION)[:2]`` and ``VERSION = 3``.
    """
    if len(public_key) != 32:
        raise ValueError("an ed25519 public key is 32 bytes")
    version = b"\x03"
    checksum = hashlib.sha3_256(b".onion checksum" + public_key + version).digest()[:2]
    return _b32(public_key + checksum + version).lower()


@dataclass(frozen=True)
class ServiceKey:
    """An onion service's identity: tor's key blob and the address it gives."""

    address: str  # 56 characters, without ".onion"
    blob: str  # "ED25519-V3:<base64 of the 64-byte expanded secret key>", as ADD_ONION takes it

    @property
    def hostname(self) -> str:
        return f"{self.address}.onion"

    @classmethod
    def generate(cls) -> ServiceKey:
        """A new key, made the way tor makes one: the expanded form of a random ed25519 seed."""
        private = Ed25519PrivateKey.generate()
        seed = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        digest = bytearray(hashlib.sha512(seed).digest())
        digest[0] &= 248
        digest[31] &= 127
        digest[31] |= 64
        public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        blob = f"{_KEY_TYPE}:{base64.b64encode(bytes(digest)).decode('ascii')}"
        return cls(address=onion_address(public), blob=blob)

    def serialize(self) -> str:
        return f"{self.blob}\n{self.hostname}\n"

    @classmethod
    def parse(cls, text: str, source: Path) -> ServiceKey:
        lines = text.split()
        if len(lines) != 2 or not lines[0].startswith(f"{_KEY_TYPE}:"):
            raise OnionError(f"{source} is not an onion service key file")
        address = lines[1].removesuffix(".onion")
        raw = base64.b64decode(lines[0].split(":", 1)[1], validate=True)
        if len(raw) != 64 or not _ADDRESS.fullmatch(address):
            raise OnionError(f"{source} is not an onion service key file")
        return cls(address=address, blob=lines[0])


def onion_dir(inst: Instance) -> Path:
    return inst.config.instance_dir / ONION_DIR


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _write_private(path: Path, text: str) -> None:
    """Write a file with mode 0600 from its first byte, and put it in place atomically."""
    _private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def _read_private(path: Path) -> str:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise OnionError(
            f"{path} has mode {mode:04o}: it holds a key and must be readable by its owner "
            f"only (chmod 600 {path})"
        )
    return path.read_text(encoding="ascii")


def _load_or_create(path: Path) -> ServiceKey:
    if path.exists():
        return ServiceKey.parse(_read_private(path), path)
    key = ServiceKey.generate()
    _write_private(path, key.serialize())
    return key


def tenant_key_path(inst: Instance, slug: str) -> Path:
    if not _SLUG.fullmatch(slug):
        raise OnionError(f"not a tenant slug: {slug!r}")
    return onion_dir(inst) / TENANTS_DIR / f"{slug}.key"


def tenant_key(inst: Instance, slug: str) -> ServiceKey:
    """The tenant's onion key; made (and stored, mode 0600) on first use."""
    return _load_or_create(tenant_key_path(inst, slug))


def investigator_key(inst: Instance) -> ServiceKey:
    """The investigator onion's key; made (and stored, mode 0600) on first use."""
    return _load_or_create(onion_dir(inst) / INVESTIGATOR_KEY)


def investigator_onion(inst: Instance) -> str | None:
    """The investigator onion's host name, if its key exists (never made here: a command that
    only reads, such as the e-mail alerts, must not create a service identity)."""
    path = onion_dir(inst) / INVESTIGATOR_KEY
    if not path.exists():
        return None
    return ServiceKey.parse(_read_private(path), path).hostname


# --- client authorization -----------------------------------------------------------------------


@dataclass(frozen=True)
class ClientKey:
    """An investigator's client authorization key pair, as handed over."""

    username: str
    public_key: str  # base32, 52 characters: what ADD_ONION's ClientAuthV3 takes
    auth_private: str  # the line of Tor Browser's "<name>.auth_private" file; shown once

    @property
    def onion(self) -> str:
        return self.auth_private.split(":", 1)[0] + ".onion"


def _client_path(inst: Instance, username: str) -> Path:
    if not _USERNAME.fullmatch(username):
        raise OnionError(f"not a username: {username!r}")
    return onion_dir(inst) / CLIENTS_DIR / f"{username}.pub"


def generate_client_key(inst: Instance, investigator: Investigator) -> ClientKey:
    """A new x25519 key pair for one investigator; replaces any key the account had.

    The public half is stored (``clients/<username>.pub``, mode 0600); the private half is
    returned, formatted as Tor Browser's ``.auth_private`` file, and stored nowhere. It takes
    effect when the investigator onion is published again (:func:`publish_investigator` with
    ``replace=True``).
    """
    if not investigator.active:
        raise OnionError(f"{investigator.username} is deactivated: no client key for it")
    public, line = new_client_auth(investigator_key(inst))
    _write_private(_client_path(inst, investigator.username), public + "\n")
    return ClientKey(username=investigator.username, public_key=public, auth_private=line)


def new_client_auth(service: ServiceKey) -> tuple[str, str]:
    """A new x25519 client authorization key pair for ``service``: the public half in base32
    (what ADD_ONION's ClientAuthV3 takes) and the private half as the line of an
    ``.auth_private`` file (``<address>:descriptor:x25519:<base32>``)."""
    private = X25519PrivateKey.generate()
    secret = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = _b32(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    return public, f"{service.address}:descriptor:x25519:{_b32(secret)}"


def revoke_client_key(inst: Instance, username: str) -> bool:
    """Remove an investigator's public key; False if it had none. Publish again to apply."""
    path = _client_path(inst, username)
    if not path.exists():
        return False
    path.unlink()
    return True


def client_public_keys(inst: Instance) -> dict[str, str]:
    """Authorized investigators: username -> base32 x25519 public key."""
    folder = onion_dir(inst) / CLIENTS_DIR
    keys: dict[str, str] = {}
    if not folder.is_dir():
        return keys
    for path in sorted(folder.glob("*.pub")):
        value = _read_private(path).strip()
        if not _BASE32_KEY.fullmatch(value):
            raise OnionError(f"{path} is not an x25519 public key in base32")
        keys[path.stem] = value
    return keys


def authorized_client_keys(inst: Instance) -> dict[str, str]:
    """The client keys to publish: those of active accounts only (username -> public key)."""
    keys = client_public_keys(inst)
    if not keys:
        return keys
    with inst.sessions() as session:
        active = set(
            session.scalars(
                sa.select(Investigator.username).where(
                    Investigator.username.in_(list(keys)), Investigator.active.is_(True)
                )
            )
        )
    return {username: key for username, key in keys.items() if username in active}


@dataclass(frozen=True)
class _PublishedState:
    port: int
    clients: tuple[str, ...]


def _published_path(inst: Instance, name: str = PUBLISHED_STATE) -> Path:
    return onion_dir(inst) / name


def _read_published(inst: Instance, name: str = PUBLISHED_STATE) -> _PublishedState | None:
    path = _published_path(inst, name)
    if not path.exists():
        return None
    try:
        data = json.loads(_read_private(path))
        return _PublishedState(int(data["port"]), tuple(sorted(data["clients"])))
    except (ValueError, KeyError, TypeError):
        return None  # unknown: the next publish replaces the onion, the safe side


def _write_published(
    inst: Instance, port: int, clients: Sequence[str], name: str = PUBLISHED_STATE
) -> None:
    state = {"port": port, "clients": sorted(clients)}
    _write_private(_published_path(inst, name), json.dumps(state) + "\n")


# --- tor's control port ------------------------------------------------------------------------


def control_spec() -> str:
    return os.environ.get(CONTROL_ENV) or DEFAULT_CONTROL


@contextmanager
def connect(spec: str | None = None) -> Iterator[stem.control.Controller]:
    """An authenticated controller: ``unix:/path``, ``/path``, ``host:port`` or ``port``.

    Authentication is tor's cookie (or none where tor asks for none); never a password, which
    would have to live in a file or the environment.
    """
    spec = spec or control_spec()
    try:
        if spec.startswith(("unix:", "/")):
            controller = stem.control.Controller.from_socket_file(spec.removeprefix("unix:"))
        else:
            host, _, port = spec.rpartition(":")
            controller = stem.control.Controller.from_port(
                address=host or LOOPBACK, port=int(port)
            )
    except (stem.SocketError, ValueError) as exc:
        raise OnionError(
            f"cannot reach tor's control port at {spec} ({exc}); set {CONTROL_ENV}"
        ) from None
    try:
        controller.authenticate()
    except stem.connection.AuthenticationFailure as exc:
        controller.close()
        raise OnionError(f"tor refused authentication at {spec}: {exc}") from None
    try:
        yield controller
    finally:
        controller.close()


def published_ids(controller: stem.control.Controller) -> set[str]:
    """Service ids (addresses without .onion) of every onion added over the control port."""
    found: set[str] = set()
    for key in ("onions/current", "onions/detached"):
        try:
            text = controller.get_info(key, "")
        except stem.ControllerError:
            text = ""
        found.update(line.strip() for line in (text or "").splitlines() if line.strip())
    return found


@dataclass(frozen=True)
class Published:
    """One onion service as this module left it."""

    name: str  # "tenant:<slug>" or "investigator"
    address: str  # "<56 characters>.onion"
    action: str  # "added", "replaced", "kept" (already published), "removed", "skipped"
    pow_defenses: bool | None = None  # None when tor was not asked to add it
    clients: int | None = None  # investigator onion: authorized clients


def _add_onion(
    controller: stem.control.Controller,
    key: ServiceKey,
    target_port: int,
    *,
    clients: Sequence[str] = (),
) -> bool:
    """ADD_ONION the service; returns whether tor took the PoW defences.

    ``PoWDefensesEnabled=1`` is an ADD_ONION keyword of tor 0.4.8 and later (verified against
    tor 0.4.9: the keyword is accepted, ``Flags=PoWDefensesEnabled`` is refused). An older tor
    refuses the keyword, and the service is then added without it.
    """
    flags = ["Detach", "MaxStreamsCloseCircuit"]
    if clients:
        flags.append("V3Auth")
    parts = [
        f"ADD_ONION {key.blob}",
        f"Flags={','.join(flags)}",
        f"MaxStreams={MAX_STREAMS}",
        f"Port={VIRTUAL_PORT},{LOOPBACK}:{target_port}",
        *(f"ClientAuthV3={client}" for client in clients),
    ]
    for pow_defenses in (True, False):
        request = " ".join([*parts, "PoWDefensesEnabled=1"] if pow_defenses else parts)
        response = controller.msg(request)
        if response.is_ok():
            stem.response.convert("ADD_ONION", response)
            if response.service_id != key.address:
                # Cannot happen with a sound key; if it does, the database would name an
                # address nobody serves.
                controller.msg(f"DEL_ONION {response.service_id}")
                raise OnionError(
                    f"tor derived {response.service_id}.onion from the key for "
                    f"{key.hostname}: the key file is damaged"
                )
            return pow_defenses
        if not (pow_defenses and "pow" in str(response).lower()):
            raise OnionError(f"tor refused to add {key.hostname}: {response}")
    raise AssertionError("unreachable")


def _del_onion(controller: stem.control.Controller, address: str) -> None:
    controller.remove_ephemeral_hidden_service(address)


def close_rendezvous_circuits(controller: stem.control.Controller, address: str) -> int:
    """Close the service-side rendezvous circuits of an onion; returns how many.

    DEL_ONION closes a service's introduction circuits but, by design, not its rendezvous
    circuits ("for any existing connections to finish"), and a service added again with the
    same key accepts new streams on them. Without this, a client whose key was just revoked
    keeps its access for as long as its rendezvous circuit lives (observed: more than 90 s on
    the test network). Every client reconnects afterwards, the revoked one cannot.
    """
    closed = 0
    for circuit in controller.get_circuits([]):
        if circuit.purpose == "HS_SERVICE_REND" and (circuit.rend_query or "").removesuffix(
            ".onion"
        ) == address:
            try:
                controller.close_circuit(circuit.id)
                closed += 1
            except (stem.InvalidRequest, stem.InvalidArguments):
                pass  # closed meanwhile
    return closed


def _publish(
    controller: stem.control.Controller,
    name: str,
    key: ServiceKey,
    target_port: int,
    *,
    replace: bool,
    clients: Sequence[str] = (),
) -> Published:
    present = key.address in published_ids(controller)
    if present and not replace:
        return Published(name, key.hostname, "kept", clients=len(clients) if clients else None)
    if present:
        _del_onion(controller, key.address)
    pow_defenses = _add_onion(controller, key, target_port, clients=clients)
    action = "replaced" if present else "added"
    return Published(name, key.hostname, action, pow_defenses, len(clients) if clients else None)


def _local_slugs() -> sa.Select[str]:
    # A hub's mirrors of its members' instansi have their drop boxes on the members' onions.
    return (
        sa.select(Tenant.slug).where(Tenant.federation_peer_id.is_(None)).order_by(Tenant.slug)
    )


def assign_tenant_address(inst: Instance, slug: str) -> ServiceKey:
    """Make (or read) the tenant's key and record its address in ``Tenant.onion_address``."""
    key = tenant_key(inst, slug)
    with inst.sessions() as session:
        tenant = session.scalar(sa.select(Tenant).where(Tenant.slug == slug))
        if tenant is None:
            raise OnionError(f"no tenant {slug!r}")
        if tenant.onion_address != key.hostname:
            tenant.onion_address = key.hostname
            session.commit()
    return key


def publish_tenant(
    controller: stem.control.Controller,
    inst: Instance,
    slug: str,
    source_port: int,
    *,
    replace: bool = False,
) -> Published:
    """Publish one tenant's onion (port 80 -> the source interface); no restart needed.

    The address goes into ``Tenant.onion_address`` before tor is asked, so the source interface
    recognises the tenant's Host header from the first request.
    """
    key = assign_tenant_address(inst, slug)
    return _publish(controller, f"tenant:{slug}", key, source_port, replace=replace)


def publish_investigator(
    controller: stem.control.Controller,
    inst: Instance,
    journalist_port: int,
    *,
    replace: bool = False,
) -> Published:
    """Publish the investigator onion with client authorization for every stored client key.

    With no client key the onion is not published at all (and removed if it was): the
    investigator interface is never reachable without authorization. ``replace`` re-adds it
    with the current client keys; needed after a key was added or revoked.
    """
    key = investigator_key(inst)
    clients = sorted(authorized_client_keys(inst).values())
    if not clients:
        _published_path(inst).unlink(missing_ok=True)
        if key.address in published_ids(controller):
            _del_onion(controller, key.address)
            close_rendezvous_circuits(controller, key.address)
            return Published(INVESTIGATOR_SERVICE, key.hostname, "removed", clients=0)
        return Published(INVESTIGATOR_SERVICE, key.hostname, "skipped", clients=0)
    last = _read_published(inst)
    if last is None or last.clients != tuple(clients) or last.port != journalist_port:
        # tor may hold another client list than the one on disk (a key revoked while tor was
        # unreachable): a revoked key must not keep working until tor restarts.
        replace = True
    result = _publish(
        controller,
        INVESTIGATOR_SERVICE,
        key,
        journalist_port,
        replace=replace,
        clients=clients,
    )
    _write_published(inst, journalist_port, clients)
    if result.action == "replaced":
        # The client list may have shrunk: end the connections made under the old one.
        close_rendezvous_circuits(controller, key.address)
    return result


@dataclass(frozen=True)
class Revocation:
    """What :func:`revoke_client_access` did. ``in_effect``: tor no longer accepts the key
    (or never served the onion); False until the next publish when tor was unreachable."""

    in_effect: bool
    note: str


def revoke_client_access(inst: Instance, username: str, control: str | None = None) -> Revocation:
    """Withdraw an account's access to the investigator onion (on deactivation).

    The stored key is removed; when tor serves the investigator onion, it is published again
    at once without the key (on the port it was last published with). If tor cannot be
    reached, the next ``peluit onion publish`` (a systemd timer in production) does it, since
    the authorized keys then differ from what tor was given. Never raises for tor: the
    deactivation itself has happened and must stand.
    """
    revoke_client_key(inst, username)
    last = _read_published(inst)
    try:
        with connect(control) as controller:
            address = investigator_key(inst).address
            if address not in published_ids(controller):
                return Revocation(True, "the investigator onion is not published")
            if last is None:
                # Published without a record of its port (by an older version): take it down
                # rather than leave the key working; the next publish brings it back.
                _del_onion(controller, address)
                close_rendezvous_circuits(controller, address)
                return Revocation(True, "investigator onion removed until the next publish")
            result = publish_investigator(controller, inst, last.port)
    except OnionError as exc:
        return Revocation(False, f"tor still accepts the key until the next publish ({exc})")
    except (stem.ControllerError, stem.SocketClosed, OSError) as exc:
        # A control connection dropping half-way, or the record not written: the key file is
        # gone already, and the next publish reconciles what tor serves.
        return Revocation(
            False, f"tor still accepts the key until the next publish ({type(exc).__name__})"
        )
    return Revocation(True, f"investigator onion {result.action}, {result.clients} client(s)")


def publish_all(
    controller: stem.control.Controller,
    inst: Instance,
    source_port: int,
    journalist_port: int,
    *,
    replace: bool = False,
    federation_port: int | None = None,
) -> list[Published]:
    """Every tenant's onion and the investigator onion; with ``federation_port``, the
    federation onion too (a hub's, for its members). Safe to run again: what tor already
    serves is kept (``replace`` re-adds it), what it lacks (after a restart of tor, a new
    tenant) is added."""
    with inst.sessions() as session:
        slugs = list(session.scalars(_local_slugs()))
    results = [
        publish_tenant(controller, inst, slug, source_port, replace=replace) for slug in slugs
    ]
    results.append(publish_investigator(controller, inst, journalist_port, replace=replace))
    if federation_port is not None:
        results.append(publish_federation(controller, inst, federation_port, replace=replace))
    return results


# --- the federation onion (wbs.federation) ------------------------------------------------------
# A hub serves its federation endpoint on an onion of its own, authorized for exactly the active
# members' client keys (FederationPeer.client_key): a member's x25519 key is made when it is
# added and handed over offline with the join ticket; a revoked member's key is dropped from
# the onion at once. A member holds its key as a file and gives it to its tor over the control
# port (ONION_CLIENT_AUTH_ADD) before each exchange, so no torrc needs to change.


def federation_key(inst: Instance) -> ServiceKey:
    """The hub's federation onion key; made (and stored, mode 0600) on first use."""
    return _load_or_create(onion_dir(inst) / FEDERATION_KEY)


def federation_clients(inst: Instance) -> list[str]:
    """The client keys to publish the federation onion with: active members' only."""
    from wbs.models import FederationPeer

    with inst.sessions() as session:
        keys = session.scalars(
            sa.select(FederationPeer.client_key).where(
                FederationPeer.role == "member",
                FederationPeer.status == "active",
                FederationPeer.client_key.is_not(None),
            )
        )
        return sorted(str(key) for key in keys)


def publish_federation(
    controller: stem.control.Controller,
    inst: Instance,
    federation_port: int,
    *,
    replace: bool = False,
) -> Published:
    """Publish the federation onion for the active members (removed when there are none);
    replaced whenever the member keys differ from what tor was last given, and the
    connections made under the old list closed, so a revoked member is cut off at once."""
    key = federation_key(inst)
    clients = federation_clients(inst)
    if not clients:
        _published_path(inst, FEDERATION_STATE).unlink(missing_ok=True)
        if key.address in published_ids(controller):
            _del_onion(controller, key.address)
            close_rendezvous_circuits(controller, key.address)
            return Published(FEDERATION_SERVICE, key.hostname, "removed", clients=0)
        return Published(FEDERATION_SERVICE, key.hostname, "skipped", clients=0)
    last = _read_published(inst, FEDERATION_STATE)
    if last is None or last.clients != tuple(clients) or last.port != federation_port:
        replace = True
    result = _publish(
        controller, FEDERATION_SERVICE, key, federation_port, replace=replace, clients=clients
    )
    _write_published(inst, federation_port, clients, FEDERATION_STATE)
    if result.action == "replaced":
        close_rendezvous_circuits(controller, key.address)
    return result


def republish_federation(inst: Instance, control: str | None = None) -> Revocation:
    """After a member was revoked: publish the federation onion again at once, on the port it
    was last published with, if tor serves it. Never raises for tor (the revocation stands:
    the endpoint refuses the member's signature from now on whatever tor does)."""
    last = _read_published(inst, FEDERATION_STATE)
    try:
        with connect(control) as controller:
            address = federation_key(inst).address
            if address not in published_ids(controller):
                return Revocation(True, "the federation onion is not published")
            if last is None:
                _del_onion(controller, address)
                close_rendezvous_circuits(controller, address)
                return Revocation(True, "federation onion removed until the next publish")
            result = publish_federation(controller, inst, last.port)
    except (OnionError, stem.ControllerError, stem.SocketClosed, OSError) as exc:
        return Revocation(
            False, f"tor still accepts the key until the next publish ({type(exc).__name__})"
        )
    return Revocation(True, f"federation onion {result.action}, {result.clients} member(s)")


@dataclass(frozen=True)
class HubClientAuth:
    """A member's client key for its hub's federation onion, as the join ticket carries it."""

    address: str  # 56 characters, no .onion
    line: str  # the .auth_private line

    @property
    def hostname(self) -> str:
        return f"{self.address}.onion"


def parse_client_auth(auth_private: str) -> HubClientAuth:
    line = auth_private.strip()
    match = _AUTH_PRIVATE.fullmatch(line)
    if match is None:
        raise OnionError("not a client authorization line (<address>:descriptor:x25519:<key>)")
    return HubClientAuth(address=match.group(1), line=line)


def store_hub_client_auth(inst: Instance, auth: HubClientAuth) -> None:
    """Keep a member's client key for its hub's federation onion (mode 0600)."""
    _write_private(onion_dir(inst) / FEDERATION_CLIENT, auth.line + "\n")


def forget_hub_client_auth(inst: Instance) -> None:
    (onion_dir(inst) / FEDERATION_CLIENT).unlink(missing_ok=True)


def load_hub_client_auth(controller: stem.control.Controller, inst: Instance) -> str:
    """Give tor this member's client key for the hub's federation onion (in memory, replaced
    if tor had one); returns the onion hostname."""
    path = onion_dir(inst) / FEDERATION_CLIENT
    if not path.exists():
        raise OnionError("this installation holds no client key for a hub: join one first")
    line = _read_private(path).strip()
    match = _AUTH_PRIVATE.fullmatch(line)
    if match is None:
        raise OnionError(f"{path} is not a client authorization line")
    address, secret = match.group(1), match.group(2)
    response = controller.msg(f"ONION_CLIENT_AUTH_ADD {address} x25519:{_b32_to_b64(secret)}")
    # 250 added; 251 replaced the key tor had (every exchange after the first loads it
    # again); 252 added and a cached descriptor decrypted with it. stem's is_ok() is 250 only.
    if response.content()[0][0] not in ("250", "251", "252"):
        raise OnionError(f"tor refused the client key for {address}.onion: {response}")
    return f"{address}.onion"


def _b32_to_b64(value: str) -> str:
    # ONION_CLIENT_AUTH_ADD takes the private key in base64; .auth_private files hold base32.
    padded = value.upper() + "=" * (-len(value) % 8)
    return base64.b64encode(base64.b32decode(padded)).decode("ascii")


# --- publication: what HS_DESC events say -------------------------------------------------------
# tor accepting ADD_ONION says nothing about reachability: a tor at "Bootstrapped 0%" accepts it
# just the same. An onion is *published* once its descriptor reached a hidden-service directory,
# which tor reports on the control port as an HS_DESC event: UPLOADED when the service's own
# upload succeeded, RECEIVED when the descriptor was fetched back from a directory (which it can
# only be after an upload succeeded). Nothing else counts.


def bootstrap_progress(controller: stem.control.Controller) -> int:
    """tor's bootstrap percentage (``GETINFO status/bootstrap-phase``); 0 when unknown."""
    try:
        phase = controller.get_info("status/bootstrap-phase", "")
    except (stem.ControllerError, stem.SocketClosed):
        return 0
    found = re.search(r"PROGRESS=(\d+)", phase or "")
    return int(found.group(1)) if found else 0


_CONFIRMING = (stem.HSDescAction.UPLOADED, stem.HSDescAction.RECEIVED)


class UploadWatch:
    """Listens for HS_DESC events on one controller and remembers which addresses were
    confirmed on a directory (UPLOADED or RECEIVED). ``on_confirmed`` is called once per address,
    from stem's event thread. Subscribe *before* publishing: events are not replayed."""

    def __init__(
        self,
        controller: stem.control.Controller,
        on_confirmed: Callable[[str], None] | None = None,
    ) -> None:
        self._controller = controller
        self._confirmed: set[str] = set()
        self._changed = threading.Condition()
        self._on_confirmed = on_confirmed
        controller.add_event_listener(self._event, stem.control.EventType.HS_DESC)

    def _event(self, event: stem.response.events.HSDescEvent) -> None:
        address = (event.address or "").removesuffix(".onion")
        if event.action not in _CONFIRMING or not _ADDRESS.fullmatch(address):
            return
        with self._changed:
            new = address not in self._confirmed
            self._confirmed.add(address)
            self._changed.notify_all()
        if new and self._on_confirmed is not None:
            self._on_confirmed(address)

    def confirmed(self) -> set[str]:
        with self._changed:
            return set(self._confirmed)

    def wait(self, addresses: Iterable[str], timeout: float) -> set[str]:
        """Wait until every address is confirmed or ``timeout`` passed; the confirmed ones."""
        wanted = {a.removesuffix(".onion") for a in addresses}
        deadline = time.monotonic() + timeout
        with self._changed:
            while not wanted <= self._confirmed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return wanted & self._confirmed

    def close(self) -> None:
        # A connection already gone took the listener with it.
        with contextlib.suppress(stem.ControllerError, stem.SocketClosed):
            self._controller.remove_event_listener(self._event)


def confirm_published(
    controller: stem.control.Controller, addresses: Iterable[str], timeout: float
) -> set[str]:
    """Which of ``addresses`` (tor serves them) have a descriptor on the directories now.

    A one-shot command cannot see the UPLOADED events of the past, so it asks tor to fetch each
    descriptor back (``HSFETCH``) and counts the RECEIVED events (and any UPLOADED that happens
    meanwhile). A tor that has not finished bootstrapping has published nothing: no wait then.
    """
    wanted = sorted({a.removesuffix(".onion") for a in addresses})
    if not wanted or bootstrap_progress(controller) < 100:
        return set()
    watch = UploadWatch(controller)
    try:
        for address in wanted:
            response = controller.msg(f"HSFETCH {address}")
            if not response.is_ok():
                raise OnionError(f"tor refused to look up {address}.onion: {response}")
        return watch.wait(wanted, timeout)
    finally:
        watch.close()


def publication_state(published: bool, accepted: bool, progress: int) -> str:
    """The words ``peluit run``, ``peluit onion status`` and ``peluit doctor`` use."""
    if published:
        return "published"
    if not accepted:
        return "NOT published (tor does not serve it)"
    if progress < 100:
        return f"NOT published: waiting for tor (bootstrap {progress}%)"
    return "NOT published: no descriptor upload confirmed yet (tor bootstrapped)"


@dataclass(frozen=True)
class OnionStatus:
    name: str  # "tenant:<slug>", "investigator", or "other" (added by someone else)
    address: str | None  # "<...>.onion"; None when no key exists yet
    accepted: bool  # tor serves it (ADD_ONION taken); says nothing about reachability
    clients: int | None = None
    published: bool = False  # its descriptor is confirmed on a directory (HS_DESC events)


def status(
    controller: stem.control.Controller, inst: Instance, *, confirm_seconds: float = 0.0
) -> list[OnionStatus]:
    """Which of this instance's onions tor serves now (``GETINFO onions/current`` and
    ``onions/detached``), and any other onion added over the control port.

    With ``confirm_seconds`` > 0, also which are published (:func:`confirm_published`, waiting
    at most that long); otherwise ``published`` stays False.
    """
    live = published_ids(controller)
    out: list[OnionStatus] = []
    ours: set[str] = set()
    with inst.sessions() as session:
        slugs = list(session.scalars(_local_slugs()))
    for slug in slugs:
        path = tenant_key_path(inst, slug)
        if not path.exists():
            out.append(OnionStatus(f"tenant:{slug}", None, False))
            continue
        key = ServiceKey.parse(_read_private(path), path)
        ours.add(key.address)
        out.append(OnionStatus(f"tenant:{slug}", key.hostname, key.address in live))
    path = onion_dir(inst) / INVESTIGATOR_KEY
    clients = len(authorized_client_keys(inst))
    if path.exists():
        key = ServiceKey.parse(_read_private(path), path)
        ours.add(key.address)
        out.append(
            OnionStatus(INVESTIGATOR_SERVICE, key.hostname, key.address in live, clients)
        )
    else:
        out.append(OnionStatus(INVESTIGATOR_SERVICE, None, False, clients))
    out.extend(OnionStatus("other", f"{sid}.onion", True) for sid in sorted(live - ours))
    if confirm_seconds > 0:
        served = [item.address for item in out if item.accepted and item.address]
        confirmed = confirm_published(controller, served, confirm_seconds)
        out = [
            dataclasses.replace(
                item, published=(item.address or "").removesuffix(".onion") in confirmed
            )
            for item in out
        ]
    return out
