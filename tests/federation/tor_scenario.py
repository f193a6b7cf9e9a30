"""The federation end-to-end scenario, run INSIDE a private network namespace by
test_federation_tor.py.

``python -m tests.federation.tor_scenario WORKDIR`` (under
:data:`tests.onion.testnet.NAMESPACE_PREFIX`) starts a private Tor network on loopback
(tests/onion/tornet.py) with a second client tor, a private PostgreSQL cluster, and three
separate installations: a hub (the demo instance: KPK and a province) on SQLite, member A
(``kemendes``) on SQLite behind client tor A, and member B (``kemenkes``) on PostgreSQL behind
client tor B. Each has its own instance folder, database, gnupg home and signing key. They join
through the offline exchange (request, add-member with the confirmed fingerprint, join with the
hub's), the hub serves federation_iface on loopback and publishes its federation onion with
wbs.onion, and each member syncs through its own tor's SOCKS port. A pelapor files a report
with A and shares it with KPK (with an evidence file of more than one 4 MiB part of the link):
once its day is over it crosses tor, KPK's dashboard and copy show it, and KPK's workstation
decrypts it. B's instansi gets a recipient key; KPK takes the case over on the hub, replies,
and forwards it to B with a package its workstation made; B receives it, its workstation reads
it, and B replies; the pelapor logs in at A's source onion (A's source interface, published on
the service tor) through A's tor with the same codename, reads B's reply and follows up; B's
workstation reads the follow-up, and B holds nothing of A's other cases. Then the hub revokes
A.

It prints one JSON object on stdout: what each step saw, and when. Progress goes to stderr.
Every tor and the PostgreSQL server are stopped by their PID in ``finally``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from tests.onion.e2e_scenario import Curl, field, poll
from tests.onion.testnet import scenario_main
from tests.onion.tornet import (
    TestNetwork,
    TorProcess,
    free_port,
    in_private_namespace,
    loopback_up,
)
from tests.support import short_tempdir

_STARTED = time.monotonic()
T = TypeVar("T")

# PostgreSQL's initdb and postgres refuse to run as root, and in this user namespace we are
# root (--map-root-user) with no other user mapped. A nested user namespace maps an ordinary
# uid onto ours: postgres runs as that uid, in the same network and PID namespaces, so it
# listens on this namespace's loopback and dies with its PID 1 like every tor.
AS_ORDINARY_USER = ["unshare", "--user", "--map-user=1000", "--map-group=1000"]


def log(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is needed for member B (postgresql)")
    return found


class Postgres:
    """A private PostgreSQL cluster on this namespace's loopback, stopped by its PID."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.pid: int | None = None
        self.prefix = AS_ORDINARY_USER if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://peluit@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        sock = self.root / "sock"
        sock.mkdir(parents=True)
        subprocess.run(
            [*self.prefix, _pg_bin("initdb"), "-D", str(self.data), "-U", "peluit",
             "--auth=trust", "-E", "UTF8"],
            check=True, capture_output=True,
        )
        subprocess.run(
            [*self.prefix, _pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
             "-w", "-t", "60", "-o", f"-h 127.0.0.1 -p {self.port} -k {sock} -F", "start"],
            check=True, capture_output=True,
        )
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])

    def running(self) -> bool:
        if self.pid is None:
            return False
        # The postmaster's parent (pg_ctl's) is gone: this PID 1 of the namespace inherited it,
        # and reaps it here once it exited.
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(self.pid, os.WNOHANG)[0] == self.pid:
                return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self) -> None:
        """The postmaster, by its PID: SIGQUIT (immediate shutdown), then SIGKILL."""
        if not self.running():
            return
        assert self.pid is not None
        os.kill(self.pid, signal.SIGQUIT)
        deadline = time.monotonic() + 10
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.running():
            os.kill(self.pid, signal.SIGKILL)


