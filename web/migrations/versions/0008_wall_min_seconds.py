"""The wall's minimum time per new photo: ``rooms.wall_min_seconds``.

New photos queue for the wall's spotlight and each stays large for at least this many seconds
(2 to 60, default 5), so a burst of uploads is shown photo by photo instead of the newest
replacing the others at once.

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE, also on SQLite (see migration 0004: the image triggers name ``rooms``).
    op.add_column(
        "rooms",
        sa.Column("wall_min_seconds", sa.Integer(), nullable=False, server_default="5"),
    )


def downgrade() -> None:
    op.drop_column("rooms", "wall_min_seconds")  # ALTER TABLE DROP COLUMN (SQLite 3.35+)
