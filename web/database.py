"""The database engine: SQLite (embedded default) or PostgreSQL (asyncpg), one code path.

:class:`Database` owns the SQLAlchemy async engine and its connection pool. It is created by
``create_app`` and opened and closed by the application's lifespan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, cast

import asyncpg
from sqlalchemy import ClauseElement, Executable, event, text
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import greenlet_spawn

from web.settings import Settings


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """Per-connection SQLite settings.

    WAL lets readers run beside the one writer; ``synchronous=FULL`` makes a committed upload
    survive power loss, which the wire contract requires before acknowledging
    (https://www.sqlite.org/pragma.html#pragma_synchronous); ``busy_timeout`` makes concurrent
    writers wait for the lock instead of failing at once. It is set first: switching to WAL
    takes a lock too, and a connection opened during a write must wait for it, not fail with
    "database is locked".
    """
    cursor = dbapi_connection.cursor()
    for pragma in (
        "PRAGMA busy_timeout=10000",
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=FULL",
        "PRAGMA foreign_keys=ON",
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


class Statements(Protocol):
    """Runs SQLAlchemy Core statements on one connection (see :meth:`Database.direct_read`).

    ``params`` maps bound-parameter names to values, as for ``AsyncConnection.execute``.
    Errors are SQLAlchemy's on both backends: ``IntegrityError`` for a violated constraint,
    another ``DBAPIError`` when the database fails or is unreachable.
    """

    async def first(
        self, statement: Executable, params: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        """The first result row as a mapping of column name to value, or None."""
        ...

    async def all(
        self, statement: Executable, params: Mapping[str, Any]
    ) -> list[Mapping[str, Any]]:
        """Every result row, each a mapping of column name to value."""
        ...

    async def scalar(self, statement: Executable, params: Mapping[str, Any]) -> Any:
        """The first column of the first result row, or None."""
        ...

    async def execute(self, statement: Executable, params: Mapping[str, Any]) -> None:
        """Run a statement whose result is not needed."""
        ...


class SQLAlchemyStatements:
    """:class:`Statements` through a SQLAlchemy connection: what :meth:`Database.direct_read`
    gives on SQLite, and how code holding a connection of :meth:`Database.transaction` calls
    a function written for :class:`Statements`."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def first(
        self, statement: Executable, params: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        row = (await self.connection.execute(statement, dict(params))).first()
        return cast(Mapping[str, Any], row._mapping) if row is not None else None

    async def all(
        self, statement: Executable, params: Mapping[str, Any]
    ) -> list[Mapping[str, Any]]:
        rows = await self.connection.execute(statement, dict(params))
        return [cast(Mapping[str, Any], row._mapping) for row in rows]

    async def scalar(self, statement: Executable, params: Mapping[str, Any]) -> Any:
        return await self.connection.scalar(statement, dict(params))

    async def execute(self, statement: Executable, params: Mapping[str, Any]) -> None:
        await self.connection.execute(statement, dict(params))


@dataclass(frozen=True, slots=True)
class _CompiledStatement:
    """A statement compiled by SQLAlchemy's asyncpg dialect: the SQL text with ``$n``
    placeholders, the parameter names in placeholder order, the values of parameters the
    statement carries itself (such as the ``1`` of ``last_seq + 1``), and the column types'
    bind processors (a JSON column's serialiser, a UTC timestamp's check)."""

    sql: str
    names: tuple[str, ...]
    defaults: dict[str, Any]
    processors: dict[str, Callable[[Any], Any]]

    @classmethod
    def of(cls, statement: ClauseElement, keys: tuple[str, ...]) -> _CompiledStatement:
        compiled = statement.compile(dialect=_ASYNCPG_DIALECT, column_keys=list(keys))
        assert isinstance(compiled, SQLCompiler) and compiled.positiontup is not None
        return cls(
            sql=str(compiled),
            names=tuple(compiled.positiontup),
            defaults=dict(compiled.params),
            # SQLAlchemy applies these itself before handing values to the driver; they are
            # only reachable through this attribute (pinned by uv.lock, covered by the tests).
            processors=cast(dict[str, Callable[[Any], Any]], dict(compiled._bind_processors)),
        )

    def values(self, params: Mapping[str, Any]) -> list[Any]:
        out = []
        for name in self.names:
            value = params[name] if name in params else self.defaults[name]
            processor = self.processors.get(name)  # applied to None too, as SQLAlchemy does
            out.append(processor(value) if processor is not None else value)
        return out


_ASYNCPG_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
_MAX_COMPILED = 256


class _CompiledStatements:
    """Statements compiled for asyncpg, once per statement object and parameter names (one
    cache per :class:`Database`).

    The direct path is meant for statements built once, as module constants with
    ``bindparam``; should other code pass statements built per call, the cache is emptied
    whenever it reaches ``max_entries`` entries instead of growing without bound.
    """

    def __init__(self, max_entries: int = _MAX_COMPILED) -> None:
        self.max_entries = max_entries
        self._entries: dict[tuple[int, tuple[str, ...]], tuple[Executable, _CompiledStatement]]
        self._entries = {}

    def get(self, statement: Executable, params: Mapping[str, Any]) -> _CompiledStatement:
        """``statement`` compiled for the names of ``params``."""
        keys = tuple(sorted(params))
        key = (id(statement), keys)
        cached = self._entries.get(key)
        if cached is None or cached[0] is not statement:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            assert isinstance(statement, ClauseElement)
            cached = self._entries[key] = (statement, _CompiledStatement.of(statement, keys))
        return cached[1]


class _AsyncpgStatements:
    """:class:`Statements` straight on an asyncpg connection (PostgreSQL). asyncpg prepares
    each SQL text once per connection and reuses it (its statement cache)."""

    def __init__(self, connection: asyncpg.Connection, compiled: _CompiledStatements) -> None:
        self.connection = connection
        self.compiled = compiled

    async def first(
        self, statement: Executable, params: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        compiled = self.compiled.get(statement, params)
        # An asyncpg Record is a mapping of column name to value.
        row: Mapping[str, Any] | None = await self.connection.fetchrow(
            compiled.sql, *compiled.values(params)
        )
        return row

    async def all(
        self, statement: Executable, params: Mapping[str, Any]
    ) -> list[Mapping[str, Any]]:
        compiled = self.compiled.get(statement, params)
        rows: list[Mapping[str, Any]] = await self.connection.fetch(
            compiled.sql, *compiled.values(params)
        )
        return rows

    async def scalar(self, statement: Executable, params: Mapping[str, Any]) -> Any:
        compiled = self.compiled.get(statement, params)
        return await self.connection.fetchval(compiled.sql, *compiled.values(params))

    async def execute(self, statement: Executable, params: Mapping[str, Any]) -> None:
        compiled = self.compiled.get(statement, params)
        await self.connection.execute(compiled.sql, *compiled.values(params))


# Errors after which a connection is not returned to the pool: the connection is gone or in
# an unknown state (a statement interrupted half-way). InternalClientError is what asyncpg
# raises when the server ended the session under a statement it was starting.
_CONNECTION_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    # The server ending the session: administrator shutdown, crash, or still starting.
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    OSError,
    TimeoutError,
)


class Database:
    """The connection pool of one replica.

    Writes run in a transaction (:meth:`transaction`). Reads (:meth:`read`) are single
    statements and, on PostgreSQL, run in autocommit mode: each statement is its own snapshot,
    and no BEGIN and ROLLBACK round trips surround it. The statements of every upload use
    :meth:`direct_read` and :meth:`direct_transaction`, which on PostgreSQL run them on the
    pooled asyncpg connection without SQLAlchemy's execution layer.

    :param settings: chooses the backend (``Settings.sqlalchemy_url``) and the pool size.
    """

    def __init__(self, settings: Settings) -> None:
        self.url = settings.sqlalchemy_url
        self.is_sqlite = self.url.startswith("sqlite")
        self._compiled = _CompiledStatements()
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

    @asynccontextmanager
    async def direct_read(self) -> AsyncIterator[Statements]:
        """Like :meth:`read`, for the few statements every upload runs: on PostgreSQL they
        bypass SQLAlchemy's execution layer and run on the pooled asyncpg connection itself
        (same pool, same SQL, same parameter processing), at well under half the CPU per
        statement (docs/decisions/0013-upload-path-sql.md). Give it
        statements built once (module constants with ``bindparam``): each is compiled for
        asyncpg on first use and kept.

        :raises sqlalchemy.exc.DBAPIError: the database failed or is unreachable (the
            request answers 503); ``IntegrityError`` for a violated constraint.
        """
        if self.is_sqlite:
            async with self.read() as connection:
                yield SQLAlchemyStatements(connection)
            return
        async with self._driver_connection() as connection:
            yield _AsyncpgStatements(connection, self._compiled)

    @asynccontextmanager
    async def direct_transaction(self) -> AsyncIterator[Statements]:
        """Like :meth:`transaction` (committed on success, rolled back on any error), with
        the statements of :meth:`direct_read`.

        :raises sqlalchemy.exc.DBAPIError: as :meth:`direct_read`, also for a failed commit.
        """
        if self.is_sqlite:
            async with self.transaction() as connection:
                yield SQLAlchemyStatements(connection)
            return
        async with self._driver_connection() as connection, connection.transaction():
            yield _AsyncpgStatements(connection, self._compiled)

    @asynccontextmanager
    async def _driver_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection's asyncpg connection, returned to the pool afterwards, or
        discarded when it broke or was left mid-statement or mid-transaction.

        asyncpg's errors are raised as SQLAlchemy's: ``IntegrityError`` for a violated
        constraint, ``DBAPIError`` for the rest. A lost connection also renews the whole pool,
        as SQLAlchemy does when one of its own statements finds the connection gone (see
        :func:`_discard_closed_connection`).
        """
        proxied = await self.engine.raw_connection()
        connection = proxied.driver_connection
        assert isinstance(connection, asyncpg.Connection)
        healthy = False
        try:
            yield connection
            healthy = True
        except asyncpg.IntegrityConstraintViolationError as exc:
            healthy = True  # reported by the server, which rolled back; the connection is fine
            raise IntegrityError(None, None, exc) from exc
        except (*_CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
            if isinstance(exc, _CONNECTION_ERRORS) or connection.is_closed():
                pool = self.engine.sync_engine.pool
                # What SQLAlchemy does on a disconnect, through the same pool method (internal,
                # pinned by uv.lock, covered by tests/web/test_database.py): this connection
                # is closed, and every connection older than now is replaced at its next
                # checkout.
                await greenlet_spawn(pool._invalidate, proxied, exc)
                raise DBAPIError(None, None, exc, connection_invalidated=True) from exc
            healthy = True  # an error the server reported on a working connection
            raise DBAPIError(None, None, exc) from exc
        except Exception:
            healthy = True  # the application's own error, after asyncpg rolled back
            raise
        finally:
            if proxied.is_valid:
                if healthy and not connection.is_closed() and not connection.is_in_transaction():
                    proxied.close()
                else:
                    await greenlet_spawn(proxied.invalidate)

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
