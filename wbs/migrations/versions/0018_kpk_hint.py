"""The jurisdiction hint: *mungkin kewenangan KPK*.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03

``cases.kpk_hint``: True when the report form's two coarse answers point at KPK's jurisdiction
(UU 19/2019 Pasal 11: the terlapor is a penyelenggara negara or a law enforcer, and/or a state
loss of at least Rp1 miliar; :func:`wbs.domain.kpk_hint`), False when they do not, NULL where
the questions were not asked (every existing case, and reports an operator records). The
answers themselves stay inside the encrypted form. A partial index on the hinted cases serves
the dashboards' count. Plain ALTER TABLE and CREATE INDEX on both dialects.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("kpk_hint", sa.Boolean(), nullable=True))
    op.create_index(
        "ix_cases_kpk_hint", "cases", ["tenant_id"],
        sqlite_where=sa.text("kpk_hint = 1"), postgresql_where=sa.text("kpk_hint"),
    )


def downgrade() -> None:
    op.drop_index("ix_cases_kpk_hint", table_name="cases")
    op.drop_column("cases", "kpk_hint")
