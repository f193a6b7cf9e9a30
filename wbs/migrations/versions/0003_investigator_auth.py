"""Investigator login: throttling and TOTP columns, server-side sessions, the global limiter.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Columns are added and dropped with plain ALTER TABLE on both dialects (SQLite has had DROP
COLUMN since 3.35), not with batch mode: rebuilding ``investigators`` on SQLite would lose its
CHECK constraint on ``role``, which SQLite's reflection does not see.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "investigators",
        sa.Column("failed_logins", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "investigators", sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "investigators", sa.Column("totp_pending_secret", sa.String(length=64), nullable=True)
    )
    op.add_column("investigators", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))

    op.create_table(
        "investigator_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("investigator_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["investigator_id", "tenant_id"],
            ["investigators.id", "investigators.tenant_id"],
            name=op.f("fk_investigator_sessions_investigator"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_investigator_sessions_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_investigator_sessions")),
    )
    op.create_index(
        op.f("ix_investigator_sessions_investigator_id"),
        "investigator_sessions",
        ["investigator_id"],
    )
    op.create_index(
        op.f("ix_investigator_sessions_last_seen_at"), "investigator_sessions", ["last_seen_at"]
    )
    op.create_index(
        op.f("ix_investigator_sessions_tenant_id"), "investigator_sessions", ["tenant_id"]
    )

    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index(op.f("ix_login_failures_failed_at"), "login_failures", ["failed_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_login_failures_failed_at"), table_name="login_failures")
    op.drop_table("login_failures")
    op.drop_index(
        op.f("ix_investigator_sessions_tenant_id"), table_name="investigator_sessions"
    )
    op.drop_index(
        op.f("ix_investigator_sessions_last_seen_at"), table_name="investigator_sessions"
    )
    op.drop_index(
        op.f("ix_investigator_sessions_investigator_id"), table_name="investigator_sessions"
    )
    op.drop_table("investigator_sessions")
    op.drop_column("investigators", "totp_last_step")
    op.drop_column("investigators", "totp_pending_secret")
    op.drop_column("investigators", "locked_until")
    op.drop_column("investigators", "failed_logins")
