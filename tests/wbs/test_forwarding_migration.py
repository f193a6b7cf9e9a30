"""Migration 0016 (pelimpahan): the two link columns of a case, added and removed."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from crypto.sealing import SealingKey
from wbs import db

LINKS = {"linked_to_case_id", "linked_from_case_id"}


def _case_columns(engine: sa.Engine) -> dict[str, dict[str, object]]:
    return {column["name"]: dict(column) for column in sa.inspect(engine).get_columns("cases")}


def test_the_forwarding_migration_adds_nullable_links_and_its_downgrade_drops_them(
    database_url: str,
) -> None:
    script = ScriptDirectory.from_config(db.alembic_config())
    (forwarding,) = [
        rev for rev in script.walk_revisions() if rev.path.endswith("_forwarding.py")
    ]
    before = str(forwarding.down_revision)
    engine = db.make_engine(database_url)
    try:
        db.upgrade(engine, before, totp_key=SealingKey(b"m" * 32))
        assert not LINKS & set(_case_columns(engine))
        db.upgrade(engine, forwarding.revision)
        columns = _case_columns(engine)
        # Every existing case is its own handler: no link, so nullable and empty.
        assert set(columns) >= LINKS
        assert all(columns[name]["nullable"] for name in LINKS)
        # No foreign key: the link crosses tenants and outlives a deleted case (like the log).
        foreign = sa.inspect(engine).get_foreign_keys("cases")
        assert not any(set(fk["constrained_columns"]) & LINKS for fk in foreign)
        db.downgrade(engine, before)
        assert not LINKS & set(_case_columns(engine))
    finally:
        engine.dispose()
