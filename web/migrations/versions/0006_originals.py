"""Originals that reach the host: ``rooms.downscale_uploads`` (guest pages make large photos
smaller before sending; off: originals are sent) and ``rooms.keep_location`` (stored originals
keep their GPS tags; off: the tags are blanked at ingest, without re-encoding).

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_COLUMNS = ("downscale_uploads", "keep_location")


def upgrade() -> None:
    # Plain ALTER TABLE, also on SQLite (see migration 0004).
    for column in _COLUMNS:
        op.add_column(
            "rooms", sa.Column(column, sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    for column in reversed(_COLUMNS):
        op.drop_column("rooms", column)
