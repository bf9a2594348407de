"""Benchmark of end-to-end uploads: 12 MP phone JPEGs over HTTP to one replica.

Run from the repository root::

    uv run python bench/uploads.py             # SQLite and PostgreSQL, 2/4/8 uploaders
    uv run python bench/uploads.py --database sqlite --concurrency 4 --duration 10   # one, quickly

For each database (the embedded SQLite default, and PostgreSQL in a database created for the
run and dropped at the end) and each number of concurrent uploaders, a fresh replica is started
(``python -m web.cli serve``, two rendition workers, in-process broadcast, log level WARNING),
one room is created, and N closed-loop uploaders each ``POST`` one photo at a time for
``--warmup`` seconds (not counted) and then ``--duration`` seconds. Reported: uploads/s
completed with 201 in the window, p50/p99 request latency, failures (any other status, e.g.
``503 busy``), the replica's CPU (main process and rendition workers) and peak memory (VmHWM of
the replica plus its worker processes).

The photos are made by ``tests/photos.py`` (4000x3000, grain 12, EXIF orientations 6/1/8/3,
the four sample pictures, quality 90: about 3 MB each) before anything is measured. Each request
sends one of them with a unique JPEG comment segment inserted after the SOI marker, so every
upload has distinct bytes (the service de-duplicates identical bytes) and is fully rendered.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

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
    peak_rss_mib,
    percentile,
)

ORIENTATIONS = (6, 1, 8, 3)
GRAIN = 12


def make_photos(folder: Path, count: int) -> list[bytes]:
    """``count`` distinct 12 MP phone JPEGs (sample picture x orientation)."""
    from tests.photos import PHOTO_NAMES, make_phone_jpeg

    photos = []
    for i in range(count):
        name = PHOTO_NAMES[i % len(PHOTO_NAMES)]
        orientation = ORIENTATIONS[(i // len(PHOTO_NAMES) + i) % len(ORIENTATIONS)]
        path = make_phone_jpeg(folder / f"{i}.jpg", orientation=orientation, name=name, grain=GRAIN)
        photos.append(path.read_bytes())
    return photos


def variant(photo: bytes, serial: int) -> bytes:
    """``photo`` with a JPEG comment (COM) segment carrying ``serial`` right after SOI."""
    payload = f"imageshark bench upload {serial}".encode()
    segment = b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload
    return photo[:2] + segment + photo[2:]


@dataclass
class Result:
    database: str
    concurrency: int
    ok: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    window_s: float = 0
    cpu_main_s: float = 0
    cpu_workers_s: float = 0
    rss_mib: float = 0
    rss_main_mib: float = 0


async def run_level(
    database: str,
    database_url: str | None,
    concurrency: int,
    photos: list[bytes],
    args: argparse.Namespace,
    serial_start: int,
) -> Result:
    import aiohttp

    from tests.production.processes import running

    data_dir = Path(tempfile.mkdtemp(prefix="imageshark-bench-uploads-"))
    env = {
        "IMAGESHARK_DATA_DIR": str(data_dir),
        "IMAGESHARK_LOG_LEVEL": "WARNING",
        "IMAGESHARK_RENDITION_WORKERS": str(args.workers),
    }
    if database_url:
        env["DATABASE_URL"] = database_url
        env["IMAGESHARK_MIGRATE_ON_START"] = "false"
    else:
        env["DATABASE_URL"] = ""
    replica = bench_replica_class()("replica", env)
    if not database_url:
        replica.env.pop("DATABASE_URL", None)
    result = Result(database, concurrency)
    serial = serial_start
    try:
        async with running(replica):
            assert replica.process is not None
            pid = replica.process.pid
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=120),
            ) as session:
                async with session.post(
                    f"{replica.base_url}/api/rooms", json={"title": "bench uploads"}
                ) as response:
                    token = (await response.json())["token"]
                url = f"{replica.base_url}/api/rooms/{token}/images"
                t0 = time.monotonic()
                window_start = t0 + args.warmup
                window_end = window_start + args.duration
                marks: dict[str, float] = {}

                async def uploader(k: int) -> None:
                    nonlocal serial
                    while time.monotonic() < window_end:
                        serial += 1
                        body = variant(photos[serial % len(photos)], serial)
                        form = aiohttp.FormData()
                        form.add_field("file", body, filename="IMG.jpg", content_type="image/jpeg")
                        started = time.monotonic()
                        try:
                            async with session.post(url, data=form) as response:
                                await response.read()
                                status = str(response.status)
                        except (aiohttp.ClientError, TimeoutError) as exc:
                            status = type(exc).__name__
                        ended = time.monotonic()
                        if started < window_start or ended > window_end:
                            continue  # only requests wholly inside the window count
                        if status == "201":
                            result.ok += 1
                            result.latencies_ms.append((ended - started) * 1e3)
                        else:
                            result.failures[status] = result.failures.get(status, 0) + 1
                            await asyncio.sleep(0.1)

                async def marker() -> None:
                    await asyncio.sleep(max(0.0, window_start - time.monotonic()))
                    pids = descendants(pid)
                    marks["main"] = cpu_seconds([pid])
                    marks["all"] = cpu_seconds(pids)
                    await asyncio.sleep(max(0.0, window_end - time.monotonic()))
                    pids = descendants(pid)
                    main = cpu_seconds([pid]) - marks["main"]
                    result.cpu_main_s = main
                    result.cpu_workers_s = cpu_seconds(pids) - marks["all"] - main
                    result.rss_mib = peak_rss_mib(pids)
                    result.rss_main_mib = peak_rss_mib([pid])

                await asyncio.gather(marker(), *(uploader(k) for k in range(concurrency)))
                result.window_s = args.duration
    finally:
        await asyncio.to_thread(shutil.rmtree, data_dir, True)
    return result


def print_table(results: list[Result], args: argparse.Namespace) -> None:
    print()
    print(
        f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {args.workers} rendition workers, {args.duration:g} s "
        f"measured after {args.warmup:g} s warm-up"
    )
    print()
    print(
        "| Database | Uploaders | Uploads/s | p50 ms | p99 ms | Failures | Server CPU s/upload "
        "(main + workers) | Peak RSS MiB (replica + workers) |"
    )
    print("|---|---:|---:|---:|---:|---|---:|---:|")
    for r in results:
        lat = sorted(r.latencies_ms)
        failures = ", ".join(f"{n} x {k}" for k, n in sorted(r.failures.items())) or "0"
        per = (r.cpu_main_s + r.cpu_workers_s) / r.ok if r.ok else float("nan")
        print(
            f"| {r.database} | {r.concurrency} | {r.ok / r.window_s:.1f} "
            f"| {percentile(lat, 0.5):.0f} | {percentile(lat, 0.99):.0f} | {failures} "
            f"| {per * 1e3:.0f} ms ({r.cpu_main_s / max(r.ok, 1) * 1e3:.0f} + "
            f"{r.cpu_workers_s / max(r.ok, 1) * 1e3:.0f}) "
            f"| {r.rss_mib:.0f} ({r.rss_main_mib:.0f} + {r.rss_mib - r.rss_main_mib:.0f}) |"
        )


async def amain(args: argparse.Namespace) -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="imageshark-bench-photos-") as folder:
        photos = make_photos(Path(folder), args.photos)
    print(
        f"{len(photos)} photos, {statistics.mean(map(len, photos)) / 1e6:.1f} MB on average, "
        f"made in {time.monotonic() - started:.0f} s",
        file=sys.stderr,
    )
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    levels = [int(n) for n in args.concurrency.split(",")]
    results: list[Result] = []
    serial = int(time.time())  # distinct bytes across runs too
    for database in databases:
        db_name = database_url = None
        if database == "postgresql":
            db_name, database_url = await create_database()
            await asyncio.to_thread(migrate, database_url)
        try:
            for level in levels:
                print(f"{database}, {level} uploaders...", file=sys.stderr)
                result = await run_level(database, database_url, level, photos, args, serial)
                serial += 100_000
                results.append(result)
                print_table([result], args)
        finally:
            if db_name:
                await drop_database(db_name)
    if len(results) > 1:
        print("\n## All runs")
        print_table(results, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["both", "sqlite", "postgresql"], default="both")
    parser.add_argument("--concurrency", default="2,4,8", help="comma-separated uploader counts")
    parser.add_argument("--duration", type=float, default=20, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=4, help="seconds before, not counted")
    parser.add_argument("--workers", type=int, default=2, help="IMAGESHARK_RENDITION_WORKERS")
    parser.add_argument("--photos", type=int, default=8, help="distinct base photos")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
