"""Where a case arrived, and the operator-intake package it came from.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

``cases.channel``: ``situs`` for the drop box (every existing case), or the channel an operator
recorded a report from (WhatsApp, SMS, telephone, letter, in person, e-mail; see
:mod:`wbs.operator_intake`), for the statistics. ``cases.intake_package``: the random id of the
package such a case came from, unique within its tenant, so one package cannot open two
cases. An index on ``(tenant_id, channel)`` for the dashboards' count by channel. Plain ALTER
TABLE and CREATE INDEX on both dialects (see 0003 for why not batch mode).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "cases",
        sa.Column("channel", sa.String(32), nullable=False, server_default="situs"),
    )
    op.add_column("cases", sa.Column("intake_package", sa.String(32), nullable=True))
    op.create_index(
        "ix_cases_tenant_id_intake_package", "cases", ["tenant_id", "intake_package"],
        unique=True,
    )
    op.create_index("ix_cases_tenant_id_channel", "cases", ["tenant_id", "channel"])


def downgrade() -> None:
    op.drop_index("ix_cases_tenant_id_channel", table_name="cases")
    op.drop_index("ix_cases_tenant_id_intake_package", table_name="cases")
    op.drop_column("cases", "intake_package")
    op.drop_column("cases", "channel")
