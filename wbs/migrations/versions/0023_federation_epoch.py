"""Federation: a link's epoch, so a side restored from a backup starts the link over.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03

``federation_peers.epoch``: the time (milliseconds) the link's numbering last started over,
0 for a link that never did. Restoring either side from a backup turns its sequence numbers
back; the restored side then starts a new epoch and both sides number from one again
(wbs.federation.exchange). Plain ALTER TABLE on both dialects (see 0003).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "federation_peers",
        sa.Column("epoch", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    with op.batch_alter_table("federation_peers") as batch:
        batch.drop_column("epoch")
