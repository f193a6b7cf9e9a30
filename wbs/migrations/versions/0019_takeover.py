"""Pengambilalihan and permintaan pelimpahan.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03

``cases.taken_over_at``: when KPK took the handling of a case shared with it over
(:mod:`wbs.takeover`); NULL for every existing case and every case KPK did not take over. The
origin case then keeps read-only metadata. ``cases.forward_requested_at``: when KPK asked the
tenant to forward the case (:mod:`wbs.forward_requests`), while that request is open; NULL
otherwise. Who asked and what was answered are in the two logs. Both columns are nullable
timestamps (KPK's and the investigators' acts, not the pelapor's: exact times are theirs to
answer for). Plain ALTER TABLE on both dialects.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("taken_over_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("cases", sa.Column("forward_requested_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("cases", "forward_requested_at")
    op.drop_column("cases", "taken_over_at")
