"""Benchmark of the live path: uploads fanned out as ``image_added`` to many Socket.IO clients.

Run from the repository root::

    uv run python bench/live.py                                  # every scenario, 1 and 2 replicas
    uv run python bench/live.py --scenario room1000 --replicas 1 --duration 10   # one, quickly

Each scenario starts its own replicas as ``python -m web.cli serve`` processes (PostgreSQL, a
private Redis, a shared data folder, one rendition worker each), creates its rooms, connects
every client over a raw WebSocket (Engine.IO v4 / Socket.IO v5 spoken directly with the
``websockets`` library, clients spread over ``--client-procs`` processes and over the replicas
round-robin), then uploads distinct small JPEGs at a fixed rate (open loop, round-robin over the
rooms and replicas): ``--warmup`` seconds not counted, then ``--duration`` seconds measured.

Per scenario it reports deliveries/s; p50/p99/max of the time from the start of the upload
request to the receipt of its ``image_added`` at each client (wall clock ``time.time_ns()`` in
every process); lost and duplicated events; the replicas' CPU time (user+sys of each replica
and its rendition worker processes, from ``/proc``) per delivery over the measured window; the
load generator's CPU; and each replica's peak RSS (VmHWM, replica + workers).

``--server-gc`` and ``--profile`` run the replicas through this file's ``--as-replica`` wrapper,
which applies a garbage-collector setting or cProfile to an unmodified server, for experiments.
The database is created per run (``imageshark_bench_<random>``) and dropped at the end.

``--server node`` runs the same scenarios against ``bench/node-reference/server.mjs`` instead: a
minimal Node.js socket.io 4 server with the same rooms / upload / Socket.IO interface (Redis
adapter across replicas; no database, no image pipeline), the reference for the CPU per
delivery. Install its dependencies first with ``npm ci --prefix bench/node-reference``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import gc
import io
import json
import multiprocessing
import os
import platform
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

THIS_FILE = Path(__file__).resolve()
CLK_TCK = os.sysconf("SC_CLK_TCK")
NODE_REFERENCE = REPO / "bench" / "node-reference"
NODE_SERVER = NODE_REFERENCE / "server.mjs"


@dataclass(frozen=True)
class Scenario:
    name: str
    rooms: int
    clients_per_room: int
    rate: float  # uploads/s over all rooms

    @property
    def clients(self) -> int:
        return self.rooms * self.clients_per_room


SCENARIOS = {
    "room1000": Scenario("1 room x 1000 clients, 10 uploads/s", 1, 1000, 10),
    "rooms100x10": Scenario("100 rooms x 10 clients, 50 uploads/s", 100, 10, 50),
    "room2000": Scenario("1 room x 2000 clients, 10 uploads/s", 1, 2000, 10),
}


# ---- /proc ---------------------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (the rendition pool's forkserver and workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def cpu_seconds(pids: list[int], *, kernel_only: bool = False) -> float:
    """user+sys CPU seconds of ``pids`` (children that are still alive); with ``kernel_only``,
    sys alone (on loopback this includes delivering each sent segment to the receiving socket
    and waking its reader, which a NIC would take over on a real network)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[12]) if kernel_only else int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def peak_rss_mib(pids: list[int]) -> float:
    """Sum of VmHWM over ``pids``, MiB."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total / 1024


# ---- the load generator: a lean Socket.IO client over raw WebSockets ----------------------


@dataclass
class ClientResult:
    room: int
    seqs: array = field(default_factory=lambda: array("q"))
    times: array = field(default_factory=lambda: array("q"))
    duplicates: int = 0
    disconnected: bool = False
    connected: bool = False
    refusals: int = 0
    last_refusal: str = ""


async def _run_client(
    url: str,
    token: str,
    last_seq: int,
    result: ClientResult,
    stop: asyncio.Event,
    ready: asyncio.Event,
) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    auth = json.dumps({"token": token, "name": "bench", "last_seq": last_seq})
    seen: set[int] = set()
    ws = None
    for _attempt in range(10):
        # as socket.io-client does: a refused or failed connect is retried after a pause
        try:
            ws = await connect(
                url, compression=None, ping_interval=None, open_timeout=60, max_size=None
            )
            opened = await ws.recv()
            assert isinstance(opened, str) and opened.startswith("0"), opened
            await ws.send("40" + auth)
            while True:
                message = await ws.recv()
                if message.startswith("40"):
                    break
                if message.startswith("44"):
                    raise ConnectionRefusedError(message)
            break
        except (OSError, TimeoutError, ConnectionClosed) as exc:
            result.refusals += 1
            result.last_refusal = str(exc)[:200]
            if ws is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 2)
                ws = None
            await asyncio.sleep(1 + random.random() * 2)
    if ws is None:
        return
    try:
        result.connected = True
        ready.set()
        stop_wait = asyncio.ensure_future(stop.wait())
        while not stop.is_set():
            message = await ws.recv()
            received = time.time_ns()
            if message == "2":
                await ws.send("3")
            elif message.startswith('42["image_added"'):
                seq = json.loads(message[2:])[1]["seq"]
                if seq in seen:
                    result.duplicates += 1
                    continue
                seen.add(seq)
                result.seqs.append(seq)
                result.times.append(received)
        stop_wait.cancel()
    except ConnectionClosed:
        if not stop.is_set():
            result.disconnected = True
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), 2)


async def _client_process_main(
    assignments: list[tuple[str, str, int, int]], conn: Any, connect_concurrency: int
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    results = [ClientResult(room) for _, _, _, room in assignments]
    gate = asyncio.Semaphore(connect_concurrency)

    settled = 0
    all_settled = asyncio.Event()

    async def one(index: int) -> None:
        nonlocal settled
        url, token, last_seq, _ = assignments[index]
        ready = asyncio.Event()
        async with gate:
            # hold the gate until the handshake is through (or given up)
            task = asyncio.create_task(
                _run_client(url, token, last_seq, results[index], stop, ready)
            )
            waiter = asyncio.create_task(ready.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        settled += 1
        if settled == len(assignments):
            all_settled.set()
        await task

    tasks = [asyncio.create_task(one(i)) for i in range(len(assignments))]
    await all_settled.wait()
    refusals = [r.last_refusal for r in results if r.refusals]
    conn.send(
        (
            "connected",
            (sum(r.connected for r in results), sum(r.refusals for r in results), refusals[:1]),
        )
    )
    # wait for "stop" from the parent without blocking the loop
    await loop.run_in_executor(None, conn.recv)
    stop.set()
    await asyncio.wait(tasks, timeout=10)
    conn.send(
        (
            "results",
            [
                (r.room, r.seqs.tobytes(), r.times.tobytes(), r.duplicates, r.disconnected)
                for r in results
            ],
        )
    )


def client_process(
    assignments: list[tuple[str, str, int, int]], conn: Any, connect_concurrency: int
) -> None:
    """Entry point of a load-generator process."""
    gc.disable()  # short-lived; keeps collector pauses out of the receive timestamps
    # uvloop (as the server runs) roughly halves the load generator's own CPU per message,
    # which shares the cores with the server under test.
    uvloop.run(_client_process_main(assignments, conn, connect_concurrency))


# ---- uploads -------------------------------------------------------------------------------


def small_jpegs(count: int, seed: int) -> list[bytes]:
    """``count`` distinct 64x48 JPEGs (random blocks of colour)."""
    from PIL import Image

    rng = random.Random(seed)
    out = []
    for _ in range(count):
        image = Image.new("RGB", (64, 48))
        image.putdata(
            [tuple(rng.randrange(256) for _ in range(3)) for _ in range(64 * 48)]  # type: ignore[misc]
        )
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=80)
        out.append(buffer.getvalue())
    return out


@dataclass
class Upload:
    room: int
    start_ns: int
    end_ns: int = 0
    status: int = 0
    seq: int = 0
    measured: bool = False


async def run_uploads(
    base_urls: list[str],
    tokens: list[str],
    images: list[bytes],
    rate: float,
    warmup: float,
    duration: float,
    on_window_start: Any,
) -> tuple[list[Upload], float, float]:
    """Open-loop uploads at ``rate``/s; returns them and the measured window's (start, end)."""
    import aiohttp

    uploads: list[Upload] = []
    total = int((warmup + duration) * rate)
    first_measured = int(warmup * rate)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(i: int, measured: bool) -> None:
            room = i % len(tokens)
            url = f"{base_urls[i % len(base_urls)]}/api/rooms/{tokens[room]}/images"
            form = aiohttp.FormData()
            form.add_field("file", images[i], filename=f"{i}.jpg", content_type="image/jpeg")
            upload = Upload(room, time.time_ns(), measured=measured)
            uploads.append(upload)
            try:
                async with session.post(url, data=form) as response:
                    upload.status = response.status
                    body = await response.json()
                    if response.status == 201:
                        upload.seq = int(body["seq"])
            except (aiohttp.ClientError, ValueError) as exc:
                print(f"upload {i} failed: {exc}", file=sys.stderr)
            upload.end_ns = time.time_ns()

        t0 = time.monotonic()
        tasks = []
        window_start = window_end = 0.0
        for i in range(total):
            target = t0 + i / rate
            delay = target - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if i == first_measured:
                window_start = time.monotonic()
                on_window_start()
            tasks.append(asyncio.create_task(one(i, i >= first_measured)))
        await asyncio.gather(*tasks)
        window_end = time.monotonic()
    return uploads, window_start, window_end


