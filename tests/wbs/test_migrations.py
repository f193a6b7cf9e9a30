"""Every Alembic revision upgrades and downgrades, and the result is exactly the models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from wbs import db
from wbs.models import Base

APP_TABLES = {
    "tenants",
    "recipient_keys",
    "investigators",
    "sources",
    "cases",
    "case_tallies",
    "submissions",
    "replies",
    "events",
    "tenant_texts",
    "source_sessions",
    "investigator_sessions",
    "login_failures",
    "alert_settings",
    "case_sketches",
    "matters",
    "federation_peers",
    "federation_outbox",
    "federation_digests",
    "federation_refusals",
    "federation_nonces",
}


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = db.make_engine(database_url)
    yield engine
    engine.dispose()


def _tables(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def _revisions_base_to_head() -> list[str]:
    script = ScriptDirectory.from_config(db.alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def test_revisions_form_one_line_starting_at_0001() -> None:
    script = ScriptDirectory.from_config(db.alembic_config())
    assert len(script.get_heads()) == 1
    assert _revisions_base_to_head()[0] == "0001"


def test_head_down_to_base_and_back(engine: Engine) -> None:
    head = ScriptDirectory.from_config(db.alembic_config()).get_current_head()
    assert db.current_revision(engine) is None

    db.upgrade(engine)
    assert db.current_revision(engine) == head
    assert _tables(engine) == APP_TABLES

    db.downgrade(engine, "base")
    assert db.current_revision(engine) is None
    assert _tables(engine) == set()

    # A second upgrade proves the downgrade left nothing behind (a leftover trigger function or
    # index would make the CREATE fail).
    db.upgrade(engine)
    assert db.current_revision(engine) == head
    assert _tables(engine) == APP_TABLES


def test_each_revision_upgrades_downgrades_and_upgrades_again(database_url: str) -> None:
    previous: str = "base"
    for revision in _revisions_base_to_head():
        db.upgrade(database_url, revision)
        db.downgrade(database_url, previous)
        db.upgrade(database_url, revision)
        engine = db.make_engine(database_url)
        try:
            assert db.current_revision(engine) == revision
        finally:
            engine.dispose()
        previous = revision


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    db.upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_upgrade_accepts_a_url_as_well_as_an_engine(database_url: str) -> None:
    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    try:
        assert _tables(engine) == APP_TABLES
    finally:
        engine.dispose()


def test_sqlite_migrations_run_without_foreign_keys_and_restore_them(tmp_path: object) -> None:
    # Batch migrations rebuild SQLite tables; a DROP with foreign keys on would cascade-delete
    # every submission. The guard turns them off for the migration and back on afterwards, on
    # the very connection that returns to the pool.
    engine = db.make_engine(f"sqlite:///{tmp_path}/guard.db", poolclass=sa.pool.StaticPool)
    try:
        with engine.connect() as connection:
            with db.sqlite_migration_guard(connection):
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 0
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        db.upgrade(engine)
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_sqlite_keeps_its_temporary_data_in_memory(tmp_path: object) -> None:
    # A sort too large for the page cache would otherwise spill into a file in /var/tmp:
    # outside the instance, and refused by the services' AppArmor profile (a booted server's
    # reports failed with "OperationalError" until this pragma; tests/deploy/test_booted.py).
    engine = db.make_engine(f"sqlite:///{tmp_path}/temp.db")
    try:
        for _ in range(2):  # every new connection, not only the first
            with engine.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA temp_store").scalar() == 2  # MEMORY
            engine.dispose()
    finally:
        engine.dispose()


def _old_tenant(session: Session, slug: str, kind: str) -> int:
    """A tenant row as every revision since the first has it (the model has columns added
    later, which an INSERT through the ORM would name); returns its id."""
    return int(
        session.execute(
            sa.text(
                "INSERT INTO tenants (slug, name, kind, is_hub, first_response_days, categories,"
                " kpk_sharing, created_at) VALUES (:slug, :slug, :kind, :hub, 7, '[]', 'never',"
                " CURRENT_TIMESTAMP) RETURNING id"
            ),
            {"slug": slug, "kind": kind, "hub": kind == "hub"},
        ).scalar_one()
    )


def test_alembic_config_escapes_percent_signs_in_urls() -> None:
    url = "postgresql+psycopg://peluit:p%40ss@localhost/peluit"
    assert db.alembic_config(url).get_main_option("sqlalchemy.url") == url


def test_migration_0007_seals_totp_secrets_and_its_downgrade_opens_them(
    database_url: str,
) -> None:
    from crypto.sealing import SealError, SealingKey
    from wbs.accounts import (
        AuthSettings,
        PasswordParams,
        create_investigator,
        open_secret,
        start_enrolment,
    )
    from wbs.domain import Role
    from wbs.models import Tenant

    key = SealingKey(b"m" * 32)
    settings = AuthSettings(passwords=PasswordParams(1, 8, 1), totp_key=key)
    db.upgrade(database_url, "0007", totp_key=key)
    engine = db.make_engine(database_url)
    try:
        with db.make_session_factory(engine)() as session:
            tenant_id = _old_tenant(session, "kpk", "hub")
            # The columns added after 0007 are not there yet.
            tenant = session.get(Tenant, tenant_id, options=[
                sa.orm.defer(Tenant.federation_peer_id), sa.orm.defer(Tenant.federation_relayed)
            ])
            assert tenant is not None
            ids, secrets = [], []
            for name in ("siti", "budi"):
                account, _ = create_investigator(
                    session, tenant, name, name, Role.PEMANTAU_KPK, settings=settings
                )
                secrets.append(start_enrolment(session, account, settings=settings).secret)
                ids.append(account.id)
            # siti's secret active, budi's still pending.
            session.execute(
                sa.text(
                    "UPDATE investigators SET totp_secret_sealed = totp_pending_sealed, "
                    "totp_pending_sealed = NULL WHERE id = :id"
                ),
                {"id": ids[0]},
            )
            session.commit()

        def rows(columns: str) -> dict[int, tuple[str | None, str | None]]:
            with engine.connect() as connection:
                found = connection.execute(
                    sa.text(f"SELECT id, {columns} FROM investigators")  # noqa: S608
                )
                return {row[0]: (row[1], row[2]) for row in found}

        # Going down needs the key, and the right one: nothing changes otherwise.
        with pytest.raises(RuntimeError, match="totp_key"):
            db.downgrade(database_url, "0006")
        with pytest.raises(SealError):
            db.downgrade(database_url, "0006", totp_key=SealingKey(b"x" * 32))
        assert db.current_revision(engine) == "0007"

        db.downgrade(database_url, "0006", totp_key=key)
        plain = rows("totp_secret, totp_pending_secret")
        assert plain == {ids[0]: (secrets[0], None), ids[1]: (None, secrets[1])}

        # Going up seals them, each bound to its row, and leaves no plain column behind.
        with pytest.raises(RuntimeError, match="totp_key"):
            db.upgrade(database_url)
        assert db.current_revision(engine) == "0006"
        assert rows("totp_secret, totp_pending_secret") == plain
        db.upgrade(database_url, totp_key=key)
        columns = {c["name"] for c in sa.inspect(engine).get_columns("investigators")}
        assert "totp_secret" not in columns and "totp_pending_secret" not in columns
        sealed = rows("totp_secret_sealed, totp_pending_sealed")
        assert sealed[ids[1]][0] is None and sealed[ids[0]][1] is None
        active, pending = sealed[ids[0]][0], sealed[ids[1]][1]
        assert active is not None and pending is not None
        assert secrets[0] not in active and secrets[1] not in pending
        assert open_secret(key, ids[0], active) == secrets[0]
        assert open_secret(key, ids[1], pending) == secrets[1]
        with pytest.raises(SealError):
            open_secret(key, ids[1], active)
    finally:
        engine.dispose()


def test_the_framing_migration_records_every_earlier_item_as_unpadded(database_url: str) -> None:
    # Items stored before padding existed hold their plaintext as it was: the readers must
    # not strip a frame from them, so the upgrade marks every existing row "none".
    from crypto.sealing import SealingKey

    # Found by its file, so renumbering the revision (helpers' migrations are merged in
    # turn) needs no change here.
    script = ScriptDirectory.from_config(db.alembic_config())
    (framing,) = [rev for rev in script.walk_revisions() if rev.path.endswith("_item_framing.py")]
    before = str(framing.down_revision)
    db.upgrade(database_url, before, totp_key=SealingKey(b"m" * 32))
    engine = db.make_engine(database_url)
    try:
        with db.make_session_factory(engine)() as session:
            tenant_id = _old_tenant(session, "kpk", "hub")
            session.commit()
        now = "2026-12-01 00:00:00+00:00"
        statements = [
            "INSERT INTO sources (id, tenant_id, reply_fingerprint, reply_public_key,"
            " reply_secret_key, created_at) VALUES (:s, :t, :fpr, 'pub', 'sec', :now)",
            "INSERT INTO cases (id, tenant_id, source_id, registration_number, category,"
            " status, sent_to_kpk, received_at, first_response_due, last_activity_at, unread)"
            " VALUES (1, :t, :s, 'PLT-KPK-2026-000001', 'suap_menyuap', 'baru', false, :now,"
            " '2026-12-10', :now, true)",
            "INSERT INTO submissions (id, tenant_id, case_id, kind, store_path, size, created_at,"
            " seen) VALUES (1, :t, 1, 'file', 'kpk/a.gpg', 20976815, :now, false)",
            "INSERT INTO replies (id, tenant_id, case_id, store_path, size, created_at,"
            " read_by_source) VALUES (1, :t, 1, 'kpk/b.gpg', 700, :now, false)",
        ]
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(
                    sa.text(statement),
                    {"s": "ab" * 32, "t": tenant_id, "fpr": "A" * 40, "now": now},
                )
        db.upgrade(database_url, framing.revision)
        with engine.connect() as connection:
            for table in ("submissions", "replies"):
                framings = connection.execute(
                    sa.text(f"SELECT framing FROM {table}")  # noqa: S608 (constant names)
                ).scalars().all()
                assert framings == ["none"], table
        db.downgrade(database_url, before)
        columns = {c["name"] for c in sa.inspect(engine).get_columns("submissions")}
        assert "framing" not in columns and "size" in columns
    finally:
        engine.dispose()


def test_an_unknown_framing_never_reaches_the_database() -> None:
    from wbs.models import Reply, Submission

    for model in (Submission, Reply):
        with pytest.raises(ValueError, match="framing"):
            model(framing="padme/2")
        assert model(framing="padme/1").framing == "padme/1"


def test_the_alert_settings_migration_adds_a_table_tied_to_the_account(database_url: str) -> None:
    # Existing accounts get no row (no address, no mail); a new row defaults to alerts on, in
    # Indonesian; the composite key refuses another tenant's account, and removing the account
    # removes its row. The downgrade drops the table and nothing else.
    from crypto.sealing import SealingKey

    script = ScriptDirectory.from_config(db.alembic_config())
    (alerts,) = [
        rev for rev in script.walk_revisions() if rev.path.endswith("_alert_settings.py")
    ]
    before = str(alerts.down_revision)
    db.upgrade(database_url, before, totp_key=SealingKey(b"m" * 32))
    engine = db.make_engine(database_url)
    try:
        with db.make_session_factory(engine)() as session:
            tenants = (
                _old_tenant(session, "kpk", "hub"),
                _old_tenant(session, "pemkot-a", "pemerintah_kota"),
            )
            session.commit()
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO investigators (id, tenant_id, username, display_name, role,"
                    " password_hash, active, created_at, failed_logins)"
                    " VALUES (7, :t, 'lama', 'Lama', 'verifikator', 'x', true, :now, 0)"
                ),
                {"t": tenants[0], "now": "2026-12-01 00:00:00+00:00"},
            )
        db.upgrade(database_url, alerts.revision)
        assert "alert_settings" in _tables(engine)
        with engine.begin() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM alert_settings")).scalar() == 0
            connection.execute(
                sa.text(
                    "INSERT INTO alert_settings (investigator_id, tenant_id, email)"
                    " VALUES (7, :t, 'a@example.go.id')"
                ),
                {"t": tenants[0]},
            )
            row = connection.execute(
                sa.text("SELECT enabled, language, daily_sent_at FROM alert_settings")
            ).one()
            assert (bool(row.enabled), row.language, row.daily_sent_at) == (True, "id", None)
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM alert_settings"))
            connection.execute(
                sa.text("INSERT INTO alert_settings (investigator_id, tenant_id) VALUES (7, :t)"),
                {"t": tenants[1]},
            )
        with engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM investigators WHERE id = 7"))
            assert connection.execute(sa.text("SELECT count(*) FROM alert_settings")).scalar() == 0
        db.downgrade(database_url, before)
        assert "alert_settings" not in _tables(engine)
        assert "investigators" in _tables(engine)
    finally:
        engine.dispose()


def test_the_kpk_hint_migration_leaves_existing_cases_unasked(database_url: str) -> None:
    # Existing cases were never asked the two questions: NULL, not False (which would say "no
    # indication"). The downgrade drops the column and its partial index, and nothing else.
    from crypto.sealing import SealingKey

    script = ScriptDirectory.from_config(db.alembic_config())
    (hint,) = [rev for rev in script.walk_revisions() if rev.path.endswith("_kpk_hint.py")]
    before = str(hint.down_revision)
    db.upgrade(database_url, before, totp_key=SealingKey(b"m" * 32))
    engine = db.make_engine(database_url)
    try:
        assert "kpk_hint" not in {c["name"] for c in sa.inspect(engine).get_columns("cases")}
        db.upgrade(database_url, hint.revision)
        inspector = sa.inspect(engine)
        column = {c["name"]: c for c in inspector.get_columns("cases")}["kpk_hint"]
        assert column["nullable"] and column["default"] is None
        assert "ix_cases_kpk_hint" in {index["name"] for index in inspector.get_indexes("cases")}
        db.downgrade(database_url, before)
        inspector = sa.inspect(engine)
        assert "kpk_hint" not in {c["name"] for c in inspector.get_columns("cases")}
        assert "ix_cases_kpk_hint" not in {i["name"] for i in inspector.get_indexes("cases")}
    finally:
        engine.dispose()


def test_the_case_sketches_migration_adds_a_table_tied_to_the_case(database_url: str) -> None:
    # Existing cases get no sketch; a sketch refers to a case of its own tenant only (composite
    # foreign key) and goes with the case. The downgrade drops the table and nothing else.
    import datetime as dt

    from crypto.sealing import SealingKey
    from wbs.models import Source

    script = ScriptDirectory.from_config(db.alembic_config())
    (sketches,) = [
        rev for rev in script.walk_revisions() if rev.path.endswith("_case_sketches.py")
    ]
    before = str(sketches.down_revision)
    db.upgrade(database_url, before, totp_key=SealingKey(b"m" * 32))
    engine = db.make_engine(database_url)
    try:
        with db.make_session_factory(engine)() as session:
            tenants = {
                "one": _old_tenant(session, "kpk", "hub"),
                "two": _old_tenant(session, "pemkot-a", "pemerintah_kota"),
            }
            session.commit()
            # The table of sources is the same at every revision since: the ORM may write it.
            source = Source(
                id="a" * 64, reply_fingerprint="F" * 40, reply_public_key="P", reply_secret_key="K",
                tenant_id=tenants["one"],
            )
            session.add(source)
            session.flush()
            session.commit()
        # A case as the revision before knows it: in SQL, since later revisions add columns.
        with engine.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO cases (id, tenant_id, source_id, registration_number, category,"
                " status, sent_to_kpk, received_at, first_response_due, last_activity_at)"
                " VALUES (5, :t, :s, 'KPK-2026-000001', 'gratifikasi', 'baru', false, :day,"
                " :due, :day)"
            ), {"t": tenants["one"], "s": "a" * 64, "day": "2026-12-03 00:00:00+00:00",
                "due": dt.date(2026, 12, 10)})
        db.upgrade(database_url, sketches.revision)
        assert "case_sketches" in _tables(engine)
        insert = sa.text(
            "INSERT INTO case_sketches (case_id, tenant_id, key_id, signatures, uploaded_at)"
            " VALUES (5, :t, '0123456789abcdef', '{}', :now)"
        )
        with engine.begin() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM case_sketches")).scalar() == 0
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            connection.execute(insert, {"t": tenants["two"], "now": "2026-12-02 00:00:00+00:00"})
        with engine.begin() as connection:
            connection.execute(insert, {"t": tenants["one"], "now": "2026-12-02 00:00:00+00:00"})
            connection.execute(sa.text("DELETE FROM cases WHERE id = 5"))
            assert connection.execute(sa.text("SELECT count(*) FROM case_sketches")).scalar() == 0
        db.downgrade(database_url, before)
        assert "case_sketches" not in _tables(engine)
        assert "cases" in _tables(engine)
    finally:
        engine.dispose()


_VIEW_INDEXES = {
    "ix_cases_categories",
    "ix_cases_status_in_time",
    "ix_cases_unanswered",
    "ix_cases_closure",
    "ix_cases_received",
    "ix_cases_kpk_deadline",
    "ix_cases_kpk_received",
    "ix_cases_kpk_unread",
}


def test_the_view_indexes_migration_adds_indexes_the_planners_use(database_url: str) -> None:
    # Migration 0021: the indexes of KPK's inbox and the dashboards, on a database with cases;
    # the downgrade drops them and brings back the category index they replace, and nothing
    # else changes. The partial indexes must be usable by the inbox's own statement for the
    # cases sent to KPK (SQLite matches the predicate term by term, so a predicate written
    # differently from the scope's condition would silently never be used).
    script = ScriptDirectory.from_config(db.alembic_config())
    (views,) = [rev for rev in script.walk_revisions() if rev.path.endswith("_view_indexes.py")]
    before = str(views.down_revision)
    db.upgrade(database_url, before)
    engine = db.make_engine(database_url)
    try:
        def indexes() -> set[str]:
            return {index["name"] for index in sa.inspect(engine).get_indexes("cases")}

        earlier = indexes()
        assert "ix_cases_category_mcp_area" in earlier and not earlier & _VIEW_INDEXES
        db.upgrade(database_url, views.revision)
        assert indexes() == (earlier - {"ix_cases_category_mcp_area"}) | _VIEW_INDEXES
        kpk_deadline = {i["name"]: i for i in sa.inspect(engine).get_indexes("cases")}[
            "ix_cases_kpk_deadline"]
        assert kpk_deadline["column_names"] == ["first_response_due", "id"]

        from wbs.models import Case

        statement = (
            sa.select(Case.id).where(Case.sent_to_kpk.is_(True))
            .order_by(Case.first_response_due, Case.id).limit(50)
        )
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                # An empty table: only forbidding the sequential scan shows the index is usable.
                connection.exec_driver_sql("SET enable_seqscan = off")
                connection.exec_driver_sql("SET enable_sort = off")
                compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
                plan = connection.exec_driver_sql(f"EXPLAIN {compiled}").scalars().all()
            else:
                compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
                plan = [
                    str(row[-1])
                    for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")
                ]
        assert any("ix_cases_kpk_deadline" in line for line in plan), plan

        db.downgrade(database_url, before)
        assert indexes() == earlier
    finally:
        engine.dispose()
