"""The team's marks on a case: a star and "perlu dibalas".

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

``cases.starred`` and ``cases.needs_reply``: shared by the tenant's investigators (see
:class:`wbs.domain.CaseFlag` for why per tenant and not per investigator), set and cleared by
:func:`wbs.casework.set_flag`, which logs every change. Existing cases start unmarked. Plain
ALTER TABLE on both dialects (see 0003 for why not batch mode); the downgrade drops the
columns, and the log keeps the record of the marks.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("starred", "needs_reply")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column(
            "cases", sa.Column(name, sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    for name in reversed(COLUMNS):
        op.drop_column("cases", name)
