"""Migration 0024 (the dashboards' tallies) on a database with cases, on both databases: the
tallies count the cases that exist, ``merged_at`` is filled from the log for a case closed
into its lead (not for one reopened since), and the downgrade leaves no table or trigger."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from crypto.sealing import SealingKey
from wbs import db, tallies

UTC = dt.UTC
AT = dt.datetime(2025, 6, 2, tzinfo=UTC)


def _rows(engine: sa.Engine) -> None:
    """At 0023: one tenant, three cases (A closed into a lead, B closed into it and reopened,
    C never in a matter), written as plain rows as the schema stood."""
    meta = sa.MetaData()
    meta.reflect(engine, only=["tenants", "sources", "cases", "events", "matters"])
    tenants, sources, cases, events, matters = (
        meta.tables[name] for name in ("tenants", "sources", "cases", "events", "matters")
    )
    with engine.begin() as conn:
        conn.execute(tenants.insert(), {
            "id": 1, "slug": "pemkot-a", "name": "Pemkot A", "kind": "pemerintah_kota",
            "categories": ["suap_menyuap"], "kpk_sharing": "optional", "created_at": AT,
        })
        conn.execute(matters.insert(), {"id": 1, "created_at": AT})
        for number, (name, status, matter) in enumerate(
            [("a", "diarsipkan", 1), ("b", "telaah", 1), ("c", "selesai", None)], start=1
        ):
            conn.execute(sources.insert(), {
                "id": name * 64, "tenant_id": 1, "reply_fingerprint": "D" * 40,
                "reply_public_key": "public", "reply_secret_key": "locked", "created_at": AT,
            })
            conn.execute(cases.insert(), {
                "id": number, "tenant_id": 1, "source_id": name * 64,
                "registration_number": f"PLT-A-{number}", "category": "suap_menyuap",
                "status": status, "received_at": AT, "first_response_due": dt.date(2025, 6, 11),
                "last_activity_at": AT, "matter_id": matter,
            })
        log = [
            (1, "merged"), (1, "status_changed"),  # A: closed into the lead
            (2, "merged"), (2, "status_changed"), (2, "status_changed"),  # B: and reopened
            (3, "status_changed"),  # C: closed, in no matter
        ]
        for offset, (case_id, kind) in enumerate(log):
            conn.execute(events.insert(), {
                "tenant_id": 1, "case_id": case_id, "kind": kind,
                "created_at": AT + dt.timedelta(hours=offset),
            })


def test_the_tallies_migration_counts_existing_cases_and_fills_merged_at(
    database_url: str,
) -> None:
    engine = db.make_engine(database_url)
    try:
        db.upgrade(engine, "0023", totp_key=SealingKey(b"m" * 32))
        _rows(engine)
        db.upgrade(engine, "0024")
        with engine.connect() as conn:
            merged = dict(conn.execute(sa.text("SELECT id, merged_at FROM cases")).all())
            assert merged[1] is not None and merged[2] is None and merged[3] is None
            counted = dict(conn.execute(sa.text(
                "SELECT value, cases FROM case_tallies WHERE figure = 'status' AND facet = ''"
                " AND grain = 'a' AND tenant_id = 1")).all())
            assert counted == {"diarsipkan|none": 1, "telaah|none": 1, "selesai|none": 1}
            (merged_count,) = conn.execute(sa.text(
                "SELECT cases FROM case_tallies WHERE figure = 'merged' AND facet = ''"
                " AND grain = 'a' AND tenant_id = 1")).scalars().all()
            assert merged_count == 1
            assert tallies.problems(conn) == []
        # A case written after the migration is counted by the triggers.
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE cases SET status = 'selesai' WHERE id = 2"))
        with engine.connect() as conn:
            assert tallies.problems(conn) == []
        db.downgrade(engine, "0023")
        inspector = sa.inspect(engine)
        assert "case_tallies" not in inspector.get_table_names()
        assert "merged_at" not in {c["name"] for c in inspector.get_columns("cases")}
        # No trigger left behind to write into a table that is gone.
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE cases SET status = 'telaah' WHERE id = 3"))
    finally:
        engine.dispose()
