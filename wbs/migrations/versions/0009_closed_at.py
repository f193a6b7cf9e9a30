"""When each case was closed, so the 30-working-day promise can be judged after closing.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

``cases.closed_at``: the time of the status change that closed the case (diarsipkan or
selesai), set by :func:`wbs.casework.change_status` and cleared when the case is reopened.
Investigator-side, so precise, like ``first_response_at``. :mod:`wbs.deadlines` compares its WIB
day with ``closure_due`` (PP 43/2018: 30 hari kerja): met or late.

The upgrade fills it for closed cases from the log (the latest ``status_changed`` event into a
final status); the log itself is only read.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINAL = "('diarsipkan', 'selesai')"

BACKFILL = f"""
UPDATE cases SET closed_at = (
    SELECT max(events.created_at) FROM events
    WHERE events.case_id = cases.id AND events.tenant_id = cases.tenant_id
      AND events.kind = 'status_changed' AND events.to_status IN {FINAL}
)
WHERE status IN {FINAL}
"""  # noqa: S608 (constants only, no input)


def upgrade() -> None:
    op.add_column("cases", sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(sa.text(BACKFILL))


def downgrade() -> None:
    op.drop_column("cases", "closed_at")
