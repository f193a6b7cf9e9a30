"""Maintained tallies of cases for the dashboards (wbs.tallies).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03

``case_tallies``: per figure (status and answer, category, MCP area, channel, the KPK hint,
the first response's delay, the open cases' due days), facet (every case, a category, an MCP
area), institution and month, quarter or year received, how many cases have each value; triggers on ``cases`` keep it current in the transaction of each
change (a plpgsql function on PostgreSQL, three triggers on SQLite). Filled from the cases
that exist. KPK's dashboard reads it instead of counting every case at each view. ``cases.merged_at``:
when a case was closed into its matter's lead (filled from the log for those closed already),
counted with the cases forwarded, taken over and received. Two indexes on
``cases`` for the views the tallies leave to the rows: a period of one category or one area.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from wbs import tallies

revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_tallies",
        sa.Column("figure", sa.String(16), nullable=False),
        sa.Column("facet", sa.String(80), nullable=False),
        sa.Column("grain", sa.String(1), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("value", sa.String(80), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("figure", "facet", "grain", "month", "value", "tenant_id",
                                name=op.f("pk_case_tallies")),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_case_tallies_tenant", "case_tallies",
                    ["tenant_id", "figure", "facet", "grain", "month", "value"])
    op.add_column("cases", sa.Column("merged_at", sa.DateTime(timezone=True), nullable=True))
    # Cases closed into a lead already: the latest "merged" entry, when exactly one status
    # change (the closing) follows it, as wbs.matters.merged_into reads the log.
    op.execute(
        "UPDATE cases SET merged_at = (SELECT max(m.created_at) FROM events AS m"
        " WHERE m.case_id = cases.id AND m.kind = 'merged')"
        " WHERE matter_id IS NOT NULL AND status IN ('diarsipkan', 'selesai')"
        " AND (SELECT count(*) FROM events AS s WHERE s.case_id = cases.id"
        " AND s.kind = 'status_changed' AND s.id > (SELECT max(m.id) FROM events AS m"
        " WHERE m.case_id = cases.id AND m.kind = 'merged')) = 1"
    )
    op.create_index("ix_cases_category_received", "cases", ["category", "received_at"])
    op.create_index("ix_cases_area_received", "cases", ["mcp_area", "received_at"])
    connection = op.get_bind()
    tallies.install(connection)
    tallies.refill(connection)


def downgrade() -> None:
    tallies.uninstall(op.get_bind())
    op.drop_index("ix_cases_area_received", table_name="cases")
    op.drop_index("ix_cases_category_received", table_name="cases")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("merged_at")
    op.drop_table("case_tallies")