# ---- infrastructure ------------------------------------------------------------------------


async def create_database() -> tuple[str, str]:
    import asyncpg

    name = f"imageshark_bench_{secrets.token_hex(4)}"
    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, f"postgresql://postgres@127.0.0.1:5432/{name}"


async def drop_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def migrate(database_url: str) -> None:
    """``imageshark migrate`` on ``database_url`` (blocking)."""
    subprocess.run(
        [sys.executable, "-m", "web.cli", "migrate"],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": database_url},
        check=True,
        capture_output=True,
    )


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


@dataclass
class Outcome:
    scenario: Scenario
    replicas: int
    variant: str
    uploads_ok: int
    upload_failures: int
    deliveries: int
    expected: int
    duplicates: int
    disconnected: int
    window_s: float
    lat_p50_ms: float
    lat_p99_ms: float
    lat_max_ms: float
    upload_p50_ms: float
    upload_p99_ms: float
    upload_max_ms: float
    server_cpu_s: float
    main_cpu_s: float
    kernel_cpu_s: float
    spread_p99_ms: float
    loadgen_cpu_s: float
    rss_mib: list[float]
    gc_notes: list[str]
    connect_s: float

    @property
    def lost(self) -> int:
        return self.expected - self.deliveries

    @property
    def cpu_us_per_delivery(self) -> float:
        return self.server_cpu_s / self.deliveries * 1e6 if self.deliveries else float("nan")


