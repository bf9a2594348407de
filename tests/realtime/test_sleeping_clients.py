"""Room broadcasts when clients stop answering pings (phones going to sleep), on a real uvicorn.

A broadcast's send is what closes a timed-out client; its disconnect emits ``presence`` to the
same room, which closes the next timed-out client while the first broadcast is still walking its
recipients. Neither that nor any other failing send may decide the upload's answer, cost the
remaining recipients the event, or make a later gap fill send it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import SettingsFactory, run_server
from tests.photos import make_image_bytes
from tests.realtime.live_client import LiveClient

PING_INTERVAL, PING_TIMEOUT = 1.0, 6.0
# Several rooms at once, small images and a long timeout: the server's own timeout sweep (one
# visit per socket per PING_TIMEOUT) may close a room's sleepers before the upload does, which
# hides the fault in that room.
ROOMS = 4


class SleepingClient:
    """A raw Engine.IO v4 WebSocket client of a room that reads everything and never answers a
    ping. It sends a NOOP every second so that the server's read timeout (ping interval plus
    ping timeout without any packet) is not what closes it: only the missing pong is."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.pinged_at: float | None = None
        self.pinged = asyncio.Event()
        self.closed = asyncio.Event()
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._noop())]

    @classmethod
    async def join(cls, base_url: str, token: str, name: str) -> SleepingClient:
        ws = await ws_connect(
            base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
            compression=None,
        )
        assert str(await ws.recv()).startswith("0{")  # Engine.IO open
        await ws.send("40" + json.dumps({"token": token, "name": name}))
        assert str(await ws.recv()).startswith("40{")  # admitted to the room
        return cls(ws)

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in self.ws:
                if message == "2" and self.pinged_at is None:
                    self.pinged_at = time.time()
                    self.pinged.set()
        self.closed.set()

    async def _noop(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(1)  # a client's keep-alive rhythm, not synchronisation
                await self.ws.send("6")

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.ws.close()


async def _image_events(client: LiveClient, until: dict[str, Any]) -> list[int]:
    """The ids of ``image_added`` events ``client`` receives, up to and including ``until``."""
    ids = []
    while True:
        _, image = await client.next("image_added", timeout=20)
        ids.append(image["id"])
        if image["id"] == until["id"]:
            return ids


async def test_two_sleeping_phones_cost_no_upload_and_no_event(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(ping_interval_seconds=PING_INTERVAL, ping_timeout_seconds=PING_TIMEOUT)
    async for server in run_server(settings):
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            rooms = []
            for n in range(ROOMS + 1):
                response = await http.post("/api/rooms", json={"title": f"sleepers {n}"})
                assert response.status_code == 201
                rooms.append(response.json())
            healthy: list[LiveClient] = []
            sleepers: list[SleepingClient] = []
            try:
                # Everything an upload needs is made and warmed up beforehand, so that the
                # uploads reach the sleepers before the server's timeout sweep does.
                images = [
                    [
                        make_image_bytes("jpeg", name="coffee", size=(40 + 4 * r + n, 30))
                        for n in range(3)
                    ]
                    for r in range(ROOMS + 1)
                ]
                warm_up = await http.post(
                    f"/api/rooms/{rooms[-1]['token']}/images",
                    files={"file": ("p.jpg", images[ROOMS][0], "image/jpeg")},
                )
                assert warm_up.status_code == 201
                rooms = rooms[:ROOMS]
                for room in rooms:
                    healthy.append(LiveClient(server.base_url, room["token"], "awake before"))
                    await healthy[-1].connect()
                sleepers = list(
                    await asyncio.gather(
                        *(
                            SleepingClient.join(server.base_url, room["token"], f"phone {i}")
                            for room in rooms
                            for i in (1, 2)
                        )
                    )
                )
                for room in rooms:
                    healthy.append(LiveClient(server.base_url, room["token"], "awake after"))
                    await healthy[-1].connect()

                # Once every sleeper's ping is older than the ping timeout, the server counts
                # it as gone, and the next send to it closes it.
                async with asyncio.timeout(10):
                    await asyncio.gather(*(sleeper.pinged.wait() for sleeper in sleepers))
                overdue = max(s.pinged_at or 0 for s in sleepers) + PING_TIMEOUT + 0.1
                await asyncio.sleep(max(0.0, overdue - time.time()))

                uploads = []
                statuses = []
                for n in range(3):
                    answers = await asyncio.gather(
                        *(
                            http.post(
                                f"/api/rooms/{room['token']}/images",
                                files={"file": ("p.jpg", images[r][n], "image/jpeg")},
                            )
                            for r, room in enumerate(rooms)
                        )
                    )
                    statuses += [answer.status_code for answer in answers]
                    uploads.append([answer.json() for answer in answers])
                assert statuses == [201] * 3 * ROOMS, statuses

                async with asyncio.timeout(20):  # every sleeper was dropped
                    await asyncio.gather(*(sleeper.closed.wait() for sleeper in sleepers))
                # Each healthy client sees each of its room's images once, in order; the third
                # upload closes the check: any repeat of the first two would come before it.
                for index, client in enumerate(healthy):
                    r = index % ROOMS
                    expected = [uploads[n][r]["id"] for n in range(3)]
                    assert await _image_events(client, uploads[2][r]) == expected
            finally:
                await asyncio.gather(*(client.close() for client in healthy))
                await asyncio.gather(*(sleeper.close() for sleeper in sleepers))
