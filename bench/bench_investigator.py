"""Benchmark of the investigator side at scale: 100,000 reports over 100 instansi.

Goal (ARCHITECTURE.md): investigator inbox and KPK dashboard under 100 ms server time with
100,000 reports, on SQLite (a temp file) and on a real PostgreSQL server (a private cluster
started here, or the one named by PELUIT_TEST_POSTGRES_URL). Measured, each the median of
several runs with a fresh session:

* the inbox of one tenant's verifikator, default sort, first page, with the unread count
  (:func:`wbs.inbox.inbox`), and a KPK monitor's inbox (own cases plus every case
  sent to KPK, across tenants);
* the case page's queries (case, items, event log, team) and the full requests ``GET /`` and
  ``GET /pengaduan/<id>`` through the Flask test client with a logged-in session (server time
  of the whole request: session check, queries, template);
* KPK's dashboard (:func:`wbs.monitoring.dashboard`, with the working-day median) viewed
  again, and viewed after a case changed status and the log grew, and one tenant's summary
  (:func:`wbs.monitoring.tenant_summary`). ``bench/bench_dashboard.py`` measures every
  dashboard view at 100,000 and 1,000,000 cases against its own, tighter budget.

The data are metadata only (no ciphertext file exists): tenants, investigators, sources,
cases, submissions, replies and an event log shaped like real handling, bulk-inserted with
SQLAlchemy Core. SQLite is measured as a deployment finds it (no ANALYZE); PostgreSQL after
ANALYZE, which autovacuum runs by itself after a bulk load.

Run: ``.venv/bin/python bench/bench_investigator.py [--cases 100000] [--tenants 100]``.
Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import hashlib
import os
import pwd
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from crypto.kdf import KdfParams
from journalist_iface import create_app
from journalist_iface.auth import COOKIE_NAME
from wbs import casework, db
from wbs.accounts import AuthSettings, open_session
from wbs.config import generate_secrets, load_config
from wbs.context import Context
from wbs.deadlines import backfill_first_response_figures
from wbs.domain import (
    DEFAULT_CATEGORY_CODES,
    MCP_AREAS_CLASSIC,
    CaseStatus,
    EventKind,
    KpkSharing,
    Role,
    SubmissionKind,
    TenantKind,
)
from wbs.inbox import InboxFilters, assignable, inbox, investigator_names
from wbs.instance import Instance
from wbs.models import (
    Case,
    Event,
    Investigator,
    Reply,
    Source,
    Submission,
    Tenant,
)
from wbs.monitoring import dashboard, tenant_summary
from wbs.workdays import WorkingCalendar

GOAL_MS = 100.0
RUNS = 15
BATCH = 5000
TODAY = dt.date(2025, 9, 1)
DAYS_OF_HISTORY = 540
# Cheap account hashing: the bench never logs in with a password (it opens a session directly).
CHEAP_KDF = KdfParams(time_cost=1, memory_kib=8, parallelism=1)
UTC = dt.UTC


def _status(ok: bool) -> str:
    return "OK" if ok else "MISSED"


# --- PostgreSQL: a private cluster, as tests/conftest.py starts one ----------------------------


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def postgres_server() -> Iterator[str]:
    """A server URL: PELUIT_TEST_POSTGRES_URL, or a private cluster stopped (by PID) at the end."""
    url = os.environ.get("PELUIT_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        raise SystemExit("PostgreSQL is needed: install it or set PELUIT_TEST_POSTGRES_URL")
    root = Path(tempfile.mkdtemp(prefix="pgbench-", dir="/tmp"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (root, sock):
            os.chown(path, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-U", "peluit", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *prefix, pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60",
            "-o", f"-h 127.0.0.1 -p {port} -k {sock} -F", "start",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    pid = int((data / "postmaster.pid").read_text().split()[0])
    try:
        yield f"postgresql+psycopg://peluit@127.0.0.1:{port}/postgres"
    finally:
        # Stop exactly the postmaster started above (SIGINT: fast shutdown), then wait for it.
        try:
            os.kill(pid, 2)
            for _ in range(300):
                os.kill(pid, 0)
                time.sleep(0.1)
        except ProcessLookupError:
            pass
        shutil.rmtree(root, ignore_errors=True)


def _fresh_database(server: str, name: str) -> str:
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return f"{server.rsplit('/', 1)[0]}/{name}"


# --- seeding ----------------------------------------------------------------------------------


@dataclass
class Seeded:
    tenant_id: int  # the tenant whose inbox is measured
    hub_id: int
    verifikator_id: int
    monitor_id: int
    case_id: int  # a case of that tenant with submissions, replies and a long log
    seconds: float


def _hex_id(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def _insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        conn.execute(table.insert(), rows[start : start + BATCH])


def seed(engine: sa.Engine, cases: int, tenants: int) -> Seeded:
    """Bulk-load the data set; deterministic (seeded random) so runs compare."""
    started = time.perf_counter()
    rng = random.Random(20250901)
    calendar = WorkingCalendar()
    first_due: dict[dt.date, dt.date] = {}
    closure_due: dict[dt.date, dt.date] = {}
    now = dt.datetime.combine(TODAY, dt.time(9), tzinfo=UTC)
    areas = [code for code, _ in MCP_AREAS_CLASSIC]
    with engine.begin() as conn:
        tenant_rows = [
            {
                "id": 1,
                "slug": "kpk",
                "name": "Komisi Pemberantasan Korupsi",
                "kind": TenantKind.HUB,
                "is_hub": True,
                "categories": list(DEFAULT_CATEGORY_CODES),
                "kpk_sharing": KpkSharing.NEVER,
            }
        ]
        kinds = [kind for kind in TenantKind if kind != TenantKind.HUB]
        for number in range(2, tenants + 2):
            tenant_rows.append(
                {
                    "id": number,
                    "slug": f"instansi-{number:03d}",
                    "name": f"Instansi {number:03d}",
                    "kind": kinds[number % len(kinds)],
                    "is_hub": False,
                    "categories": list(DEFAULT_CATEGORY_CODES),
                    "kpk_sharing": KpkSharing.OPTIONAL,
                }
            )
        _insert(conn, Tenant.__table__, tenant_rows)  # type: ignore[arg-type]
        investigator_rows = []
        team: dict[int, list[int]] = {}
        next_id = 1
        for tenant in tenant_rows:
            roles = [Role.ADMIN_INSTANSI, Role.VERIFIKATOR, Role.VERIFIKATOR, Role.VERIFIKATOR]
            if tenant["is_hub"]:
                roles.append(Role.PEMANTAU_KPK)
            for role in roles:
                investigator_rows.append(
                    {
                        "id": next_id,
                        "tenant_id": tenant["id"],
                        "username": f"u{next_id}",
                        "display_name": f"Petugas {next_id}",
                        "role": role,
                        "password_hash": "$argon2id$bench-not-a-real-hash",
                    }
                )
                team.setdefault(tenant["id"], []).append(next_id)
                next_id += 1
        _insert(conn, Investigator.__table__, investigator_rows)  # type: ignore[arg-type]

        sources, case_rows, submissions, replies, events = [], [], [], [], []
        tenant_ids = [row["id"] for row in tenant_rows if not row["is_hub"]]
        submission_id = reply_id = 0
        for case_id in range(1, cases + 1):
            tenant_id = tenant_ids[case_id % len(tenant_ids)]
            source_id = _hex_id("source", case_id)
            age = rng.randrange(DAYS_OF_HISTORY)
            received = TODAY - dt.timedelta(days=age)
            if received not in first_due:
                first_due[received] = calendar.add_working_days(received, 7)
                closure_due[received] = calendar.add_working_days(received, 30)
            received_at = dt.datetime.combine(received, dt.time(), tzinfo=UTC)
            # Old reports are mostly closed; recent ones mostly open.
            if age > 90:
                status = rng.choices(list(CaseStatus), [2, 1, 1, 2, 4, 30, 60])[0]
            else:
                status = rng.choices(list(CaseStatus), [30, 20, 8, 15, 5, 10, 12])[0]
            assignee = rng.choice(team[tenant_id][1:]) if status != CaseStatus.BARU else None
            sources.append(
                {
                    "id": source_id,
                    "tenant_id": tenant_id,
                    "reply_fingerprint": "D" * 40,
                    "reply_public_key": "-----BEGIN PGP PUBLIC KEY BLOCK----- (bench)",
                    "reply_secret_key": "(bench placeholder for a locked reply key)",
                    "created_at": received_at,
                }
            )
            case_rows.append(
                {
                    "id": case_id,
                    "tenant_id": tenant_id,
                    "source_id": source_id,
                    "registration_number": f"PLT-INSTANSI-{tenant_id:03d}-{case_id:07d}",
                    "category": rng.choice(DEFAULT_CATEGORY_CODES),
                    "mcp_area": rng.choice(areas) if rng.random() < 0.7 else None,
                    "status": status,
                    "sent_to_kpk": rng.random() < 0.3,
                    "received_at": received_at,
                    "first_response_due": first_due[received],
                    "closure_due": closure_due[received],
                    "assignee_id": assignee,
                    "last_activity_at": received_at,
                    "unread": status == CaseStatus.BARU or rng.random() < 0.1,
                }
            )
            log = [(EventKind.CASE_CREATED, received_at, None)]
            for index in range(1 + (case_id % 3)):
                submission_id += 1
                kind = SubmissionKind.FORM if index == 0 else SubmissionKind.FILE
                submissions.append(
                    {
                        "id": submission_id,
                        "tenant_id": tenant_id,
                        "case_id": case_id,
                        "kind": kind,
                        "store_path": f"{tenant_id}/{source_id[:16]}/{submission_id}.gpg",
                        "size": rng.randrange(2_000, 5_000_000),
                        "created_at": received_at,
                        "seen": status != CaseStatus.BARU,
                    }
                )
            if status != CaseStatus.BARU:
                answered = received_at + dt.timedelta(days=rng.randrange(0, 15), hours=3)
                if assignee is not None:
                    log.append((EventKind.ASSIGNED, answered - dt.timedelta(hours=1), None))
                log.append((EventKind.STATUS_CHANGED, answered, status))
                if case_id % 4 == 0:
                    reply_id += 1
                    replied = answered + dt.timedelta(hours=2)
                    replies.append(
                        {
                            "id": reply_id,
                            "tenant_id": tenant_id,
                            "case_id": case_id,
                            "investigator_id": assignee,
                            "store_path": f"{tenant_id}/replies/{reply_id}.gpg",
                            "size": 4096,
                            "created_at": replied,
                        }
                    )
                    log.append((EventKind.REPLY_ADDED, replied, None))
            for kind, when, to_status in log:
                events.append(
                    {
                        "tenant_id": tenant_id,
                        "case_id": case_id,
                        "kind": kind,
                        "to_status": to_status,
                        "created_at": min(when, now),
                    }
                )
        _insert(conn, Source.__table__, sources)  # type: ignore[arg-type]
        _insert(conn, Case.__table__, case_rows)  # type: ignore[arg-type]
        _insert(conn, Submission.__table__, submissions)  # type: ignore[arg-type]
        _insert(conn, Reply.__table__, replies)  # type: ignore[arg-type]
        _insert(conn, Event.__table__, events)  # type: ignore[arg-type]
        # As change_status and replies would have: the time of each case's first response,
        # so the dashboard's median works on real data (the same query as migration 0005).
        conn.execute(sa.text(
            "UPDATE cases SET first_response_at = (SELECT min(events.created_at) FROM events"
            " WHERE events.case_id = cases.id AND events.tenant_id = cases.tenant_id"
            " AND events.kind IN ('status_changed', 'reply_added'))"
        ))
        # And what the dashboards count of it, as record_first_response keeps it (migration 0015).
        backfill_first_response_figures(conn, calendar)

    measured = tenant_ids[0]
    # A case of the measured tenant with a full page: 3 submissions, a reply, a log of four.
    handled = [
        row["id"]
        for row in case_rows
        if row["tenant_id"] == measured and row["status"] != CaseStatus.BARU
    ]
    case_id = ([found for found in handled if found % 12 == 8] or handled)[0]
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
            # Explicit ids were inserted: move the sequences past them, as a real history has.
            for table in ("tenants", "investigators", "cases", "submissions", "replies"):
                # The table names are the constants above, not input.
                sql = f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"  # noqa: S608, E501
                conn.execute(sa.text(sql))
    return Seeded(
        tenant_id=measured,
        hub_id=1,
        verifikator_id=team[measured][1],
        monitor_id=team[1][-1],
        case_id=case_id,
        seconds=time.perf_counter() - started,
    )


# --- measuring --------------------------------------------------------------------------------


def median_ms(
    action: Callable[[], object], runs: int, prepare: Callable[[], object] | None = None
) -> float:
    """Median time of ``action``; ``prepare`` runs before each, outside the timing."""
    action()  # warm-up: first-use compilation of statements and templates
    times = []
    for _ in range(runs):
        if prepare is not None:
            prepare()
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


@dataclass
class Report:
    missed: list[str]

    def line(self, what: str, label: str, cases: int, ms: float) -> None:
        ok = ms < GOAL_MS
        print(
            f"{what} ({label}, {cases} cases): {ms:.1f} ms (goal < {GOAL_MS:.0f} ms) {_status(ok)}",
            flush=True,
        )
        if not ok:
            self.missed.append(f"{what} ({label})")


def _in_session(factory: sessionmaker[Session], work: Callable[[Session], object]) -> object:
    with factory() as session:
        return work(session)


def measure(url: str, label: str, cases: int, tenants: int, runs: int, report: Report) -> None:
    engine = db.make_engine(url)
    stack = ExitStack()
    try:
        db.upgrade(engine)
        seeded = seed(engine, cases, tenants)
        print(f"   seeded {label}: {cases} cases over {tenants} tenants in {seeded.seconds:.0f} s")
        factory = db.make_session_factory(engine)
        # Casework runs in a request's context, which holds an instance: one on this database.
        inst = stack.enter_context(instance_on(url))

        with factory() as session:
            tenant = session.get(Tenant, seeded.tenant_id)
            hub = session.get(Tenant, seeded.hub_id)
            verifikator = session.get(Investigator, seeded.verifikator_id)
            monitor = session.get(Investigator, seeded.monitor_id)
            assert tenant and hub and verifikator and monitor
            session.expunge_all()

        def tenant_inbox(session: Session) -> object:
            page = inbox(Context(inst, session, tenant, verifikator), InboxFilters(), TODAY)
            assert page.cases and page.unread >= 0
            return page

        def monitor_inbox(session: Session) -> object:
            return inbox(Context(inst, session, hub, monitor), InboxFilters(), TODAY)

        def case_queries(session: Session) -> object:
            ctx = Context(inst, session, tenant, verifikator)
            case = casework.readable_case(ctx, seeded.case_id)
            items = casework.items(ctx, case)
            events = casework.timeline(ctx, case)
            assert items and events
            return (
                items,
                events,
                session.get(Tenant, case.tenant_id),
                investigator_names(ctx),
                assignable(ctx),
            )

        def hub_dashboard(session: Session) -> object:
            board = dashboard(session, hub, today=TODAY)
            assert board.total == cases
            return board

        def one_tenant(session: Session) -> object:
            return tenant_summary(session, tenant, TODAY)

        for what, work in (
            ("inbox, one tenant", tenant_inbox),
            ("inbox, KPK monitor", monitor_inbox),
            ("case page queries", case_queries),
            ("KPK dashboard", hub_dashboard),
            ("tenant summary", one_tenant),
        ):
            report.line(what, label, cases, median_ms(lambda w=work: _in_session(factory, w), runs))

        moves = iter(range(10**9))

        def grow_log() -> None:
            # An investigator acts somewhere: a case changes status and the log grows (what a
            # monitor sees on a busy day); the dashboard's tallies follow in that transaction.
            step = next(moves)
            status = (CaseStatus.VERIFIKASI, CaseStatus.TELAAH)[step % 2]
            with engine.begin() as conn:
                conn.execute(sa.update(Case).where(Case.id == seeded.case_id).values(status=status))
                conn.execute(sa.insert(Event).values(
                    tenant_id=seeded.tenant_id, case_id=seeded.case_id,
                    kind=EventKind.STATUS_CHANGED, to_status=status,
                    created_at=dt.datetime.now(UTC)))

        report.line(
            "KPK dashboard, log grew since last view",
            label,
            cases,
            median_ms(lambda: _in_session(factory, hub_dashboard), runs, prepare=grow_log),
        )

        with flask_client(inst, seeded) as client:
            for what, path in (
                ("GET / (inbox page)", "/"),
                ("GET case page", f"/pengaduan/{seeded.case_id}"),
            ):

                def get(path: str = path) -> None:
                    response = client.get(path)
                    assert response.status_code == 200, response.status_code

                report.line(what, label, cases, median_ms(get, runs))
    finally:
        stack.close()
        engine.dispose()


@contextmanager
def instance_on(url: str) -> Iterator[Instance]:
    """An instance on this (seeded) database, with a throwaway folder for the rest."""
    root = Path(tempfile.mkdtemp(prefix="benchinst-", dir="/tmp"))
    try:
        env = {
            "PELUIT_DATABASE_URL": url,
            "PELUIT_GNUPG_HOME": str(root / "gnupg"),
            "PELUIT_KDF_TIME_COST": str(CHEAP_KDF.time_cost),
            "PELUIT_KDF_MEMORY_KIB": str(CHEAP_KDF.memory_kib),
        }
        config = load_config(env, instance_dir=root / "instance")
        generate_secrets(config.instance_dir)
        with Instance.open(config) as inst:
            yield inst
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def flask_client(inst: Instance, seeded: Seeded) -> Iterator[FlaskClient]:
    """The investigator app on this instance, with the verifikator logged in."""
    app = create_app(inst, testing=True, auth_settings=AuthSettings.from_kdf(CHEAP_KDF))
    with inst.sessions() as session:
        investigator = session.get(Investigator, seeded.verifikator_id)
        assert investigator is not None
        token = open_session(session, investigator)
    client = app.test_client()
    client.set_cookie(COOKIE_NAME, token)
    yield client


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--only", choices=("sqlite", "postgresql"), default=None)
    args = parser.parse_args()
    report = Report(missed=[])
    started = time.monotonic()
    if args.only in (None, "sqlite"):
        folder = Path(tempfile.mkdtemp(prefix="benchinv-", dir="/tmp"))
        try:
            url = f"sqlite:///{folder / 'bench.db'}"
            measure(url, "sqlite", args.cases, args.tenants, args.runs, report)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if args.only in (None, "postgresql"):
        with postgres_server() as server:
            url = _fresh_database(server, "peluit_bench")
            measure(url, "postgresql", args.cases, args.tenants, args.runs, report)
    print(f"   ({time.monotonic() - started:.0f} s in all)")
    if report.missed:
        print(f"missed: {', '.join(report.missed)}")
        return 3  # a goal was missed (bench/run.py tells it from a crash)
    return 0


if __name__ == "__main__":
    sys.exit(main())
