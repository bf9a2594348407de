"""Rooms, participants, images and the per-room event log.

Revision ID: 0001
Revises:
Create Date: 2026-11-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from web.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rooms",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("host_key_hash", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_rooms"),
        sa.UniqueConstraint("token", name="uq_rooms_token"),
    )
    op.create_table(
        "participants",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("room_id", Id, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_participants"),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name="fk_participants_room_id_rooms", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("key_hash", name="uq_participants_key_hash"),
    )
    op.create_index("ix_participants_room_id", "participants", ["room_id"])
    op.create_table(
        "images",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("room_id", Id, nullable=False),
        sa.Column("participant_id", Id, nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("caption", sa.Text(), nullable=True),
        sa.Column("storage_key", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("mime_type", sa.String(64), nullable=False),
        sa.Column("original_bytes", sa.BigInteger(), nullable=False),
        sa.Column("original_width", sa.Integer(), nullable=False),
        sa.Column("original_height", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("thumb_width", sa.Integer(), nullable=False),
        sa.Column("thumb_height", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_images"),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name="fk_images_room_id_rooms", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
            name="fk_images_participant_id_participants",
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("storage_key", name="uq_images_storage_key"),
        sa.UniqueConstraint("room_id", "sha256", name="uq_images_room_id_sha256"),
    )
    op.create_index("ix_images_room_id_id", "images", ["room_id", "id"])
    op.create_table(
        "room_events",
        sa.Column("room_id", Id, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("room_id", "seq", name="pk_room_events"),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name="fk_room_events_room_id_rooms", ondelete="CASCADE"
        ),
    )


def downgrade() -> None:
    op.drop_table("room_events")
    op.drop_index("ix_images_room_id_id", table_name="images")
    op.drop_table("images")
    op.drop_index("ix_participants_room_id", table_name="participants")
    op.drop_table("participants")
    op.drop_table("rooms")
