"""Pelapor sessions keep their exact times sealed, and only a day in the clear.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

``source_sessions.expires_at``, ``window_start`` and ``window_actions`` told, to the
microsecond, when each pelapor was active; SQLite's WAL and free pages kept old versions of
them even after the rows were gone. They now travel inside the sealed blob, which only the
cookie's key opens, and the table keeps ``purge_after``: the WIB day after which the row can be
deleted unseen.

Sessions cannot be carried over (their blobs are sealed under keys the server never had), so
the table is made anew: every pelapor logged in at the time of the upgrade logs in again with
their codename. Nothing else is lost.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _create(columns: list[sa.Column[object]], index: str) -> None:
    op.create_table(
        "source_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        *columns,
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_source_sessions_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_sessions")),
    )
    op.create_index(op.f(f"ix_source_sessions_{index}"), "source_sessions", [index], unique=False)
    op.create_index(
        op.f("ix_source_sessions_tenant_id"), "source_sessions", ["tenant_id"], unique=False
    )


def _drop(index: str) -> None:
    op.drop_index(op.f("ix_source_sessions_tenant_id"), table_name="source_sessions")
    op.drop_index(op.f(f"ix_source_sessions_{index}"), table_name="source_sessions")
    op.drop_table("source_sessions")


def upgrade() -> None:
    _drop("expires_at")
    _create([sa.Column("purge_after", sa.DateTime(timezone=True), nullable=False)], "purge_after")


def downgrade() -> None:
    _drop("purge_after")
    _create(
        [
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
            sa.Column(
                "window_actions", sa.Integer(), server_default=sa.text("0"), nullable=False
            ),
        ],
        "expires_at",
    )
