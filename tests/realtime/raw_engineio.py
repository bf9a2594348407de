"""A raw Engine.IO v4 client over WebSocket, for tests that must see or send exact frames
(`0{...}` open, `40` connect, `2`/`3` ping/pong, `6` noop, `42[...]` events)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


async def create_room(base_url: str, title: str = "raw") -> dict[str, Any]:
    """A new room (``POST /api/rooms``): its JSON with ``token`` and ``host_key``."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        response = await http.post("/api/rooms", json={"title": title})
    assert response.status_code == 201, response.text
    room: dict[str, Any] = response.json()
    return room


def websocket_url(base_url: str) -> str:
    """The Engine.IO WebSocket endpoint of the server at ``base_url`` (``http://host:port``)."""
    return base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"


class RawSession:
    """One Engine.IO session over a WebSocket, answering nothing by itself.

    :param ws: an open WebSocket to :func:`websocket_url`.
    :param open_packet: the server's ``0{...}`` handshake, decoded.
    """

    def __init__(self, ws: ClientConnection, open_packet: dict[str, Any]) -> None:
        self.ws = ws
        self.open_packet = open_packet

    @classmethod
    async def open(cls, base_url: str) -> RawSession:
        """Connect and read the open packet."""
        ws = await connect(websocket_url(base_url), compression=None, max_size=None)
        first = await asyncio.wait_for(ws.recv(), 10)
        assert isinstance(first, str) and first.startswith("0"), first
        return cls(ws, json.loads(first[1:]))

    async def send(self, frame: str) -> None:
        """Send one Engine.IO packet as a text frame."""
        await self.ws.send(frame)

    async def connect_room(self, auth: dict[str, Any]) -> None:
        """Send the Socket.IO CONNECT to namespace ``/`` with ``auth``."""
        await self.send("40" + json.dumps(auth))

    async def frames(self, timeout: float = 10) -> list[str]:
        """Every frame until the connection closes (or ``timeout`` seconds pass: TimeoutError)."""
        received: list[str] = []
        async with asyncio.timeout(timeout):
            async for frame in self.ws:
                received.append(frame if isinstance(frame, str) else frame.decode())
        return received

    async def next_frame(self, timeout: float = 10) -> str:
        """The next frame, answering the server's pings on the way."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.ws.recv()
                text = frame if isinstance(frame, str) else frame.decode()
                if text == "2":
                    await self.send("3")
                    continue
                return text

    async def wait_closed(self, timeout: float) -> bool:
        """Read (answering pings, ignoring everything else, the Engine.IO close packet too)
        until the server closes the connection: True, or False after ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                async for frame in self.ws:
                    if frame == "2":
                        await self.send("3")
        except TimeoutError:
            return False
        except ConnectionClosed:
            pass
        return True

    async def close(self) -> None:
        """Close the WebSocket."""
        await self.ws.close()
