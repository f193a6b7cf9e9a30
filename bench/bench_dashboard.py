"""Benchmark of the monitoring dashboards at 100,000 and 1,000,000 cases (issue #11's budget).

Goal: every dashboard view under 50 ms at 100,000 cases and under 100 ms at 1,000,000, on
SQLite (a temp file) and on a real PostgreSQL server, with the log grown since the last view.
Measured, each the median of several runs with a fresh session:

* KPK's dashboard (:func:`wbs.monitoring.dashboard`): every institution; one quarter; one
  province; one category; one quarter of one category; one month of one category (counted
  from the cases' rows, not the tallies: wbs.tallies.facet);
* KPK's dashboard right after an investigator changed a case's status (the tallies follow in
  the same transaction: nothing is recomputed at the view);
* an instansi's own summary and a province's coordination dashboard;
* what the tallies cost a writer: a case's status change with the triggers and without.

The physical limit beside each figure: one GROUP BY of the cases by institution and status
(from its covering index) in the same run, the least a dashboard that counts the cases at each
view must read for its first table. The tallies make whole views cheaper than that one count
as the cases grow (the ratio falls below 1).

The data: tenants, and per case its source and case rows shaped like real handling (status
by age, category, MCP area, first response and its stored figures), bulk-inserted with
SQLAlchemy Core with the tally triggers off, then counted once by :func:`wbs.tallies.refill`
(the time of that is printed: it is what migration 0024 costs on such a database).

Run: ``.venv/bin/python bench/bench_dashboard.py [--sizes 100000,1000000] [--only sqlite]``.
Exits 3 when a goal is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from bench_investigator import _fresh_database, median_ms, postgres_server
from sqlalchemy.orm import Session, sessionmaker

from wbs import db, tallies
from wbs.domain import (
    DEFAULT_CATEGORY_CODES,
    MCP_AREAS_CLASSIC,
    OPEN_STATUSES,
    CaseStatus,
    EventKind,
    KpkSharing,
    TenantKind,
)
from wbs.models import Case, Event, Source, Tenant
from wbs.monitoring import Filters, Period, dashboard, province_dashboard, tenant_summary
from wbs.workdays import WorkingCalendar

GOALS_MS = {100_000: 50.0, 1_000_000: 100.0}
RUNS = 15
WRITES = 200
BATCH = 10_000
TODAY = dt.date(2025, 9, 1)
DAYS_OF_HISTORY = 540
PROVINCES = ["Sumatera Selatan", "Jawa Barat", "Jawa Timur", "Sulawesi Selatan", "Papua"]
UTC = dt.UTC


def _goal(cases: int) -> float:
    return GOALS_MS.get(cases, 100.0 if cases > 100_000 else 50.0)


def seed(engine: sa.Engine, cases: int, tenants: int) -> dict[str, int]:
    """Tenants (a province's government among them) and ``cases`` cases; deterministic."""
    rng = random.Random(20251203)
    calendar = WorkingCalendar()
    first_due: dict[dt.date, dt.date] = {}
    closure_due: dict[dt.date, dt.date] = {}
    areas = [code for code, _ in MCP_AREAS_CLASSIC]
    kinds = [TenantKind.PEMERINTAH_KABUPATEN, TenantKind.PEMERINTAH_KOTA, TenantKind.LEMBAGA,
             TenantKind.KEMENTERIAN, TenantKind.BUMN]
    rows: list[dict[str, Any]] = [{
        "id": 1, "slug": "kpk", "name": "Komisi Pemberantasan Korupsi", "kind": TenantKind.HUB,
        "province": None, "is_hub": True, "categories": list(DEFAULT_CATEGORY_CODES),
        "kpk_sharing": KpkSharing.NEVER,
    }, {
        "id": 2, "slug": "pemprov-sumsel", "name": "Pemerintah Provinsi Sumatera Selatan",
        "kind": TenantKind.PEMERINTAH_PROVINSI, "province": PROVINCES[0], "is_hub": False,
        "categories": list(DEFAULT_CATEGORY_CODES), "kpk_sharing": KpkSharing.OPTIONAL,
    }]
    for number in range(3, tenants + 2):
        rows.append({
            "id": number, "slug": f"instansi-{number:04d}", "name": f"Instansi {number:04d}",
            "kind": kinds[number % len(kinds)], "province": PROVINCES[number % len(PROVINCES)],
            "is_hub": False, "categories": list(DEFAULT_CATEGORY_CODES),
            "kpk_sharing": KpkSharing.OPTIONAL,
        })
    with engine.begin() as conn:
        conn.execute(sa.insert(Tenant.__table__), rows)  # type: ignore[arg-type]
        tallies.uninstall(conn)  # a bulk load: counted once at the end
    tenant_ids = [row["id"] for row in rows]
    started = time.perf_counter()
    for first in range(1, cases + 1, BATCH):
        sources, case_rows = [], []
        for case_id in range(first, min(first + BATCH, cases + 1)):
            tenant_id = tenant_ids[case_id % len(tenant_ids)]
            source_id = hashlib.sha256(f"source/{case_id}".encode()).hexdigest()
            age = rng.randrange(DAYS_OF_HISTORY)
            received = TODAY - dt.timedelta(days=age)
            if received not in first_due:
                first_due[received] = calendar.add_working_days(received, 7)
                closure_due[received] = calendar.add_working_days(received, 30)
            received_at = dt.datetime.combine(received, dt.time(), tzinfo=UTC)
            # Old reports are mostly closed; recent ones mostly open.
            weights = [2, 1, 1, 2, 4, 30, 60] if age > 90 else [30, 20, 8, 15, 5, 10, 12]
            status = rng.choices(list(CaseStatus), weights)[0]
            answered = None
            if status != CaseStatus.BARU:
                answered = min(received + dt.timedelta(days=rng.randrange(0, 15)), TODAY)
            sources.append({
                "id": source_id, "tenant_id": tenant_id, "reply_fingerprint": "D" * 40,
                "reply_public_key": "(bench)", "reply_secret_key": "(bench)",
                "created_at": received_at,
            })
            case_rows.append({
                "id": case_id, "tenant_id": tenant_id, "source_id": source_id,
                "registration_number": f"PLT-{tenant_id:04d}-{case_id:08d}",
                "category": rng.choice(DEFAULT_CATEGORY_CODES),
                "mcp_area": rng.choice(areas) if rng.random() < 0.7 else None,
                "status": status, "sent_to_kpk": rng.random() < 0.3,
                "kpk_hint": rng.random() < 0.1, "received_at": received_at,
                "first_response_due": first_due[received],
                "closure_due": closure_due[received], "last_activity_at": received_at,
                "unread": status == CaseStatus.BARU,
                "first_response_at": (
                    dt.datetime.combine(answered, dt.time(3), tzinfo=UTC) if answered else None
                ),
                "first_response_days": (answered - received).days if answered else None,
                "first_response_workdays": (
                    calendar.working_days_between(received, answered) if answered else None
                ),
                "first_response_in_time": answered <= first_due[received] if answered else None,
                "closed_at": received_at if status not in OPEN_STATUSES else None,
            })
        with engine.begin() as conn:
            conn.execute(sa.insert(Source.__table__), sources)  # type: ignore[arg-type]
            conn.execute(sa.insert(Case.__table__), case_rows)  # type: ignore[arg-type]
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    with engine.begin() as conn:
        tallies.install(conn)
        tallies.refill(conn)
    counted = time.perf_counter() - started
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
            for table in ("tenants", "cases"):
                sql = f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"  # noqa: S608, E501
                conn.execute(sa.text(sql))
    with engine.connect() as conn:
        rows_kept = conn.execute(sa.text("SELECT count(*) FROM case_tallies")).scalar_one()
    return {"loaded": round(loaded), "refill": round(counted), "tally_rows": rows_kept}


def measure(url: str, label: str, cases: int, tenants: int, runs: int) -> list[str]:
    engine = db.make_engine(url)
    missed = []
    try:
        db.upgrade(engine)
        facts = seed(engine, cases, tenants)
        print(f"   seeded {label}: {cases} cases over {tenants} tenants in {facts['loaded']} s;"
              f" tallies counted in {facts['refill']} s ({facts['tally_rows']} rows)", flush=True)
        factory: sessionmaker[Session] = db.make_session_factory(engine)
        with factory() as session:
            hub, province = session.get(Tenant, 1), session.get(Tenant, 2)
            one = session.get(Tenant, 3)
            assert hub and province and one
            session.expunge_all()

        def view(work: Callable[[Session], Any]) -> Callable[[], object]:
            def run() -> object:
                with factory() as session:
                    return work(session)
            return run

        def count_all(session: Session) -> object:
            return session.execute(
                sa.select(Case.tenant_id, Case.status, sa.func.count())
                .group_by(Case.tenant_id, Case.status)
            ).all()

        limit = median_ms(view(count_all), runs)
        print(f"   physical limit, one count of the cases by institution and status ({label}):"
              f" {limit:.1f} ms")
        goal = _goal(cases)

        def everything(session: Session) -> object:
            board = dashboard(session, hub, today=TODAY)
            assert board.total == cases, board.total
            return board

        views: list[tuple[str, Callable[[Session], object]]] = [
            ("KPK dashboard", everything),
            ("KPK dashboard, one quarter", lambda s: dashboard(
                s, hub, today=TODAY, filters=Filters(period=Period.parse("2025-Q2")))),
            ("KPK dashboard, one province", lambda s: dashboard(
                s, hub, today=TODAY, filters=Filters(province=PROVINCES[1]))),
            ("KPK dashboard, one category", lambda s: dashboard(
                s, hub, today=TODAY, filters=Filters(category=DEFAULT_CATEGORY_CODES[0]))),
            ("KPK dashboard, one quarter of one category", lambda s: dashboard(
                s, hub, today=TODAY, filters=Filters(period=Period.parse("2025-Q2"),
                                                     category=DEFAULT_CATEGORY_CODES[0]))),
            ("KPK dashboard, one month of one category (from rows)", lambda s: dashboard(
                s, hub, today=TODAY, filters=Filters(period=Period.parse("2025-06"),
                                                     category=DEFAULT_CATEGORY_CODES[0]))),
            ("instansi summary", lambda s: tenant_summary(s, one, TODAY)),
            ("province dashboard", lambda s: province_dashboard(s, province, today=TODAY)),
        ]
        for what, work in views:
            missed += _line(what, label, cases, median_ms(view(work), runs), goal, limit)

        statuses = [CaseStatus.VERIFIKASI, CaseStatus.TELAAH]
        moves = iter(range(10**9))

        def act() -> None:
            # An investigator changes a case's status: the case row and the log grow, as
            # wbs.casework.change_status writes them (the triggers count it then).
            step = next(moves)
            with engine.begin() as conn:
                case_id = 1 + step
                conn.execute(sa.update(Case).where(Case.id == case_id)
                             .values(status=statuses[step % 2]))
                tenant_id = conn.execute(
                    sa.select(Case.tenant_id).where(Case.id == case_id)).scalar_one()
                conn.execute(sa.insert(Event).values(
                    tenant_id=tenant_id, case_id=case_id, kind=EventKind.STATUS_CHANGED,
                    to_status=statuses[step % 2], created_at=dt.datetime.now(UTC)))

        missed += _line("KPK dashboard, after a case changed", label, cases,
                        median_ms(view(everything), runs, prepare=act), goal, limit)

        # What the tallies cost a writer: a case's status change (its own transaction), with
        # the triggers and without them, on the same database.
        def changes() -> float:
            started = time.perf_counter()
            for _ in range(WRITES):
                act()
            return (time.perf_counter() - started) * 1000 / WRITES

        kept = changes()
        with engine.begin() as conn:
            tallies.uninstall(conn)
        bare = changes()
        with engine.begin() as conn:
            tallies.install(conn)  # the counts are off now: the last measurement of the run
        print(f"   a status change ({label}): {kept:.2f} ms with the tallies kept,"
              f" {bare:.2f} ms without: {kept / bare:.2f}x", flush=True)
    finally:
        engine.dispose()
    return missed


def _line(what: str, label: str, cases: int, ms: float, goal: float, limit: float) -> list[str]:
    ok = ms < goal
    print(f"{what} ({label}, {cases} cases): {ms:.1f} ms, {ms / limit:.2f}x the count"
          f" (goal < {goal:.0f} ms) {'OK' if ok else 'MISSED'}", flush=True)
    return [] if ok else [f"{what} ({label}, {cases})"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--only", choices=("sqlite", "postgresql"), default=None)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    missed: list[str] = []
    started = time.monotonic()
    for cases in sizes:
        if args.only in (None, "sqlite"):
            folder = Path(tempfile.mkdtemp(prefix="benchdash-", dir="/tmp"))
            try:
                missed += measure(f"sqlite:///{folder / 'bench.db'}", "sqlite", cases,
                                  args.tenants, args.runs)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        if args.only in (None, "postgresql"):
            with postgres_server() as server:
                url = _fresh_database(server, "peluit_bench_dashboard")
                missed += measure(url, "postgresql", cases, args.tenants, args.runs)
    print(f"   ({time.monotonic() - started:.0f} s in all)")
    if missed:
        print(f"missed: {'; '.join(missed)}")
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
