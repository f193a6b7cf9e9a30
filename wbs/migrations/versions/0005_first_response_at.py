"""The first response of each case as a column, for KPK's dashboard (wbs.monitoring).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

``cases.first_response_at``: the time of the first status change or reply to the pelapor,
set by :func:`wbs.casework.change_status` and the reply functions when still empty. The median
time to first response then becomes a GROUP BY over cases instead of one over the event log.

The upgrade fills it from the log (the earliest ``status_changed`` or ``reply_added`` event of
each case, the definition the dashboard used until now) with one correlated UPDATE that both
dialects accept; the log itself is append-only and is only read. Plain ALTER TABLE on both
dialects (see 0003 for why not batch mode).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same condition as the partial index ix_events_first_response (0004), so the backfill's
# subquery can read that index.
FIRST_RESPONSE_WHERE = "kind IN ('status_changed', 'reply_added')"

BACKFILL = f"""
UPDATE cases SET first_response_at = (
    SELECT min(events.created_at) FROM events
    WHERE events.case_id = cases.id AND events.tenant_id = cases.tenant_id
      AND events.{FIRST_RESPONSE_WHERE}
)
WHERE first_response_at IS NULL
"""  # noqa: S608 (constants only, no input)


def upgrade() -> None:
    op.add_column(
        "cases", sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute(sa.text(BACKFILL))


def downgrade() -> None:
    op.drop_column("cases", "first_response_at")
