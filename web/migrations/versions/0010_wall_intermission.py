"""The wall's periodic "scan to join" intermission: ``rooms.wall_intermission_minutes`` and
``rooms.wall_intermission_seconds``.

Every ``wall_intermission_minutes`` minutes (0: off, the default) the wall shows a full-screen
QR code with the typeable room code for ``wall_intermission_seconds`` seconds (default 20).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE, also on SQLite (see migration 0004: the image triggers name ``rooms``).
    op.add_column(
        "rooms",
        sa.Column("wall_intermission_minutes", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "rooms",
        sa.Column("wall_intermission_seconds", sa.Integer(), nullable=False, server_default="20"),
    )


def downgrade() -> None:
    op.drop_column("rooms", "wall_intermission_seconds")  # ALTER TABLE DROP COLUMN (SQLite 3.35+)
    op.drop_column("rooms", "wall_intermission_minutes")
