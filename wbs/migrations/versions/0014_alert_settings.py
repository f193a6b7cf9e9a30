"""Content-free e-mail alerts: each account's address, opt-out, language and last digests.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03

``alert_settings``: one row per account that set an address (:mod:`wbs.alerts`), tied to the
account by a composite foreign key so it cannot cross tenants; removed with the account or the
tenant. A new table, so existing rows need nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_settings",
        sa.Column("investigator_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("language", sa.String(length=5), server_default="id", nullable=False),
        sa.Column("daily_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("weekly_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["investigator_id", "tenant_id"],
            ["investigators.id", "investigators.tenant_id"],
            name=op.f("fk_alert_settings_investigator"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_alert_settings_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("investigator_id", name=op.f("pk_alert_settings")),
    )
    op.create_index(op.f("ix_alert_settings_tenant_id"), "alert_settings", ["tenant_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_alert_settings_tenant_id"), table_name="alert_settings")
    op.drop_table("alert_settings")
