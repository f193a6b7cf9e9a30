"""Migration 0020 (one handler per matter): the matters table and the two case columns."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from crypto.sealing import SealingKey
from wbs import db

COLUMNS = {"matter_id", "matter_linked_by"}


def _case_columns(engine: sa.Engine) -> dict[str, dict[str, object]]:
    return {column["name"]: dict(column) for column in sa.inspect(engine).get_columns("cases")}


def test_the_matters_migration_adds_the_table_and_nullable_links_and_its_downgrade_drops_them(
    database_url: str,
) -> None:
    script = ScriptDirectory.from_config(db.alembic_config())
    (matters,) = [rev for rev in script.walk_revisions() if rev.path.endswith("_matters.py")]
    before = str(matters.down_revision)
    engine = db.make_engine(database_url)
    try:
        db.upgrade(engine, before, totp_key=SealingKey(b"m" * 32))
        assert not COLUMNS & set(_case_columns(engine))
        assert "matters" not in sa.inspect(engine).get_table_names()
        db.upgrade(engine, matters.revision)
        inspector = sa.inspect(engine)
        columns = _case_columns(engine)
        # Every existing case is in no matter: nullable and empty.
        assert set(columns) >= COLUMNS
        assert all(columns[name]["nullable"] for name in COLUMNS)
        # No foreign key: a matter spans tenants, read only by wbs.matters (like 0016's links).
        foreign = inspector.get_foreign_keys("cases")
        assert not any(set(fk["constrained_columns"]) & COLUMNS for fk in foreign)
        indexed = {tuple(index["column_names"]) for index in inspector.get_indexes("cases")}
        assert ("matter_id",) in indexed
        matter_columns = {c["name"]: c for c in inspector.get_columns("matters")}
        assert set(matter_columns) == {"id", "lead_case_id", "created_at", "lead_named_at"}
        assert matter_columns["lead_case_id"]["nullable"]
        # Tenant-neutral: a matter belongs to no instansi.
        assert inspector.get_foreign_keys("matters") == []
        db.downgrade(engine, before)
        assert not COLUMNS & set(_case_columns(engine))
        assert "matters" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
