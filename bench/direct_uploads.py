"""Direct uploads against multipart through the service, and a rendition worker's throughput.

Run from the repository root::

    uv run python bench/direct_uploads.py                      # ~1 minute on 2 cores
    uv run python bench/direct_uploads.py --uploads 8 --jobs 12 --floor-rounds 2   # quicker

Needs PostgreSQL (127.0.0.1:5432, user postgres, trust; a database is created for the run and
dropped at the end) and Redis (127.0.0.1:6379, or ``IMAGESHARK_TEST_REDIS``; a key prefix of
the run's own, deleted at the end). moto's S3 server runs in a process of its own, so that its
CPU is not counted. One ``imageshark serve`` process (1 rendition pool process) and one
``imageshark worker`` (``IMAGESHARK_RENDITION_QUEUE=redis``, 1 rendition pool process) share
the database, Redis and the bucket. Two measurements, both on 12 MP phone JPEGs from
tests/photos.py (the corpus of bench/pipeline.py), each upload made distinct by a JPEG comment
(bench/uploads.py's ``variant``) so that none is de-duplicated:

1. **App-tier CPU per upload.** ``--uploads`` uploads per flow, the flows interleaved one upload
   at a time (order swapped every pair), after 2 warm-up uploads each:

   - *direct*: ``POST .../uploads`` (size, type, SHA-256), the bytes ``POST``ed to the presigned
     form target on moto, ``POST .../uploads/{id}/complete``, then ``GET .../uploads/{id}`` as
     the guest page polls it (250 ms, growing by half to 3 s) until ``done``; the worker renders.
   - *multipart*: ``POST .../images`` with the file; the replica's own pool renders, and the
     replica stores the original and renditions in the bucket.

   Counted: user+system CPU of the replica's main process only (every thread of it, none of its
   pool's processes), from before the first request of an upload until it is done, summed over
   the uploads and divided by their number (/proc ticks are 10 ms; a sum over N is finer than a
   per-upload median). The pool's and the worker's CPU are shown beside it, for information,
   and so are the replica's CPU by step of the direct flow, its CPU per second with no
   request (``--idle`` seconds) and per request of each kind, ``--requests`` in a row.
   Target (the object-storage issue): direct at most 1/5 of multipart.

2. **Worker throughput.** The worker's process group is stopped (SIGSTOP) while ``--jobs``
   direct uploads are sent and completed, so they all wait on the queue; then it is continued
   and the run ends when every one is ``done``. Counted: images per CPU second of the worker
   (main process + its 1 pool process; the main process's threads by name: the event loop and
   ``to_thread`` threads are ``python``, obstore's are ``tokio-rt-worker``), and images per
   wall second. Beside it, the floor of
   bench/pipeline.py (a bare 1/2-scale JPEG decode, ``decode_half``) measured in the same run on
   the same photos, in a 1-process pool with the production initializer, half its passes
   before the uploads and half after, timed as the pool process's CPU seconds (wall time
   would be stretched by the machine's other load and the worker's is CPU): images/s on one
   core is 1 / its median. Target: a worker core within 1.5x of the floor (worker CPU seconds
   per image at most 1.5x the floor's).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import hashlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from live import (  # noqa: E402  (bench/live.py: shared /proc and database helpers)
    bench_replica_class,
    cpu_seconds,
    create_database,
    descendants,
    drop_database,
    migrate,
)
from pipeline import _context, decode_half, machine, timed  # noqa: E402
from uploads import make_photos, variant  # noqa: E402

from web.pipeline import renditions  # noqa: E402

REDIS_URL = os.environ.get("IMAGESHARK_TEST_REDIS", "redis://127.0.0.1:6379/0")
BUCKET = "bench-direct"
KEY_ID, SECRET, REGION = "bench-key", "bench-secret", "us-east-1"
WARMUP = 2


def _moto() -> None:
    """``--moto``: serve S3 on a free loopback port, print the port, stop when stdin closes."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    sys.stdin.read()
    server.stop()


