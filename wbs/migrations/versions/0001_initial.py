"""Initial schema: tenants, keys, investigators, sources, cases, submissions, replies, events.

Revision ID: 0001
Revises:
Create Date: 2025-11-24

Written from autogenerate output and reviewed by hand. Beyond what autogenerate sees, it
creates the triggers that make ``events`` append-only in the database itself (SQLite: RAISE
ABORT; PostgreSQL: a trigger function raising an exception, also on TRUNCATE), so even a
direct SQL session cannot rewrite history without first dropping them, which is a schema
change that shows up in review.

Enum columns are VARCHAR(32) with CHECK constraints (not native PostgreSQL enums) so both
dialects share one shape. ``events.kind`` and its status columns carry no CHECK on purpose:
a new event kind must not require rebuilding the append-only table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY_MESSAGE = "events is append-only"

CASE_STATUSES = (
    "baru", "verifikasi", "klarifikasi", "telaah", "diteruskan", "diarsipkan", "selesai",
)


def _enum(name: str, values: Sequence[str]) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def _tenant_fk(table: str, ondelete: str | None = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants"),
        ondelete=ondelete,
    )


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            _enum("tenant_kind", (
                "kementerian", "lembaga", "pemerintah_provinsi", "pemerintah_kabupaten",
                "pemerintah_kota", "bumn", "bumd", "hub",
            )),
            nullable=False,
        ),
        sa.Column("province", sa.String(length=100), nullable=True),
        sa.Column("is_hub", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("first_response_days", sa.Integer(), server_default=sa.text("7"), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column(
            "kpk_sharing", _enum("kpk_sharing", ("never", "optional", "always")), nullable=False
        ),
        sa.Column("max_upload_bytes", sa.BigInteger(), nullable=True),
        sa.Column("onion_address", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "first_response_days > 0", name=op.f("ck_tenants_first_response_days_positive")
        ),
        sa.CheckConstraint(
            "max_upload_bytes IS NULL OR max_upload_bytes > 0",
            name=op.f("ck_tenants_max_upload_bytes_positive"),
        ),
        sa.CheckConstraint("(kind = 'hub') = is_hub", name=op.f("ck_tenants_hub_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("onion_address", name=op.f("uq_tenants_onion_address")),
        sa.UniqueConstraint("slug", name=op.f("uq_tenants_slug")),
    )
    # A partial unique index: at most one row with is_hub true.
    op.create_index(
        "uq_tenants_single_hub",
        "tenants",
        ["is_hub"],
        unique=True,
        sqlite_where=sa.text("is_hub"),
        postgresql_where=sa.text("is_hub"),
    )

    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        # Plain integers, no foreign keys: the log outlives deleted cases.
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("actor_investigator_id", sa.Integer(), nullable=True),
        # Enum values checked by the application only (see the module docstring).
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=True),
        sa.Column("to_status", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        # No cascade: deleting a tenant with history fails instead of erasing the log.
        _tenant_fk("events", ondelete=None),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_case_id"), "events", ["case_id"])
    op.create_index(op.f("ix_events_tenant_id"), "events", ["tenant_id"])

    op.create_table(
        "investigators",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column(
            "role", _enum("role", ("verifikator", "admin_instansi", "pemantau_kpk")), nullable=False
        ),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("totp_secret", sa.String(length=64), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        _tenant_fk("investigators"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_investigators")),
        # Target of the composite foreign keys that keep references within one tenant.
        sa.UniqueConstraint("id", "tenant_id", name=op.f("uq_investigators_id_tenant_id")),
        sa.UniqueConstraint("username", name=op.f("uq_investigators_username")),
    )
    op.create_index(op.f("ix_investigators_tenant_id"), "investigators", ["tenant_id"])

    op.create_table(
        "recipient_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=40), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "length(fingerprint) = 40", name=op.f("ck_recipient_keys_fingerprint_length")
        ),
        _tenant_fk("recipient_keys"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recipient_keys")),
        sa.UniqueConstraint(
            "tenant_id", "fingerprint", name=op.f("uq_recipient_keys_tenant_id_fingerprint")
        ),
    )
    op.create_index(op.f("ix_recipient_keys_tenant_id"), "recipient_keys", ["tenant_id"])

    op.create_table(
        "sources",
        # Derived from the codename (argon2id + pepper); never the codename itself.
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("reply_fingerprint", sa.String(length=40), nullable=False),
        sa.Column("reply_public_key", sa.Text(), nullable=False),
        # Armored secret key, locked by a passphrase derived from the codename.
        sa.Column("reply_secret_key", sa.Text(), nullable=False),
        # Rounded to the day by the application (wbs.models.UTCDay).
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("length(id) = 64", name=op.f("ck_sources_id_length")),
        _tenant_fk("sources"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sources")),
        sa.UniqueConstraint("id", "tenant_id", name=op.f("uq_sources_id_tenant_id")),
    )
    op.create_index(op.f("ix_sources_tenant_id"), "sources", ["tenant_id"])

    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("registration_number", sa.String(length=80), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("mcp_area", sa.String(length=64), nullable=True),
        sa.Column("status", _enum("case_status", CASE_STATUSES), nullable=False),
        sa.Column("sent_to_kpk", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_response_due", sa.Date(), nullable=False),
        sa.Column("closure_due", sa.Date(), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unread", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignee_id", "tenant_id"],
            ["investigators.id", "investigators.tenant_id"],
            name=op.f("fk_cases_assignee_id_tenant_id_investigators"),
        ),
        sa.ForeignKeyConstraint(
            ["source_id", "tenant_id"],
            ["sources.id", "sources.tenant_id"],
            name=op.f("fk_cases_source_id_tenant_id_sources"),
            ondelete="CASCADE",
        ),
        _tenant_fk("cases"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("id", "tenant_id", name=op.f("uq_cases_id_tenant_id")),
        sa.UniqueConstraint("registration_number", name=op.f("uq_cases_registration_number")),
    )
    op.create_index(op.f("ix_cases_source_id"), "cases", ["source_id"])
    op.create_index(op.f("ix_cases_tenant_id"), "cases", ["tenant_id"])
    op.create_index(op.f("ix_cases_tenant_id_assignee_id"), "cases", ["tenant_id", "assignee_id"])
    op.create_index(
        op.f("ix_cases_tenant_id_first_response_due"), "cases", ["tenant_id", "first_response_due"]
    )
    op.create_index(op.f("ix_cases_tenant_id_status"), "cases", ["tenant_id", "status"])

    op.create_table(
        "replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("investigator_id", sa.Integer(), nullable=True),
        sa.Column("store_path", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_by_source", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("size >= 0", name=op.f("ck_replies_size_not_negative")),
        sa.ForeignKeyConstraint(
            ["case_id", "tenant_id"],
            ["cases.id", "cases.tenant_id"],
            name=op.f("fk_replies_case_id_tenant_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["investigator_id", "tenant_id"],
            ["investigators.id", "investigators.tenant_id"],
            name=op.f("fk_replies_investigator_id_tenant_id_investigators"),
        ),
        _tenant_fk("replies"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replies")),
        sa.UniqueConstraint("store_path", name=op.f("uq_replies_store_path")),
    )
    op.create_index(op.f("ix_replies_case_id"), "replies", ["case_id"])
    op.create_index(op.f("ix_replies_tenant_id"), "replies", ["tenant_id"])

    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", _enum("submission_kind", ("form", "message", "file")), nullable=False),
        sa.Column("store_path", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("size >= 0", name=op.f("ck_submissions_size_not_negative")),
        sa.ForeignKeyConstraint(
            ["case_id", "tenant_id"],
            ["cases.id", "cases.tenant_id"],
            name=op.f("fk_submissions_case_id_tenant_id_cases"),
            ondelete="CASCADE",
        ),
        _tenant_fk("submissions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submissions")),
        sa.UniqueConstraint("store_path", name=op.f("uq_submissions_store_path")),
    )
    op.create_index(op.f("ix_submissions_case_id"), "submissions", ["case_id"])
    op.create_index(op.f("ix_submissions_tenant_id"), "submissions", ["tenant_id"])

    _create_append_only_triggers()


def _create_append_only_triggers() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER events_append_only_{action.lower()} BEFORE {action} ON events "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}' "
            "USING ERRCODE = 'insufficient_privilege'; END $$"
        )
        op.execute(
            "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events "
            "FOR EACH ROW EXECUTE FUNCTION events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER events_append_only_truncate BEFORE TRUNCATE ON events "
            "FOR EACH STATEMENT EXECUTE FUNCTION events_append_only()"
        )
    else:
        raise NotImplementedError(f"no append-only triggers for {dialect}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS events_append_only_update")
        op.execute("DROP TRIGGER IF EXISTS events_append_only_delete")
    elif dialect == "postgresql":
        # DROP TABLE below would take the triggers along; the function must go explicitly.
        op.execute("DROP TRIGGER IF EXISTS events_append_only_truncate ON events")
        op.execute("DROP TRIGGER IF EXISTS events_append_only ON events")
        op.execute("DROP FUNCTION IF EXISTS events_append_only()")

    op.drop_table("submissions")
    op.drop_table("replies")
    op.drop_table("cases")
    op.drop_table("sources")
    op.drop_table("recipient_keys")
    op.drop_table("investigators")
    op.drop_table("events")
    op.drop_table("tenants")
