"""Rendition workers as real processes: replicas (``imageshark serve``) enqueue direct uploads on
Redis (``IMAGESHARK_RENDITION_QUEUE=redis``) and ``imageshark worker`` processes render them,
on PostgreSQL, Redis and moto's S3 server. A worker SIGKILLed mid-job: another finishes it,
one image, one ``image_added`` on every replica; a worker SIGTERMed mid-render finishes the job
and takes no other, or, its drain run out, hands the job to another at once, and exits 0; Redis
stopped: ``complete`` answers 503 and
nothing is lost, and everything works again once Redis is back, with no restart."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REDIS_URL
from tests.object_store import Bucket
from tests.photos import make_image_bytes
from tests.polling import poll_until
from tests.production.crash_worker import CRASH_POINT
from tests.production.held_worker import HOLD_POINT
from tests.production.processes import RedisServer, Replica, Worker, running
from tests.realtime.live_client import LiveClient
from tests.worker_uploads import send_to_store
from web.worker import DRAINING_MARKER

pytestmark = pytest.mark.xdist_group("replicas")

PHOTO = make_image_bytes("jpeg", size=(2400, 1800))
OTHER = make_image_bytes("jpeg", size=(1800, 2400), name="rocket")


def queue_env(
    database_url: str, redis_url: str, prefix: str, bucket: Bucket, data_dir: Path
) -> dict[str, str]:
    """The environment of a replica or worker of one deployment; its own data folder."""
    data_dir.mkdir(parents=True, exist_ok=True)
    store = bucket.settings()
    return {
        "DATABASE_URL": database_url,
        "IMAGESHARK_MIGRATE_ON_START": "false",
        "REDIS_URL": redis_url,
        "IMAGESHARK_REDIS_PREFIX": prefix,
        "IMAGESHARK_STORAGE_URL": store["storage_url"],
        "AWS_ACCESS_KEY_ID": store["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": store["AWS_SECRET_ACCESS_KEY"],
        "AWS_REGION": store["AWS_REGION"],
        "AWS_ENDPOINT_URL": store["AWS_ENDPOINT_URL"],
        "IMAGESHARK_RENDITION_QUEUE": "redis",
        "IMAGESHARK_RENDITION_WORKERS": "1",
        "IMAGESHARK_WORKER_HEARTBEAT_SECONDS": "2",
        "IMAGESHARK_CATCH_UP_SECONDS": "1",
        "IMAGESHARK_DATA_DIR": str(data_dir),
        "IMAGESHARK_LOG_LEVEL": "INFO",
    }


async def new_room(http: httpx.AsyncClient) -> str:
    created = await http.post("/api/rooms", json={"title": "workers"})
    assert created.status_code == 201, created.text
    return str(created.json()["token"])


async def sent_upload(http: httpx.AsyncClient, bucket: Bucket, token: str, data: bytes) -> str:
    """Ask replica ``http`` for an upload and send the bytes straight to the store."""
    declared = {"filename": "a.jpg", "content_type": "image/jpeg", "size": len(data)}
    asked = await http.post(f"/api/rooms/{token}/uploads", json=declared)
    assert asked.status_code == 201, asked.text
    upload = asked.json()
    assert upload["url"].startswith(bucket.server.endpoint)  # not through the replica
    await send_to_store(upload, data)
    return str(upload["upload_id"])


async def settled(http: httpx.AsyncClient, token: str, upload_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        state = dict((await http.get(f"/api/rooms/{token}/uploads/{upload_id}")).json())
        return state if state["status"] != "processing" else None

    return await poll_until(probe, deadline=60, what="upload processed by a worker")


def files_under(*folders: Path) -> list[Path]:
    """Every file in ``folders`` but the owner locks of the scratch folder (a SIGKILLed
    process leaves its own; no image bytes)."""
    return [
        path
        for folder in folders
        for path in folder.rglob("*")
        if path.is_file() and not (path.parent.name == "owners" and path.suffix == ".lock")
    ]


async def test_a_worker_killed_mid_job_leaves_it_to_the_other_once(
    pg_database_url: str, redis_prefix: str, s3_bucket: Bucket, tmp_path: Path
) -> None:
    def env(name: str) -> dict[str, str]:
        return queue_env(pg_database_url, REDIS_URL, redis_prefix, s3_bucket, tmp_path / name)

    replica_a, replica_b = Replica("a", env("a")), Replica("b", env("b"))
    crashing = Worker("crashing", env("w1"), module="tests.production.crash_worker")
    healthy = Worker("healthy", env("w2"))
    async with (
        running(replica_a, replica_b, crashing),
        httpx.AsyncClient(base_url=replica_a.base_url, timeout=60) as http,
    ):
        token = await new_room(http)
        on_a = LiveClient(replica_a.base_url, token, "wall a")
        on_b = LiveClient(replica_b.base_url, token, "wall b")
        await on_a.connect()
        await on_b.connect()
        try:
            upload_id = await sent_upload(http, s3_bucket, token, PHOTO)
            done = await http.post(f"/api/rooms/{token}/uploads/{upload_id}/complete")
            assert done.status_code == 202, done.text
            # Image committed and announced, the row not yet done: SIGKILL there.
            await crashing.wait_for_line(f"{CRASH_POINT} {upload_id}")
            await crashing.kill()
            state = dict((await http.get(f"/api/rooms/{token}/uploads/{upload_id}")).json())
            assert state["status"] == "processing"

            async with running(healthy):
                state = await settled(http, token, upload_id)
                assert state["status"] == "done", state
                image = state["image"]
                for live in (on_a, on_b):
                    _, added = await live.next("image_added", timeout=30)
                    assert added["id"] == image["id"]
                # Exactly once: each wall's next event is the next upload's.
                second = await sent_upload(http, s3_bucket, token, OTHER)
                assert (
                    await http.post(f"/api/rooms/{token}/uploads/{second}/complete")
                ).status_code == 202
                following = await settled(http, token, second)
                assert following["status"] == "done", following
                for live in (on_a, on_b):
                    _, added = await live.next("image_added", timeout=30)
                    assert added["id"] == following["image"]["id"]
                async with httpx.AsyncClient(base_url=healthy.base_url, timeout=10) as health:
                    metrics = (await health.get("/metrics")).text
                assert "imageshark_jobs_retried_total 1.0" in metrics
                assert "imageshark_jobs_done_total 2.0" in metrics
        finally:
            await on_a.close()
            await on_b.close()
        events = (await http.get(f"/api/rooms/{token}/events")).json()["items"]
        assert [event["kind"] for event in events] == ["image_added", "image_added"]
        listed = (await http.get(f"/api/rooms/{token}/images")).json()["items"]
        assert sorted(item["id"] for item in listed) == sorted(
            [image["id"], following["image"]["id"]]
        )
        rendition = await http.get(image["url"], follow_redirects=True)
        assert rendition.status_code == 200 and rendition.content[:2] == b"\xff\xd8"
    assert files_under(*(tmp_path / name for name in ("a", "b", "w1", "w2"))) == []


def held_lines(worker: Worker) -> int:
    """How many renders ``worker`` (``tests.production.held_worker``) has held."""
    return sum(HOLD_POINT in line for line in worker.output)


async def test_a_worker_stopped_mid_render_finishes_it_takes_no_other_and_exits_0(
    pg_database_url: str, redis_prefix: str, s3_bucket: Bucket, tmp_path: Path
) -> None:
    def env(name: str) -> dict[str, str]:
        return queue_env(pg_database_url, REDIS_URL, redis_prefix, s3_bucket, tmp_path / name)

    replica_a, replica_b = Replica("a", env("a")), Replica("b", env("b"))
    # Two consumers: while one renders, the other waits for a job, and must not take one.
    draining = Worker(
        "draining",
        {**env("w1"), "IMAGESHARK_RENDITION_WORKERS": "2"},
        "tests.production.held_worker",
    )
    healthy = Worker("healthy", env("w2"))
    async with (
        running(replica_a, replica_b, draining),
        httpx.AsyncClient(base_url=replica_a.base_url, timeout=60) as http,
    ):
        token = await new_room(http)
        on_a = LiveClient(replica_a.base_url, token, "wall a")
        on_b = LiveClient(replica_b.base_url, token, "wall b")
        await on_a.connect()
        await on_b.connect()
        try:
            upload_id = await sent_upload(http, s3_bucket, token, PHOTO)
            assert (
                await http.post(f"/api/rooms/{token}/uploads/{upload_id}/complete")
            ).status_code == 202
            await draining.wait_for_line(HOLD_POINT)
            assert draining.process is not None
            draining.process.send_signal(signal.SIGTERM)
            await draining.wait_for_line(DRAINING_MARKER)
            second = await sent_upload(http, s3_bucket, token, OTHER)
            assert (
                await http.post(f"/api/rooms/{token}/uploads/{second}/complete")
            ).status_code == 202
            draining.process.send_signal(signal.SIGUSR1)  # the held render goes on

            assert await draining.wait_exit() == 0
            state = dict((await http.get(f"/api/rooms/{token}/uploads/{upload_id}")).json())
            assert state["status"] == "done", state
            image = state["image"]
            for live in (on_a, on_b):
                _, added = await live.next("image_added", timeout=30)
                assert added["id"] == image["id"]
            # The second job waited for another worker: the drained one never rendered it.
            assert held_lines(draining) == 1
            waiting = dict((await http.get(f"/api/rooms/{token}/uploads/{second}")).json())
            assert waiting["status"] == "processing", waiting

            async with running(healthy):
                following = await settled(http, token, second)
                assert following["status"] == "done", following
                for live in (on_a, on_b):
                    _, added = await live.next("image_added", timeout=30)
                    assert added["id"] == following["image"]["id"]
        finally:
            await on_a.close()
            await on_b.close()
        events = (await http.get(f"/api/rooms/{token}/events")).json()["items"]
        assert [event["kind"] for event in events] == ["image_added", "image_added"]
        listed = (await http.get(f"/api/rooms/{token}/images")).json()["items"]
        assert sorted(item["id"] for item in listed) == sorted(
            [image["id"], following["image"]["id"]]
        )
    assert files_under(*(tmp_path / name for name in ("a", "b", "w1", "w2"))) == []


async def test_a_worker_whose_drain_runs_out_hands_the_job_to_another_at_once(
    pg_database_url: str, redis_prefix: str, s3_bucket: Bucket, tmp_path: Path
) -> None:
    def env(name: str) -> dict[str, str]:
        # A heartbeat limit far beyond the wait for the upload below: the job cannot reach
        # the other worker through a sweep, only by being handed back.
        return {
            **queue_env(pg_database_url, REDIS_URL, redis_prefix, s3_bucket, tmp_path / name),
            "IMAGESHARK_WORKER_HEARTBEAT_SECONDS": "600",
        }

    replica_a, replica_b = Replica("a", env("a")), Replica("b", env("b"))
    draining = Worker(
        "draining",
        {**env("w1"), "IMAGESHARK_WORKER_DRAIN_SECONDS": "1"},
        "tests.production.held_worker",
    )
    healthy = Worker("healthy", env("w2"))
    async with (
        running(replica_a, replica_b, draining),
        httpx.AsyncClient(base_url=replica_a.base_url, timeout=60) as http,
    ):
        token = await new_room(http)
        on_a = LiveClient(replica_a.base_url, token, "wall a")
        on_b = LiveClient(replica_b.base_url, token, "wall b")
        await on_a.connect()
        await on_b.connect()
        try:
            upload_id = await sent_upload(http, s3_bucket, token, PHOTO)
            assert (
                await http.post(f"/api/rooms/{token}/uploads/{upload_id}/complete")
            ).status_code == 202
            await draining.wait_for_line(HOLD_POINT)  # held for good: the drain runs out
            async with running(healthy):
                assert draining.process is not None
                draining.process.send_signal(signal.SIGTERM)
                assert await draining.wait_exit() == 0
                state = await settled(http, token, upload_id)
                assert state["status"] == "done", state
                image = state["image"]
                for live in (on_a, on_b):
                    _, added = await live.next("image_added", timeout=30)
                    assert added["id"] == image["id"]
                async with httpx.AsyncClient(base_url=healthy.base_url, timeout=10) as health:
                    metrics = (await health.get("/metrics")).text
                assert "imageshark_jobs_retried_total 1.0" in metrics
                assert "imageshark_jobs_done_total 1.0" in metrics
        finally:
            await on_a.close()
            await on_b.close()
        events = (await http.get(f"/api/rooms/{token}/events")).json()["items"]
        assert [event["kind"] for event in events] == ["image_added"]
        listed = (await http.get(f"/api/rooms/{token}/images")).json()["items"]
        assert [item["id"] for item in listed] == [image["id"]]
    assert held_lines(draining) == 1
    assert files_under(*(tmp_path / name for name in ("a", "b", "w1", "w2"))) == []


async def test_redis_stopped_answers_503_loses_nothing_and_recovers_without_restart(
    pg_database_url: str, redis_prefix: str, s3_bucket: Bucket, tmp_path: Path
) -> None:
    redis = RedisServer()
    await redis.start()
    try:
        replica = Replica(
            "a", queue_env(pg_database_url, redis.url, redis_prefix, s3_bucket, tmp_path / "a")
        )
        worker = Worker(
            "w", queue_env(pg_database_url, redis.url, redis_prefix, s3_bucket, tmp_path / "w")
        )
        async with (
            running(replica, worker),
            httpx.AsyncClient(base_url=replica.base_url, timeout=60) as http,
            httpx.AsyncClient(base_url=worker.base_url, timeout=30) as health,
        ):
            assert (await health.get("/readyz")).status_code == 200
            token = await new_room(http)
            upload_id = await sent_upload(http, s3_bucket, token, PHOTO)
            await redis.stop()

            refused = await http.post(f"/api/rooms/{token}/uploads/{upload_id}/complete")
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "busy"
            assert int(refused.headers["Retry-After"]) > 0
            waiting = await http.get(f"/api/rooms/{token}/uploads/{upload_id}")
            assert waiting.status_code == 409, waiting.text  # still issued: retryable
            not_ready = await health.get("/readyz")
            assert not_ready.status_code == 503
            assert not_ready.json()["checks"]["queue"].startswith("unavailable")
            assert not_ready.json()["checks"]["storage"] == "ok"
            assert (await health.get("/livez")).status_code == 200

            await redis.start()  # the same port: nothing else restarts

            async def accepted() -> httpx.Response | None:
                answer = await http.post(f"/api/rooms/{token}/uploads/{upload_id}/complete")
                return answer if answer.status_code == 202 else None

            await poll_until(accepted, deadline=30, what="complete accepted again")
            state = await settled(http, token, upload_id)
            assert state["status"] == "done", state

            # Readiness recovers too (its ping may first meet a connection of the old server).
            async def ready() -> bool:
                return (await health.get("/readyz")).status_code == 200

            await poll_until(ready, deadline=30, what="the worker ready again")
            metrics = (await health.get("/metrics")).text
            for name in (
                "imageshark_queue_depth",
                "imageshark_queue_oldest_job_age_seconds",
                "imageshark_job_duration_seconds_bucket",
                "imageshark_jobs_done_total 1.0",
                "imageshark_jobs_failed_total",
                "imageshark_jobs_retried_total",
            ):
                assert name in metrics, name
            events = (await http.get(f"/api/rooms/{token}/events")).json()["items"]
            assert [event["kind"] for event in events] == ["image_added"]
            await worker.stop()  # SIGTERM: drains and exits 0
            assert worker.process is not None and worker.process.returncode == 0
    finally:
        await redis.stop()
