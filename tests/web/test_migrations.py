"""Schema migrations keep what is stored: an embedded database made by 0001, with a room and an
image in it, upgraded to the newest revision; and 0003's stored image counts, backfilled and
then kept by triggers, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime

import asyncpg
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import PG_ADMIN_DSN, SettingsFactory, pg_dsn_for
from web.migrate import alembic_config, head_revision, upgrade
from web.settings import Settings

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


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_at_0002(
    request: pytest.FixtureRequest, make_settings: SettingsFactory
) -> AsyncIterator[Settings]:
    """Settings of an empty database migrated to revision 0002 (a fresh PostgreSQL database,
    dropped afterwards, or the embedded SQLite file)."""
    if request.param == "sqlite":
        settings = make_settings()
        await asyncio.to_thread(upgrade, settings, "0002")
        yield settings
        return
    name = f"imageshark_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        settings = make_settings(database_url=pg_dsn_for(name))
        await asyncio.to_thread(upgrade, settings, "0002")
        yield settings
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


_ROOM = (
    "INSERT INTO rooms (token, host_key_hash, title, created_at, expires_at, last_seq)"
    " VALUES (:token, 'h', 'Room', :now, :later, 0) RETURNING id"
)
_IMAGE = (
    "INSERT INTO images (room_id, seq, storage_key, sha256, mime_type, original_bytes,"
    " original_width, original_height, width, height, thumb_width, thumb_height, created_at,"
    " status) VALUES (:room, :seq, :key, :key, 'image/jpeg', 10, 4, 3, 4, 3, 4, 3, :now,"
    " :status) RETURNING id"
)


async def test_0003_counts_each_rooms_images_and_triggers_keep_the_count(
    database_at_0002: Settings,
) -> None:
    settings = database_at_0002
    times = {
        "now": datetime(2026, 11, 20, 10, tzinfo=UTC),
        "later": datetime(2026, 12, 20, tzinfo=UTC),
    }
    engine = create_async_engine(settings.sqlalchemy_url)
    counter = iter(range(1, 1000))

    async def add_image(room: int, status: str = "approved") -> int:
        seq = next(counter)
        values = {"room": room, "seq": seq, "key": f"k{seq}", "status": status, "now": times["now"]}
        return int((await connection.execute(text(_IMAGE), values)).scalar_one())

    async def stored() -> dict[int, int]:
        rows = await connection.execute(text("SELECT id, stored_images FROM rooms ORDER BY id"))
        return {int(room): int(count) for room, count in rows}

    try:
        async with engine.begin() as connection:
            if settings.embedded:
                await connection.execute(text("PRAGMA foreign_keys=ON"))
            rooms = [
                (await connection.execute(text(_ROOM), {"token": token, **times})).scalar_one()
                for token in ("full", "empty")
            ]
            full, empty = (int(room) for room in rooms)
            await add_image(full)
            await add_image(full, "pending")
            first = await add_image(full)
        await asyncio.to_thread(upgrade, settings)
        async with engine.begin() as connection:
            if settings.embedded:
                await connection.execute(text("PRAGMA foreign_keys=ON"))
            # Backfilled: approved and pending images both count.
            assert await stored() == {full: 3, empty: 0}
            await add_image(empty)
            await add_image(full, "pending")
            assert await stored() == {full: 4, empty: 1}
            await connection.execute(text("DELETE FROM images WHERE id = :id"), {"id": first})
            assert await stored() == {full: 3, empty: 1}
            # A room's deletion cascades to its images; the trigger's update of the deleted
            # room is a no-op, not an error.
            await connection.execute(text("DELETE FROM rooms WHERE id = :id"), {"id": full})
            assert await stored() == {empty: 1}
            remaining = await connection.execute(text("SELECT count(*) FROM images"))
            assert remaining.scalar_one() == 1
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_at_0003(
    request: pytest.FixtureRequest, make_settings: SettingsFactory
) -> AsyncIterator[Settings]:
    """Like ``database_at_0002``, at revision 0003."""
    if request.param == "sqlite":
        settings = make_settings()
        await asyncio.to_thread(upgrade, settings, "0003")
        yield settings
        return
    name = f"imageshark_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        settings = make_settings(database_url=pg_dsn_for(name))
        await asyncio.to_thread(upgrade, settings, "0003")
        yield settings
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_0004_sums_each_rooms_bytes_and_triggers_keep_the_sum(
    database_at_0003: Settings,
) -> None:
    settings = database_at_0003
    times = {
        "now": datetime(2026, 11, 20, 10, tzinfo=UTC),
        "later": datetime(2026, 12, 20, tzinfo=UTC),
    }
    engine = create_async_engine(settings.sqlalchemy_url)
    counter = iter(range(1, 1000))

    async def add_image(room: int, status: str = "approved") -> int:
        seq = next(counter)
        values = {"room": room, "seq": seq, "key": f"k{seq}", "status": status, "now": times["now"]}
        return int((await connection.execute(text(_IMAGE), values)).scalar_one())

    async def stored_images() -> dict[int, tuple[int, int]]:
        rows = await connection.execute(text("SELECT id, stored_images FROM rooms ORDER BY id"))
        return {int(room): (int(count), 0) for room, count in rows}

    async def stored() -> dict[int, tuple[int, int]]:
        rows = await connection.execute(
            text("SELECT id, stored_images, stored_bytes FROM rooms ORDER BY id")
        )
        return {int(room): (int(count), int(size)) for room, count, size in rows}

    try:
        async with engine.begin() as connection:
            full, empty = [
                int((await connection.execute(text(_ROOM), {"token": t, **times})).scalar_one())
                for t in ("full", "empty")
            ]
            first = await add_image(full)
            await add_image(full, "pending")
        await asyncio.to_thread(upgrade, settings)
        async with engine.begin() as connection:
            # Backfilled (each test image has 10 original bytes), both statuses counted.
            assert await stored() == {full: (2, 20), empty: (0, 0)}
            settings_row = await connection.execute(
                text("SELECT require_join, max_bytes FROM rooms WHERE id = :id"), {"id": full}
            )
            assert tuple(settings_row.one()) == (False, None)
            await add_image(empty)
            await connection.execute(text("DELETE FROM images WHERE id = :id"), {"id": first})
            assert await stored() == {full: (1, 10), empty: (1, 10)}
        # And back: the downgrade removes the columns and triggers again.
        await asyncio.to_thread(command.downgrade, alembic_config(settings), "0003")
        async with engine.begin() as connection:
            await add_image(empty)
            assert {room: count for room, (count, _) in (await stored_images()).items()} == {
                full: 1,
                empty: 2,
            }
    finally:
        await engine.dispose()


async def test_0005_gives_each_existing_room_a_unique_code(database_at_0003: Settings) -> None:
    settings = database_at_0003
    times = {
        "now": datetime(2026, 11, 20, 10, tzinfo=UTC),
        "later": datetime(2026, 12, 20, tzinfo=UTC),
    }
    await asyncio.to_thread(upgrade, settings, "0004")
    engine = create_async_engine(settings.sqlalchemy_url)
    try:
        async with engine.begin() as connection:
            for token in ("one", "two", "three"):
                await connection.execute(text(_ROOM), {"token": token, **times})
        await asyncio.to_thread(upgrade, settings, "0005")
        async with engine.begin() as connection:
            codes = [row[0] for row in await connection.execute(text("SELECT code FROM rooms"))]
            assert len(set(codes)) == 3
            assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{8}", code) for code in codes)
        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                await connection.execute(text("UPDATE rooms SET code = :c"), {"c": codes[0]})
        await asyncio.to_thread(command.downgrade, alembic_config(settings), "0004")
        async with engine.begin() as connection:
            assert (await connection.execute(text("SELECT count(*) FROM rooms"))).scalar() == 3
    finally:
        await engine.dispose()


async def test_0013_leaves_rooms_without_owner_and_unowns_them_when_an_account_goes(
    database_at_0002: Settings,
) -> None:
    settings = database_at_0002
    times = {
        "now": datetime(2026, 11, 20, 10, tzinfo=UTC),
        "later": datetime(2026, 12, 20, tzinfo=UTC),
    }
    await asyncio.to_thread(upgrade, settings, "0012")
    engine = create_async_engine(settings.sqlalchemy_url)
    try:
        async with engine.begin() as connection:
            room = (await connection.execute(text(_ROOM), {"token": "old", **times})).scalar_one()
        await asyncio.to_thread(upgrade, settings)
        async with engine.begin() as connection:
            if settings.embedded:
                await connection.execute(text("PRAGMA foreign_keys=ON"))
            owner = await connection.execute(text("SELECT owner_account_id FROM rooms"))
            assert owner.scalar_one() is None
            account = (
                await connection.execute(
                    text(
                        "INSERT INTO accounts (email, password_hash, created_at)"
                        " VALUES ('ann@example.org', 'h', :now) RETURNING id"
                    ),
                    times,
                )
            ).scalar_one()
            await connection.execute(
                text("UPDATE rooms SET owner_account_id = :account"), {"account": account}
            )
            await connection.execute(
                text(
                    "INSERT INTO room_hosts (room_id, account_id, role, created_at)"
                    " VALUES (:room, :account, 'owner', :now)"
                ),
                {"room": room, "account": account, **times},
            )
            await connection.execute(text("DELETE FROM accounts"))
            owner = await connection.execute(text("SELECT owner_account_id FROM rooms"))
            assert owner.scalar_one() is None
            hosts = await connection.execute(text("SELECT count(*) FROM room_hosts"))
            assert hosts.scalar_one() == 0
        await asyncio.to_thread(command.downgrade, alembic_config(settings), "0012")
        async with engine.begin() as connection:
            assert (await connection.execute(text("SELECT count(*) FROM rooms"))).scalar() == 1
    finally:
        await engine.dispose()
