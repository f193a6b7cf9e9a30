"""Migration 0019 (pengambilalihan, permintaan pelimpahan): two nullable times of a case."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from crypto.sealing import SealingKey
from wbs import db

COLUMNS = {"taken_over_at", "forward_requested_at"}


def _case_columns(engine: sa.Engine) -> dict[str, dict[str, object]]:
    return {column["name"]: dict(column) for column in sa.inspect(engine).get_columns("cases")}


def test_the_takeover_migration_adds_nullable_times_and_its_downgrade_drops_them(
    database_url: str,
) -> None:
    script = ScriptDirectory.from_config(db.alembic_config())
    (takeover,) = [rev for rev in script.walk_revisions() if rev.path.endswith("_takeover.py")]
    before = str(takeover.down_revision)
    engine = db.make_engine(database_url)
    try:
        db.upgrade(engine, before, totp_key=SealingKey(b"m" * 32))
        assert not COLUMNS & set(_case_columns(engine))
        db.upgrade(engine, takeover.revision)
        columns = _case_columns(engine)
        # Every existing case is its own handler and nobody asked for it: nullable, empty.
        assert set(columns) >= COLUMNS
        assert all(columns[name]["nullable"] for name in COLUMNS)
        assert isinstance(columns["taken_over_at"]["type"], sa.DateTime)
        db.downgrade(engine, before)
        assert not COLUMNS & set(_case_columns(engine))
    finally:
        engine.dispose()
