"""Every stored item says how its plaintext was padded inside the encryption.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

``submissions.framing`` and ``replies.framing``: ``padme/1`` for items padded to a PADMÉ bucket
before encryption (:mod:`crypto.padding`), ``none`` for every item stored before, whose
ciphertext holds the plaintext as it was. The readers (the workstation through the export
bundle, the pelapor's reply page) strip the frame by this value and never guess it from the
data. Existing rows get ``none`` from the server default; nothing is re-encrypted (the server
cannot: it holds no key that decrypts), so their sizes stay exact until the items are deleted.
Plain ALTER TABLE on both dialects (see 0003 for why not batch mode).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("submissions", "replies")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(
            table,
            sa.Column("framing", sa.String(length=16), server_default="none", nullable=False),
        )


def downgrade() -> None:
    # Padded items would then be read as unpadded; downgrading is for development only.
    for table in TABLES:
        op.drop_column(table, "framing")
