"""The live side under hostile clients, on real servers with raw Engine.IO clients: sessions
that never connect a namespace, a client that stops reading, floods of malformed packets and
of NOOPs (see realtime/guard.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import socket
import statistics
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from tests.conftest import SettingsFactory, run_server
from tests.photos import make_image_bytes
from tests.production.processes import Replica, running
from tests.realtime.live_client import LiveClient
from tests.realtime.raw_engineio import RawSession, create_room, websocket_url


def _replica(tmp_path: Path, name: str) -> Replica:
    """One ``imageshark serve`` process on SQLite in ``tmp_path``, as deployed (INFO logs)."""
    return Replica(
        name,
        {
            "IMAGESHARK_DATA_DIR": str(tmp_path / name),
            "IMAGESHARK_RENDITION_WORKERS": "1",
            "IMAGESHARK_PING_INTERVAL_SECONDS": "2",
            "IMAGESHARK_PING_TIMEOUT_SECONDS": "5",
            "IMAGESHARK_LOG_LEVEL": "INFO",
        },
    )


def _output_bytes(replica: Replica) -> int:
    return sum(len(line) + 1 for line in replica.output)


async def test_sessions_that_never_connect_a_namespace_are_closed(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(connect_timeout_seconds=1)
    async for server in run_server(settings):
        room = await create_room(server.base_url)
        member = await RawSession.open(server.base_url)
        await member.connect_room({"token": room["token"], "name": "member"})
        assert (await member.next_frame()).startswith('40{"sid":')
        # They answer every ping, so only the connect timeout can end them.
        idle = await asyncio.gather(*(RawSession.open(server.base_url) for _ in range(50)))
        closed = await asyncio.gather(*(session.wait_closed(timeout=20) for session in idle))
        assert sum(closed) == len(idle)
        # The connected session outlived the timeout several times over.
        assert member.ws.state is State.OPEN
        await member.close()


async def test_connection_of_a_client_that_stops_reading_is_closed(
    make_settings: SettingsFactory,
) -> None:
    # A short heartbeat: only the missing pongs can end this connection, and sooner is faster.
    settings = make_settings(ping_interval_seconds=1, ping_timeout_seconds=2)
    async for server in run_server(settings):
        room = await create_room(server.base_url)
        host, port = server.base_url.removeprefix("http://").split(":")
        sock = socket.socket()
        # A tiny receive window, and the client library stops reading after one message.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        ws = await connect(websocket_url(server.base_url), sock=sock, max_queue=1, compression=None)
        try:
            await ws.send("40" + json.dumps({"token": room["token"], "name": "stalled"}))
            # Every CONNECT to an unknown namespace is answered with a CONNECT_ERROR that names
            # it: 80 of them put about 5 MB on the way to a client that reads none of it.
            namespace = "/" + "n" * 60_000
            for _ in range(80):
                await ws.send(f"40{namespace},")
            started = time.monotonic()
            poller = select.poll()
            # No input events asked for: poll() returns on a hang-up or an error only.
            poller.register(sock.fileno(), 0)
            bound = 1 + 2 + 2 + 8  # ping interval + timeout + the sweep + slack, seconds
            events = await asyncio.to_thread(poller.poll, bound * 1000)
            assert events, f"connection still open {bound} s after the client stopped reading"
            assert events[0][1] & (select.POLLHUP | select.POLLERR)
            assert time.monotonic() - started < bound
        finally:
            ws.transport.abort()


@pytest.mark.processes  # imageshark serve subprocesses
async def test_malformed_packet_flood_is_logged_once_and_closed(tmp_path: Path) -> None:
    replica = _replica(tmp_path, "malformed")
    async with running(replica):
        room = await create_room(replica.base_url)
        logged_before = _output_bytes(replica)
        # No room token at all: straight to 20 000 packets of an unknown Socket.IO type.
        flood = await RawSession.open(replica.base_url)
        with contextlib.suppress(ConnectionClosed):
            for _ in range(20_000):
                await flood.send("4x")
        assert await flood.wait_closed(timeout=15)
        # The server is free for others at once: a client joins and is counted.
        member = LiveClient(replica.base_url, room["token"], "after")
        await member.connect()
        await member.next("presence")
        await member.close()
        logged = _output_bytes(replica) - logged_before
        assert logged < 10_000, "\n".join(replica.output[-5:])
        assert sum("malformed Socket.IO packet" in line for line in replica.output) == 1


# A NOOP flood from its own process, so that the test's clients keep their CPU: it connects,
# sends Engine.IO NOOPs until the server closes the connection and prints how many it sent.
_NOOP_FLOOD = """
import sys
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
sent = 0
with connect(sys.argv[1], compression=None) as ws:
    ws.recv()
    try:
        while True:
            ws.send("6")
            sent += 1
    except ConnectionClosed:
        pass
