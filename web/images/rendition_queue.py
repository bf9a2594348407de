"""The durable queue of direct uploads to render, on Redis (``IMAGESHARK_RENDITION_QUEUE=redis``).

Replicas enqueue one job per completed upload (its id as the job's key, so a second enqueue
of a waiting or running upload changes nothing); ``imageshark worker`` processes take them
(:mod:`web.worker`). The queue is saq's (docs/decisions/0024-rendition-queue.md): a job lives
in Redis until a worker finishes it; a worker that dies stops sending heartbeats and any
other worker's sweep gives the job to the next free worker.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from saq import Job
from saq.queue.redis import RedisQueue

from web.errors import ApiError

JOB_FUNCTION = "render_upload"
"""The name jobs are enqueued under; the worker registers its handler by it."""
JOB_ATTEMPTS = 10
"""Attempts of one job, counting the retries after a worker died mid-job (swept) or the job
raised; each upload's own passing faults are retried inside an attempt
(:data:`web.images.direct.RETRY_DELAYS`)."""
RETRY_DELAY_SECONDS = 1.0
"""First wait before a job's retry, seconds; doubled (with jitter) up to
:data:`MAX_RETRY_DELAY_SECONDS`."""
MAX_RETRY_DELAY_SECONDS = 30.0
JOB_TTL_SECONDS = 24 * 3600
"""How long a finished job's record stays in Redis, seconds (for inspection)."""
RETRY_AFTER_SECONDS = 2
SWEEP_ABORT_SECONDS = 1.0
"""How long a sweep waits for the worker of a job that stopped sending heartbeats to
acknowledge its abort before retrying the job elsewhere, seconds."""
DOWN_PAUSE_SECONDS = 1.0
"""How long a consumer waits before asking an unreachable Redis for a job again, seconds."""


class QueueUnavailable(ApiError):
    """503 ``busy`` with ``Retry-After``: Redis did not take the job. The upload stays
    ``issued``: the client completes it again."""

    def __init__(self) -> None:
        super().__init__(
            503,
            "busy",
            "The processing queue is not reachable right now; complete the upload again "
            "in a few seconds.",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


class _PatientQueue(RedisQueue):
    """saq's Redis queue whose consumers wait a moment when Redis is down (saq's worker
    asks again at once, which would spin while Redis is away), and which, once
    :attr:`draining`, takes no job and hands every retried job straight back."""

    draining = False
    """Set by :meth:`RenditionQueue.stop_taking` (the worker got SIGTERM)."""

    async def dequeue(
        self,
        timeout: float = 0.0,  # noqa: ASYNC109 (saq's signature)
        poll_interval: float = 0.0,
    ) -> Job | None:
        if self.draining:
            return None
        try:
            job = await super().dequeue(timeout, poll_interval)
        except (RedisError, OSError):
            await asyncio.sleep(DOWN_PAUSE_SECONDS)
            raise
        if job is not None and self.draining:
            # Taken by a wait that began before the drain: not started, so back it goes.
            await self._hand_back(job)
            return None
        return job

    async def _retry(self, job: Job, error: str | None) -> None:
        if self.draining:
            # A job cut short by the drain (or failing during it) waits for no backoff:
            # another worker takes it now (docs/decisions/0024-rendition-queue.md).
            await self._hand_back(job)
        else:
            await super()._retry(job, error)

    async def _hand_back(self, job: Job) -> None:
        """Put ``job`` at the head of the waiting list, out of the running one, as it is."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrem(self._active, 1, job.id)
            pipe.lrem(self._queued, 1, job.id)
            pipe.zadd(self._incomplete, {job.id: job.scheduled})
            pipe.lpush(self._queued, job.id)
            pipe.set(job.id, self.serialize(job))
            await pipe.execute()
        await self.notify(job)

    async def sweep(self, lock: int = 60, abort: float = SWEEP_ABORT_SECONDS) -> list[str]:
        # saq waits 5 s by default for a stuck job's worker to acknowledge the abort; a dead
        # worker never does, and a live one that missed its heartbeats racing the retry is
        # what at-least-once already covers (docs/decisions/0024-rendition-queue.md).
        return await super().sweep(lock, min(abort, SWEEP_ABORT_SECONDS))


def queue_name(prefix: str) -> str:
    """The saq queue name for a deployment's Redis prefix (keys ``saq:<name>:...``)."""
    return f"{prefix}:renditions"


class RenditionQueue:
    """The upload jobs on Redis: enqueue (replicas), depth and age (worker metrics), ping.

    :param redis_url: the deployment's ``REDIS_URL``.
    :param prefix: the deployment's ``IMAGESHARK_REDIS_PREFIX`` (one per test).
    :param heartbeat_seconds: a running job whose worker sent no heartbeat for this long is
        retried elsewhere.
    :param timeout_seconds: longest one attempt may run, seconds.
    """

    def __init__(
        self, redis_url: str, prefix: str, *, heartbeat_seconds: int, timeout_seconds: int
    ) -> None:
        # No retries inside the client: a down Redis answers complete with 503 at once.
        self.redis: Redis = Redis.from_url(
            redis_url, socket_connect_timeout=2.0, socket_timeout=5.0, retry_on_timeout=False
        )
        self.saq: _PatientQueue = _PatientQueue(self.redis, name=queue_name(prefix))
        self.heartbeat_seconds = heartbeat_seconds
        self.timeout_seconds = timeout_seconds

    async def enqueue(self, upload_id: str) -> bool:
        """Enqueue the job of one upload (a coroutine); False when a job of that upload is
        already waiting or running.

        :raises QueueUnavailable: Redis is unreachable or refused the job.
        """
        job = Job(
            function=JOB_FUNCTION,
            kwargs={"upload_id": upload_id},
            key=upload_id,
            timeout=self.timeout_seconds,
            heartbeat=self.heartbeat_seconds,
            retries=JOB_ATTEMPTS,
            retry_delay=RETRY_DELAY_SECONDS,
            retry_backoff=MAX_RETRY_DELAY_SECONDS,
            ttl=JOB_TTL_SECONDS,
        )
        try:
            return await self.saq.enqueue(job) is not None
        except (RedisError, OSError) as exc:
            raise QueueUnavailable() from exc

    def stop_taking(self) -> None:
        """Take no more jobs from now on (the worker drains): a job a consumer's wait brings
        back after this goes back to the head of the queue unstarted, and a running job that
        saq retries (cut short, or failed) goes back at once instead of after its backoff."""
        self.saq.draining = True

    async def ping(self) -> None:
        """Raise (a RedisError or OSError) if Redis does not answer."""
        await self.redis.ping()

    async def depth(self) -> int:
        """Jobs waiting for a worker (not counting running ones or retries scheduled later)."""
        return int(await self.saq.count("queued"))

    async def oldest_age(self) -> float:
        """Seconds the oldest waiting job has waited; 0 when none waits."""
        # saq pushes on the right and workers take from the left: the head is the oldest.
        head = await self.redis.lindex(self.saq._queued, 0)
        if head is None:
            return 0.0
        job: Any = self.saq.deserialize(await self.redis.get(head))
        if job is None or not job.queued:
            return 0.0
        return max(0.0, time.time() - float(job.queued) / 1000)

    async def close(self) -> None:
        """Close the Redis connections."""
        await self.saq.disconnect()
