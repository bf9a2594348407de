"""Object-storage client libraries compared on one machine: obstore, aioboto3, opendal.

Each library runs in a process of its own, against one moto S3 server in another process (so
that the server's CPU is not counted), rounds interleaved (library order rotated per round).
Per library and round it measures:

- import + client construction: wall seconds, and the process's RSS growth (MiB);
- PUT then GET of a 1 MiB object, ``--ops`` times: the client process's CPU time (every
  thread: the Rust runtimes' too) and wall time per PUT+GET pair, milliseconds;
- signing a presigned GET: microseconds per URL (CPU only, no request).

The figures are medians over the rounds. aioboto3 and opendal are not dependencies of the
service; run with them added for the one command::

    uv run --with 'aioboto3>=15' --with 'opendal>=0.47' python bench/object_storage.py
    uv run --with 'aioboto3>=15' --with 'opendal>=0.47' python bench/object_storage.py \\
        --rounds 3 --ops 50      # quicker, noisier
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

LIBRARIES = ("obstore", "aioboto3", "opendal")
BUCKET = "bench"
KEY_ID, SECRET, REGION = "bench-key", "bench-secret", "us-east-1"
PAYLOAD = os.urandom(1024 * 1024)


def _rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def _obstore(endpoint: str, ops: int) -> dict[str, float]:
    started, rss = time.perf_counter(), _rss_mib()
    from datetime import timedelta

    import obstore
    from obstore.store import S3Store

    store = S3Store(
        BUCKET,
        config={
            "endpoint": endpoint,
            "access_key_id": KEY_ID,
            "secret_access_key": SECRET,
            "region": REGION,
        },
        client_options={"allow_http": True},
    )
    setup = time.perf_counter() - started, _rss_mib() - rss

    async def one(i: int) -> None:
        await obstore.put_async(store, f"o/{i}", PAYLOAD)
        data = await (await obstore.get_async(store, f"o/{i}")).bytes_async()
        assert len(data) == len(PAYLOAD)

    def sign() -> None:
        obstore.sign(store, "GET", "o/0", timedelta(seconds=3600))

    return await _measure(setup, one, sign, ops)


async def _aioboto3(endpoint: str, ops: int) -> dict[str, float]:
    started, rss = time.perf_counter(), _rss_mib()
    import aioboto3

    session = aioboto3.Session()
    async with session.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        region_name=REGION,
    ) as s3:
        setup = time.perf_counter() - started, _rss_mib() - rss

        async def one(i: int) -> None:
            await s3.put_object(Bucket=BUCKET, Key=f"b/{i}", Body=PAYLOAD)
            answer = await s3.get_object(Bucket=BUCKET, Key=f"b/{i}")
            async with answer["Body"] as body:
                assert len(await body.read()) == len(PAYLOAD)

        loop = asyncio.get_running_loop()
        signs: list[Any] = []

        def sign() -> None:
            # generate_presigned_url is a coroutine in aiobotocore; timed by the event loop run.
            signs.append(
                loop.create_task(
                    s3.generate_presigned_url(
                        "get_object", Params={"Bucket": BUCKET, "Key": "b/0"}, ExpiresIn=3600
                    )
                )
            )

        return await _measure(setup, one, sign, ops, pending=signs)


async def _opendal(endpoint: str, ops: int) -> dict[str, float]:
    started, rss = time.perf_counter(), _rss_mib()
    import opendal

    operator = opendal.AsyncOperator(
        "s3",
        bucket=BUCKET,
        endpoint=endpoint,
        region=REGION,
        access_key_id=KEY_ID,
        secret_access_key=SECRET,
        root="/d",
    )
    setup = time.perf_counter() - started, _rss_mib() - rss

    async def one(i: int) -> None:
        await operator.write(f"{i}", PAYLOAD)
        data = await operator.read(f"{i}")
        assert len(bytes(data)) == len(PAYLOAD)

    signs: list[Any] = []

    def sign() -> None:
        signs.append(asyncio.ensure_future(operator.presign_read("0", 3600)))

    return await _measure(setup, one, sign, ops, pending=signs)


async def _measure(
    setup: tuple[float, float], one: Any, sign: Any, ops: int, pending: list[Any] | None = None
) -> dict[str, float]:
    for i in range(3):  # warm the connection pool
        await one(i)
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(ops):
        await one(i)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    signs = 200
    sign_cpu = time.process_time()
    for _ in range(signs):
        sign()
    if pending:
        await asyncio.gather(*pending)
    sign_cpu = time.process_time() - sign_cpu
    return {
        "setup_seconds": setup[0],
        "setup_rss_mib": setup[1],
        "cpu_ms": 1000 * cpu / ops,
        "wall_ms": 1000 * wall / ops,
        "sign_us": 1e6 * sign_cpu / signs,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _worker(library: str, endpoint: str, ops: int) -> None:
    run = {"obstore": _obstore, "aioboto3": _aioboto3, "opendal": _opendal}[library]
    print(json.dumps(asyncio.run(run(endpoint, ops))), flush=True)
    # opendal 0.47's runtime sometimes aborts the interpreter at exit (SIGABRT once the
    # figures are out); skip the teardown for every library alike.
    os._exit(0)


def _server() -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    sys.stdin.read()  # until the parent closes it
    server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ops", type=int, default=100, help="PUT+GET pairs per round")
    parser.add_argument("--worker", choices=LIBRARIES)
    parser.add_argument("--server", action="store_true")
    parser.add_argument("--endpoint")
    args = parser.parse_args()
    if args.server:
        return _server()
    if args.worker:
        return _worker(args.worker, args.endpoint, args.ops)

    server = subprocess.Popen(
        [sys.executable, __file__, "--server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        endpoint = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        import boto3

        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
            region_name=REGION,
        ).create_bucket(Bucket=BUCKET)
        results: dict[str, list[dict[str, float]]] = {name: [] for name in LIBRARIES}
        for round_number in range(args.rounds):
            order = LIBRARIES[round_number % 3 :] + LIBRARIES[: round_number % 3]
            for library in order:
                run = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--worker",
                        library,
                        "--endpoint",
                        endpoint,
                        "--ops",
                        str(args.ops),
                    ],
                    capture_output=True,
                    text=True,
                )
                if run.returncode != 0:
                    sys.exit(f"{library} failed ({run.returncode}):\n{run.stderr[-3000:]}")
                results[library].append(json.loads(run.stdout.strip().splitlines()[-1]))
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)

    print(f"{args.rounds} rounds x {args.ops} PUT+GET pairs of 1 MiB, medians\n")
    print(
        "| library | client CPU ms / PUT+GET | wall ms / PUT+GET | sign µs / URL "
        "| import+client s | RSS after import MiB | peak RSS MiB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for library, runs in results.items():
        med = {field: statistics.median(run[field] for run in runs) for field in runs[0]}
        print(
            f"| {library} | {med['cpu_ms']:.2f} | {med['wall_ms']:.2f} | {med['sign_us']:.0f} "
            f"| {med['setup_seconds']:.3f} | {med['setup_rss_mib']:.1f} "
            f"| {med['peak_rss_mib']:.0f} |"
        )


if __name__ == "__main__":
    main()
