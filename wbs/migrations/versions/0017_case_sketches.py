"""Keyed similarity sketches of cases, for KPK's duplicate check across tenants.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03

``case_sketches``: one row per case whose workstation uploaded its sketch (:mod:`wbs.sketches`),
tied to the case by a composite foreign key so it cannot cross tenants; removed with the case
or the tenant. A new table, so existing rows need nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_sketches",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("signatures", sa.Text(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id", "tenant_id"],
            ["cases.id", "cases.tenant_id"],
            name=op.f("fk_case_sketches_case_id_tenant_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_case_sketches_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_sketches")),
    )
    op.create_index(op.f("ix_case_sketches_key_id"), "case_sketches", ["key_id"])
    op.create_index(op.f("ix_case_sketches_tenant_id"), "case_sketches", ["tenant_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_case_sketches_tenant_id"), table_name="case_sketches")
    op.drop_index(op.f("ix_case_sketches_key_id"), table_name="case_sketches")
    op.drop_table("case_sketches")
