"""Schema migrations keep what is stored: an embedded database made by 0001, with a room and an
image in it, upgraded to the newest revision."""

from __future__ import annotations

import sqlite3
from contextlib import closing

from tests.conftest import SettingsFactory
from web.migrate import head_revision, upgrade

NOW = "2026-11-20 10:00:00.000000"
LATER = "2026-12-20 10:00:00.000000"


def test_upgrade_from_0001_keeps_rows_and_stops_id_reuse(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    upgrade(settings, "0001")
    path = settings.data_dir / "imageshark.db"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "INSERT INTO rooms (token, host_key_hash, title, created_at, expires_at, last_seq)"
            " VALUES ('t' || hex(randomblob(12)), 'h', 'Old room', ?, ?, 1)",
            (NOW, LATER),
        )
        db.execute(
            "INSERT INTO images (room_id, seq, caption, storage_key, sha256, mime_type,"
            " original_bytes, original_width, original_height, width, height, thumb_width,"
            " thumb_height, created_at) VALUES (1, 1, 'kept', 'k1', 's1', 'image/jpeg',"
            " 10, 4, 3, 4, 3, 4, 3, ?)",
            (NOW,),
        )
    upgrade(settings)
    with closing(sqlite3.connect(path)) as db, db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (head_revision(),)
        ]
        room = db.execute("SELECT title, uploads_open, moderation, passcode FROM rooms").fetchone()
        assert room == ("Old room", 1, "off", None)
        image = db.execute("SELECT id, caption, status FROM images").fetchone()
        assert image == (1, "kept", "approved")
        insert = (
            "INSERT INTO images (room_id, seq, storage_key, sha256, mime_type, original_bytes,"
            " original_width, original_height, width, height, thumb_width, thumb_height,"
            " created_at) VALUES (1, 2, ?, ?, 'image/jpeg', 10, 4, 3, 4, 3, 4, 3, ?)"
        )
        newest = db.execute(insert, ("k2", "s2", NOW)).lastrowid
        db.execute("DELETE FROM images WHERE id = ?", (newest,))
        after = db.execute(insert, ("k3", "s3", NOW)).lastrowid
        assert newest is not None and after is not None and after > newest
