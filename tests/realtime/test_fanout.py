"""Room broadcasts written straight to WebSocket transports (realtime/fanout.py).

A bare Socket.IO server with the product's manager runs on real uvicorn (websockets-sansio, no
permessage-deflate, as ``imageshark serve``). The tests check that WebSocket recipients take the
direct path, that anything else takes the queue, and that mixing the two never reorders or
loses a packet, also for a client that stops reading.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import socketio
from socketio import packet
from websockets.asyncio.client import connect as ws_connect

from realtime.fanout import SequentialFanOutManager, register_websockets
from tests.conftest import serve_asgi

ROOM = "room"


def deliveries(sio: socketio.AsyncServer, path: str) -> float:
    """The count of broadcast packets ``sio``'s manager handed over by ``path``."""
    registry = sio.manager.counters.registry
    value = registry.get_sample_value("imageshark_fanout_deliveries_total", {"path": path})
    return value or 0.0


class Counted:
    """Counter deltas of ``sio``'s manager since creation."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio
        self.start = {path: deliveries(sio, path) for path in ("direct", "queued")}

    def __getitem__(self, path: str) -> float:
        return deliveries(self.sio, path) - self.start[path]


async def fanout_server(
    ping_timeout: float, *, per_message_deflate: bool = False
) -> AsyncIterator[tuple[str, socketio.AsyncServer]]:
    """A Socket.IO server whose clients all join ``ROOM``; yields its URL and the server.

    The ping interval is 1 s, so that a long-polling client's pending GET ends soon after it
    leaves; python-socketio's client waits about ``ping_timeout`` more when disconnecting one.

    :param per_message_deflate: uvicorn offers permessage-deflate to WebSocket clients.
    """
    sio = socketio.AsyncServer(
        async_mode="asgi",
        client_manager=SequentialFanOutManager(),
        logger=False,
        ping_interval=1,
        ping_timeout=ping_timeout,
    )
    register_websockets(sio)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        await sio.enter_room(sid, ROOM)

    async for base_url, _ in serve_asgi(
        socketio.ASGIApp(sio), per_message_deflate=per_message_deflate
    ):
        yield base_url, sio


@pytest.fixture
async def live() -> AsyncIterator[tuple[str, socketio.AsyncServer]]:
    """:func:`fanout_server` with a ping timeout long enough for a client that stalls."""
    async for served in fanout_server(ping_timeout=20):
        yield served


@pytest.fixture
async def live_polling() -> AsyncIterator[tuple[str, socketio.AsyncServer]]:
    """:func:`fanout_server` with a short ping timeout, for long-polling clients."""
    async for served in fanout_server(ping_timeout=1):
        yield served


@pytest.fixture
async def live_compressed() -> AsyncIterator[tuple[str, socketio.AsyncServer]]:
    """:func:`fanout_server` on a uvicorn that offers permessage-deflate."""
    async for served in fanout_server(ping_timeout=20, per_message_deflate=True):
        yield served


class Recorder:
    """A python-socketio client recording the ``n`` events it receives."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.received: list[Any] = []
        self.changed = asyncio.Condition()
        self.client.on("n", self._record)

    async def _record(self, data: Any) -> None:
        async with self.changed:
            self.received.append(data)
            self.changed.notify_all()

    async def connect(self, base_url: str, transport: str) -> None:
        await self.client.connect(base_url, transports=[transport], wait_timeout=10)

    async def wait_for(self, count: int, timeout: float = 20) -> list[Any]:
        """The received events once there are at least ``count``."""
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(lambda: len(self.received) >= count)
        return list(self.received)


async def test_websocket_recipients_get_one_direct_write_each(
    live: tuple[str, socketio.AsyncServer],
) -> None:
    base_url, sio = live
    clients = [Recorder() for _ in range(3)]
    for client in clients:
        await client.connect(base_url, "websocket")
    counted = Counted(sio)
    payload = {"text": "é ✓ \u2028", "nested": [1, 2.5, None, True]}
    await sio.emit("n", payload, room=ROOM)
    for client in clients:
        assert await client.wait_for(1) == [payload]
    assert counted["direct"] == 3
    assert counted["queued"] == 0
    for client in clients:
        await client.client.disconnect()


async def test_a_server_offering_compression_queues_every_packet(
    live_compressed: tuple[str, socketio.AsyncServer],
) -> None:
    """With permessage-deflate offered, a client may compress its frames, so one frame made
    for every recipient would be wrong: no connection takes the direct path."""
    base_url, sio = live_compressed
    ws_url = base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with ws_connect(ws_url) as compressed:  # offers permessage-deflate
        assert str(await compressed.recv()).startswith("0{")
        await compressed.send("40")
        assert str(await compressed.recv()).startswith("40{")
        assert [e.name for e in compressed.protocol.extensions] == ["permessage-deflate"]
        counted = Counted(sio)
        for i in range(3):
            await sio.emit("n", {"i": i}, room=ROOM)
        received = [json.loads(str(await compressed.recv())[2:]) for _ in range(3)]
    assert received == [["n", {"i": i}] for i in range(3)]
    assert counted["direct"] == 0
    assert counted["queued"] == 3


