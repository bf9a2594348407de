"""``imageshark worker``: renders the direct uploads the replicas enqueue on Redis
(``IMAGESHARK_RENDITION_QUEUE=redis``; docs/decisions/0024-rendition-queue.md).

:func:`build_worker` is the worker's composition root: the database, the object store and
its rendition pool, the bus (``image_added`` reaches every replica through Redis and the
event log), the image service and :class:`web.images.direct.DirectUploads`, whose
:meth:`~web.images.direct.DirectUploads.process` is the one home of the processing (fetch,
ingest, mark done or failed), without the HTTP app. :class:`RenditionWorker` consumes the
jobs with saq's worker, sends each running job's heartbeat, serves ``/livez``, ``/readyz`` and
``/metrics`` on its own port (uvicorn and a small Starlette app), and drains on SIGTERM.

At least once: a job may run twice (its worker died, or a sweep raced it). The second run
finds the row ``done`` and does nothing, or meets the room's unique SHA-256 and gets the first
run's image with no event; an ``image_added`` committed but not published by a worker that
died is emitted by the replicas' catch-up from the event log, and clients drop repeats by
``seq``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from saq import Worker
from saq.types import Context, PartialTimersDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from realtime.bus import RedisBus, redis_client
from web.database import Database
from web.event_log import RoomEvent
from web.images.direct import DirectUploads
from web.images.rendition_queue import JOB_FUNCTION, RenditionQueue
from web.images.repository import ImageRepository
from web.images.upload_repository import PROCESSING
from web.media import MediaStore
from web.metrics import Metrics
from web.replica import (
    build_mail,
    build_media,
    build_rate_limiter,
    build_renditions,
    build_upload_services,
    rendition_queue,
)
from web.rooms.repository import RoomRepository
from web.rooms.service import RoomService
from web.settings import Settings
from web.signing import SigningSecret

logger = logging.getLogger(__name__)

READY_MARKER = "rendition worker ready"
"""Logged (and printed) once the worker takes jobs and its HTTP server listens."""
DRAINING_MARKER = "rendition worker draining"
"""Logged (and printed) once the worker, stopped, takes no more jobs."""
SWEEP_FRACTION = 0.5
"""The sweep for jobs of dead workers runs every heartbeat x this (at least 1 s)."""
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128)


class StillProcessing(Exception):
    """A job stopped before its upload was done or failed (shutdown, or a fault that left
    the row as it was): saq retries it."""


@dataclass
class WorkerParts:
    """What one worker runs on (built by :func:`build_worker`, opened by
    :meth:`RenditionWorker.run`)."""

    settings: Settings
    database: Database
    media: MediaStore
    bus: RedisBus
    signing: SigningSecret
    uploads: DirectUploads
    queue: RenditionQueue
    registry: CollectorRegistry


def build_worker(settings: Settings) -> WorkerParts:
    """Build (not start) the collaborators of one worker.

    :raises ValueError: the settings do not select the Redis queue (``rendition_queue`` is
        ``inline``: the replicas render, a worker would have nothing to do).
    """
    queue = rendition_queue(settings)
    if queue is None or settings.redis_url is None:
        raise ValueError(
            "imageshark worker needs IMAGESHARK_RENDITION_QUEUE=redis (with REDIS_URL and "
            "an object store)"
        )
    database = Database(settings)
    media = build_media(settings, build_renditions(settings))
    bus = RedisBus(redis_client(settings.redis_url.get_secret_value()), settings.redis_prefix)
    rate_limits = build_rate_limiter(settings)
    signing = SigningSecret(settings.secret_key)
    images = ImageRepository(database)
    room_rows = RoomRepository(database)
    rooms = RoomService(database, room_rows, images, settings, bus, rate_limits, signing)
    registry = CollectorRegistry()
    metrics = Metrics(connected_clients=lambda: 0, active_rooms=lambda: 0, registry=registry)
    _, uploads = build_upload_services(
        settings,
        database=database,
        images=images,
        room_rows=room_rows,
        rooms=rooms,
        media=media,
        bus=bus,
        rate_limits=rate_limits,
        signing=signing,
        metrics=metrics,
        queue=None,  # the worker consumes the queue; it never enqueues
        # Mail it queues goes out through the replicas' senders (the outbox is shared).
        mailer=build_mail(settings, database, registry)[0],
    )
    return WorkerParts(settings, database, media, bus, signing, uploads, queue, registry)


class _QueueCollector(Collector):
    """Queue depth and oldest job age, read from Redis at each scrape."""

    def __init__(self, queue: RenditionQueue) -> None:
        self.queue = queue
        self.depth = 0.0
        self.oldest = 0.0

    async def refresh(self) -> None:
        self.depth = float(await self.queue.depth())
        self.oldest = await self.queue.oldest_age()

    def collect(self) -> Generator[GaugeMetricFamily, None, None]:
        yield GaugeMetricFamily(
            "imageshark_queue_depth", "Rendition jobs waiting for a worker.", value=self.depth
        )
        yield GaugeMetricFamily(
            "imageshark_queue_oldest_job_age_seconds",
            "Seconds the oldest waiting rendition job has waited (0: none waits).",
            value=self.oldest,
        )


class _PromptlyStoppingWorker(Worker[Context]):
    """saq's worker whose upkeep loops (abort, schedule, sweep, worker info) end as soon as it
    stops. saq's own sleep out their interval before they look at the stop, and its
    :meth:`~saq.Worker.stop` waits for them: every drain waited for the 10 s worker-info timer
    after the last job. A call under way (a sweep retrying a job) still runs to its end."""

    async def upkeep(self) -> list[asyncio.Task[None]]:
        """One task per upkeep call, each repeated every its timer's seconds until stop.

        :returns: the tasks (saq's :meth:`~saq.Worker.stop` waits for them).
        """
        timers = self.timers
        calls: tuple[tuple[str, Callable[[int], Awaitable[Any]], int, int], ...] = (
            ("abort", self.abort, timers["abort"], timers["abort"]),
            ("schedule", self.schedule, timers["schedule"], timers["schedule"]),
            ("sweep", self.queue.sweep, timers["sweep"], timers["sweep"]),
            # saq's argument: the info's time to live in Redis, one second past the next write.
            ("worker info", self.worker_info, timers["worker_info"], timers["worker_info"] + 1),
        )
        return [
            asyncio.create_task(self._every(name, call, interval, argument))
            for name, call, interval, argument in calls
        ]

    async def _every(
        self, name: str, call: Callable[[int], Awaitable[Any]], interval: int, argument: int
    ) -> None:
        while not self.event.is_set():
            try:
                await call(argument)
            except Exception:
                if self.event.is_set():
                    return
                logger.exception("rendition worker %s failed", name)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self.event.wait()


class _NoSignals(uvicorn.Server):
    """uvicorn's server without its signal handlers: the worker drains jobs on SIGTERM
    first, then stops the server itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class RenditionWorker:
    """One ``imageshark worker`` process: the job consumer and its HTTP server.

    :param parts: from :func:`build_worker`.
    :param host: the HTTP server's interface; :param port: its TCP port (0: any free one).
    """

    def __init__(self, parts: WorkerParts, host: str, port: int) -> None:
        self.parts = parts
        self.host = host
        self.port = port
        registry = parts.registry
        self.duration = Histogram(
            "imageshark_job_duration_seconds",
            "Wall time of one rendition job attempt (fetch, render, commit), seconds.",
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.done = Counter(
            "imageshark_jobs_done",
            "Rendition jobs that ended with the upload done.",
            registry=registry,
        )
        self.failed = Counter(
            "imageshark_jobs_failed",
            "Rendition jobs that ended with the upload failed (the error a POST would answer).",
            registry=registry,
        )
        self.retried = Counter(
            "imageshark_jobs_retried",
            "Rendition job attempts after the first (the job's worker died or it stopped early).",
            registry=registry,
        )
        self.queue_metrics = _QueueCollector(parts.queue)
        registry.register(self.queue_metrics)
        heartbeat = parts.settings.worker_heartbeat_seconds
        self.saq = _PromptlyStoppingWorker(
            parts.queue.saq,
            functions=[(JOB_FUNCTION, self._job)],
            concurrency=parts.settings.rendition_workers,
            timers=PartialTimersDict(
                schedule=1, worker_info=10, abort=1, sweep=max(1, int(heartbeat * SWEEP_FRACTION))
            ),
            # Idle consumers wake every second, so a drain need not wait for a job.
            dequeue_timeout=1.0,
            # Running jobs get this long after SIGTERM; then saq cancels them and retries
            # them, which the draining queue does at once (web/images/rendition_queue.py).
            shutdown_grace_period_s=parts.settings.worker_drain_seconds,
        )
        self.saq.SIGNALS = []  # ours: see run()
        self.started = asyncio.Event()
        """Set once the worker takes jobs and its HTTP server listens."""

    async def _job(self, ctx: Context, *, upload_id: str) -> str:
        """saq's handler of one job: process the upload while sending heartbeats."""
        job = ctx.get("job")
        assert job is not None
        if job.attempts > 1:
            self.retried.inc()
        beating = asyncio.create_task(self._heartbeat(job))
        started = time.perf_counter()
        try:
            status = await self.parts.uploads.process(upload_id)
        finally:
            beating.cancel()
            self.duration.observe(time.perf_counter() - started)
        if status == PROCESSING:
            raise StillProcessing(upload_id)
        if status == "failed":
            self.failed.inc()
        else:
            self.done.inc()
        return status

    async def _heartbeat(self, job: Any) -> None:
        interval = max(0.5, self.parts.settings.worker_heartbeat_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await job.update()
            except Exception:  # Redis briefly down: the next beat tries again
                logger.warning("job heartbeat failed", exc_info=True)

    def http_app(self) -> Starlette:
        """``/livez``, ``/readyz`` and ``/metrics`` (see the worker contract in the README)."""

        async def livez(request: Request) -> Response:
            return JSONResponse({"status": "ok"})

        async def readyz(request: Request) -> Response:
            checks: dict[str, str] = {}
            try:
                async with asyncio.timeout(5):
                    await self.parts.queue.ping()
                checks["queue"] = "ok"
            except Exception as exc:
                checks["queue"] = f"unavailable: {type(exc).__name__}"
            try:
                async with asyncio.timeout(10):
                    await self.parts.media.ping()
                checks["storage"] = "ok"
            except Exception as exc:
                checks["storage"] = f"unavailable: {type(exc).__name__}"
            ready = all(value == "ok" for value in checks.values())
            return JSONResponse(
                {"status": "ok" if ready else "unavailable", "checks": checks},
                status_code=200 if ready else 503,
            )

        async def metrics(request: Request) -> Response:
            with contextlib.suppress(Exception):  # Redis down: the last values
                async with asyncio.timeout(5):
                    await self.queue_metrics.refresh()
            return PlainTextResponse(
                generate_latest(self.parts.registry), media_type=CONTENT_TYPE_LATEST
            )

        return Starlette(
            routes=[
                Route("/livez", livez),
                Route("/readyz", readyz),
                Route("/metrics", metrics),
            ]
        )

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Open everything, serve and consume until SIGTERM or SIGINT (or ``stop`` is set),
        then drain and close (a coroutine).

        The drain: take no job from then on, let the running ones finish for up to
        ``worker_drain_seconds``, then cancel what is left and put those jobs back at the
        head of the queue, where another worker takes them at once (their uploads are still
        ``processing``; no heartbeat limit to wait for). Jobs waiting to retry a passing
        fault go back at once.

        :param stop: None: this installs SIGTERM and SIGINT handlers (the process's own
            worker); else the event that stops it (tests run workers in their process).
        """
        parts = self.parts
        if stop is None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
        await parts.signing.load(parts.database)
        await parts.media.start()
        await parts.bus.start(_ignore_event, _nothing)  # publishing needs the subscription
        listener = socket.create_server((self.host, self.port))
        self.port = int(listener.getsockname()[1])
        server = _NoSignals(
            uvicorn.Config(
                self.http_app(), host=self.host, port=self.port, log_config=None, lifespan="off"
            )
        )
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        consuming = asyncio.create_task(self.saq.start())
        logger.info("%s on %s:%d", READY_MARKER, self.host, self.port)
        print(f"{READY_MARKER} on http://{self.host}:{self.port}", flush=True)
        self.started.set()
        await asyncio.wait(
            {asyncio.create_task(stop.wait()), serving, consuming},
            return_when=asyncio.FIRST_COMPLETED,
        )
        parts.queue.stop_taking()
        self.saq.event.set()  # no consumer starts another wait; the upkeep loops end
        logger.info(DRAINING_MARKER)
        print(DRAINING_MARKER, flush=True)
        await parts.uploads.close()
        await self.saq.stop()
        server.should_exit = True
        await asyncio.gather(serving, consuming, return_exceptions=True)
        await parts.bus.close()
        await parts.bus.client.aclose()
        await parts.queue.close()
        await parts.media.close()
        await parts.database.close()


async def _ignore_event(event: RoomEvent) -> None:
    return None


async def _nothing() -> None:
    return None