def bench_replica_class() -> Any:
    from tests.production.processes import Replica

    class BenchReplica(Replica):  # type: ignore[misc]
        """A replica whose readiness is a 200 from /healthz (at log level WARNING uvicorn does
        not print its start-up line)."""

        async def start(self, timeout: float = 60) -> None:
            import httpx

            reader = await self.spawn(asyncio.Event())
            deadline = time.monotonic() + timeout
            async with httpx.AsyncClient() as http:
                while time.monotonic() < deadline and not reader.done():
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(f"{self.base_url}/healthz")).status_code == 200:
                            return
                    await asyncio.sleep(0.2)
            await self.give_up()

    return BenchReplica


def server_label(args: argparse.Namespace) -> str:
    """The results table's "Server" column: ``node`` for the Node.js reference, else the
    replicas' GC setting (``none`` for a plain server), with ``+cProfile`` when profiled."""
    if args.server == "node":
        return "node"
    return f"{args.server_gc}+cProfile" if args.profile else str(args.server_gc)


def node_version() -> str:
    """The version of ``node`` on the PATH (e.g. ``"v20.20.2"``), after checking that the Node.js
    reference server's dependencies are installed; exits with instructions otherwise."""
    node = shutil.which("node")
    if node is None:
        sys.exit("--server node needs Node.js 20 or later on the PATH (`node` was not found).")
    if not (NODE_REFERENCE / "node_modules").is_dir():
        sys.exit(
            f"--server node: {NODE_REFERENCE.relative_to(REPO)}/node_modules is missing; "
            "install the reference server's dependencies first with\n"
            "    npm ci --prefix bench/node-reference"
        )
    return subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()


