"""The PostgreSQL connection pool: bare reads, and connections the server closed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
from sqlalchemy import text

from tests.conftest import PG_ADMIN_DSN
from web.database import Database
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
        deadline = time.monotonic() + 10
        while not raw.is_closed():  # asyncpg sees the server's FIN on its next read
            assert time.monotonic() < deadline, "asyncpg never noticed the closed connection"
            await asyncio.sleep(0.01)

        async with database.read() as connection:
            second_pid = await connection.scalar(text("SELECT pg_backend_pid()"))
        assert second_pid != first_pid
        async with database.transaction() as connection:
            assert await connection.scalar(text("SELECT 1")) == 1
    finally:
        await database.close()
