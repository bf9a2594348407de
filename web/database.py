"""The database engine: SQLite (embedded default) or PostgreSQL (asyncpg), one code path.

:class:`Database` owns the SQLAlchemy async engine and its connection pool. It is created by
``create_app`` and opened and closed by the application's lifespan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from web.settings import Settings


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """Per-connection SQLite settings.

    WAL lets readers run beside the one writer; ``synchronous=FULL`` makes a committed upload
    survive power loss, which the wire contract requires before acknowledging
    (https://www.sqlite.org/pragma.html#pragma_synchronous); ``busy_timeout`` makes concurrent
    writers wait for the lock instead of failing at once.
    """
    cursor = dbapi_connection.cursor()
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=FULL",
        "PRAGMA foreign_keys=ON",
        "PRAGMA busy_timeout=10000",
    ):
        cursor.execute(pragma)
    cursor.close()


def _discard_closed_connection(
    dbapi_connection: Any, connection_record: Any, connection_proxy: Any
) -> None:
    """Pool checkout hook (PostgreSQL): refuse a pooled connection that asyncpg already knows
    is closed, so the pool opens a new one instead of failing the request.

    After PostgreSQL restarts, or a proxy or administrator ends a session, the server's end
    closes the socket; asyncpg's protocol sees it and ``Connection.is_closed()`` turns true
    without a round trip. Raising ``DisconnectionError`` here makes SQLAlchemy discard the
    connection and check out another (the documented custom pessimistic check:
    https://docs.sqlalchemy.org/en/20/core/pooling.html#disconnect-handling-pessimistic).
    It replaces ``pool_pre_ping``, whose ping is three round trips on asyncpg (BEGIN, an empty
    query, ROLLBACK) on every checkout. A connection that died silently (no FIN, e.g. a
    network partition) still fails its first statement; that error invalidates the whole
    pool, and the request answers 503 with Retry-After.

    :raises DisconnectionError: for a closed connection.
    """
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("PostgreSQL closed this pooled connection")


class Database:
    """The connection pool of one replica.

    Writes run in a transaction (:meth:`transaction`). Reads (:meth:`read`) are single
    statements and, on PostgreSQL, run in autocommit mode: each statement is its own snapshot,
    and no BEGIN and ROLLBACK round trips surround it.

    :param settings: chooses the backend (``Settings.sqlalchemy_url``) and the pool size.
    """

    def __init__(self, settings: Settings) -> None:
        self.url = settings.sqlalchemy_url
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            self.engine: AsyncEngine = create_async_engine(self.url)
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            # Python's sqlite3 begins no transaction before a SELECT: reads are already bare.
            self.read_engine = self.engine
        else:
            self.engine = create_async_engine(
                self.url,
                pool_size=settings.database_pool_size,
                max_overflow=0,
                pool_timeout=10,
            )
            event.listen(self.engine.sync_engine.pool, "checkout", _discard_closed_connection)
            # Same pool; asyncpg's autocommit is a flag of SQLAlchemy's adapter, no round trip.
            self.read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    async def ping(self) -> None:
        """Run ``SELECT 1``; raises the driver's error if the database is unreachable."""
        async with self.read_engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction, committed on success, rolled back on error."""
        async with self.engine.begin() as connection:
            yield connection

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads: each statement sees the data committed before it started
        (no transaction spans two statements)."""
        async with self.read_engine.connect() as connection:
            yield connection

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