def node_replica_args(port: int) -> list[str]:
    """Command line of one Node.js reference replica listening on 127.0.0.1:``port``."""
    return [shutil.which("node") or "node", str(NODE_SERVER), "--port", str(port)]


async def run_scenario(
    scenario: Scenario,
    replicas: int,
    args: argparse.Namespace,
    database_url: str,
    redis_url: str,
    data_root: Path,
) -> Outcome:
    import httpx

    from tests.production.processes import running

    Replica = bench_replica_class()
    data_dir = Path(tempfile.mkdtemp(prefix="scenario-", dir=data_root))
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "IMAGESHARK_REDIS_PREFIX": f"bench{secrets.token_hex(3)}",
        "IMAGESHARK_DATA_DIR": str(data_dir),
        "IMAGESHARK_MIGRATE_ON_START": "false",
        "IMAGESHARK_LOG_LEVEL": "WARNING",
        "IMAGESHARK_RENDITION_WORKERS": "1",
        # A bench creates its rooms from one address, faster than a host would.
        "IMAGESHARK_ROOM_CREATE_RATE_LIMIT": "100000/hour",
    }
    wrapped = args.server_gc != "none" or args.profile
    if wrapped:
        env["IMAGESHARK_BENCH_GC"] = args.server_gc
        env["IMAGESHARK_BENCH_GC_OUT"] = str(data_dir / "gc")
        if args.profile:
            env["IMAGESHARK_BENCH_PROFILE"] = args.profile
    servers = [Replica(f"replica-{i}", env) for i in range(replicas)]
    for i, server in enumerate(servers):
        if args.server == "node":
            # same REDIS_URL and key prefix; the rest of the environment is ignored by it
            server.args = node_replica_args(server.port)
        elif wrapped:
            server.args = [
                sys.executable,
                str(THIS_FILE),
                "--as-replica",
                str(i),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(server.port),
            ]
    images = small_jpegs(int((args.warmup + args.duration) * scenario.rate) + 1, seed=replicas)
    try:
        async with running(*servers):
            base_urls = [s.base_url for s in servers]
            tokens, last_seqs = [], []
            async with httpx.AsyncClient() as http:
                for i in range(scenario.rooms):
                    r = await http.post(f"{base_urls[0]}/api/rooms", json={"title": f"bench {i}"})
                    r.raise_for_status()
                    tokens.append(r.json()["token"])
                    last_seqs.append(r.json()["last_seq"])
            # client c is in room c % rooms, on replica c % replicas
            assignments = [
                (
                    base_urls[c % replicas].replace("http://", "ws://")
                    + "/socket.io/?EIO=4&transport=websocket",
                    tokens[c % scenario.rooms],
                    last_seqs[c % scenario.rooms],
                    c % scenario.rooms,
                )
                for c in range(scenario.clients)
            ]
            ctx = multiprocessing.get_context("spawn")
            procs, pipes = [], []
            started = time.monotonic()
            for p in range(args.client_procs):
                parent, child = ctx.Pipe()
                proc = ctx.Process(
                    target=client_process,
                    args=(assignments[p :: args.client_procs], child, args.connect_concurrency),
                    daemon=True,
                )
                proc.start()
                procs.append(proc)
                pipes.append(parent)
            connected = refused = 0
            reasons: list[str] = []
            for pipe in pipes:
                _, (n, r, why) = await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
                connected += n
                refused += r
                reasons += why
            connect_s = time.monotonic() - started
            print(
                f"  {connected}/{scenario.clients} clients connected in {connect_s:.1f} s "
                f"({refused} connect attempts refused or failed and retried"
                f"{': ' + reasons[0] if reasons else ''})",
                file=sys.stderr,
            )
            await asyncio.sleep(2)  # let the presence storm settle

            server_pids = [s.process.pid for s in servers if s.process is not None]
            marks: dict[str, float] = {}

            spy: list[subprocess.Popen[bytes]] = []

            def mark_start() -> None:
                if args.py_spy:
                    spy.append(
                        subprocess.Popen(
                            [
                                shutil.which("py-spy") or "py-spy",
                                "record",
                                "--pid",
                                str(server_pids[0]),
                                "--duration",
                                str(int(args.duration)),
                                "--rate",
                                "100",
                                "--nonblocking",
                                "--format",
                                "speedscope",
                                "--output",
                                args.py_spy,
                            ],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                        )
                    )
                pids = [p for sp in server_pids for p in descendants(sp)]
                marks["server"] = cpu_seconds(pids)
                marks["main"] = cpu_seconds(server_pids)
                marks["kernel"] = cpu_seconds(pids, kernel_only=True)
                marks["loadgen"] = cpu_seconds([p.pid for p in procs if p.pid])

            wall0 = time.time() + args.warmup
            uploads, w0, w1 = await run_uploads(
                base_urls, tokens, images, scenario.rate, args.warmup, args.duration, mark_start
            )
            await asyncio.sleep(args.drain)
            for proc_spy in spy:
                await asyncio.get_running_loop().run_in_executor(None, proc_spy.wait)
            pids_all = [p for sp in server_pids for p in descendants(sp)]
            if wrapped:
                for sp in server_pids:
                    os.kill(sp, signal.SIGUSR1)
                await asyncio.sleep(1)
            server_cpu = cpu_seconds(pids_all) - marks["server"]
            main_cpu = cpu_seconds(server_pids) - marks["main"]
            kernel_cpu = cpu_seconds(pids_all, kernel_only=True) - marks["kernel"]
            loadgen_cpu = cpu_seconds([p.pid for p in procs if p.pid]) - marks["loadgen"]
            window_s = w1 - w0
            wall1 = time.time()
            rss = [peak_rss_mib(descendants(sp)) for sp in server_pids]

            results = []
            for pipe in pipes:
                pipe.send("stop")
            for pipe in pipes:
                _, part = await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
                results += part
            for proc in procs:
                proc.join(10)
    finally:
        gc_notes = []
        for i, s in enumerate(servers):
            gc_notes += [line for line in s.output if line.startswith("bench-heap")]
            with contextlib.suppress(OSError, NameError):
                records = json.loads((data_dir / f"gc.{i}.json").read_text())
                for generation in (0, 1, 2):
                    pauses = sorted(
                        p for t, g, p in records if g == generation and wall0 <= t <= wall1
                    )
                    if not pauses:
                        gc_notes.append(
                            f"replica {i} [{args.server_gc}] in the window: no gen{generation} "
                            "collection"
                        )
                    else:
                        gc_notes.append(
                            f"replica {i} [{args.server_gc}] in the window: gen{generation} "
                            f"{len(pauses)} collections, {sum(pauses) * 1e3:.0f} ms in total, "
                            f"median {statistics.median(pauses) * 1e3:.2f} ms, "
                            f"max {pauses[-1] * 1e3:.1f} ms"
                        )
            tail = [
                line
                for line in s.output
                if "Traceback" in line
                or "ERROR" in line
                or (args.server == "node" and "Error" in line)
            ]
            if tail:
                print(f"  {s.name} logged errors: {tail[:3]}", file=sys.stderr)

    # ---- analysis
    sent: dict[tuple[int, int], Upload] = {}
    for u in uploads:
        if u.status == 201:
            sent[(u.room, u.seq)] = u
    measured = {k: u for k, u in sent.items() if u.measured}
    clients_per_room = scenario.clients_per_room
    expected = len(measured) * clients_per_room
    latencies: list[float] = []
    first: dict[tuple[int, int], int] = {}
    receipts: list[tuple[tuple[int, int], int]] = []
    delivered = duplicates = disconnected = 0
    for room, seqs_b, times_b, dups, disc in results:
        seqs, times = array("q"), array("q")
        seqs.frombytes(seqs_b)
        times.frombytes(times_b)
        duplicates += dups
        disconnected += disc
        for seq, t in zip(seqs, times, strict=True):
            upload = measured.get((room, seq))
            if upload is not None:
                delivered += 1
                latencies.append((t - upload.start_ns) / 1e6)
                key = (room, seq)
                receipts.append((key, t))
                if t < first.get(key, 1 << 62):
                    first[key] = t
    latencies.sort()
    spread = sorted((t - first[key]) / 1e6 for key, t in receipts)
    upload_ms = sorted((u.end_ns - u.start_ns) / 1e6 for u in measured.values())
    return Outcome(
        scenario=scenario,
        replicas=replicas,
        variant=server_label(args),
        uploads_ok=len(measured),
        upload_failures=sum(1 for u in uploads if u.measured and u.status != 201),
        deliveries=delivered,
        expected=expected,
        duplicates=duplicates,
        disconnected=disconnected,
        window_s=window_s,
        lat_p50_ms=percentile(latencies, 0.50),
        lat_p99_ms=percentile(latencies, 0.99),
        lat_max_ms=latencies[-1] if latencies else float("nan"),
        upload_p50_ms=statistics.median(upload_ms) if upload_ms else float("nan"),
        upload_p99_ms=percentile(upload_ms, 0.99),
        upload_max_ms=upload_ms[-1] if upload_ms else float("nan"),
        server_cpu_s=server_cpu,
        main_cpu_s=main_cpu,
        kernel_cpu_s=kernel_cpu,
        spread_p99_ms=percentile(spread, 0.99),
        loadgen_cpu_s=loadgen_cpu,
        rss_mib=rss,
        gc_notes=gc_notes,
        connect_s=connect_s,
    )


