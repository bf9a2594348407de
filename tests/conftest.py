"""Shared fixtures: settings on a temporary data folder, real PostgreSQL and Redis, in-process
HTTP clients and real uvicorn servers on loopback ports.

PostgreSQL and Redis are required: a test run creates its own PostgreSQL database (dropped at
the end) and gives every test its own Redis key prefix (deleted after the test). If either
server is unreachable the run fails with a message that says so; nothing is skipped.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
import uvicorn
from asgi_lifespan import LifespanManager

from tests.object_store import Bucket, MotoServer, new_bucket
from tests.production import processes
from web.app import create_app
from web.migrate import upgrade
from web.settings import Settings

PG_ADMIN_DSN = os.environ.get("IMAGESHARK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("IMAGESHARK_TEST_REDIS", "redis://127.0.0.1:6379/0")


# Tiers: every test in these folders carries the marker (pyproject.toml registers them), so a
# new test is in its tier without being marked by hand. ``make test-fast`` leaves the three out.
TIER_FOLDERS = {"e2e": "browser", "production": "processes", "deploy": "deploy"}


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by these markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its tier: by the folder under ``tests/`` it lives in, and
    ``browser`` for any test that uses the ``browser`` fixture; put the tests of an xdist
    group first, then the fuzzer's."""
    tests = Path(__file__).parent
    for item in items:
        tiers = set()
        folder = item.path.relative_to(tests).parts[0]
        if folder in TIER_FOLDERS:
            tiers.add(TIER_FOLDERS[folder])
        if "browser" in getattr(item, "fixturenames", ()):
            tiers.add("browser")
        for name in sorted(tiers - {marker.name for marker in item.iter_markers()}):
            item.add_marker(name)
    # Grouped tests run one after another on one xdist worker (``--dist loadgroup``): started
    # first, the group's couple of minutes overlap the rest of the suite on the other worker
    # instead of ending the run alone; the fuzzer's runs (about 20 s each) come next, so that
    # none of them is the last test left running either. A stable sort: the order within each
    # part stays.
    items.sort(
        key=lambda item: (
            item.get_closest_marker("xdist_group") is None,
            item.get_closest_marker("fuzz") is None,
        )
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tell the process helpers whether this test may start server processes: only a test
    marked ``processes`` may, so none slips into ``make test-fast`` unmarked."""
    processes.allowed = item.get_closest_marker("processes") is not None


def pg_dsn_for(database: str) -> str:
    base, _, _ = PG_ADMIN_DSN.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test run (per xdist worker); dropped after."""
    name = f"imageshark_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        try:
            connection = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        except (OSError, asyncpg.PostgresError) as exc:
            raise RuntimeError(
                f"PostgreSQL is required for the tests; not reachable at {PG_ADMIN_DSN}: {exc}"
            ) from exc
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = pg_dsn_for(name)
    upgrade(Settings(DATABASE_URL=url, data_dir=Path("/nonexistent")))  # type: ignore[call-arg]
    try:
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A Redis key prefix of this test's own; every key under it is deleted afterwards."""
    prefix = f"imageshark-test-{uuid.uuid4().hex[:12]}"
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        raise RuntimeError(
            f"Redis is required for the tests and is not reachable at {REDIS_URL}"
        ) from exc
    try:
        yield prefix
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        # The rendition queue's (saq names its keys saq:<queue>:... and saq:job:<queue>:...).
        for pattern in (f"saq:{prefix}:*", f"saq:job:{prefix}:*"):
            keys += [key async for key in client.scan_iter(match=pattern)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoServer]:
    """moto's S3-compatible server on a loopback port, for the whole test run (per worker)."""
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: MotoServer) -> Iterator[Bucket]:
    """A bucket of this test's own on :func:`s3_server`; emptied and removed after."""
    yield from new_bucket(s3_server)


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """Build Settings for a test: embedded defaults in a temporary data folder, one rendition
    worker, plus any overrides (``database_url=...`` selects PostgreSQL)."""

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "rendition_workers": 1,
            "public_base_url": None,
            # run_server binds 127.0.0.1: join URLs stay on loopback (tests never reach out).
            "host": "127.0.0.1",
            # Long-polling clients only notice a close at the next heartbeat; keep it short.
            "ping_interval_seconds": 2,
            "ping_timeout_seconds": 5,
            # The outage tests' stores refuse at once: their retries need not wait 0.1-0.3 s.
            "storage_retry_wait_seconds": 0.005,
        }
        values.update(overrides)
        if "database_url" in values:
            values["DATABASE_URL"] = values.pop("database_url")
        if "redis_url" in values:
            values["REDIS_URL"] = values.pop("redis_url")
        return Settings(**values)

    return factory


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_settings(request: pytest.FixtureRequest, make_settings: SettingsFactory) -> Settings:
    """Settings on each database backend in turn: the embedded SQLite file, then PostgreSQL."""
    if request.param == "postgresql":
        return make_settings(database_url=request.getfixturevalue("pg_database_url"))
    return make_settings()


