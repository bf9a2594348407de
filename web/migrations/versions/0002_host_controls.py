"""Room settings (uploads paused, moderation, passcode, wall, quotas), image status, and the
service's signing secret.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.add_column(
            sa.Column("uploads_open", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(
            sa.Column("moderation", sa.String(16), nullable=False, server_default="off")
        )
        batch.add_column(sa.Column("passcode", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column("wall_mode", sa.String(16), nullable=False, server_default="spotlight")
        )
        batch.add_column(
            sa.Column("wall_qr_size", sa.String(16), nullable=False, server_default="medium")
        )
        batch.add_column(
            sa.Column("wall_captions", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(
            sa.Column("wall_blanked", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("max_uploads_per_guest", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("max_images", sa.Integer(), nullable=True))
    # On SQLite an INTEGER PRIMARY KEY without AUTOINCREMENT hands a deleted newest row's id
    # to the next insert, breaking "ids are stable and sort in upload order"; AUTOINCREMENT can
    # only be declared when the table is created, so SQLite's copy of the table is rebuilt.
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table(
        "images",
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_autoincrement": True} if sqlite else {},
    ) as batch:
        batch.add_column(
            sa.Column("status", sa.String(16), nullable=False, server_default="approved")
        )
    op.create_index("ix_images_room_id_status_id", "images", ["room_id", "status", "id"])
    op.create_index("ix_images_participant_id", "images", ["participant_id"])
    op.create_table(
        "service_secrets",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_service_secrets"),
    )


def downgrade() -> None:
    op.drop_table("service_secrets")
    op.drop_index("ix_images_participant_id", table_name="images")
    op.drop_index("ix_images_room_id_status_id", table_name="images")
    with op.batch_alter_table("images") as batch:
        batch.drop_column("status")
    with op.batch_alter_table("rooms") as batch:
        for column in (
            "max_images",
            "max_uploads_per_guest",
            "wall_blanked",
            "wall_captions",
            "wall_qr_size",
            "wall_mode",
            "passcode",
            "moderation",
            "uploads_open",
        ):
            batch.drop_column(column)
