"""Indexes for KPK's dashboard and the tenants' summaries (wbs.monitoring).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

Covering indexes, so the dashboard's GROUP BYs read an index instead of every case row:
tenants x statuses with both deadlines, categories x MCP areas, and the first-response events
(a partial index holding only status changes and replies, in case order). Measured with
100,000 cases by bench/bench_investigator.py. Plain CREATE INDEX on both dialects.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Must stay the same text as in wbs.models (Event.__table_args__) and the query in
# wbs.monitoring: SQLite uses a partial index only when the query's condition implies it.
FIRST_RESPONSE_WHERE = "kind IN ('status_changed', 'reply_added')"


def upgrade() -> None:
    op.create_index(
        op.f("ix_cases_tenant_id_status_first_response_due_closure_due"),
        "cases",
        ["tenant_id", "status", "first_response_due", "closure_due"],
    )
    op.create_index(op.f("ix_cases_category_mcp_area"), "cases", ["category", "mcp_area"])
    op.create_index(
        "ix_events_first_response",
        "events",
        ["case_id", "kind", "created_at"],
        sqlite_where=sa.text(FIRST_RESPONSE_WHERE),
        postgresql_where=sa.text(FIRST_RESPONSE_WHERE),
    )


def downgrade() -> None:
    op.drop_index("ix_events_first_response", table_name="events")
    op.drop_index(op.f("ix_cases_category_mcp_area"), table_name="cases")
    op.drop_index(
        op.f("ix_cases_tenant_id_status_first_response_due_closure_due"), table_name="cases"
    )