def second_client(net: TestNetwork, name: str, auth_dir: Path) -> TorProcess:
    """Another client tor on the same network (a member's own tor): the first client's torrc
    with its own data folder, ports and client-authorization folder."""
    first = net.client
    assert first is not None
    proc = TorProcess(name, net.root / name, net.root / f"torrc-{name}")
    proc.socks_port, proc.control_port = free_port(), free_port()
    proc.data_dir.mkdir(mode=0o700, parents=True)
    auth_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    own = {
        "DataDirectory": str(proc.data_dir),
        "PidFile": str(proc.data_dir / "pid"),
        "Log": f"notice file {proc.log}",
        "Nickname": name,
        "SocksPort": f"127.0.0.1:{proc.socks_port} ExtendedErrors",
        "ControlPort": f"127.0.0.1:{proc.control_port}",
        "ClientOnionAuthDir": str(auth_dir),
    }
    lines = []
    for line in first.torrc.read_text().splitlines():
        keyword = line.split(" ", 1)[0]
        lines.append(f"{keyword} {own[keyword]}" if keyword in own else line)
    proc.torrc.write_text("\n".join(lines) + "\n")
    return proc


def retry(
    attempt: Callable[[], T], timeout: float, errors: tuple[type[Exception], ...]
) -> tuple[T, int]:
    """``attempt()`` until it returns, for at most ``timeout`` seconds (the last error raises);
    what it returned, and after how many attempts."""
    deadline = time.monotonic() + timeout
    attempts = 0
    while True:
        attempts += 1
        try:
            return attempt(), attempts
        except errors as exc:
            log(f"attempt {attempts}: {exc}")
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


# The messages a sync carried, by sequence number (a message sent again after a failed
# round counts once): {"sent": {seq: kind}, "received": {seq: kind}}.
Kinds = dict[str, dict[int, str]]


def spying(post: Callable[[bytes], bytes], kinds: Kinds) -> Callable[[bytes], bytes]:
    """``post``, noting the kind of each message of the request and of the hub's answer (an
    envelope is signed JSON; tor encrypts it on the way)."""
    from wbs.federation.wire import parse

    def note(way: str, raw: bytes) -> None:
        for message in parse(raw).claimed.get("messages", []):
            kinds[way][int(message["seq"])] = str(message["kind"])

    def spied(sealed: bytes) -> bytes:
        note("sent", sealed)
        answer = post(sealed)
        note("received", answer)
        return answer

    return spied