@dataclass
class AppClient:
    """An in-process HTTP client of an app whose lifespan is running."""

    http: httpx.AsyncClient
    settings: Settings
    app: Any


async def _app_client(settings: Settings) -> AsyncIterator[AppClient]:
    # Rendition workers start at the first upload: most tests never render, and warming a
    # worker up is most of an app's start-up.
    app = create_app(settings, renditions_on_demand=True)
    async with LifespanManager(app, startup_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield AppClient(http=http, settings=settings, app=app)


@pytest.fixture
async def client(make_settings: SettingsFactory) -> AsyncIterator[AppClient]:
    """An in-process client of the app on the embedded default (SQLite, local bus)."""
    async for app_client in _app_client(make_settings()):
        yield app_client


@pytest.fixture
async def backend_client(backend_settings: Settings) -> AsyncIterator[AppClient]:
    """An in-process client of the app, once on SQLite and once on PostgreSQL."""
    async for app_client in _app_client(backend_settings):
        yield app_client


class _Server(uvicorn.Server):
    """uvicorn.Server that signals when it is ready, so tests wait on an event, not a sleep."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


@dataclass
class LiveServer:
    """A real uvicorn serving the whole app on a loopback port."""

    base_url: str
    settings: Settings
    server: _Server


async def serve_asgi(
    app: Any, *, per_message_deflate: bool = False
) -> AsyncIterator[tuple[str, _Server]]:
    """Serve ``app`` with uvicorn on 127.0.0.1 and a free port until closed, as
    ``imageshark serve`` does (websockets-sansio, no permessage-deflate).

    :param per_message_deflate: offer permessage-deflate to WebSocket clients, unlike
        ``imageshark serve``.

    :yields: the base URL (``http://127.0.0.1:<port>``) and the uvicorn server.
    :raises RuntimeError: if uvicorn does not start within 60 seconds.
    """
    # IPPROTO_TCP spelled out: asyncio's own loop sets TCP_NODELAY only on sockets whose proto
    # says TCP, and without it every answer written in two parts waited ~40 ms for the
    # client's delayed ACK (uvloop, which `imageshark serve` runs on, sets it on any).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        ws="websockets-sansio",
        ws_per_message_deflate=per_message_deflate,
        ws_ping_interval=None,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=5,
        # A test's client may idle past uvicorn's 5 s default between two requests on a loaded
        # machine; the server's close then races the next request, which fails with ReadError.
        timeout_keep_alive=60,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    ready = asyncio.create_task(server.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        raise RuntimeError("uvicorn did not start") from (task.exception() if task.done() else None)
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        await task
        sock.close()


async def run_server(
    settings: Settings, *, renditions_on_demand: bool = True
) -> AsyncIterator[LiveServer]:
    """Serve ``create_app(settings)`` with uvicorn on 127.0.0.1 and a free port until closed.

    :param renditions_on_demand: start the rendition workers at the first upload (most tests
        never render); ``False``: at start-up, as ``imageshark serve`` does, for tests that
        time uploads.
    """
    app = create_app(settings, renditions_on_demand=renditions_on_demand)
    async for base_url, server in serve_asgi(app):
        yield LiveServer(base_url=base_url, settings=settings, server=server)


@pytest.fixture
async def live_server(make_settings: SettingsFactory) -> AsyncIterator[LiveServer]:
    """A real uvicorn on a loopback port running the embedded default (fresh data folder)."""
    async for server in run_server(make_settings()):
        yield server
