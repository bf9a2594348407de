"""Room limits against abuse: a byte quota with a stored byte total, and uploads only by
participants who joined.

``rooms.max_bytes`` is the most image bytes (originals, as uploaded) a room may hold, null for
no limit. ``rooms.stored_bytes`` is how many it holds (approved and pending), kept like
``stored_images`` (migration 0003) by database triggers on every insert and delete of an image
row, so the quota check reads it under the room's lock instead of summing the room's images.
``rooms.require_join``: uploads need a participant (the host excepted), so the per-guest quota
cannot be side-stepped by anonymous uploads.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_POSTGRESQL_FUNCTION = """
CREATE FUNCTION imageshark_sum_room_bytes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE rooms SET stored_bytes = stored_bytes + NEW.original_bytes WHERE id = NEW.room_id;
        RETURN NEW;
    END IF;
    UPDATE rooms SET stored_bytes = stored_bytes - OLD.original_bytes WHERE id = OLD.room_id;
    RETURN OLD;
END
$$
"""
_POSTGRESQL_TRIGGER = """
CREATE TRIGGER images_sum_room_bytes AFTER INSERT OR DELETE ON images
FOR EACH ROW EXECUTE FUNCTION imageshark_sum_room_bytes()
"""
_SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER images_bytes_insert AFTER INSERT ON images BEGIN
        UPDATE rooms SET stored_bytes = stored_bytes + NEW.original_bytes WHERE id = NEW.room_id;
    END
    """,
    """
    CREATE TRIGGER images_bytes_delete AFTER DELETE ON images BEGIN
        UPDATE rooms SET stored_bytes = stored_bytes - OLD.original_bytes WHERE id = OLD.room_id;
    END
    """,
)
# After the trigger exists, for the reason given in migration 0003.
_BACKFILL = """
UPDATE rooms SET stored_bytes = (
    SELECT coalesce(sum(original_bytes), 0) FROM images WHERE images.room_id = rooms.id
)
"""


def upgrade() -> None:
    # Plain ALTER TABLE, also on SQLite: a batch rebuild of ``rooms`` there fails while the
    # triggers of 0003 on ``images`` name it.
    op.add_column("rooms", sa.Column("max_bytes", sa.BigInteger(), nullable=True))
    op.add_column(
        "rooms", sa.Column("stored_bytes", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column(
        "rooms", sa.Column("require_join", sa.Boolean(), nullable=False, server_default=sa.false())
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
        op.execute("DROP TRIGGER images_sum_room_bytes ON images")
        op.execute("DROP FUNCTION imageshark_sum_room_bytes()")
    else:
        op.execute("DROP TRIGGER images_bytes_insert")
        op.execute("DROP TRIGGER images_bytes_delete")
    for column in ("require_join", "stored_bytes", "max_bytes"):
        op.drop_column("rooms", column)  # ALTER TABLE DROP COLUMN (SQLite 3.35 and later)
