"""The PostgreSQL connection pool: bare reads, connections the server closed, and the direct
path to asyncpg that the upload's statements take."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    Table,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from tests.conftest import PG_ADMIN_DSN
from tests.polling import poll_until
from web.database import Database
from web.schema import UTCDateTime
from web.settings import Settings


def _database(url: str) -> Database:
    return Database(Settings(DATABASE_URL=url, data_dir=Path("/nonexistent")))  # type: ignore[call-arg]


async def test_reads_run_without_begin_and_writes_in_a_transaction(pg_database_url: str) -> None:
    database = _database(pg_database_url)
    sent: list[str] = []
    try:
        async with database.read() as connection:
            raw = (await connection.get_raw_connection()).driver_connection
        # asyncpg logs the simple-protocol statements (transaction control, pings); the
        # prepared SELECTs themselves go through the extended protocol and are not logged.
        raw.add_query_logger(lambda record: sent.append(record.query.strip().upper()))

        async with database.read() as connection:
            assert await connection.scalar(text("SELECT 41 + 1")) == 42
        assert sent == [], "a read sent transaction control or a ping"

        sent.clear()
        async with database.transaction() as connection:
            assert await connection.scalar(text("SELECT 1")) == 1
        assert [query.split(" ")[0].rstrip(";") for query in sent] == ["BEGIN", "COMMIT"]

        sent.clear()
        async with database.read() as connection:  # the same pooled connection, reset
            assert await connection.scalar(text("SELECT 2")) == 2
        assert sent == []
    finally:
        await database.close()


async def test_a_pooled_connection_the_server_closed_is_replaced_not_failed(
    pg_database_url: str,
) -> None:
    database = _database(pg_database_url)
    try:
        async with database.read() as connection:
            raw = (await connection.get_raw_connection()).driver_connection
            first_pid = await connection.scalar(text("SELECT pg_backend_pid()"))
        assert isinstance(raw, asyncpg.Connection) and not raw.is_closed()

        admin = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", first_pid) is True
        finally:
            await admin.close()
        # asyncpg sees the server's FIN on its next read
        await poll_until(raw.is_closed, deadline=10, interval=0.01, what="asyncpg sees the close")

        async with database.read() as connection:
            second_pid = await connection.scalar(text("SELECT pg_backend_pid()"))
        assert second_pid != first_pid
        async with database.transaction() as connection:
            assert await connection.scalar(text("SELECT 1")) == 1
    finally:
        await database.close()


# Statements of the direct path (Database.direct_read / direct_transaction), on a table of
# their own: a JSON column (SQLAlchemy's serialiser), a UTC timestamp (its naive-datetime
# check), a bound constant, and a unique constraint.
_metadata = MetaData()
_notes = Table(
    "direct_path_notes",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("body", JSON, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("hits", Integer, nullable=False, server_default="0"),
)
_INSERT_NOTE = insert(_notes).returning(_notes.c.id, _notes.c.body, _notes.c.at)
_BUMP_NOTE = (
    update(_notes)
    .where(_notes.c.id == bindparam("note_id"))
    .values(hits=_notes.c.hits + 1)
    .returning(_notes.c.hits)
)
_NOTE_BY_ID = select(_notes).where(_notes.c.id == bindparam("note_id"))
_NOTES_FROM = (
    select(_notes)
    .where(_notes.c.id >= bindparam("first_id"))
    .order_by(_notes.c.id)
    .limit(bindparam("limit"))
)
_BACKEND_PID = select(func.pg_backend_pid())
AT = datetime(2026, 11, 21, 6, 30, tzinfo=UTC)


async def _fresh_notes(database: Database) -> None:
    async with database.transaction() as connection:
        await connection.run_sync(_metadata.drop_all)
        await connection.run_sync(_metadata.create_all)


async def test_direct_statements_match_sqlalchemys_and_keep_healthy_connections(
    pg_database_url: str,
) -> None:
    database = _database(pg_database_url)
    try:
        await _fresh_notes(database)
        async with database.direct_transaction() as statements:
            pid = await statements.scalar(_BACKEND_PID, {})
            row = await statements.first(
                _INSERT_NOTE, {"id": 1, "body": {"tags": ["a", "é"], "n": 1}, "at": AT}
            )
            assert row is not None and dict(row) == {
                "id": 1,
                "body": {"tags": ["a", "é"], "n": 1},
                "at": AT,
            }
            assert await statements.scalar(_BUMP_NOTE, {"note_id": 1}) == 1  # bound constant
            await statements.execute(_BUMP_NOTE, {"note_id": 1})
        async with database.read() as connection:  # what SQLAlchemy itself reads back
            stored = (await connection.execute(_NOTE_BY_ID, {"note_id": 1})).one()
        assert (stored.body, stored.at, stored.hits) == ({"tags": ["a", "é"], "n": 1}, AT, 2)

        # A violated constraint is SQLAlchemy's IntegrityError; the transaction is rolled
        # back and the connection goes back to the pool (same backend afterwards).
        with pytest.raises(IntegrityError):
            async with database.direct_transaction() as statements:
                await statements.execute(_BUMP_NOTE, {"note_id": 1})
                await statements.execute(_INSERT_NOTE, {"id": 1, "body": {}, "at": AT})
        # So does the application's own error, after a rollback.
        with pytest.raises(LookupError):
            async with database.direct_transaction() as statements:
                await statements.execute(_BUMP_NOTE, {"note_id": 1})
                raise LookupError("refused")
        # A naive datetime is refused by the column type, as through SQLAlchemy.
        with pytest.raises(ValueError, match="naive"):
            async with database.direct_read() as statements:
                await statements.execute(
                    _INSERT_NOTE, {"id": 2, "body": {}, "at": AT.replace(tzinfo=None)}
                )
        async with database.direct_read() as statements:
            assert await statements.scalar(_BACKEND_PID, {}) == pid
            note = await statements.first(_NOTE_BY_ID, {"note_id": 1})
            assert note is not None and note["hits"] == 2
            assert await statements.first(_NOTE_BY_ID, {"note_id": 2}) is None
            await statements.execute(_INSERT_NOTE, {"id": 3, "body": [1, None], "at": AT})
            listed = await statements.all(_NOTES_FROM, {"first_id": 1, "limit": 5})
        assert [(row["id"], row["body"]) for row in listed] == [
            (1, {"tags": ["a", "é"], "n": 1}),
            (3, [1, None]),
        ]
    finally:
        await database.close()


async def test_direct_path_discards_broken_or_interrupted_connections(
    pg_database_url: str,
) -> None:
    database = _database(pg_database_url)
    try:
        await _fresh_notes(database)
        async with database.direct_read() as statements:
            first_pid = await statements.scalar(_BACKEND_PID, {})
            await statements.execute(_INSERT_NOTE, {"id": 1, "body": {}, "at": AT})

        # Interrupted inside a transaction (a cancelled request): the connection is not put
        # back mid-transaction; the change is not kept; the next checkout is a new backend.
        with pytest.raises(asyncio.CancelledError):
            async with database.direct_transaction() as statements:
                await statements.execute(_BUMP_NOTE, {"note_id": 1})
                raise asyncio.CancelledError
        async with database.direct_read() as statements:
            second_pid = await statements.scalar(_BACKEND_PID, {})
            note = await statements.first(_NOTE_BY_ID, {"note_id": 1})
        assert second_pid != first_pid
        assert note is not None and note["hits"] == 0

        # The server ends the session while the connection is in use: a DBAPIError marked
        # connection_invalidated (the request answers 503), and the pool serves a new backend.
        with pytest.raises(DBAPIError) as failed:
            async with database.direct_read() as statements:
                admin = await asyncpg.connect(PG_ADMIN_DSN)
                try:
                    await admin.fetchval("SELECT pg_terminate_backend($1)", second_pid)
                finally:
                    await admin.close()
                await statements.scalar(_BACKEND_PID, {})
        assert failed.value.connection_invalidated
        async with database.direct_transaction() as statements:
            third_pid = await statements.scalar(_BACKEND_PID, {})
        assert third_pid not in (first_pid, second_pid)
    finally:
        await database.close()
