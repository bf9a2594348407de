"""Read-only grace after expiry: ``rooms.gallery_grace_days``.

For that many days after ``expires_at`` the room's gallery stays readable (participant page
and image listing; no joins, no uploads). Null means off: an expired room is gone at once.

Revision ID: 0009
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE, also on SQLite (see migration 0004 for why not a batch rebuild).
    op.add_column("rooms", sa.Column("gallery_grace_days", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("rooms", "gallery_grace_days")
