"""The wall may show a passcode room's passcode: ``rooms.wall_show_passcode``.

Off by default: the wall of a passcode room then says a passcode is needed and to ask the
host. On: the wall shows the passcode under its QR code (read with the host key or the wall's
participant cookie; the public room view never carries it).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE, also on SQLite (see migration 0004: the image triggers name ``rooms``).
    op.add_column(
        "rooms",
        sa.Column("wall_show_passcode", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("rooms", "wall_show_passcode")  # ALTER TABLE DROP COLUMN (SQLite 3.35+)
