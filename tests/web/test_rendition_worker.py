"""The Redis rendition queue and ``imageshark worker``'s consumer, in this process, against real
servers (PostgreSQL, Redis under the test's own prefix, moto's S3 server): ``complete``
enqueues instead of rendering; the worker processes the job once, even when it runs twice;
readiness follows the store;
the settings refuse a queue that cannot work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from tests.conftest import REDIS_URL, LiveServer, SettingsFactory, run_server
from tests.object_store import Bucket, MotoServer, new_bucket
from tests.photos import make_image_bytes
from tests.polling import poll_until
from tests.realtime.live_client import LiveClient
from tests.worker_uploads import send_to_store
from web.database import Database
from web.images.rendition_queue import RenditionQueue
from web.schema import images, room_events, rooms
from web.settings import Settings
from web.worker import RenditionWorker, build_worker

PHOTO = make_image_bytes("jpeg", size=(1200, 900))
OTHER = make_image_bytes("jpeg", size=(900, 1200), name="rocket")


@pytest.fixture
def queue_settings(
    make_settings: SettingsFactory, pg_database_url: str, redis_prefix: str, s3_bucket: Bucket
) -> Settings:
    return make_settings(
        database_url=pg_database_url,
        redis_url=REDIS_URL,
        redis_prefix=redis_prefix,
        rendition_queue="redis",
        worker_heartbeat_seconds=2,
        **s3_bucket.settings(),
    )


@pytest.fixture
async def server(queue_settings: Settings) -> AsyncIterator[LiveServer]:
    async for live in run_server(queue_settings):
        yield live


@pytest.fixture
async def http(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
        yield client


async def running_worker(settings: Settings) -> tuple[RenditionWorker, asyncio.Event, Any]:
    consumer = RenditionWorker(build_worker(settings), "127.0.0.1", 0)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    started = asyncio.create_task(consumer.started.wait())
    await asyncio.wait({task, started}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # raises what stopped it
    assert consumer.started.is_set()
    return consumer, stop, task


async def uploaded(http: httpx.AsyncClient, token: str, data: bytes) -> str:
    """Ask for an upload and send its bytes to the store; its id."""
    declared = {"filename": "a.jpg", "content_type": "image/jpeg", "size": len(data)}
    asked = await http.post(f"/api/rooms/{token}/uploads", json=declared)
    assert asked.status_code == 201, asked.text
    upload = asked.json()
    await send_to_store(upload, data)
    return str(upload["upload_id"])


async def state_of(http: httpx.AsyncClient, token: str, upload_id: str) -> httpx.Response:
    return await http.get(f"/api/rooms/{token}/uploads/{upload_id}")


async def test_complete_enqueues_and_a_worker_processes_it_once(
    queue_settings: Settings, server: LiveServer, http: httpx.AsyncClient
) -> None:
    room = (await http.post("/api/rooms", json={"title": "queued"})).json()
    token = room["token"]
    upload_id = await uploaded(http, token, PHOTO)
    queue = RenditionQueue(
        REDIS_URL, queue_settings.redis_prefix, heartbeat_seconds=2, timeout_seconds=60
    )
    live = LiveClient(server.base_url, token, "wall")
    await live.connect()
    try:
        answered = await http.post(f"/api/rooms/{token}/uploads/{upload_id}/complete")
        assert answered.status_code == 202, answered.text
        # No worker yet: the job waits in Redis and the replica renders nothing itself.
        assert await queue.depth() == 1
        assert (await state_of(http, token, upload_id)).json()["status"] == "processing"
        assert await queue.enqueue(upload_id) is False  # one job per upload

        consumer, stop, task = await running_worker(queue_settings)
        try:

            async def settled() -> dict[str, Any] | None:
                state = dict((await state_of(http, token, upload_id)).json())
                return state if state["status"] != "processing" else None

            state = await poll_until(settled, deadline=60, what="job processed")
            assert state["status"] == "done", state
            _, added = await live.next("image_added")
            assert added == state["image"]

            # The job again (a sweep racing a slow worker): nothing new.
            assert await consumer.parts.uploads.process(upload_id) == "done"
            database = Database(queue_settings)
            try:
                # This room's rows only: the session's database holds other tests' rooms.
                async with database.read() as connection:
                    room_id = await connection.scalar(
                        select(rooms.c.id).where(rooms.c.token == token)
                    )
                    count = await connection.scalar(
                        select(func.count()).select_from(images).where(images.c.room_id == room_id)
                    )
                    events = await connection.scalar(
                        select(func.count())
                        .select_from(room_events)
                        .where(room_events.c.room_id == room_id)
                    )
            finally:
                await database.close()
            assert (count, events) == (1, 1)

            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{consumer.port}", timeout=10
            ) as health:
                assert (await health.get("/livez")).status_code == 200
                ready = await health.get("/readyz")
                assert ready.status_code == 200, ready.text
                assert ready.json()["checks"] == {"queue": "ok", "storage": "ok"}
                metrics = (await health.get("/metrics")).text
            assert "imageshark_jobs_done_total 1.0" in metrics
            assert "imageshark_queue_depth 0.0" in metrics
            assert "imageshark_queue_oldest_job_age_seconds" in metrics
            assert "imageshark_job_duration_seconds_count 1.0" in metrics
            assert "imageshark_jobs_failed_total 0.0" in metrics
            assert "imageshark_jobs_retried_total 0.0" in metrics
            # The next event is the next upload's: the repeated job sent none.
            posted = await http.post(
                f"/api/rooms/{token}/images", files={"file": ("b.jpg", OTHER, "image/jpeg")}
            )
            assert posted.status_code == 201, posted.text
            _, following = await live.next("image_added")
            assert following["id"] == posted.json()["id"]
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)
    finally:
        await live.close()
        await queue.close()


async def test_readiness_follows_the_object_store(
    make_settings: SettingsFactory, pg_database_url: str, redis_prefix: str
) -> None:
    store = MotoServer()
    store.start()
    try:
        for bucket in new_bucket(store):
            settings = make_settings(
                database_url=pg_database_url,
                redis_url=REDIS_URL,
                redis_prefix=redis_prefix,
                rendition_queue="redis",
                **bucket.settings(),
            )
            consumer, stop, task = await running_worker(settings)
            try:
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{consumer.port}", timeout=30
                ) as health:
                    assert (await health.get("/readyz")).status_code == 200
                    store.stop()
                    down = await health.get("/readyz")
                    assert down.status_code == 503, down.text
                    assert down.json()["checks"]["queue"] == "ok"
                    assert down.json()["checks"]["storage"].startswith("unavailable")
                    assert (await health.get("/livez")).status_code == 200
                    store.start()
                    assert (await health.get("/readyz")).status_code == 200
            finally:
                stop.set()
                await asyncio.wait_for(task, 60)
    finally:
        if store._server is not None:
            store.stop()


def test_settings_refuse_a_queue_that_cannot_work(make_settings: SettingsFactory) -> None:
    with pytest.raises(ValidationError, match="needs REDIS_URL and object storage"):
        make_settings(rendition_queue="redis")
    with pytest.raises(ValidationError, match="needs REDIS_URL and object storage"):
        make_settings(rendition_queue="redis", redis_url=REDIS_URL)
    with pytest.raises(ValidationError, match="IMAGESHARK_RENDITION_QUEUE_LIMIT"):
        make_settings(rendition_queue="32")
    assert make_settings().rendition_queue == "inline"
    with pytest.raises(ValueError, match="RENDITION_QUEUE=redis"):
        build_worker(make_settings())
