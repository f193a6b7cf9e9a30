"""Server-side sessions of pelapor, sealed with a key only the cookie holds.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "source_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_actions", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_source_sessions_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_sessions")),
    )
    op.create_index(
        op.f("ix_source_sessions_expires_at"), "source_sessions", ["expires_at"], unique=False
    )
    op.create_index(
        op.f("ix_source_sessions_tenant_id"), "source_sessions", ["tenant_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_source_sessions_tenant_id"), table_name="source_sessions")
    op.drop_index(op.f("ix_source_sessions_expires_at"), table_name="source_sessions")
    op.drop_table("source_sessions")
