"""Investigators' TOTP secrets sealed at rest (AES-256-GCM under the instance's totp_key).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

``investigators.totp_secret`` and ``totp_pending_secret`` held the secrets in plain text, so a
copy of the database alone gave every account's second factor. They become
``totp_secret_sealed`` and ``totp_pending_sealed``: ``v1.`` and base64 of nonce, ciphertext and
tag, sealed with the key :func:`wbs.accounts.totp.totp_key` derives from the instance's
``secrets/totp_key``, with the account's id as associated data (see wbs.accounts.totp).

The upgrade seals every existing secret and drops the plain columns; the downgrade opens them
back into plain columns. Both need the key (``wbs.db.upgrade(..., totp_key=...)``; ``peluit
db upgrade`` and ``peluit init`` pass it) and, on a database that holds any secret, refuse to
run without it. Every secret is sealed (or opened) before the schema changes, so a missing
key, or a secret that does not open, stops the migration with nothing changed.

New columns and a copy, not a type change: plain ALTER TABLE on both dialects (see 0003 for
why not batch mode). The sealing functions are imported, not copied: their v1 format, label
and associated data are frozen (wbs.accounts.totp says so), so this revision keeps working.
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import context, op

from crypto.sealing import SealingKey
from wbs.accounts.totp import open_secret, seal_secret

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAIRS = (("totp_secret", "totp_secret_sealed"), ("totp_pending_secret", "totp_pending_sealed"))


def _key() -> SealingKey:
    key = context.config.attributes.get("totp_key")
    if not isinstance(key, SealingKey):
        raise RuntimeError(
            "migration 0007 seals (or opens) investigators' TOTP secrets and needs the "
            "instance's totp_key: run 'peluit db upgrade' (or 'peluit init') on the instance"
        )
    return key


def _read(columns: Sequence[str]) -> list[tuple[int, str | None, str | None]]:
    rows = op.get_bind().execute(
        sa.text(
            f"SELECT id, {columns[0]}, {columns[1]} FROM investigators "  # noqa: S608 (constants)
            f"WHERE {columns[0]} IS NOT NULL OR {columns[1]} IS NOT NULL"
        )
    )
    return [(row[0], row[1], row[2]) for row in rows]


def _write(columns: Sequence[str], rows: list[tuple[int, str | None, str | None]]) -> None:
    update = sa.text(
        f"UPDATE investigators SET {columns[0]} = :a, {columns[1]} = :b "  # noqa: S608
        "WHERE id = :id"
    )
    for row_id, first, second in rows:
        op.get_bind().execute(update, {"a": first, "b": second, "id": row_id})


Row = tuple[int, str | None, str | None]


def _carry(rows: list[Row], change: Callable[[SealingKey, int, str], str]) -> list[Row]:
    if not rows:
        return []
    key = _key()

    def one(row_id: int, value: str | None) -> str | None:
        return None if value is None else change(key, row_id, value)

    return [(row_id, one(row_id, first), one(row_id, second)) for row_id, first, second in rows]


def upgrade() -> None:
    plain = [pair[0] for pair in PAIRS]
    sealed = [pair[1] for pair in PAIRS]
    # Read and seal before any change to the schema: without the key, nothing is touched.
    carried = _carry(_read(plain), seal_secret)
    for column in sealed:
        op.add_column("investigators", sa.Column(column, sa.String(length=128), nullable=True))
    _write(sealed, carried)
    for column in plain:
        op.drop_column("investigators", column)


def downgrade() -> None:
    plain = [pair[0] for pair in PAIRS]
    sealed = [pair[1] for pair in PAIRS]
    # Open every secret first: one that does not open stops the downgrade before any change.
    carried = _carry(_read(sealed), open_secret)
    for column in plain:
        op.add_column("investigators", sa.Column(column, sa.String(length=64), nullable=True))
    _write(plain, carried)
    for column in sealed:
        op.drop_column("investigators", column)
