"""Pelimpahan: the link between a forwarded case and the case that now handles it.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03

``cases.linked_to_case_id`` on the origin case and ``cases.linked_from_case_id`` on the
linked case the receiving tenant opened (:mod:`wbs.forwarding`). Plain integers without
foreign keys, like the event log's ``case_id``: the link crosses tenants and is read only by
the forwarding module. Plain ALTER TABLE on both dialects (see 0003 for why not batch mode).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("linked_to_case_id", sa.Integer(), nullable=True))
    op.add_column("cases", sa.Column("linked_from_case_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("cases", "linked_from_case_id")
    op.drop_column("cases", "linked_to_case_id")
