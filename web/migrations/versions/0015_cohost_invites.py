"""Co-host invites: ``cohost_invites``.

The owner of a room invites a co-host by a single-use link; the row keeps the SHA-256 of the
link's token, its expiry and, once accepted, who accepted it and when.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from web.schema import Id, UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cohost_invites",
        sa.Column("id", Id, nullable=False),
        sa.Column("room_id", Id, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("created_by", Id, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("accepted_by", Id, nullable=True),
        sa.Column("accepted_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_cohost_invites"),
        sa.UniqueConstraint("token_hash", name="uq_cohost_invites_token_hash"),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name="fk_cohost_invites_room_id_rooms", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["accounts.id"],
            name="fk_cohost_invites_created_by_accounts",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["accepted_by"],
            ["accounts.id"],
            name="fk_cohost_invites_accepted_by_accounts",
            ondelete="SET NULL",
        ),
    )
    op.create_index("ix_cohost_invites_room_id", "cohost_invites", ["room_id"])


def downgrade() -> None:
    op.drop_index("ix_cohost_invites_room_id", "cohost_invites")
    op.drop_table("cohost_invites")
