"""Texts of a tenant's landing pages, written by its admin.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

One row per text (landing introduction, guidance, contact channels, what happens next) and
language, holding the admin's markup as typed; :mod:`wbs.texts` sanitises it whenever it is
shown. A tenant without rows shows the default texts.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tenant_texts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=20), nullable=False),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("markup", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_tenant_texts_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant_texts")),
        sa.UniqueConstraint(
            "tenant_id", "key", "language", name=op.f("uq_tenant_texts_tenant_id_key_language")
        ),
    )
    op.create_index(op.f("ix_tenant_texts_tenant_id"), "tenant_texts", ["tenant_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_tenant_texts_tenant_id"), table_name="tenant_texts")
    op.drop_table("tenant_texts")
