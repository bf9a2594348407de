"""A stored count of each room's images, kept by database triggers.

``rooms.stored_images`` is how many image rows (approved and pending) the room holds. An
upload reads it with the room row's lock instead of counting the room's images, which took one
more round trip per upload and a scan that grows with the room, made while the room's other
uploads wait for the lock.

Triggers, not the application, keep the count: every insert and delete of an image row,
including a room's cascade and the writes of replicas still running the previous release
during a rolling deploy, changes it in the same transaction.

On SQLite a table rebuild (``batch_alter_table`` with ``recreate``) drops the table's
triggers: a later migration that rebuilds ``images`` must create them again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_POSTGRESQL_FUNCTION = """
CREATE FUNCTION imageshark_count_room_images() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE rooms SET stored_images = stored_images + 1 WHERE id = NEW.room_id;
        RETURN NEW;
    END IF;
    UPDATE rooms SET stored_images = stored_images - 1 WHERE id = OLD.room_id;
    RETURN OLD;
END
$$
"""
_POSTGRESQL_TRIGGER = """
CREATE TRIGGER images_count_room_images AFTER INSERT OR DELETE ON images
FOR EACH ROW EXECUTE FUNCTION imageshark_count_room_images()
"""
_SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER images_count_insert AFTER INSERT ON images BEGIN
        UPDATE rooms SET stored_images = stored_images + 1 WHERE id = NEW.room_id;
    END
    """,
    """
    CREATE TRIGGER images_count_delete AFTER DELETE ON images BEGIN
        UPDATE rooms SET stored_images = stored_images - 1 WHERE id = OLD.room_id;
    END
    """,
)
# After the trigger exists, so an image inserted meanwhile is counted exactly once: on
# PostgreSQL, CREATE TRIGGER locks ``images`` against writes until this transaction commits,
# and ADD COLUMN had locked ``rooms`` first (the order an upload takes them in, so the two
# cannot deadlock).
_BACKFILL = """
UPDATE rooms SET stored_images = (SELECT count(*) FROM images WHERE images.room_id = rooms.id)
"""


def upgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.add_column(
            sa.Column("stored_images", sa.Integer(), nullable=False, server_default="0")
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_POSTGRESQL_FUNCTION)
        op.execute(_POSTGRESQL_TRIGGER)
    else:
        for trigger in _SQLITE_TRIGGERS:
            op.execute(trigger)
    op.execute(_BACKFILL)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER images_count_room_images ON images")
        op.execute("DROP FUNCTION imageshark_count_room_images()")
    else:
        op.execute("DROP TRIGGER images_count_insert")
        op.execute("DROP TRIGGER images_count_delete")
    with op.batch_alter_table("rooms") as batch:
        batch.drop_column("stored_images")