def _env(database_url: str, prefix: str, endpoint: str, data_dir: Path) -> dict[str, str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    return {
        "DATABASE_URL": database_url,
        "IMAGESHARK_MIGRATE_ON_START": "false",
        "REDIS_URL": REDIS_URL,
        "IMAGESHARK_REDIS_PREFIX": prefix,
        "IMAGESHARK_STORAGE_URL": f"s3://{BUCKET}/photos",
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "IMAGESHARK_RENDITION_QUEUE": "redis",
        "IMAGESHARK_RENDITION_QUEUE_LIMIT": "1000",
        "IMAGESHARK_RENDITION_WORKERS": "1",
        "IMAGESHARK_DATA_DIR": str(data_dir),
        "IMAGESHARK_LOG_LEVEL": "WARNING",
        # Uploads come from one loopback address, faster than a guest's phone.
        "IMAGESHARK_ANONYMOUS_UPLOAD_RATE_LIMIT": "100000/minute",
        "IMAGESHARK_MAX_CONCURRENT_UPLOADS_PER_ADDRESS": "1000",
    }


def _no_lap(step: str) -> None:
    pass


class Flows:
    """The two upload flows against one replica, in one room."""

    def __init__(self, http: httpx.AsyncClient, store: httpx.AsyncClient, token: str) -> None:
        self.http, self.store, self.token = http, store, token

    async def send_direct(self, data: bytes, lap: Callable[[str], None] = _no_lap) -> str:
        """Issue, send the bytes to the store and complete; the upload's id. ``lap(step)`` is
        called after each step (``issue``, ``store``, ``complete``)."""
        declared = {
            "filename": "IMG.jpg",
            "content_type": "image/jpeg",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        asked = await self.http.post(f"/api/rooms/{self.token}/uploads", json=declared)
        assert asked.status_code == 201, asked.text
        lap("issue")
        upload = asked.json()
        assert upload["method"] == "POST", upload
        sent = await self.store.post(
            upload["url"],
            data=upload["fields"],
            files={"file": ("IMG.jpg", data, "image/jpeg")},
        )
        assert 200 <= sent.status_code < 300, sent.text
        lap("store")
        upload_id = str(upload["upload_id"])
        done = await self.http.post(f"/api/rooms/{self.token}/uploads/{upload_id}/complete")
        assert done.status_code == 202, done.text
        lap("complete")
        return upload_id

    async def status(self, upload_id: str) -> str:
        answer = await self.http.get(f"/api/rooms/{self.token}/uploads/{upload_id}")
        assert answer.status_code == 200, answer.text
        return str(answer.json()["status"])

    async def direct(self, data: bytes, lap: Callable[[str], None] = _no_lap) -> None:
        """The whole direct flow, polled as the guest page polls (``lap("wait")`` after each
        sleep, ``lap("poll")`` after each poll)."""
        upload_id = await self.send_direct(data, lap)
        delay = 0.25
        while True:
            await asyncio.sleep(delay)
            lap("wait")
            status = await self.status(upload_id)
            lap("poll")
            if status != "processing":
                assert status == "done", status
                return
            delay = min(3.0, delay * 1.5)

    async def multipart(self, data: bytes) -> None:
        answer = await self.http.post(
            f"/api/rooms/{self.token}/images", files={"file": ("IMG.jpg", data, "image/jpeg")}
        )
        assert answer.status_code == 201, answer.text


async def app_tier(
    flows: Flows, replica_pid: int, worker_pid: int, photos: list[bytes], uploads: int
) -> dict[str, dict[str, float]]:
    """Per flow: CPU seconds per upload of the replica's main process, its pool, the worker
    (main + pool), and wall seconds per upload; and ``"steps"``: the replica's main-process
    CPU seconds per direct upload by step (``issue``, ``store``, ``complete``, ``poll``, ``wait``:
    between polls) plus ``polls``, the number of polls per upload."""
    serial = int(time.time() * 1000)
    totals = {
        flow: {"main": 0.0, "pool": 0.0, "worker": 0.0, "wall": 0.0, "n": 0}
        for flow in ("direct", "multipart")
    }
    steps: dict[str, float] = {}
    for index in range(WARMUP + uploads):
        order = ("direct", "multipart") if index % 2 == 0 else ("multipart", "direct")
        for flow in order:
            serial += 1
            data = variant(photos[index % len(photos)], serial)
            replica_tree = descendants(replica_pid)
            worker_tree = descendants(worker_pid)
            main = cpu_seconds([replica_pid])
            pool = cpu_seconds(replica_tree) - main
            worker = cpu_seconds(worker_tree)
            started = time.perf_counter()
            mark = [main]

            def lap(step: str, counted: bool = index >= WARMUP, mark: list[float] = mark) -> None:
                now = cpu_seconds([replica_pid])
                if counted:
                    steps[step] = steps.get(step, 0.0) + now - mark[0]
                    if step == "poll":
                        steps["polls"] = steps.get("polls", 0.0) + 1
                mark[0] = now

            await (flows.direct(data, lap) if flow == "direct" else flows.multipart(data))
            wall = time.perf_counter() - started
            if index < WARMUP:
                continue
            main_after = cpu_seconds([replica_pid])
            row = totals[flow]
            row["main"] += main_after - main
            row["pool"] += cpu_seconds(descendants(replica_pid)) - main_after - pool
            row["worker"] += cpu_seconds(descendants(worker_pid)) - worker
            row["wall"] += wall
            row["n"] += 1
    result = {
        flow: {key: value / row["n"] for key, value in row.items() if key != "n"}
        for flow, row in totals.items()
    }
    result["steps"] = {step: value / uploads for step, value in steps.items()}
    return result


async def per_request(flows: Flows, replica_pid: int, photo: bytes, count: int) -> dict[str, float]:
    """Replica main-process CPU seconds per request, ``count`` requests in a row of each kind:
    ``/healthz`` (the middleware stack alone), ``GET`` of a done upload's state (a poll),
    ``complete`` again on a done upload (no enqueue), and ``POST .../uploads`` (issue)."""
    upload_id = await flows.send_direct(variant(photo, int(time.time() * 1000) + 20_000_000))
    while await flows.status(upload_id) == "processing":  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    base = f"/api/rooms/{flows.token}/uploads"
    declared = {"filename": "IMG.jpg", "content_type": "image/jpeg", "size": len(photo)}
    calls = {
        "GET /healthz": lambda: flows.http.get("/healthz"),
        "GET .../uploads/{id} (a poll)": lambda: flows.http.get(f"{base}/{upload_id}"),
        "POST .../complete, again": lambda: flows.http.post(f"{base}/{upload_id}/complete"),
        "POST .../uploads (issue)": lambda: flows.http.post(base, json=declared),
    }
    result = {}
    for name, call in calls.items():
        await call()
        before = cpu_seconds([replica_pid])
        for _ in range(count):
            answer = await call()
            assert answer.status_code < 300, answer.text
        result[name] = (cpu_seconds([replica_pid]) - before) / count
    return result


async def idle_rate(pid: int, seconds: float) -> float:
    """CPU seconds per second ``pid`` (main process alone) spends with no request."""
    before = cpu_seconds([pid])
    await asyncio.sleep(seconds)
    return (cpu_seconds([pid]) - before) / seconds


async def worker_throughput(
    flows: Flows, worker_pid: int, photos: list[bytes], jobs: int
) -> dict[str, float]:
    """``jobs`` queued direct uploads through the (stopped, then continued) worker: its CPU
    seconds (``cpu``: main + pool; ``main``: the main process alone; ``thread <name>``: the
    main process's threads of that name) and wall seconds for all of them."""
    serial = int(time.time() * 1000) + 10_000_000
    payloads = [variant(photos[i % len(photos)], serial + i) for i in range(jobs)]
    os.killpg(worker_pid, signal.SIGSTOP)
    try:
        upload_ids = [await flows.send_direct(data) for data in payloads]
    finally:
        tree = descendants(worker_pid)
        cpu, main = cpu_seconds(tree), cpu_seconds([worker_pid])
        threads = thread_cpu(worker_pid)
        started = time.perf_counter()
        os.killpg(worker_pid, signal.SIGCONT)
    # FIFO: the last one is done last; then check every one.
    while await flows.status(upload_ids[-1]) == "processing":  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    wall = time.perf_counter() - started
    cpu, main = cpu_seconds(tree) - cpu, cpu_seconds([worker_pid]) - main
    after = thread_cpu(worker_pid)
    by_thread = {name: after[name] - threads.get(name, 0.0) for name in after}
    for upload_id in upload_ids:
        assert await flows.status(upload_id) == "done", upload_id
    return {"cpu": cpu, "main": main, "wall": wall} | {
        f"thread {name}": value for name, value in by_thread.items() if value > 0
    }


def cpu_timed(source: Path, out_dir: Path) -> float:
    """CPU seconds of one bare 1/2-scale decode in the pool process (unlike wall time, not
    stretched by other processes' load)."""
    started = time.process_time()
    decode_half(source, out_dir)
    return time.process_time() - started


def thread_cpu(pid: int) -> dict[str, float]:
    """User+system CPU seconds of ``pid``'s live threads, summed by thread name (``comm``,
    digits dropped: ``asyncio_3`` counts as ``asyncio_``)."""
    by_name: dict[str, float] = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/task/{task}/comm") as handle:
                name = handle.read().strip().rstrip("0123456789")
            by_name[name] = by_name.get(name, 0.0) + cpu_seconds_of_task(pid, int(task))
    return by_name


def cpu_seconds_of_task(pid: int, task: int) -> float:
    """User+system CPU seconds of one thread."""
    with open(f"/proc/{pid}/task/{task}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def floor_seconds(photo_dir: Path, rounds: int) -> list[float]:
    """CPU seconds of bench/pipeline.py's bare 1/2-scale decode per photo, ``rounds`` passes
    over the photos, in a 1-process pool with the production initializer (after one warm-up
    pass)."""
    images = sorted(photo_dir.glob("*.jpg"))
    out = Path(tempfile.mkdtemp(dir=photo_dir))
    with ProcessPoolExecutor(1, mp_context=_context(), initializer=renditions.init_worker) as pool:
        for image in images:
            pool.submit(timed, decode_half, image, out).result()
        times = [
            pool.submit(cpu_timed, image, out).result() for _ in range(rounds) for image in images
        ]
    return times


async def _cleanup_redis(prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    keys = []
    for pattern in (f"{prefix}:*", f"saq:{prefix}:*", f"saq:job:{prefix}:*"):
        keys += [key async for key in client.scan_iter(match=pattern)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def amain(args: argparse.Namespace) -> None:
    from tests.production.processes import Worker, running

    work = Path(tempfile.mkdtemp(prefix="imageshark-bench-direct-"))
    photo_dir = work / "photos"
    photo_dir.mkdir()
    photos = make_photos(photo_dir, args.photos)
    moto = subprocess.Popen(  # noqa: ASYNC220  (before anything is measured)
        [sys.executable, __file__, "--moto"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    db_name, database_url = await create_database()
    load_before = os.getloadavg()
    try:
        assert moto.stdout is not None
        endpoint = f"http://127.0.0.1:{moto.stdout.readline().strip()}"
        import boto3

        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
            region_name=REGION,
        ).create_bucket(Bucket=BUCKET)
        await asyncio.to_thread(migrate, database_url)
        replica_env = _env(database_url, prefix, endpoint, work / "replica")
        replica = bench_replica_class()("replica", replica_env)
        worker = Worker("worker", _env(database_url, prefix, endpoint, work / "worker"))
        async with (
            running(replica, worker),
            httpx.AsyncClient(base_url=replica.base_url, timeout=120) as http,
            httpx.AsyncClient(timeout=120) as store,
        ):
            assert replica.process is not None and worker.process is not None
            created = await http.post("/api/rooms", json={"title": "bench direct uploads"})
            assert created.status_code == 201, created.text
            flows = Flows(http, store, created.json()["token"])
            # Half the floor's passes before the services' work, half after: both see the load.
            print("floor...", file=sys.stderr)
            floors = await asyncio.to_thread(floor_seconds, photo_dir, (args.floor_rounds + 1) // 2)
            print("idle...", file=sys.stderr)
            idle = await idle_rate(replica.process.pid, args.idle)
            print("app tier...", file=sys.stderr)
            app = await app_tier(
                flows, replica.process.pid, worker.process.pid, photos, args.uploads
            )
            print("per request...", file=sys.stderr)
            requests = await per_request(flows, replica.process.pid, photos[0], args.requests)
            print("worker throughput...", file=sys.stderr)
            throughput = await worker_throughput(flows, worker.process.pid, photos, args.jobs)
            print("floor...", file=sys.stderr)
            floors += await asyncio.to_thread(floor_seconds, photo_dir, args.floor_rounds // 2)
        floor = statistics.median(floors)
    finally:
        assert moto.stdin is not None
        moto.stdin.close()
        moto.wait(timeout=30)
        await drop_database(db_name)
        with contextlib.suppress(Exception):
            await _cleanup_redis(prefix)
        await asyncio.to_thread(shutil.rmtree, work, True)
    load_after = os.getloadavg()

    mean_mb = statistics.mean(map(len, photos)) / 1e6
    print(f"# Direct uploads benchmark, {datetime.date.today().isoformat()}\n")
    print(f"Machine: {machine()}\n")
    print(
        f"Load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after. "
        f"{len(photos)} distinct 12 MP phone JPEGs, mean {mean_mb:.1f} MB.\n"
    )
    print(f"## App-tier CPU per upload ({args.uploads} uploads per flow, interleaved)\n")
    print(
        "| Flow | replica main process CPU ms/upload | replica pool CPU ms/upload "
        "| worker CPU ms/upload (main + pool) | wall ms/upload |"
    )
    print("|---|---:|---:|---:|---:|")
    steps = app.pop("steps")
    for flow, row in app.items():
        print(
            f"| {flow} | {row['main'] * 1e3:.1f} | {row['pool'] * 1e3:.1f} "
            f"| {row['worker'] * 1e3:.1f} | {row['wall'] * 1e3:.0f} |"
        )
    print(
        f"\nReplica main process with no request: {idle * 1e3:.1f} ms CPU per second. "
        f"Direct flow by step, replica main process, ms/upload: "
        + ", ".join(f"{step} {value * 1e3:.1f}" for step, value in steps.items() if step != "polls")
        + f" ({steps.get('polls', 0):.1f} polls per upload)."
    )
    print(f"\n| Request ({args.requests} in a row) | replica main process CPU ms/request |")
    print("|---|---:|")
    for name, value in requests.items():
        print(f"| `{name}` | {value * 1e3:.2f} |")
    ratio = app["direct"]["main"] / app["multipart"]["main"]
    verdict = "met" if ratio <= 0.2 else "missed"
    print(
        f"\nDirect / multipart, replica main process: **{ratio:.3f}** "
        f"(target at most 0.2: {verdict}).\n"
    )
    jobs = args.jobs
    per_core = jobs / throughput["cpu"]
    print(
        f"## Worker throughput ({jobs} queued direct uploads, 1 pool process; floor N = "
        f"{len(floors)})\n"
    )
    print("| Measure | images/s | ms/image |")
    print("|---|---:|---:|")
    print(
        f"| worker, per CPU second (main + pool) | {per_core:.1f} "
        f"| {throughput['cpu'] / jobs * 1e3:.1f} |"
    )
    print(
        f"| of which worker main process | | {throughput['main'] / jobs * 1e3:.1f} |\n"
        f"| of which rendition pool process | | "
        f"{(throughput['cpu'] - throughput['main']) / jobs * 1e3:.1f} |"
    )
    for key, value in sorted(throughput.items()):
        if key.startswith("thread "):
            print(f"| of which main-process threads `{key[7:]}` | | {value / jobs * 1e3:.1f} |")
    print(
        f"| worker, wall clock | {jobs / throughput['wall']:.1f} "
        f"| {throughput['wall'] / jobs * 1e3:.1f} |"
    )
    print(
        f"| floor: bare 1/2-scale decode, CPU of 1 core (median) | {1 / floor:.1f} "
        f"| {floor * 1e3:.1f} |"
    )
    worker_ratio = (throughput["cpu"] / jobs) / floor
    verdict = "met" if worker_ratio <= 1.5 else "missed"
    print(
        f"\nWorker CPU per image / floor: **{worker_ratio:.2f}x** (target at most 1.5x: {verdict})."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=40, help="measured uploads per flow")
    parser.add_argument("--jobs", type=int, default=32, help="queued uploads for the worker")
    parser.add_argument("--photos", type=int, default=8, help="distinct base photos")
    parser.add_argument("--floor-rounds", type=int, default=6, help="decode passes over them")
    parser.add_argument("--requests", type=int, default=100, help="requests per kind, costs")
    parser.add_argument("--idle", type=float, default=5, help="idle seconds measured")
    parser.add_argument("--moto", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.moto:
        return _moto()
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
