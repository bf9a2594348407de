"""Direct uploads: the ``uploads`` table.

One row per upload asked for with ``POST /api/rooms/{token}/uploads``: who asked (a
participant, the host or neither), what was declared (type, size, caption, SHA-256), its
status (``issued`` until completed, then ``processing``, then ``done`` with its image or
``failed`` with its error) and when its URL expires. Rows of uploads never completed are
removed after expiry; a room's rows go with it.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from web.schema import Id, UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("room_id", Id, nullable=False),
        sa.Column("participant_id", Id, nullable=True),
        sa.Column("by_host", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("caption", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("image_id", Id, nullable=True),
        sa.Column("error_status", sa.Integer(), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_uploads"),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name="fk_uploads_room_id_rooms", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
            name="fk_uploads_participant_id_participants",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name="fk_uploads_image_id_images", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_uploads_room_id", "uploads", ["room_id"])
    op.create_index("ix_uploads_status_expires_at", "uploads", ["status", "expires_at"])


def downgrade() -> None:
    op.drop_table("uploads")
