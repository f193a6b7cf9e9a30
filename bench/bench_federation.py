"""Benchmark of the federation link: 10,000 metadata updates from a member to its hub.

A hub (the demo instance) and a member with 10,000 cases, joined by the offline exchange; the
hub's endpoint served on loopback by the development server (the transport over tor adds its
circuit latency, about a second a round trip on a real network, times the rounds printed).
First the member's initial sync (its instansi and every case), then every case's status
changes and the member syncs the 10,000 updates. Printed: the sync lag (from the start of
the sync, which queues the changes, to the last update applied on the hub), messages per
second, and the ratio against the physical limit measured in the same run: the same 10,000
updates written straight into the hub's database in one transaction by the same code
(:class:`wbs.federation.metadata.MirrorWriter`), with no queue, signature, HTTP or check.

Goal: the 10,000 updates applied within 60 s (a sync timer of a few minutes then never falls
behind), at no less than a fifth of the direct write's rate.

Run: ``.venv/bin/python bench/bench_federation.py [--cases 10000]``. Exits 3 when a goal is
missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from crypto.kdf import KdfParams  # noqa: E402
from peluit.demo import ensure_demo  # noqa: E402
from peluit.devserver import loopback_server  # noqa: E402
from wbs.config import load_config  # noqa: E402
from wbs.domain import CaseStatus, TenantKind  # noqa: E402
from wbs.federation import metadata  # noqa: E402
from wbs.federation.exchange import sync  # noqa: E402
from wbs.federation.peers import add_member, join, join_request, own_fingerprint  # noqa: E402
from wbs.federation.transport import ENDPOINT, poster  # noqa: E402
from wbs.federation.wire import Message  # noqa: E402
from wbs.instance import Instance, init_instance  # noqa: E402
from wbs.models import Case, FederationPeer, Source, Tenant  # noqa: E402
from wbs.tenants import create_tenant  # noqa: E402

MISSED_GOAL = 3
GOAL_LAG_SECONDS = 60.0
GOAL_SHARE = 0.2
CHEAP = KdfParams(time_cost=1, memory_kib=8)


def _instance(root: Path, name: str) -> Instance:
    env = {
        "PELUIT_GNUPG_HOME": str(root / name / "gnupg"),
        "PELUIT_KDF_TIME_COST": str(CHEAP.time_cost),
        "PELUIT_KDF_MEMORY_KIB": str(CHEAP.memory_kib),
    }
    config = load_config(env, instance_dir=root / name / "instance")
    init_instance(config)
    return Instance.open(config)


def _seed_member(inst: Instance, count: int) -> None:
    with inst.sessions() as session:
        tenant = create_tenant(
            session, slug="kemendes", name="Kementerian Desa", kind=TenantKind.KEMENTERIAN,
            province="DKI Jakarta",
        )
        session.flush()
        sources, cases = [], []
        for number in range(count):
            source_id = secrets.token_hex(32)
            sources.append({
                "id": source_id, "tenant_id": tenant.id, "reply_fingerprint": "A" * 40,
                "reply_public_key": "-", "reply_secret_key": "-",
                "created_at": dt.datetime(2026, 11, 2, tzinfo=dt.UTC),
            })
            cases.append({
                "tenant_id": tenant.id, "source_id": source_id,
                "registration_number": f"PLT-KEMENDES-2026-{number:06d}",
                "category": "gratifikasi", "status": CaseStatus.BARU,
                "received_at": dt.datetime(2026, 11, 2, tzinfo=dt.UTC),
                "first_response_due": dt.date(2026, 11, 9), "closure_due": dt.date(2026, 12, 14),
                "last_activity_at": dt.datetime(2026, 11, 2, tzinfo=dt.UTC),
            })
        session.execute(sa.insert(Source), sources)
        session.execute(sa.insert(Case), cases)
        session.commit()


def _direct_write(hub: Instance, member_name: str, messages: Sequence[Message]) -> float:
    """The limit: the same messages written by the same code, one transaction, nothing else."""
    with hub.sessions() as session:
        peer = session.scalar(sa.select(FederationPeer).where(FederationPeer.name == member_name))
        assert peer is not None
        started = time.perf_counter()
        writer = metadata.MirrorWriter(session, peer, messages)
        for message in messages:
            writer.apply(message)
        session.commit()
        return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=10_000)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bfed-", dir="/tmp"))
    workstation = root / "ws"
    try:
        hub = _instance(root, "hub")
        with hub.sessions() as session:
            ensure_demo(session, hub.keyring, workstation, settings=hub.auth_settings())
        member = _instance(root, "member")
        _seed_member(member, args.cases)
        added = add_member(hub, join_request(member, "member-a"), own_fingerprint(member))
        join(member, added.ticket, own_fingerprint(hub))

        from federation_iface import create_app

        server = loopback_server(create_app(hub), 0)
        port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        post = poster(f"http://127.0.0.1:{port}{ENDPOINT}")

        started = time.perf_counter()
        first = sync(member, post)
        initial = time.perf_counter() - started

        with member.sessions() as session:
            session.execute(sa.update(Case).values(status=CaseStatus.VERIFIKASI))
            session.commit()
        started = time.perf_counter()
        result = sync(member, post)
        lag = time.perf_counter() - started
        server.shutdown()

        # The same updates again, as messages, written straight into the hub's mirrors.
        with member.sessions() as session:
            slug = "kemendes"
            rows = session.execute(
                sa.select(*metadata.CASE_COLUMNS).join(
                    Source, (Source.id == Case.source_id) & (Source.tenant_id == Case.tenant_id)
                )
            ).all()
        updates = [
            Message(seq=index + 1, kind=metadata.CASE,
                    body={**metadata.case_body(row, slug), "status": str(CaseStatus.KLARIFIKASI)})
            for index, row in enumerate(rows)
        ]
        direct = _direct_write(hub, "member-a", updates)
        with hub.sessions() as session:
            mirrored = session.scalar(
                sa.select(sa.func.count()).select_from(Case)
                .join(Tenant, Tenant.id == Case.tenant_id)
                .where(Tenant.federation_peer_id.is_not(None))
            )
        hub.close()
        member.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)

    rate = result.sent / lag if lag else 0.0
    limit_rate = len(updates) / direct if direct else 0.0
    share = rate / limit_rate if limit_rate else 0.0
    ok = (
        result.sent == args.cases and result.pending == 0 and mirrored == args.cases
        and lag <= GOAL_LAG_SECONDS and share >= GOAL_SHARE
    )
    rounds = -(-result.sent // 500)
    print(
        f"initial sync: {first.sent} messages (the instansi and {args.cases} cases) "
        f"in {initial:.1f} s, {first.sent / initial:.0f} messages/s"
    )
    print(
        f"{result.sent} metadata updates: sync lag {lag:.1f} s (goal <= {GOAL_LAG_SECONDS:.0f} s)"
        f" in {rounds} round trips, {rate:.0f} messages/s"
    )
    print(
        f"limit, the same updates written straight into the hub's database: {direct:.1f} s, "
        f"{limit_rate:.0f} messages/s; the link reaches {share:.0%} of it "
        f"(goal >= {GOAL_SHARE:.0%}) {'OK' if ok else 'MISSED'}"
    )
    return 0 if ok else MISSED_GOAL


if __name__ == "__main__":
    sys.exit(main())