def print_table(outcomes: list[Outcome], args: argparse.Namespace) -> None:
    print()
    print(
        f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
        f"{', Node.js ' + args.node_version if args.server == 'node' else ''}, "
        f"{args.duration:g} s measured after "
        f"{args.warmup:g} s warm-up, {args.client_procs} load-generator processes"
    )
    print()
    print(
        "| Scenario | Replicas | Server | Deliveries/s | p50 ms | p99 ms | max ms | Lost | Dup "
        "| Fan-out spread p99 ms | Server CPU µs/delivery (main only) "
        "| Load gen CPU µs/delivery | Peak RSS MiB per replica | Upload p50 ms | Connect s |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for o in outcomes:
        print(
            f"| {o.scenario.name} | {o.replicas} | {o.variant} | {o.deliveries / o.window_s:,.0f} "
            f"| {o.lat_p50_ms:.1f} | {o.lat_p99_ms:.1f} | {o.lat_max_ms:.0f} | {o.lost} "
            f"| {o.duplicates} | {o.spread_p99_ms:.1f} | {o.cpu_us_per_delivery:.1f} "
            f"({o.main_cpu_s / max(o.deliveries, 1) * 1e6:.1f}) "
            f"| {o.loadgen_cpu_s / max(o.deliveries, 1) * 1e6:.1f} "
            f"| {' + '.join(f'{r:.0f}' for r in o.rss_mib)} | {o.upload_p50_ms:.1f} "
            f"| {o.connect_s:.0f} |"
        )
    for o in outcomes:
        extra = []
        if o.deliveries:
            kernel_us = o.kernel_cpu_s / o.deliveries * 1e6
            extra.append(
                f"server CPU {o.cpu_us_per_delivery:.1f} µs/delivery = "
                f"{o.cpu_us_per_delivery - kernel_us:.1f} user + {kernel_us:.1f} kernel"
            )
        extra.append(
            f"upload request p50 {o.upload_p50_ms:.1f}, p99 {o.upload_p99_ms:.1f}, "
            f"max {o.upload_max_ms:.0f} ms"
        )
        if o.upload_failures:
            extra.append(f"{o.upload_failures} uploads failed")
        if o.disconnected:
            extra.append(f"{o.disconnected} clients disconnected")
        if extra:
            print(f"\n{o.scenario.name}, {o.replicas} replica(s): " + "; ".join(extra))
        for note in o.gc_notes:
            print(f"\n{o.scenario.name}, {o.replicas} replica(s): {note}")


# ---- the replica wrapper (experiments only) -------------------------------------------------


def as_replica(index: str, cli_args: list[str]) -> None:
    """Run ``web.cli`` with a GC setting (IMAGESHARK_BENCH_GC) and/or cProfile
    (IMAGESHARK_BENCH_PROFILE, a file prefix), printing collector statistics at exit.

    Settings: ``observe`` (only measure), ``freeze`` (``gc.freeze()`` once the lifespan
    started), ``t0=N`` (generation-0 threshold N), ``direct`` (room events put straight on
    each socket's Engine.IO queue, no task per recipient), combinable with ``,``.
    """
    import web.app
    import web.cli

    setting = os.environ.get("IMAGESHARK_BENCH_GC", "observe")
    records: list[tuple[float, int, float]] = []  # (wall time, generation, pause seconds)
    started: list[float] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            records.append((time.time(), info["generation"], time.perf_counter() - started.pop()))

    gc.callbacks.append(on_gc)
    # uvicorn restores the previous SIGTERM handler after its graceful shutdown and raises the
    # signal again: make that an exit that runs the finally clause below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    def census(*_: Any) -> None:
        # SIGUSR1 from the bench at the end of the window: what the collector has to traverse
        from collections import Counter

        objects = gc.get_objects()
        counts = Counter(type(o).__qualname__ for o in objects)
        top = ", ".join(f"{name} {n}" for name, n in counts.most_common(8))
        print(
            f"bench-heap replica {index}: {len(objects)} tracked objects outside the frozen "
            f"generation, {gc.get_freeze_count()} frozen; most common: {top}",
            flush=True,
        )

    signal.signal(signal.SIGUSR1, census)
    options = [part for part in setting.split(",") if part]
    for part in options:
        if part.startswith("t0="):
            _, t1, t2 = gc.get_threshold()
            gc.set_threshold(int(part[3:]), t1, t2)
    if "direct" in options:
        # Experiment: emit a room event by putting the one encoded Engine.IO packet straight
        # on each local socket's send queue, instead of python-socketio's emit, which creates
        # one asyncio task per recipient (AsyncManager.emit -> _send_eio_packet).
        from engineio import packet as eio_packet
        from socketio import packet as sio_packet

        from realtime.delivery import LiveDelivery
        from realtime.rooms import room_name

        async def emit_direct(self: Any, room_id: int, room: Any, event: Any) -> None:
            for buffer in room.syncing.values():
                buffer.append(event)
            skip = set(room.syncing)
            if room.ahead:
                skip |= {sid for sid, seq in room.ahead.items() if seq >= event.seq}
                room.ahead = {sid: seq for sid, seq in room.ahead.items() if seq > event.seq}
            pkt = self.server.packet_class(
                sio_packet.EVENT, namespace="/", data=[event.kind, event.payload]
            )
            eio_pkt = eio_packet.Packet(eio_packet.MESSAGE, pkt.encode())
            sockets = self.server.eio.sockets
            for sid, eio_sid in list(self.server.manager.get_participants("/", room_name(room_id))):
                socket = sockets.get(eio_sid)
                if sid not in skip and socket is not None and not socket.closed:
                    socket.queue.put_nowait(eio_pkt)

        LiveDelivery._emit_to_room = emit_direct  # type: ignore[method-assign]
    original = web.app.create_app

    def create_app(settings: Any = None, **options_of_serve: Any) -> Any:
        inner = original(settings, **options_of_serve)

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "lifespan" and "freeze" in options:

                async def send_wrapper(message: Any) -> None:
                    if message["type"] == "lifespan.startup.complete":
                        gc.collect()
                        gc.freeze()
                    await send(message)

                await inner(scope, receive, send_wrapper)
                return
            await inner(scope, receive, send)

        return app

    web.app.create_app = create_app  # type: ignore[assignment]
    profile = os.environ.get("IMAGESHARK_BENCH_PROFILE")
    try:
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
            try:
                web.cli.main(cli_args, standalone_mode=False)
            finally:
                profiler.disable()
                profiler.dump_stats(f"{profile}.{index}.prof")
        else:
            web.cli.main(cli_args, standalone_mode=False)
    finally:
        out = os.environ.get("IMAGESHARK_BENCH_GC_OUT")
        if out:
            Path(f"{out}.{index}.json").write_text(json.dumps(records))


# ---- main ------------------------------------------------------------------------------------


async def amain(args: argparse.Namespace) -> None:
    from tests.production.processes import RedisServer, running

    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    counts = {"1": [1], "2": [2], "both": [1, 2]}[args.replicas]
    db_name, database_url = await create_database()
    # Every scenario's image files stay until the whole run is over: on an ext4 without a
    # journal, deleting thousands of files makes each new file in the same block group cost a
    # scan of them for the next 60-360 s (see bench/README.md), which the next scenario would
    # otherwise measure.
    data_root = Path(tempfile.mkdtemp(prefix="imageshark-bench-live-"))
    outcomes: list[Outcome] = []
    try:
        await asyncio.to_thread(migrate, database_url)
        redis = RedisServer()
        async with running(redis):
            for name in names:
                scenario = SCENARIOS[name]
                if args.clients:
                    scenario = Scenario(
                        f"{scenario.rooms} room(s) x {args.clients} clients, "
                        f"{args.rate or scenario.rate:g} uploads/s",
                        scenario.rooms,
                        args.clients,
                        args.rate or scenario.rate,
                    )
                elif args.rate:
                    scenario = Scenario(
                        scenario.name.rsplit(",", 1)[0] + f", {args.rate:g} uploads/s",
                        scenario.rooms,
                        scenario.clients_per_room,
                        args.rate,
                    )
                for replicas in counts:
                    print(f"{scenario.name} on {replicas} replica(s)...", file=sys.stderr)
                    outcome = await run_scenario(
                        scenario, replicas, args, database_url, redis.url, data_root
                    )
                    outcomes.append(outcome)
                    print_table([outcome], args)
    finally:
        await drop_database(db_name)
        shutil.rmtree(data_root, ignore_errors=True)
    if len(outcomes) > 1:
        print("\n## All scenarios")
        print_table(outcomes, args)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--as-replica":
        as_replica(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=["all", *SCENARIOS], default="all")
    parser.add_argument("--replicas", choices=["1", "2", "both"], default="both")
    parser.add_argument("--duration", type=float, default=20, help="measured seconds of uploads")
    parser.add_argument("--warmup", type=float, default=5, help="uploads before, not counted")
    parser.add_argument("--drain", type=float, default=3, help="seconds to wait after uploads")
    parser.add_argument("--clients", type=int, default=0, help="override clients per room")
    parser.add_argument("--rate", type=float, default=0, help="override uploads/s")
    parser.add_argument("--client-procs", type=int, default=2, help="load-generator processes")
    parser.add_argument(
        "--connect-concurrency", type=int, default=20, help="handshakes in flight per process"
    )
    parser.add_argument(
        "--server",
        choices=["imageshark", "node"],
        default="imageshark",
        help="imageshark: `python -m web.cli serve` replicas; node: the Node.js socket.io 4 "
        "reference in bench/node-reference (run `npm ci --prefix bench/node-reference` first)",
    )
    parser.add_argument(
        "--server-gc",
        default="none",
        help="none: plain `python -m web.cli serve`; else run replicas through the wrapper "
        "with 'observe', 'freeze', 't0=N', 'direct' or a comma-separated mix (reports GC "
        "pauses)",
    )
    parser.add_argument(
        "--profile", default="", help="cProfile the replicas; stats to PREFIX.<replica>.prof"
    )
    parser.add_argument(
        "--py-spy",
        default="",
        help="record replica 0 during the window with py-spy (speedscope JSON to this file; "
        "run as `uv run --with py-spy python bench/live.py ...`)",
    )
    args = parser.parse_args()
    if args.server == "node":
        refused = [
            option
            for option, used in (
                ("--server-gc", args.server_gc != "none"),
                ("--profile", bool(args.profile)),
                ("--py-spy", bool(args.py_spy)),
            )
            if used
        ]
        if refused:
            parser.error(
                f"{', '.join(refused)} instrument(s) the Python server and cannot be combined "
                "with --server node"
            )
        args.node_version = node_version()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if args.profile:
        args.profile = str(Path(args.profile).resolve())
    if args.profile and args.server_gc == "none":
        args.server_gc = "observe"
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
