"""Short room codes: ``rooms.code``, 8 characters of Crockford base32 without I L O U, unique,
for the short join URL ``/j/{code}`` whose QR code is small. Existing rooms get one here.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # web.security.ROOM_CODE_ALPHABET, frozen here


def upgrade() -> None:
    # Plain ALTER TABLE (see 0004 on SQLite batch rebuilds), then a unique index.
    op.add_column("rooms", sa.Column("code", sa.String(8), nullable=True))
    bind = op.get_bind()
    taken: set[str] = set()
    for (room_id,) in bind.execute(sa.text("SELECT id FROM rooms")).all():
        code = ""
        while not code or code in taken:
            code = "".join(secrets.choice(_ALPHABET) for _ in range(8))
        taken.add(code)
        bind.execute(
            sa.text("UPDATE rooms SET code = :code WHERE id = :id"), {"code": code, "id": room_id}
        )
    op.create_index("ix_rooms_code", "rooms", ["code"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_rooms_code", table_name="rooms")
    op.drop_column("rooms", "code")