async def test_polling_recipients_and_binary_packets_are_queued(
    live_polling: tuple[str, socketio.AsyncServer],
) -> None:
    base_url, sio = live_polling
    polling, websocket = Recorder(), Recorder()
    await polling.connect(base_url, "polling")
    await websocket.connect(base_url, "websocket")
    counted = Counted(sio)
    await sio.emit("n", {"i": 1}, room=ROOM)
    await sio.emit("n", {"blob": b"\x00\xffbytes"}, room=ROOM)  # binary attachment
    expected = [{"i": 1}, {"blob": b"\x00\xffbytes"}]
    assert await polling.wait_for(2) == expected
    assert await websocket.wait_for(2) == expected
    assert counted["direct"] == 1  # the text event to the WebSocket client
    assert counted["queued"] == 3  # both to the polling client, the binary one to both
    for client in (polling, websocket):
        await client.client.disconnect()


async def test_direct_and_queued_packets_keep_their_order(
    live: tuple[str, socketio.AsyncServer],
) -> None:
    """Packets queued for a socket (a library emit, here ``_send_packet``) are interleaved with
    broadcasts; every few packets the test waits for the client to catch up, so its writer is
    idle again and the next broadcast can go direct."""
    base_url, sio = live
    client = Recorder()
    await client.connect(base_url, "websocket")
    eio_sid = next(eio for _, eio in sio.manager.get_participants("/", ROOM))
    counted = Counted(sio)
    total = 300
    for i in range(total):
        if i % 3 == 0:
            await sio._send_packet(
                eio_sid, sio.packet_class(packet.EVENT, namespace="/", data=["n", i])
            )
        else:
            await sio.emit("n", i, room=ROOM)
        if i % 10 == 9:
            await client.wait_for(i + 1)
    assert await client.wait_for(total) == list(range(total))
    assert counted["direct"] > 0
    assert counted["queued"] > 0
    assert counted["direct"] + counted["queued"] == total - total // 3
    await client.client.disconnect()


async def test_a_client_that_stops_reading_holds_up_nobody(
    live: tuple[str, socketio.AsyncServer],
) -> None:
    """A raw Engine.IO WebSocket client stops reading (its library stops reading the socket
    after a few unread messages), the server's writes to it back up until flow control pauses
    its transport, and its packets then wait in its queue while the other client gets every
    broadcast at once. When it reads again it gets every packet, in order, once."""
    base_url, sio = live
    healthy = Recorder()
    await healthy.connect(base_url, "websocket")
    ws_url = base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with ws_connect(ws_url, max_queue=4, compression=None) as slow:
        assert str(await slow.recv()).startswith("0{")  # Engine.IO open
        await slow.send("40")
        assert str(await slow.recv()).startswith("40{")  # Socket.IO connect acknowledged
        counted = Counted(sio)
        blob = "x" * 256 * 1024
        total = 64  # 16 MiB: more than the loopback socket buffers take
        async with asyncio.timeout(30):  # no emit waits for a reader
            for i in range(total):
                await sio.emit("n", {"i": i, "blob": blob}, room=ROOM)
        received = await healthy.wait_for(total, timeout=60)
        assert [event["i"] for event in received] == list(range(total))
        assert counted["queued"] > 0  # the slow reader's, once its transport was paused
        # Frames this large also fill the healthy client's transport now and then, so its
        # packets take either path; what matters is that they all arrived, in order.
        assert counted["direct"] > 0
        assert counted["direct"] + counted["queued"] == 2 * total
        seen = []
        async with asyncio.timeout(60):
            while len(seen) < total:
                message = str(await slow.recv())
                if message == "2":  # Engine.IO ping
                    await slow.send("3")
                    continue
                assert message.startswith("42")
                event, data = json.loads(message[2:])
                assert event == "n"
                seen.append(data["i"])
        assert seen == list(range(total))
    await healthy.client.disconnect()


async def _probe(ws_url: str, sid: str) -> Any:
    """Open an upgrade WebSocket for Engine.IO session ``sid`` and send the probe; returns the
    connection once the server answered ``3probe``."""
    ws = await ws_connect(f"{ws_url}&sid={sid}", compression=None)
    await ws.send("2probe")
    assert await ws.recv() == "3probe"
    return ws


async def test_broadcasts_follow_the_websocket_that_completed_the_upgrade(
    live: tuple[str, socketio.AsyncServer],
) -> None:
    """One long-polling session, two upgrade WebSockets probing at once (a client retrying an
    upgrade): the first confirms the upgrade, the second never does. Broadcasts go to the
    first, which python-engineio's writer serves, and never to the other connection."""
    base_url, sio = live
    ws_url = base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        opened = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
        assert opened.text.startswith("0{")
        sid = json.loads(opened.text[1:])["sid"]
        polling = {"EIO": "4", "transport": "polling", "sid": sid}
        assert (await http.post("/socket.io/", params=polling, content="40")).text == "OK"
        assert (await http.get("/socket.io/", params=polling)).text.startswith("40{")
        upgraded = await _probe(ws_url, sid)
        stray = await _probe(ws_url, sid)
        try:
            await upgraded.send("5")
            # python-engineio's writer starts once the upgrade is done and first sends the
            # no-op packets each probe queued to end a pending poll.
            assert [await upgraded.recv() for _ in range(2)] == ["6", "6"]
            counted = Counted(sio)
            for i in range(3):
                await sio.emit("n", {"i": i}, room=ROOM)
            received = []
            async with asyncio.timeout(10):
                while len(received) < 3:
                    message = str(await upgraded.recv())
                    if message.startswith("42"):
                        received.append(json.loads(message[2:]))
            assert received == [["n", {"i": i}] for i in range(3)]
            assert counted["direct"] + counted["queued"] == 3
        finally:
            await upgraded.close()
            await stray.close()