print(sent, flush=True)
"""


async def _delivery_latencies(
    base_url: str, token: str, client: LiveClient, sizes: range
) -> list[float]:
    """Seconds from the start of an upload to ``client`` receiving its event, for one upload
    per width in ``sizes`` (distinct photos: the same bytes twice are not stored again)."""
    latencies = []
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        for width in sizes:
            data = make_image_bytes("jpeg", name="coffee", size=(width, 48))
            started = time.monotonic()
            response = await http.post(
                f"/api/rooms/{token}/images", files={"file": ("p.jpg", data, "image/jpeg")}
            )
            assert response.status_code == 201, response.text
            await client.next("image_added")
            latencies.append(time.monotonic() - started)
    return latencies


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


@pytest.mark.processes  # imageshark serve subprocesses
async def test_noop_flood_is_closed_and_leaves_other_rooms_alone(tmp_path: Path) -> None:
    replica = _replica(tmp_path, "noop")
    async with running(replica):
        room = await create_room(replica.base_url)
        watcher = LiveClient(replica.base_url, room["token"], "watcher")
        await watcher.connect()
        try:
            # Warm-up: the first uploads start the rendition worker.
            await _delivery_latencies(replica.base_url, room["token"], watcher, range(60, 63))
            quiet = await _delivery_latencies(
                replica.base_url, room["token"], watcher, range(64, 84)
            )
            flooder = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _NOOP_FLOOD,
                websocket_url(replica.base_url),
                stdout=asyncio.subprocess.PIPE,
            )
            try:
                flooded = await _delivery_latencies(
                    replica.base_url, room["token"], watcher, range(84, 104)
                )
                async with asyncio.timeout(15):
                    output, _ = await flooder.communicate()
            finally:
                if flooder.returncode is None:
                    flooder.kill()
                    await flooder.wait()
        finally:
            await watcher.close()
    sent = int(output)
    # Closed by the packet bound, not by the heartbeat: that took 1.2 million NOOPs.
    assert sent < 50_000
    print(
        f"p99 quiet {_p99(quiet) * 1000:.0f} ms, flooded {_p99(flooded) * 1000:.0f} ms; "
        f"{sent} NOOPs sent before the server closed the connection"
    )
    # Generous: a flood that reached the event loop multiplied p99 by ten.
    assert _p99(flooded) < 3 * _p99(quiet) + 0.25


async def test_a_long_polling_client_that_leaves_is_answered_at_once(
    make_settings: SettingsFactory,
) -> None:
    """The client's CLOSE ends its held GET poll: leaving takes far less than the 30 s
    heartbeat the held poll would otherwise wait out, and the server counts it gone."""
    settings = make_settings(ping_interval_seconds=30, ping_timeout_seconds=30)
    async for server in run_server(settings):
        room = await create_room(server.base_url)
        leaving = LiveClient(server.base_url, room["token"], "leaving")
        staying = LiveClient(server.base_url, room["token"], "staying")
        await staying.connect("websocket")
        await leaving.connect("polling")
        await _presence_reaches(staying, 2)
        started = time.monotonic()
        await leaving.client.disconnect()
        assert time.monotonic() - started < settings.ping_interval_seconds / 3
        await _presence_reaches(staying, 1)
        await staying.client.disconnect()


async def _presence_reaches(client: LiveClient, count: int) -> None:
    """Wait for a ``presence`` event with ``count`` (counts are sent at most once a second,
    so earlier ones may show a count on the way); fails after the client's event timeout."""
    while (await client.next("presence"))[1]["count"] != count:
        pass
