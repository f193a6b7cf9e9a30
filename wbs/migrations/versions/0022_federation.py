"""Federation: peers (a hub's members, a member's hub), their outbox, digests, refusals.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03

``federation_peers`` pins each peer's instance signing key and keeps the link's sequence
numbers; ``federation_outbox`` holds the messages not yet confirmed; ``federation_digests``
what was last queued per tenant and case; ``federation_refusals`` every refused request or
message; ``federation_nonces`` the request nonces within the freshness window. On a hub,
``tenants.federation_peer_id`` marks the mirror of a member's instansi. Existing tenants are
this installation's own (NULL). A plain integer, no foreign key, like the forwarding links of
0016 (SQLite cannot add one by ALTER; peers are never deleted, only revoked). Plain ALTER
TABLE on both dialects (see 0003).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "federation_peers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("fingerprint", sa.String(length=40), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("onion_address", sa.String(length=100), nullable=True),
        sa.Column("client_key", sa.String(length=60), nullable=True),
        sa.Column("instansi", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_seq", sa.BigInteger(), nullable=False),
        sa.Column("sent_seq", sa.BigInteger(), nullable=False),
        sa.Column("acked_seq", sa.BigInteger(), nullable=False),
        sa.Column("applied_count", sa.BigInteger(), nullable=False),
        sa.Column("last_contact_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.CheckConstraint("role IN ('hub', 'member')", name=op.f("ck_federation_peers_role")),
        sa.CheckConstraint(
            "status IN ('active', 'revoked', 'left')", name=op.f("ck_federation_peers_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_federation_peers")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_federation_peers_fingerprint")),
        sa.UniqueConstraint("name", name=op.f("uq_federation_peers_name")),
    )
    op.create_table(
        "federation_outbox",
        sa.Column("peer_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["peer_id"], ["federation_peers.id"],
            name=op.f("fk_federation_outbox_peer_id_federation_peers"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("peer_id", "seq", name=op.f("pk_federation_outbox")),
    )
    op.create_table(
        "federation_digests",
        sa.Column("peer_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["peer_id"], ["federation_peers.id"],
            name=op.f("fk_federation_digests_peer_id_federation_peers"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("peer_id", "key", name=op.f("pk_federation_digests")),
    )
    op.create_table(
        "federation_refusals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("peer_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("repeated", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["peer_id"], ["federation_peers.id"],
            name=op.f("fk_federation_refusals_peer_id_federation_peers"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_federation_refusals")),
    )
    op.create_index(
        op.f("ix_federation_refusals_created_at"), "federation_refusals", ["created_at"]
    )
    op.create_index(op.f("ix_federation_refusals_peer_id"), "federation_refusals", ["peer_id"])
    op.create_index(op.f("ix_federation_refusals_last_at"), "federation_refusals", ["last_at"])
    op.create_table(
        "federation_nonces",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_federation_nonces")),
    )
    op.create_index(op.f("ix_federation_nonces_seen_at"), "federation_nonces", ["seen_at"])
    op.add_column("tenants", sa.Column("federation_peer_id", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_tenants_federation_peer_id"), "tenants", ["federation_peer_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_tenants_federation_peer_id"), table_name="tenants")
    op.drop_column("tenants", "federation_peer_id")
    op.drop_index(op.f("ix_federation_nonces_seen_at"), table_name="federation_nonces")
    op.drop_table("federation_nonces")
    op.drop_index(op.f("ix_federation_refusals_last_at"), table_name="federation_refusals")
    op.drop_index(op.f("ix_federation_refusals_peer_id"), table_name="federation_refusals")
    op.drop_index(op.f("ix_federation_refusals_created_at"), table_name="federation_refusals")
    op.drop_table("federation_refusals")
    op.drop_table("federation_digests")
    op.drop_table("federation_outbox")
    op.drop_table("federation_peers")
