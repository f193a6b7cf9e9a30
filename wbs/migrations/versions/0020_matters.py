"""One handler per matter: linked cases across tenants, and the lead KPK names.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03

A ``matters`` table (a perkara: tenant-neutral, the lead case's id and the investigators'
times) and two plain integer columns of ``cases``: ``matter_id`` (indexed: a matter's cases
are read by it) and ``matter_linked_by`` (the tenant that linked the case, who may unlink it
with KPK until a lead is named). No foreign keys, like the forwarding links (0016): a matter
spans tenants and is read only by :mod:`wbs.matters`. Every existing case is in no matter.
Plain ALTER TABLE on both dialects (see 0003 for why not batch mode).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "matters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lead_case_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lead_named_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_matters")),
    )
    op.add_column("cases", sa.Column("matter_id", sa.Integer(), nullable=True))
    op.add_column("cases", sa.Column("matter_linked_by", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_cases_matter_id"), "cases", ["matter_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_cases_matter_id"), table_name="cases")
    op.drop_column("cases", "matter_linked_by")
    op.drop_column("cases", "matter_id")
    op.drop_table("matters")
