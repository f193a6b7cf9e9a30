"""Indexes for KPK's inbox and the dashboards (issue #11's budgets).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03

KPK's inbox reads KPK's copy in two disjoint parts (:meth:`wbs.tenancy.SharedScope.select_parts`):
the hub's own cases, and the cases sent to KPK. Three partial indexes on the second part
(``WHERE sent_to_kpk IS TRUE``, written on SQLite as the scope's condition renders there, since
SQLite matches a partial index's predicate term by term) serve its counts and its two sorts,
instead of a scan of every case for ``tenant_id = hub OR sent_to_kpk``.

The dashboards (:mod:`wbs.monitoring`) read each figure from its own covering index: tenants x
statuses x the judged first response; the overdue first responses and closures as ranges of
open statuses; the months' trend; categories, MCP areas and channels in one pass (the last
replaces ``ix_cases_category_mcp_area``, of which it is an extension). Plain CREATE INDEX and
DROP INDEX on both dialects.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_WHERE = sa.text("sent_to_kpk IS 1")
_POSTGRESQL_WHERE = sa.text("sent_to_kpk IS TRUE")


def _sent_to_kpk(name: str, columns: list[str]) -> None:
    op.create_index(
        name, "cases", columns, sqlite_where=_SQLITE_WHERE, postgresql_where=_POSTGRESQL_WHERE
    )


def upgrade() -> None:
    op.drop_index("ix_cases_category_mcp_area", table_name="cases")
    op.create_index("ix_cases_categories", "cases", ["category", "mcp_area", "channel"])
    op.create_index(
        "ix_cases_status_in_time", "cases", ["tenant_id", "status", "first_response_in_time"]
    )
    op.create_index(
        "ix_cases_unanswered", "cases",
        ["status", "first_response_at", "first_response_due", "tenant_id", "received_at"],
    )
    op.create_index("ix_cases_closure", "cases", ["status", "closure_due", "tenant_id"])
    op.create_index("ix_cases_received", "cases", ["received_at", "first_response_in_time"])
    _sent_to_kpk("ix_cases_kpk_deadline", ["first_response_due", "id"])
    _sent_to_kpk("ix_cases_kpk_received", ["received_at", "id"])
    _sent_to_kpk("ix_cases_kpk_unread", ["unread"])


def downgrade() -> None:
    for name in (
        "ix_cases_kpk_unread",
        "ix_cases_kpk_received",
        "ix_cases_kpk_deadline",
        "ix_cases_received",
        "ix_cases_closure",
        "ix_cases_unanswered",
        "ix_cases_status_in_time",
        "ix_cases_categories",
    ):
        op.drop_index(name, table_name="cases")
    op.create_index("ix_cases_category_mcp_area", "cases", ["category", "mcp_area"])
