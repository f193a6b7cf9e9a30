"""Federation: a link's epoch (a side restored from a backup starts the link over), and what
a regional hub passes on.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03

``federation_peers.epoch``: the time (milliseconds) the link's numbering last started over,
0 for a link that never did. Restoring either side from a backup turns its sequence numbers
back; the restored side then starts a new epoch and both sides number from one again
(wbs.federation.exchange). ``federation_peers.kpk_direct``: on a member, whether its hub is
KPK's own installation (false: a regional hub, which passes data on but cannot hand a case to
KPK). ``tenants.federation_relayed``: on KPK's hub, a mirror of an instansi behind a regional
hub (its cases are not taken over or forwarded to across installations). Plain ALTER TABLE on
both dialects (see 0003).
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
    op.add_column(
        "federation_peers",
        sa.Column("kpk_direct", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.add_column(
        "tenants",
        sa.Column("federation_relayed", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("federation_relayed")
    with op.batch_alter_table("federation_peers") as batch:
        batch.drop_column("kpk_direct")
        batch.drop_column("epoch")