@contextlib.contextmanager
def serving(app: Any, port: int) -> Iterator[None]:
    from peluit.devserver import loopback_server

    server = loopback_server(app, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


# What A's pelapor writes: the hub's workstation must read the "apa" back.
SHARED_APA = "Setoran izin tambang lewat tor"
# KPK's and B's replies, which the pelapor reads at A; the pelapor's follow-up, read at B.
KPK_REPLY = "KPK mengambil alih laporan Anda dan meneruskannya ke Kemenkes."
B_REPLY = "Laporan Anda kini ditangani Inspektorat Jenderal Kemenkes lewat tor."
FOLLOW_UP = "Tambahan lewat tor: nomor kontraknya 44/PPK/XI/2026."


@dataclass(frozen=True)
class Shared:
    """The case A's pelapor filed and shared with KPK, as the hub holds it."""

    number: str
    codename: str  # kept to log in at A's source onion; never printed
    evidence_sha256: str


def share_withkpk_context(
    demo: Any,
    a: Any,
    sync_a: Callable[[], Any],
    workstation: Path,
    checks: dict[str, Any],
    timings: dict[str, float],
) -> Shared | None:
    """A's instansi gets a recipient key; a pelapor files with A, shares with KPK and adds an
    evidence file of more than one part of the link; A syncs through tor; the hub's KPK sees
    the case (dashboard, its copy) and KPK's workstation decrypts the form and the file.
    The case, once the hub has it."""
    from crypto.codenames import generate_codename
    from peluit.demo import make_workstation_key
    from tests.federation.conftest import mirrored_cases
    from wbs.context import Context
    from wbs.federation.exchange import SyncError
    from wbs.federation.metadata import CHUNK
    from wbs.intake import Intake, ReportAnswers
    from wbs.models import Case, Submission, utc_today_start
    from wbs.monitoring import dashboard
    from wbs.sources import register_source
    from wbs.tenancy import SharedScope
    from wbs.tenants import add_recipient_key, get_tenant, hub_tenant

    hub = demo.instance
    armored = make_workstation_key(workstation, "Kemendes <kemendes@demo.peluit.invalid>")
    # More than one part (4 MiB): the file crosses tor in two shared_item messages.
    evidence = secrets.token_bytes(CHUNK + 12_345)
    answers = ReportAnswers(
        category="suap_menyuap", mcp_area="perizinan", apa=SHARED_APA, siapa="Kabid X",
        kapan="Oktober 2026", dimana="Kemendes", bagaimana="Tunai", berapa="Rp 40 juta",
        kronologi="",
    )
    # Filing and the next sync must fall on one WIB day (the case is held until its day is
    # over): close to WIB midnight (17:00 UTC), wait until it has passed.
    now = dt.datetime.now(dt.UTC)
    midnight = dt.datetime.combine(now.date(), dt.time(17, 0), dt.UTC)
    if dt.timedelta(0) <= midnight - now < dt.timedelta(seconds=90):
        time.sleep((midnight - now).total_seconds() + 1)
    with a.sessions() as session:
        owner = get_tenant(session, "kemendes")
        add_recipient_key(session, a.keyring, owner, armored)
        session.commit()
        ctx = Context(a, session, owner)
        codename = generate_codename()
        source = register_source(ctx, codename)
        intake = Intake(ctx, source.source_id, to_kpk=True)
        sink = intake.open_file("file", "bukti.bin")
        for start in range(0, len(evidence), 1 << 20):
            sink.write(evidence[start : start + (1 << 20)])
        sink.close()
        case = intake.new_case(answers)
        number, case_id = case.registration_number, case.id
        checks["a_shared_case_filed"] = [bool(case.sent_to_kpk), number.startswith("PLT-KEMENDES-")]

    # Filed today, it waits for its day to be over: this sync sends only A's instansi with its
    # new recipient key (a `tenant` message), not the case.
    held = sync_a()
    checks["a_shared_case_held_today"] = [held.sent, number in mirrored_cases(hub, "member-a")]

    # Its day over, without waiting for midnight: the case (and its items) moved to
    # yesterday's WIB day label in A's database. Time travel (time-machine) would move this
    # process's clock only: the tors, PostgreSQL and every gpg run here keep the real one, and
    # a sync whose two ends and transport disagree about the day proves nothing. Aging the one
    # case is what a passing day does to it, and leaves every clock alone.
    yesterday = utc_today_start() - dt.timedelta(days=1)
    with a.sessions() as session:
        session.execute(sa.update(Case).where(Case.id == case_id).values(received_at=yesterday))
        session.execute(
            sa.update(Submission).where(Submission.case_id == case_id).values(created_at=yesterday)
        )
        session.commit()
    started = time.monotonic()
    shared, timings["a_shared_sync_attempts"] = retry(sync_a, 60, (SyncError,))
    timings["a_shared_sync_seconds"] = round(time.monotonic() - started, 1)
    checks["a_shared_sync"] = [shared.sent, shared.received, shared.pending]

    mirror = mirrored_cases(hub, "member-a").get(number)
    checks["hub_mirror_case"] = None if mirror is None else [
        bool(mirror.sent_to_kpk), mirror.category, mirror.received_at.date() == yesterday.date(),
    ]
    if mirror is None:
        return None
    with hub.sessions() as session:
        kpk = hub_tenant(session)
        assert kpk is not None
        shared_scope = SharedScope(session, kpk)
        visible = set(session.scalars(
            shared_scope.select(Case).with_only_columns(Case.registration_number)
        ))
        checks["hub_shared_scope_sees_case"] = number in visible
        items = {
            row.kind.value: (row.store_path, row.framing)
            for row in session.scalars(
                shared_scope.select(Submission).where(Submission.case_id == mirror.id)
            )
        }
        figures = dashboard(
            session, kpk, today=utc_today_start().date(), tenant_id=mirror.tenant_id
        )
        checks["dashboard_a_after_share"] = [
            figures.total, {line.code: line.count for line in figures.by_category},
        ]
    checks["hub_shared_items"] = sorted(items)
    checks["hub_staging_empty"] = not any(
        (hub.config.instance_dir / "federation" / "incoming").iterdir()
    )
    if "form" in items:
        path, framing = items["form"]
        form = json.loads(demo.decrypt(hub.store.resolve(path).read_bytes(), framing))
        checks["kpk_reads_form"] = [form.get("apa"), form.get("apa") == SHARED_APA]
    if "file" in items:
        path, framing = items["file"]
        ciphertext = hub.store.resolve(path).read_bytes()
        checks["kpk_reads_evidence"] = [
            hashlib.sha256(demo.decrypt(ciphertext, framing)).hexdigest(),
            hashlib.sha256(evidence).hexdigest(),
        ]
        checks["evidence_parts"] = -(-len(ciphertext) // CHUNK)
    return Shared(number, codename, hashlib.sha256(evidence).hexdigest())


def handled_across(
    demo: Any,
    a: Any,
    b: Any,
    shared: Shared,
    *,
    sync_a: Callable[[Kinds], Any],
    sync_b: Callable[[Kinds], Any],
    workstation_a: Path,
    workstation_b: Path,
    pelapor: Curl,
    a_source: str,
    folder: Path,
    b_numbers: list[str],
    checks: dict[str, Any],
    timings: dict[str, float],
    mark: Callable[[str], None],
) -> None:
    """The case handled across installations, over tor: B's instansi gets a recipient key;
    KPK takes A's shared case over on the hub, replies, and forwards it to B with a package its
    workstation made; B receives it, its workstation reads it, and B replies; the pelapor logs
    in at A's source onion with the same codename, reads B's reply and follows up, and B's
    workstation reads the follow-up. B never receives A's other cases."""
    from peluit.demo import make_workstation_key
    from tests.federation.conftest import (
        Federation,
        decrypt_with,
        forward_to_member,
        kpk_context,
        mirrored_cases,
    )
    from wbs import takeover
    from wbs.casework import post_reply
    from wbs.context import Context
    from wbs.federation.exchange import SyncError
    from wbs.forwarding import forward_destinations
    from wbs.models import Case
    from wbs.tenants import add_recipient_key, get_tenant

    hub = demo.instance

    def synced(name: str, sync: Callable[[Kinds], Any]) -> None:
        """A sync through tor: the counts, and the kinds of the messages each way."""
        kinds: Kinds = {"sent": {}, "received": {}}
        result, timings[f"{name}_attempts"] = retry(lambda: sync(kinds), 60, (SyncError,))
        checks[name] = [result.sent, result.received, result.pending]
        checks[f"{name}_kinds"] = {
            way: dict(sorted(Counter(seen.values()).items())) for way, seen in kinds.items()
        }

    def items(
        inst: Any, workstation: Path, session: Any, number: str, kind: str
    ) -> list[bytes | None]:
        """A case's items of ``kind`` at ``inst``, as ``workstation`` decrypts them."""
        case = session.scalar(sa.select(Case).where(Case.registration_number == number))
        return [] if case is None else [
            decrypt_with(workstation, inst.store.resolve(item.store_path).read_bytes())
            for item in case.submissions if item.kind.value == kind
        ]

    # 1. B's instansi gets a recipient key; B's next sync tells the hub (its tenant message).
    armored = make_workstation_key(workstation_b, "Kemenkes <kemenkes@demo.peluit.invalid>")
    with b.sessions() as session:
        add_recipient_key(session, b.keyring, get_tenant(session, "kemenkes"), armored)
        session.commit()
    synced("b_key_sync", sync_b)
    mark("b_key_synced")

    # 2. KPK takes A's case over on the hub, replies, and forwards it to B.
    mirror = mirrored_cases(hub, "member-a")[shared.number]
    with hub.sessions() as session:
        ctx = kpk_context(hub, session)
        checks["kpk_may_forward_to_b"] = "kemenkes" in {t.slug for t in forward_destinations(ctx)}
        own = ctx.shared().get(Case, mirror.id)
        assert own is not None, shared.number
        kpk_case = takeover.take_over(ctx, own, "kewenangan_kpk")
        kpk_number = kpk_case.registration_number
        post_reply(ctx, kpk_case, KPK_REPLY)
    folder.mkdir(parents=True, exist_ok=True)
    b_number = forward_to_member(Federation(demo, a, b), kpk_number, folder)
    checks["forwarded_number"] = [b_number.startswith("PLT-KEMENKES-"), int(b_number[-6:])]
    mark("kpk_forwarded_to_b")

    # 3. B receives the case with the hub's number; its workstation reads the form and the
    # evidence file; B's investigators reply.
    synced("b_case_in_sync", sync_b)
    with b.sessions() as session:
        case_b = session.scalar(sa.select(Case).where(Case.registration_number == b_number))
        checks["b_holds_forwarded_case"] = None if case_b is None else [
            case_b.status.value, case_b.tenant_id == get_tenant(session, "kemenkes").id,
        ]
        if case_b is None:
            return
        forms = items(b, workstation_b, session, b_number, "form")
        apa = json.loads(forms[0]).get("apa") if len(forms) == 1 and forms[0] else None
        checks["b_reads_form"] = [len(forms), apa, apa == SHARED_APA]
        files = items(b, workstation_b, session, b_number, "file")
        checks["b_reads_evidence"] = [
            None if data is None else hashlib.sha256(data).hexdigest() for data in files
        ] == [shared.evidence_sha256]
        post_reply(Context(b, session, get_tenant(session, "kemenkes")), case_b, B_REPLY)
    synced("b_reply_sync", sync_b)
    mark("b_replied")

    # 4. A learns who handles the case, and the replies; the pelapor reads them at A's source
    # onion with the same codename, and follows up there.
    synced("a_handled_sync", sync_a)
    mark("a_synced_handled")
    login = poll(lambda: pelapor(f"{a_source}/masuk"), lambda f: f.ok, 90)
    checks["pelapor_login_page"] = [login.status, login.error]
    page = pelapor(
        f"{a_source}/masuk",
        "--data-urlencode", f"csrf_token={field('csrf_token', login.body)}",
        "--data-urlencode", f"codename={shared.codename}",
        "-L",
    )
    checks["pelapor_reads_at_a"] = {
        "status": page.status,
        "case": f'id="case-{shared.number}"' in page.body,
        "b_reply": B_REPLY in page.body,
        "kpk_reply": KPK_REPLY in page.body,
        "handler": "Instansi kemenkes" in page.body,
    }
    mark("pelapor_read_reply_at_a")
    sent = pelapor(
        f"{a_source}/pengaduan/{shared.number}/kirim",
        "-F", f"csrf_token={field('csrf_token', page.body)}",
        "-F", "website=",
        "--form-string", f"message={FOLLOW_UP}",
    )
    checks["pelapor_follow_up"] = [sent.status, sent.error]
    # Stored at A on its mirror of B's case, encrypted to B's keys: A's workstation cannot
    # read it.
    with a.sessions() as session:
        checks["a_reads_follow_up"] = [
            data is not None for data in items(a, workstation_a, session, b_number, "message")
        ]
    synced("a_follow_up_sync", sync_a)
    synced("b_follow_up_sync", sync_b)
    with b.sessions() as session:
        checks["b_reads_follow_up"] = (
            FOLLOW_UP.encode() in items(b, workstation_b, session, b_number, "message")
        )
        numbers = sorted(session.scalars(sa.select(Case.registration_number)))
    mark("b_read_follow_up")

    # 5. B holds its own cases, the one forwarded to it and its mirror of KPK's case: nothing
    # of A's (neither the case the pelapor filed there nor A's other cases).
    checks["b_cases_after_handling"] = [
        numbers, sorted([*b_numbers, b_number, kpk_number]),
        [number for number in numbers if number.startswith("PLT-KEMENDES-")],
    ]


def run(workdir: Path, out: dict[str, Any]) -> None:
    import requests

    from crypto.keyring import kill_agent
    from federation_iface import create_app
    from source_iface import create_app as create_source_app
    from tests.conftest import open_demo
    from tests.federation.conftest import (
        add_cases,
        installation_config,
        member_installation,
        mirrored_cases,
    )
    from wbs import onion
    from wbs.federation.exchange import SyncError, sync
    from wbs.federation.peers import add_member, join, join_request, own_fingerprint, revoke_member
    from wbs.federation.transport import ENDPOINT, onion_poster
    from wbs.federation.wire import new_envelope, seal
    from wbs.instance import Instance
    from wbs.models import Case, FederationPeer, FederationRefusal, Tenant
    from wbs.monitoring import dashboard
    from wbs.tenants import hub_tenant, kpk_recipients

    timings: dict[str, float] = out.setdefault("timings", {})
    checks: dict[str, Any] = out.setdefault("checks", {})

    def mark(name: str) -> None:
        timings[name] = round(time.monotonic() - _STARTED, 1)
        log(name)

    loopback_up()
    if not in_private_namespace():
        raise RuntimeError("not in a private network namespace")
    net = TestNetwork(workdir / "net")
    postgres = Postgres(workdir / "pg")
    # Member A's investigators' workstation (the secret half of its instansi's key).
    workstation_a = short_tempdir("fed-ws-")
    # Member B's (made when B's instansi gets its key).
    workstation_b = short_tempdir("fed-ws-")
    homes = [
        *(workdir / "inst" / name / "gnupg" for name in ("hub", "a", "b")),
        workstation_a, workstation_b,
    ]
    client_b: TorProcess | None = None
    try:
        net.configure(client_auth_dir=workdir / "auth-a")
        client_b = second_client(net, "clientb", workdir / "auth-b")
        net.start()
        client_b.start()
        tors = [*net.everything, client_b]
        out["pids"] = [p.pid for p in tors]
        mark("tor_started")

        # While tor bootstraps: PostgreSQL for B, and the three installations.
        postgres.start()
        out["postgres_pid"] = postgres.pid
        mark("postgres_started")
        with ExitStack() as stack:
            root = workdir / "inst"
            demo = stack.enter_context(open_demo(installation_config(root, "hub")))
            hub = demo.instance
            a = stack.enter_context(member_installation(installation_config(root, "a"), "kemendes"))
            b = stack.enter_context(
                member_installation(installation_config(root, "b", postgres.url), "kemenkes")
            )
            checks["databases"] = [
inst.engine.dialect.name for inst in (hub, a, b)]
            mark("installations_ready")

            # The offline exchange, each operator confirming the fingerprint read out to them.
            tickets: dict[str, bytes] = {}
            for member, name in ((a, "member-a"), (b, "member-b")):
                request = join_request(member, name)
                added = add_member(hub, request, own_fingerprint(member))
                tickets[name] = added.ticket
                joined = join(member, added.ticket, own_fingerprint(hub))
                checks[f"joined_{name}"] = [joined.role, joined.status, joined.fingerprint
                                           == own_fingerprint(hub)]
            a_numbers = add_cases(a, "kemendes", 3)
            b_numbers = add_cases(b, "kemenkes", 2)
            mark("joined")

            # The hub: the endpoint on loopback, its federation onion on the service tor. And
            # A's source interface (where its pelapor logs in), its instansi's onion on the
            # same tor: published now, its descriptor uploads while tor bootstraps.
            port, a_source_port = free_port(), free_port()
            stack.enter_context(serving(create_app(hub), port))
            stack.enter_context(
                serving(create_source_app(a, dev_tenant_paths=False), a_source_port)
            )
            service, client_a = net.service, net.client
            assert service is not None and client_a is not None
            assert client_a.socks_port and client_a.control_port
            assert client_b.socks_port and client_b.control_port
            control_a, control_b = client_a.control_port, client_b.control_port
            service.wait_control()
            control = f"127.0.0.1:{service.control_port}"
            with onion.connect(control) as ctl:
                watch = onion.UploadWatch(ctl)
                published = onion.publish_federation(ctl, hub, port)
                out["published"] = [published.name, published.address, published.action,
                                    published.clients]
                a_published = onion.publish_tenant(ctl, a, "kemendes", a_source_port)
                out["a_source_published"] = [a_published.name, a_published.action]
                net.wait_bootstrapped(180)
                client_b.wait_bootstrapped(180)
                mark("bootstrapped")
                uploaded = watch.wait([published.address, a_published.address], 120)
                watch.close()
            checks["uploaded"] = published.address.removesuffix(".onion") in uploaded
            checks["a_source_uploaded"] = a_published.address.removesuffix(".onion") in uploaded
            hub_onion = published.address
            checks["tickets_name_the_onion"] = all(
                hub_onion in ticket.decode() for ticket in tickets.values()
            )
            mark("uploaded")

            # Without a client key: tor cannot even read the onion's descriptor.
            curl_a = Curl(client_a.socks_port, workdir)
            url = f"http://{hub_onion}{ENDPOINT}"
            keyless = poll(lambda: curl_a(url, timeout=20), lambda f: f.error.endswith("(244)"), 90)
            checks["curl_without_key"] = [keyless.rc, keyless.status, keyless.error]
            socks_a = f"127.0.0.1:{client_a.socks_port}"
            socks_b = f"127.0.0.1:{client_b.socks_port}"
            try:
                sync(a, onion_poster(hub_onion, socks=socks_a))
                checks["sync_without_key"] = ["synced"]
            except SyncError as exc:
                checks["sync_without_key"] = ["refused", str(exc)]
            with a.sessions() as session:
                checks["a_last_error_without_key"] = session.scalar(
                    sa.select(FederationPeer.last_error)
                )
            mark("without_key")

            # Member A: its client key into its tor, then the exchange through the SOCKS port.
            def sync_member(
                member: Instance, ctl_port: int, socks: str, kinds: Kinds | None = None
            ) -> Any:
                with onion.connect(f"127.0.0.1:{ctl_port}") as ctl:
                    loaded = onion.load_hub_client_auth(ctl, member)  # as `peluit federation sync`
                post = onion_poster(loaded, socks=socks)
                return sync(member, post if kinds is None else spying(post, kinds))

            first_a, timings["a_first_sync_attempts"] = retry(
                lambda: sync_member(a, control_a, socks_a), 90, (SyncError,)
            )
            checks["a_first_sync"] = [first_a.sent, first_a.received, first_a.pending]
            mark("a_synced")
            # Again, loading the key again first (tor: "251 ... replaced"): nothing new to send.
            again = sync_member(a, control_a, socks_a)
            checks["a_repeat_sync"] = [again.sent, again.received, again.pending]
            mark("a_synced_again")

            mirrored = mirrored_cases(hub, "member-a")
            checks["a_cases_on_hub"] = [sorted(mirrored) == sorted(a_numbers), len(mirrored)]
            with hub.sessions() as session:
                kpk = hub_tenant(session)
                assert kpk is not None
                figures = dashboard(session, kpk, today=dt.date(2026, 12, 8))
                line = next((t for t in figures.tenants if t.slug == "kemendes"), None)
                checks["dashboard_a"] = (
                    None if line is None else
                    [line.total, line.open, line.overdue_first_response, line.province]
                )
                hub_keys = kpk_recipients(session)
            with a.sessions() as session:
                checks["a_kpk_keys"] = kpk_recipients(session) == hub_keys
                checks["a_kpk_key_count"] = len(hub_keys)

            # A pelapor files with A and shares with KPK; KPK reads it on its workstation.
            shared = share_withkpk_context(
                demo, a, lambda: sync_member(a, control_a, socks_a), workstation_a, checks, timings
            )
            mark("a_shared_case_read_by_kpk")

            # Member B, on PostgreSQL, through its own tor.
            first_b, timings["b_first_sync_attempts"] = retry(
                lambda: sync_member(b, control_b, socks_b), 90, (SyncError,)
            )
            checks["b_first_sync"] = [first_b.sent, first_b.received, first_b.pending]
            mark("b_synced")
            with b.sessions() as session:
                checks["b_kpk_keys"] = kpk_recipients(session) == hub_keys
                checks["b_tenants"] = sorted(session.scalars(sa.select(Tenant.slug)))
                checks["b_cases"] = sorted(session.scalars(sa.select(Case.registration_number)))
            checks["b_own_cases"] = sorted(b_numbers)
            checks["b_cases_on_hub"] = sorted(mirrored_cases(hub, "member-b")) == sorted(b_numbers)

            # KPK takes A's shared case over and forwards it to B; the pelapor reads B's reply
            # at A's source onion with the same codename, and B reads the follow-up.
            if shared is not None:
                (workdir / "pelapor").mkdir()
                handled_across(
                    demo, a, b, shared,
                    sync_a=lambda kinds: sync_member(a, control_a, socks_a, kinds),
                    sync_b=lambda kinds: sync_member(b, control_b, socks_b, kinds),
                    workstation_a=workstation_a, workstation_b=workstation_b,
                    pelapor=Curl(client_a.socks_port, workdir / "pelapor"),
                    a_source=f"http://{a_published.address}",
                    folder=workdir / "forward",
                    b_numbers=b_numbers, checks=checks, timings=timings, mark=mark,
                )

            # The hub revokes A: dropped from the federation onion at once, refused by the
            # endpoint whatever tor does.
            add_cases(a, "kemendes", 1)
            revocation = revoke_member(hub, "member-a", control=control)
            checks["revocation"] = [revocation.in_effect, revocation.note]
            revoked_at = time.monotonic()
            try:
                sync_member(a, control_a, socks_a)
                checks["a_after_revocation"] = ["synced"]
            except SyncError as exc:
                checks["a_after_revocation"] = ["refused", str(exc)]
            timings["a_refused_after_seconds"] = round(time.monotonic() - revoked_at, 1)
            mark("a_revoked")
            after = poll(lambda: curl_a(url, timeout=20), lambda f: f.error.endswith("(245)"), 60)
            checks["curl_a_after_revocation"] = [after.rc, after.status, after.error]
            # The endpoint itself, on loopback (no tor): A's signed request is refused.
            with a.sessions() as session:
                hub_peer_row = session.scalar(sa.select(FederationPeer))
                assert hub_peer_row is not None
                ack = hub_peer_row.received_seq
            envelope = new_envelope(own_fingerprint(a), own_fingerprint(hub), ack=ack, messages=())
            direct = requests.post(
                f"http://127.0.0.1:{port}{ENDPOINT}", data=seal(a.signing, envelope), timeout=30
            )
            checks["endpoint_refuses_a"] = [direct.status_code, direct.json()]
            checks["a_cases_on_hub_after_revocation"] = len(mirrored_cases(hub, "member-a"))
            with hub.sessions() as session:
                checks["hub_refusals"] = sorted(
                    set(session.scalars(sa.select(FederationRefusal.reason)))
                )

            # B goes on: a new case reaches the hub.
            new_b = add_cases(b, "kemenkes", 1)
            # A's revocation replaced the onion (new introduction points, B's rendezvous
            # circuit closed): B's tor may need a fresh descriptor first, hence the retries.
            later_b, timings["b_sync_after_revocation_attempts"] = retry(
                lambda: sync_member(b, control_b, socks_b), 60, (SyncError,)
            )
            checks["b_after_revocation"] = [
                later_b.sent, later_b.pending, new_b[0] in mirrored_cases(hub, "member-b"),
            ]
            mark("b_synced_after_revocation")
    finally:
        net.stop_all()
        if client_b is not None:
            with contextlib.suppress(Exception):
                client_b.stop()
        postgres.stop()
        everything = [*net.everything, *([client_b] if client_b else [])]
        out["still_running"] = [
            p.pid for p in everything if p.process is not None and p.process.poll() is None
        ]
        if postgres.running():
            out["still_running"].append(postgres.pid)
        for home in homes:
            kill_agent(home)
        shutil.rmtree(workstation_a, ignore_errors=True)
        shutil.rmtree(workstation_b, ignore_errors=True)
        mark("stopped")


if __name__ == "__main__":
    sys.exit(scenario_main(run, sys.argv))
