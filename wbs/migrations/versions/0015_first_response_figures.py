"""What the dashboards count of each first response, stored with it.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03

``cases.first_response_days``, ``cases.first_response_workdays`` and
``cases.first_response_in_time``: the days and working days from the day received to the WIB
day of the first response, and whether it came by the due day. Set by
:func:`wbs.deadlines.record_first_response` when the response is given, like the due day is set
when the report arrives, so that KPK's dashboard groups small integers instead of computing a
date per case. Indexes that cover the dashboard's GROUP BYs: ``ix_cases_deadlines`` (0008)
gains ``first_response_in_time``; ``ix_cases_first_response_figures`` for the medians per
institution; ``ix_cases_trend`` (by the day received) for the months' trend.

The upgrade fills the columns for every case answered before, counting working days with the
national calendar (the ``holidays`` package's holidays and cuti bersama). Cuti bersama added
only in an instance's configuration are not known here; for a case answered across such a day
the stored working days can be one higher than the instance would count today. Plain ALTER
TABLE and CREATE INDEX on both dialects (see 0003 for why not batch mode).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from wbs.deadlines import backfill_first_response_figures
from wbs.workdays import WorkingCalendar

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEADLINES = ["tenant_id", "status", "first_response_due", "closure_due", "first_response_at"]


def upgrade() -> None:
    op.add_column("cases", sa.Column("first_response_days", sa.Integer(), nullable=True))
    op.add_column("cases", sa.Column("first_response_workdays", sa.Integer(), nullable=True))
    op.add_column("cases", sa.Column("first_response_in_time", sa.Boolean(), nullable=True))
    backfill_first_response_figures(op.get_bind(), WorkingCalendar())
    op.drop_index("ix_cases_deadlines", table_name="cases")
    op.create_index("ix_cases_deadlines", "cases", [*DEADLINES, "first_response_in_time"])
    op.create_index(
        "ix_cases_first_response_figures", "cases",
        ["tenant_id", "first_response_days", "first_response_workdays"],
    )
    op.create_index(
        "ix_cases_trend", "cases",
        ["received_at", "tenant_id", "status", "first_response_due", "first_response_at",
         "first_response_in_time"],
    )


def downgrade() -> None:
    op.drop_index("ix_cases_trend", table_name="cases")
    op.drop_index("ix_cases_first_response_figures", table_name="cases")
    op.drop_index("ix_cases_deadlines", table_name="cases")
    op.create_index("ix_cases_deadlines", "cases", DEADLINES)
    op.drop_column("cases", "first_response_in_time")
    op.drop_column("cases", "first_response_workdays")
    op.drop_column("cases", "first_response_days")
