"""The rendition queue's own costs on this machine (docs/decisions/0024-rendition-queue.md):
enqueue-to-start latency of saq on the local Redis, and the time another worker takes to
start a job whose worker was SIGKILLed mid-job, for two heartbeat settings.

    uv run python bench/rendition_queue.py [--jobs 200] [--kills 3]

Needs Redis on 127.0.0.1:6379 (or ``IMAGESHARK_TEST_REDIS``); uses a fresh key prefix and
deletes its keys. Prints Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import sys
import time
import uuid
from typing import Any

from redis.asyncio import Redis
from saq import Worker
from saq.types import Context, PartialTimersDict

from web.images.rendition_queue import JOB_FUNCTION, RenditionQueue

REDIS_URL = os.environ.get("IMAGESHARK_TEST_REDIS", "redis://127.0.0.1:6379/0")
STARTED = "job started"


def _timers(heartbeat: int) -> PartialTimersDict:
    # As web.worker.RenditionWorker: the sweep every half heartbeat.
    return PartialTimersDict(schedule=1, worker_info=10, abort=1, sweep=max(1, heartbeat // 2))


async def _latency(prefix: str, jobs: int) -> list[float]:
    queue = RenditionQueue(REDIS_URL, prefix, heartbeat_seconds=10, timeout_seconds=60)
    started: dict[str, asyncio.Future[float]] = {}

    async def job(ctx: Context, *, upload_id: str) -> None:
        started[upload_id].set_result(time.perf_counter())

    worker = Worker(queue.saq, functions=[(JOB_FUNCTION, job)], concurrency=1, dequeue_timeout=1.0)
    worker.SIGNALS = []
    running = asyncio.create_task(worker.start())
    await asyncio.sleep(0.5)  # let it block in its first dequeue
    delays = []
    loop = asyncio.get_running_loop()
    for _ in range(jobs):
        key = uuid.uuid4().hex
        started[key] = loop.create_future()
        sent = time.perf_counter()
        await queue.enqueue(key)
        delays.append(await started[key] - sent)
    await worker.stop()
    await asyncio.gather(running, return_exceptions=True)
    await queue.close()
    return delays


async def _child(prefix: str, heartbeat: int) -> None:
    """A worker whose job sends heartbeats and never ends (until SIGKILL)."""
    queue = RenditionQueue(REDIS_URL, prefix, heartbeat_seconds=heartbeat, timeout_seconds=600)

    async def job(ctx: Context, *, upload_id: str) -> None:
        print(STARTED, flush=True)
        current: Any = ctx.get("job")
        while True:
            await asyncio.sleep(heartbeat / 3)
            await current.update()

    worker = Worker(
        queue.saq,
        functions=[(JOB_FUNCTION, job)],
        concurrency=1,
        dequeue_timeout=1.0,
        timers=_timers(heartbeat),
    )
    await worker.start()


async def _recovery(prefix: str, heartbeat: int) -> float:
    """Seconds from the SIGKILL of a worker mid-job to the job's start on another."""
    queue = RenditionQueue(REDIS_URL, prefix, heartbeat_seconds=heartbeat, timeout_seconds=600)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--child",
        prefix,
        str(heartbeat),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert child.stdout is not None
    await queue.enqueue(uuid.uuid4().hex)
    while STARTED not in (await child.stdout.readline()).decode():
        pass
    child.send_signal(signal.SIGKILL)
    killed = time.perf_counter()
    await child.wait()
    resumed: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def job(ctx: Context, *, upload_id: str) -> None:
        if not resumed.done():
            resumed.set_result(time.perf_counter())

    worker = Worker(
        queue.saq,
        functions=[(JOB_FUNCTION, job)],
        concurrency=1,
        dequeue_timeout=1.0,
        timers=_timers(heartbeat),
    )
    worker.SIGNALS = []
    running = asyncio.create_task(worker.start())
    at = await asyncio.wait_for(resumed, heartbeat * 4 + 30)
    await worker.stop()
    await asyncio.gather(running, return_exceptions=True)
    await queue.close()
    return at - killed


async def _cleanup(prefix: str) -> None:
    client = Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=f"saq:{prefix}:*")]
    keys += [key async for key in client.scan_iter(match=f"saq:job:{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def main(jobs: int, kills: int) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        delays = sorted(await _latency(prefix, jobs))
        p50 = statistics.median(delays) * 1000
        p95 = delays[int(len(delays) * 0.95) - 1] * 1000
        print("| measure | median | p95 / max | N |\n|---|---:|---:|---:|")
        print(f"| enqueue to job start (idle worker) | {p50:.2f} ms | {p95:.2f} ms | {jobs} |")
        for heartbeat in (2, 10):
            times = [await _recovery(f"{prefix}-{heartbeat}-{n}", heartbeat) for n in range(kills)]
            print(
                f"| SIGKILL mid-job to start on another worker, heartbeat {heartbeat} s | "
                f"{statistics.median(times):.1f} s | {max(times):.1f} s | {kills} |"
            )
    finally:
        with contextlib.suppress(Exception):
            await _cleanup(prefix)
            for heartbeat in (2, 10):
                for n in range(kills):
                    await _cleanup(f"{prefix}-{heartbeat}-{n}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        asyncio.run(_child(sys.argv[2], int(sys.argv[3])))
    else:
        parser = argparse.ArgumentParser(description=__doc__)
        parser.add_argument("--jobs", type=int, default=200)
        parser.add_argument("--kills", type=int, default=3)
        arguments = parser.parse_args()
        asyncio.run(main(arguments.jobs, arguments.kills))
