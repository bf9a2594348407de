"""Production mode: several real replicas on PostgreSQL and Redis, and the faults of an event.

Each replica is a separate ``imageshark serve`` process on a loopback port, sharing the test
run's PostgreSQL database, a data folder and a Redis server the test starts for itself.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import select

from tests.conftest import PG_ADMIN_DSN, pg_dsn_for
from tests.photos import make_image_bytes
from tests.production.processes import RedisServer, Replica, TcpProxy, running
from tests.production.room_mirror import RoomMirror
from tests.realtime.live_client import LiveClient
from web.database import Database
from web.migrate import head_revision
from web.schema import images, metadata
from web.settings import Settings

pytestmark = pytest.mark.xdist_group("replicas")

PHOTOS = ("coffee", "chelsea", "astronaut", "rocket")
OUTAGE_UPLOADS = 20
"""Uploads acknowledged while Redis is down, alternating replicas."""


def replica_env(database_url: str, redis_url: str | None, data_dir: Path, prefix: str) -> dict:
    env = {
        "DATABASE_URL": database_url,
        "IMAGESHARK_DATA_DIR": str(data_dir),
        "IMAGESHARK_REDIS_PREFIX": prefix,
        "IMAGESHARK_MIGRATE_ON_START": "false",
        "IMAGESHARK_RENDITION_WORKERS": "1",
        "IMAGESHARK_PING_INTERVAL_SECONDS": "2",
        "IMAGESHARK_PING_TIMEOUT_SECONDS": "5",
        "IMAGESHARK_CATCH_UP_SECONDS": "1",
        "IMAGESHARK_PRESENCE_TTL_SECONDS": "1.5",
        "IMAGESHARK_LOG_LEVEL": "INFO",
    }
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    return env


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    server = RedisServer()
    async with running(server):
        yield server


@pytest.fixture
async def replicas(
    pg_database_url: str, redis_server: RedisServer, tmp_path: Path, redis_prefix: str
) -> AsyncIterator[tuple[Replica, Replica]]:
    """Replicas A and B on the run's PostgreSQL database, the test's Redis and one data folder."""
    env = replica_env(pg_database_url, redis_server.url, tmp_path, redis_prefix)
    a, b = Replica("A", env), Replica("B", env)
    async with running(a, b):
        yield a, b


def photo(index: int) -> bytes:
    """A distinct small real photo per index (distinct bytes: no de-duplication)."""
    return make_image_bytes("jpeg", name=PHOTOS[index % 4], size=(320 + index, 240))


async def create_room(base_url: str) -> dict:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        response = await http.post("/api/rooms", json={"title": f"room {uuid.uuid4().hex[:6]}"})
        assert response.status_code == 201, response.text
        return response.json()


async def upload(http: httpx.AsyncClient, token: str, index: int) -> httpx.Response:
    return await http.post(
        f"/api/rooms/{token}/images", files={"file": (f"{index}.jpg", photo(index))}
    )


async def test_client_on_one_replica_receives_upload_through_another_once(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    room = await create_room(a.base_url)
    mirror = RoomMirror(room["token"])
    await mirror.connect(a.base_url)
    async with httpx.AsyncClient(base_url=b.base_url, timeout=30) as http:
        first = (await upload(http, room["token"], 0)).json()
        await mirror.wait_until(lambda m: first["id"] in m.images)
        assert mirror.images[first["id"]] == first
    async with httpx.AsyncClient(base_url=a.base_url, timeout=30) as http:
        second = (await upload(http, room["token"], 1)).json()
    await mirror.wait_until(lambda m: second["id"] in m.images)
    mirror.assert_stream_exact(first_seq=1)
    assert mirror.received_seqs == [1, 2]
    await mirror.close()


async def count_becomes(client: LiveClient, expected: int) -> None:
    """Wait for ``presence`` to say ``expected`` (counts in between may be coalesced away)."""
    while (await client.next("presence"))[1]["count"] != expected:
        pass


async def test_presence_counts_the_rooms_clients_on_every_replica(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    room = await create_room(a.base_url)
    on_a = [LiveClient(a.base_url, room["token"], f"on A {i}") for i in range(2)]
    on_b = LiveClient(b.base_url, room["token"], "on B")
    elsewhere = LiveClient(b.base_url, (await create_room(b.base_url))["token"], "other room")
    for client in (*on_a, on_b, elsewhere):
        await client.connect()
    for client in (*on_a, on_b):
        await count_becomes(client, 3)
    await on_a[1].close()
    for client in (on_a[0], on_b):
        await count_becomes(client, 2)
    # A crash leaves A's count in Redis until its heartbeat expires (1.5 s here); then B
    # withdraws it and its clients see only themselves.
    await a.kill()
    await count_becomes(on_b, 1)
    # The other room only ever counted its own client.
    counts = [(await elsewhere.next("presence"))[1]["count"]]
    while not elsewhere.received.empty():
        event, data = elsewhere.received.get_nowait()
        if event == "presence":
            counts.append(data["count"])
    assert set(counts) == {1}
    await asyncio.gather(on_b.close(), elsewhere.close())


async def test_sigkilled_replica_loses_no_acknowledged_upload(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    room = await create_room(b.base_url)
    on_a = [RoomMirror(room["token"]) for _ in range(2)]
    on_b = RoomMirror(room["token"])
    for mirror in on_a:
        await mirror.connect(a.base_url)
    await on_b.connect(b.base_url)

    acknowledged: list[dict] = []
    four_done = asyncio.Event()

    async def stream_uploads() -> None:
        async with httpx.AsyncClient(base_url=b.base_url, timeout=30) as http:
            for index in range(12):
                response = await upload(http, room["token"], index)
                assert response.status_code == 201, response.text
                acknowledged.append(response.json())
                if len(acknowledged) == 4:
                    four_done.set()

    uploads = asyncio.create_task(stream_uploads())
    await four_done.wait()
    await a.kill()
    for mirror in on_a:
        await asyncio.wait_for(mirror.disconnected.wait(), 30)
        await mirror.connect(b.base_url)  # as the page would: reconnect elsewhere
    await uploads

    expected = {image["id"]: image for image in acknowledged}
    for mirror in [*on_a, on_b]:
        await mirror.wait_until(lambda m: m.images.keys() == expected.keys())
        assert mirror.images == expected
        mirror.assert_stream_exact(first_seq=1)
        assert sorted(mirror.images) == [image["id"] for image in acknowledged]
        await mirror.close()


async def test_uploads_continue_through_a_redis_outage(
    replicas: tuple[Replica, Replica], redis_server: RedisServer
) -> None:
    a, b = replicas
    room = await create_room(a.base_url)
    mirrors = [RoomMirror(room["token"]) for _ in range(4)]
    for index, mirror in enumerate(mirrors):
        await mirror.connect((a, b)[index % 2].base_url)

    await redis_server.stop()
    stored: list[dict] = []
    async with (
        httpx.AsyncClient(base_url=a.base_url, timeout=30) as via_a,
        httpx.AsyncClient(base_url=b.base_url, timeout=30) as via_b,
    ):
        ready = await via_a.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        # A client joining during the outage is counted by its replica alone for now.
        late = RoomMirror(room["token"])
        await late.connect(a.base_url)
        await late.wait_until(lambda m: m.presence == 3)
        mirrors.append(late)
        # The outage lasts for 20 uploads, alternating replicas, each one acknowledged.
        for index in range(OUTAGE_UPLOADS):
            response = await upload((via_a, via_b)[index % 2], room["token"], index)
            assert response.status_code == 201, response.text
            stored.append(response.json())
        index = OUTAGE_UPLOADS
        await redis_server.start()
        after = await upload(via_b, room["token"], index)
        assert after.status_code == 201
        stored.append(after.json())

    expected = {image["id"]: image for image in stored}
    assert len(expected) == OUTAGE_UPLOADS + 1
    for mirror in mirrors:
        await mirror.wait_until(lambda m: m.images.keys() == expected.keys())
        assert mirror.images == expected
        mirror.assert_stream_exact(first_seq=1)
        # The restarted Redis kept nothing: both replicas registered and reported again.
        await mirror.wait_until(lambda m: m.presence == 5)
    for mirror in mirrors:
        await mirror.close()


async def test_reconnect_to_another_replica_gets_exactly_the_missed_events(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    async with httpx.AsyncClient(base_url=b.base_url, timeout=30) as http:
        room = await create_room(a.base_url)
        mirror = RoomMirror(room["token"])
        await mirror.connect(a.base_url)
        first = (await upload(http, room["token"], 0)).json()
        await mirror.wait_until(lambda m: first["id"] in m.images)
        await mirror.close()

        more = [(await upload(http, room["token"], index)).json() for index in (1, 2, 3)]
        deleted = await http.delete(
            f"/api/rooms/{room['token']}/images/{first['id']}",
            headers={"Authorization": f"Bearer {room['host_key']}"},
        )
        assert deleted.status_code == 204

        await mirror.connect(b.base_url)
        expected = {image["id"]: image for image in more}
        await mirror.wait_until(lambda m: m.last_seq == 5)
        assert mirror.images == expected
        mirror.assert_stream_exact(first_seq=1)
        assert mirror.snapshots == 0
        await mirror.close()


async def test_postgres_outage_answers_503_then_recovers_consistently(
    pg_database_url: str, tmp_path: Path, redis_prefix: str
) -> None:
    proxy = TcpProxy(("127.0.0.1", 5432))
    await proxy.restore()
    database_name = pg_database_url.rsplit("/", 1)[1]
    env = replica_env(proxy.postgres_url(database_name), None, tmp_path, redis_prefix)
    replica = Replica("A", env)
    async with running(replica), httpx.AsyncClient(base_url=replica.base_url, timeout=30) as http:
        room = await create_room(replica.base_url)
        assert (await upload(http, room["token"], 0)).status_code == 201

        await proxy.cut()
        for index in range(1, 4):
            response = await upload(http, room["token"], index)
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "database_unavailable"
            assert int(response.headers["retry-after"]) > 0
        assert (await http.get("/readyz")).status_code == 503

        await proxy.restore()
        for _attempt in range(20):  # the pool reconnects on the next checkout
            response = await upload(http, room["token"], 10)
            if response.status_code == 201:
                break
            assert response.status_code == 503
        assert response.status_code == 201, response.text
        assert (await http.get("/readyz")).status_code == 200

    await proxy.cut()
    database = Database(Settings(DATABASE_URL=pg_database_url))  # type: ignore[call-arg]
    try:
        async with database.read() as connection:
            keys = {
                row[0]
                for row in await connection.execute(
                    select(images.c.storage_key).where(
                        images.c.room_id.in_(
                            select(images.c.room_id).where(images.c.storage_key.isnot(None))
                        )
                    )
                )
            }
    finally:
        await database.close()
    media = {path.name for path in (tmp_path / "media").iterdir()}
    assert len(media) == 2
    assert media <= keys, "files without a row"
    for key in media:
        assert {p.name for p in (tmp_path / "media" / key).iterdir()} == {
            "original",
            "display.jpg",
            "thumb.jpg",
        }
    assert list((tmp_path / "staging").iterdir()) == []
    assert list((tmp_path / "uploads").iterdir()) == []


async def test_sigterm_finishes_uploads_in_flight_and_hands_clients_over(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    room = await create_room(a.base_url)
    mirror = RoomMirror(room["token"])
    await mirror.connect(a.base_url)

    boundary = "ImageSharkBoundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        'filename="slow.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    ).encode()
    data = photo(7)
    first_half_sent = asyncio.Event()
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield head + data[: len(data) // 2]
        first_half_sent.set()
        await release.wait()
        yield data[len(data) // 2 :] + f"\r\n--{boundary}--\r\n".encode()

    async with httpx.AsyncClient(base_url=a.base_url, timeout=60) as http:
        in_flight = asyncio.create_task(
            http.post(
                f"/api/rooms/{room['token']}/images",
                content=slow_body(),
                headers={"content-type": f"multipart/form-data; boundary={boundary}"},
            )
        )
        await first_half_sent.wait()
        assert a.process is not None
        a.process.terminate()  # SIGTERM: graceful shutdown begins
        await asyncio.wait_for(mirror.disconnected.wait(), 30)  # sockets closed at once
        release.set()
        response = await in_flight
    assert response.status_code == 201, response.text
    image = response.json()

    await mirror.connect(b.base_url)  # the page reconnects to another replica
    await mirror.wait_until(lambda m: image["id"] in m.images)
    mirror.assert_stream_exact(first_seq=1)
    await mirror.close()
    # uvicorn re-raises the signal once its graceful shutdown is complete.
    assert await a.wait_exit() == -signal.SIGTERM
    assert any("Application shutdown complete" in line for line in a.output)


async def test_concurrent_migrations_apply_once() -> None:
    name = f"imageshark_migrate_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {**os.environ, "DATABASE_URL": pg_dsn_for(name)}
        runs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "web.cli",
                "migrate",
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            for _ in range(3)
        ]
        outputs = await asyncio.gather(*(run.communicate() for run in runs))
        assert [run.returncode for run in runs] == [0, 0, 0], outputs
        check = await asyncpg.connect(pg_dsn_for(name))
        try:
            versions = await check.fetch("SELECT version_num FROM alembic_version")
            tables = await check.fetchval(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            )
        finally:
            await check.close()
        assert [row["version_num"] for row in versions] == [head_revision()]
        assert tables == len(metadata.tables) + 1  # and alembic_version
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()
