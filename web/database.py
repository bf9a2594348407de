"""The database engine: SQLite (embedded default) or PostgreSQL (asyncpg), one code path.

:class:`Database` owns the SQLAlchemy async engine and its connection pool. It is created by
``create_app`` and opened and closed by the application's lifespan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
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


class Database:
    """The connection pool of one replica.

    :param settings: chooses the backend (``Settings.sqlalchemy_url``) and the pool size.
    """

    def __init__(self, settings: Settings) -> None:
        self.url = settings.sqlalchemy_url
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            self.engine: AsyncEngine = create_async_engine(self.url)
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_async_engine(
                self.url,
                pool_size=settings.database_pool_size,
                max_overflow=0,
                pool_pre_ping=True,
                pool_timeout=10,
            )

    async def ping(self) -> None:
        """Run ``SELECT 1``; raises the driver's error if the database is unreachable."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction, committed on success, rolled back on error."""
        async with self.engine.begin() as connection:
            yield connection

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads (no transaction kept open after the block)."""
        async with self.engine.connect() as connection:
            yield connection

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
